#!/usr/bin/env bash
# Usage: scripts/packages/graph.sh
# Run by scripts/setup.sh after apt. Installs the npm packages that tests/integration/cli_graph_test.cpp parses
# `vnetplan graph --format mermaid` with (mermaid + jsdom, exact versions from tests/graph/package-lock.json) into
# $VNETPLAN_GRAPH_TOOLS (default /var/cache/vnetplan/graph-tools), outside the source tree. Debian's npm is
# installed first when no npm is on the PATH (a Node from elsewhere may bring its own). Idempotent: quick when
# the installed lock file equals the checked-in one.
set -euo pipefail
me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${VNETPLAN_GRAPH_TOOLS:-/var/cache/vnetplan/graph-tools}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v npm >/dev/null; then
  echo "$me: installing npm" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null ||
    die "apt-get install npm failed"
fi
if [ -d "$dest/node_modules" ] && cmp -s "$src/tests/graph/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
$SUDO mkdir -p "$dest"
[ -w "$dest" ] || $SUDO chown "$(id -u):$(id -g)" "$dest"
cp "$src/tests/graph/package.json" "$src/tests/graph/package-lock.json" "$dest/"
echo "$me: installing mermaid and jsdom into $dest" >&2
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $dest failed"
