#!/usr/bin/env bash
# bench/linux/profile.sh [N_BRIDGES=1000]
#
# Where vnetplan's time goes in the bench/linux workload: wall-clock time per pipeline phase (YAML load, schema
# validation, builder, observe, state load, planner, apply steps, verify, state write), measured with uprobes on
# the phase functions of the vnetplan binary (perf probe), for one apply from empty and three no-op plans in a
# throwaway network namespace. Needs root and perf (apt-get install linux-perf). Uprobes add a few microseconds
# per call: `validate` (once per document) is inflated by that, the other phases are not.
# Environment: VNETPLAN=path/to/vnetplan (default: build-bench/vnetplan, then build/vnetplan).
set -euo pipefail

N=${1:-1000}
[[ $N =~ ^[1-9][0-9]{0,5}$ ]] || { echo "usage: $0 [N_BRIDGES=1000]" >&2; exit 1; }
die() { echo "bench/linux/profile: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root"
command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/linux/workload.sh
. "$ROOT/bench/linux/workload.sh"
if [ -z "${VNETPLAN:-}" ]; then
  for c in "$ROOT/build-bench/vnetplan" "$ROOT/build/vnetplan"; do
    [ -x "$c" ] && { VNETPLAN=$c; break; }
  done
fi
if [ -z "${VNETPLAN:-}" ] || [ ! -x "$VNETPLAN" ]; then die "no vnetplan binary (set VNETPLAN)"; fi
VNETPLAN=$(readlink -f "$VNETPLAN")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vnp-profile.XXXXXX")
NS="vnp-bench-$$-profile"
GROUP="vnpbench$$"
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  perf probe -q -d "$GROUP:*" 2>/dev/null || true
  if [ -e "/run/netns/$NS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Phase functions, by demangled name (first match; local symbols included). Missing ones are skipped.
PHASES=(
  "vnetplan::cli::cmdPlan(" "vnetplan::cli::cmdApply("
  "vnetplan::loadDesired(" "vnetplan::loadManifests(" "vnetplan::(anonymous namespace)::finish("
  "vnetplan::SchemaValidator::SchemaValidator()" "vnetplan::SchemaValidator::validate("
  "vnetplan::buildDesiredState(" "vnetplan::(anonymous namespace)::digestOf(" "vnetplan::lint("
  "vnetplan::planDesired(" "vnetplan::connectAndObserve(" "vnetplan::lnx::LinuxSession::observe("
  "vnetplan::state::Store::load(" "vnetplan::planAgainst("
  "vnetplan::(anonymous namespace)::TargetRun::apply(" "vnetplan::(anonymous namespace)::TargetRun::execute("
  "vnetplan::(anonymous namespace)::TargetRun::verify(" "vnetplan::(anonymous namespace)::TargetRun::recordSuccess("
  "vnetplan::state::Store::save("
)
nm -C "$VNETPLAN" | grep -E '^[0-9a-f]+ [tT] ' | grep -v '\[clone \.cold\]' >"$TMP/syms"
i=0
for p in "${PHASES[@]}"; do
  addr=$(awk -v p="$p" 'index(substr($0, 20), p) == 1 { print $1; exit }' "$TMP/syms")
  [ -n "$addr" ] || { echo "  (no symbol for $p: skipped)" >&2; continue; }
  short=$(sed -E 's/\(anonymous namespace\):://; s/\(.*//; s/.*:://' <<<"$p")
  i=$((i + 1))
  ev="p${i}_$short"
  perf probe -q -x "$VNETPLAN" --add "$GROUP:e_$ev=0x$addr" 2>/dev/null &&
    perf probe -q -x "$VNETPLAN" --add "$GROUP:x_$ev=0x$addr%return" 2>/dev/null ||
    echo "  (cannot probe $p: skipped)" >&2
done

# Nested phases per thread: start offset, total wall time, calls.
phases() {
  perf script -i "$1" 2>/dev/null | awk '
    match($0, /[0-9]+\.[0-9]+: /) {
      t = substr($0, RSTART, RLENGTH - 2) + 0
      pre = substr($0, 1, RSTART - 1); split(pre, f, " "); tid = f[2]
      rest = substr($0, RSTART + RLENGTH); sub(/^ +/, "", rest); split(rest, ev, ":"); rest = ev[2]
      kind = substr(rest, 1, 1); name = substr(rest, 3); sub(/__return$/, "", name); sub(/^p[0-9]+_/, "", name)
      if (t0 == "") { t0 = t; main = tid }
      if (kind == "e") { d = ++depth[tid]; stk[tid, d] = name; st[tid, d] = t; next }
      for (d = depth[tid]; d >= 1; d--) if (stk[tid, d] == name) break
      if (d < 1) next
      key = (tid != main ? "[thread] " : "") sprintf("%*s", 2 * (d - 1), "") name
      if (!(key in calls)) { order[++n] = key; first[key] = st[tid, d] - t0 }
      calls[key]++; total[key] += t - st[tid, d]
      depth[tid] = d - 1
    }
    END {
      for (i = 1; i <= n; i++) { k = order[i]; printf "%.3f\t%.1f\t%d\t%s\n", first[k] * 1000, total[k] * 1000, calls[k], k }
    }' | sort -s -t "$(printf '\t')" -k1,1n | awk -F '\t' '
    BEGIN { printf "  %9s %10s %6s  %s\n", "start ms", "total ms", "calls", "phase" }
    { printf "  %9.1f %10.1f %6d  %s\n", $1, $2, $3, $4 }'
}

{ bench_target "$NS"; bench_body "$N"; } >"$TMP/m.yaml"

ip netns add "$NS"
echo "== apply $N bridges x 2 veth from empty ($(wc -c <"$TMP/m.yaml") bytes of manifest, $((3 * N)) resources)"
perf record -q -e "$GROUP:*" -o "$TMP/apply.data" -- \
  "$VNETPLAN" --state "file://$TMP/state" apply --auto-approve -f "$TMP/m.yaml" >"$TMP/apply.out" 2>&1 ||
  { tail -n 20 "$TMP/apply.out" >&2; die "apply failed"; }
phases "$TMP/apply.data"
for r in 1 2 3; do
  echo "== no-op plan $r/3"
  rc=0
  perf record -q -e "$GROUP:*" -o "$TMP/plan.data" -- \
    "$VNETPLAN" --state "file://$TMP/state" plan --detailed-exitcode -f "$TMP/m.yaml" >"$TMP/plan.out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { tail -n 20 "$TMP/plan.out" >&2; die "plan exit $rc (0 = no changes expected)"; }
  phases "$TMP/plan.data"
done
t0=$EPOCHREALTIME
ip -n "$NS" -d -j link show >/dev/null
echo "== ip -n NS -d -j link show: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f ms", (b - a) * 1000 }')"
