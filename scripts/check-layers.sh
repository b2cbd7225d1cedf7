#!/usr/bin/env bash
# scripts/check-layers.sh [ROOT]   (default: the checkout this script is in)
#
# Checks that every #include "..." in the code points down the layers of docs/ARCHITECTURE.md, never up:
#
#   cli/                the binary: argument parsing, output, and the one place that names providers
#   providers/<name>/   one provider; may use the provider SDK of the engine (reconciler/provider.h,
#                       reconciler/kind_table.h), model/ and base/ -- never another provider, state/ or cli/
#   reconciler/         the engine: manifests, planning, applying; knows providers only through provider.h
#   state/              the state store and its backends
#   model/              shared vocabulary: addresses, attributes, steps, codecs, diagnostics
#   base/               helpers with no domain knowledge: results, fds, sockets, files, addresses, digests
#
# A file may include headers of its own layer and of the layers below it (a provider only its own directory of
# the providers layer). tests/, bench/ and cli/ may include anything. Prints each upward include as
# FILE:LINE: and exits 1 if there is any.
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$ROOT"

rank() {  # the layer rank of a path, or nothing for paths outside the layers
  case $1 in
    base/*) echo 0 ;;
    model/*) echo 1 ;;
    state/*) echo 2 ;;
    reconciler/*) echo 3 ;;
    providers/*) echo 4 ;;
    cli/*) echo 5 ;;
  esac
}

# The engine headers a provider may use.
provider_sdk() { [[ $1 == reconciler/provider.h || $1 == reconciler/kind_table.h ]]; }

bad=0
while IFS= read -r file; do
  from=$(rank "$file")
  [ -n "$from" ] || continue
  [ "$from" -eq 5 ] && continue
  lineno=0
  while IFS= read -r line; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
    inc=${BASH_REMATCH[1]}
    to=$(rank "$inc")
    [ -n "$to" ] || continue
    why=""
    if [ "$from" -eq 4 ]; then
      own=${file#providers/}
      own=providers/${own%%/*}/
      if [[ $inc == providers/* && $inc != "$own"* ]]; then
        why="a provider includes another provider"
      elif [ "$to" -eq 3 ] && ! provider_sdk "$inc"; then
        why="a provider uses the engine beyond its provider SDK (reconciler/provider.h, reconciler/kind_table.h)"
      elif [ "$to" -eq 2 ]; then
        why="a provider includes the state store"
      elif [ "$to" -gt 4 ]; then
        why="upward include"
      fi
    elif [ "$to" -gt "$from" ]; then
      why="upward include"
    fi
    if [ -n "$why" ]; then
      echo "$file:$lineno: includes \"$inc\": $why" >&2
      bad=1
    fi
  done <"$file"
done < <(find base model state reconciler providers cli -name '*.h' -o -name '*.cpp' 2>/dev/null | sort)

if [ "$bad" -ne 0 ]; then
  echo "check-layers: includes that point up the layers (see docs/ARCHITECTURE.md)" >&2
  exit 1
fi
echo "check-layers: every include points down"
