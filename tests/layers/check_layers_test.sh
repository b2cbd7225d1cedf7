#!/usr/bin/env bash
# The include-direction check, proven both ways: it passes on the checkout, and it fails, naming the file, line
# and rule, on a copy with each kind of forbidden include planted in it.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHECK=$SRC/scripts/check-layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$CHECK" "$SRC" >/dev/null || { echo "FAIL: the checkout itself has an upward include"; "$CHECK" "$SRC"; exit 1; }

plant() {  # plant FILE INCLUDE EXPECTED-REASON
  rm -rf "$tmp/tree" && mkdir "$tmp/tree"
  (cd "$SRC" && cp -r base model state reconciler providers cli "$tmp/tree/")
  printf '#include "%s"\n' "$2" >>"$tmp/tree/$1"
  if out=$("$CHECK" "$tmp/tree" 2>&1); then
    echo "FAIL: $1 including \"$2\" was not reported"
    exit 1
  fi
  local line
  line=$(wc -l <"$tmp/tree/$1")
  grep -qF "$1:$line: includes \"$2\": $3" <<<"$out" || { echo "FAIL: unexpected report for $1 -> $2:"; echo "$out"; exit 1; }
  echo "ok: $1 -> $2 refused ($3)"
}

plant state/store.h reconciler/plan.h "upward include"
plant model/model.h state/store.h "upward include"
plant base/result.h model/model.h "upward include"
plant reconciler/planner.cpp providers/linux/linux_provider.h "upward include"
plant reconciler/applier.cpp cli/providers.h "upward include"
plant providers/ovs/session.cpp providers/linux/netns.h "a provider includes another provider"
plant providers/linux/session.cpp state/store.h "a provider includes the state store"
plant providers/linux/session.cpp reconciler/applier.h "a provider uses the engine beyond its provider SDK"
