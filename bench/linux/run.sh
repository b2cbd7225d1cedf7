#!/usr/bin/env bash
# bench/linux/run.sh [N_BRIDGES=1000] [REPEATS=3]
#
# The linux provider against its real peer, end to end through the vnetplan binary, in the same run:
#   apply:      N bridges with 2 veth ports each, from an empty namespace, vs `ip -batch` making the same
#               creations (same end state: bridges up, ports up and enslaved, peers up).  Goal: <= 1.5x.
#   no-op plan: `vnetplan plan --detailed-exitcode` on the applied namespace (exit 0 expected) vs the raw
#               `ip -d -j link show` dump of it.                                                   Goal: <= 2x.
#               The manifests are unchanged since the apply, as in a drift job, so vnetplan's front end comes
#               from its cache (reconciler/frontcache.h); the same plan with VNETPLAN_CACHE=off (parse, schema
#               and build every time) is printed too.
# Each measurement runs in its own throwaway network namespace (vnp-bench-<pid>-...), removed afterwards and on
# exit; the host namespace is never touched. Peer and vnetplan alternate within each repeat so machine noise
# hits both; the table shows medians (the no-op plan takes max(REPEATS, 5) samples: it is cheap). Not a timed
# test: a missed goal prints GOAL MISSED and still exits 0. Exit 1 only when the run itself is invalid (not
# root, missing tools, a failed apply/plan, or end states that differ).
#
# Environment: VNETPLAN=path/to/vnetplan (default: build-bench/vnetplan, then build/vnetplan),
#              BENCH_TMPDIR=dir for manifests and state (default: $TMPDIR or /tmp),
#              KEEP_TMP=1 keeps that directory for inspection,
#              BENCH_IPV6=0 disables IPv6 in the bench namespaces. With IPv6 on (the default, as on real hosts) the
#              kernel's per-link IPv6 setup (link-local route insertion walks every route of the namespace) makes
#              link creation O(links) each, and that kernel time dominates both sides of the apply comparison.
set -euo pipefail

N=${1:-1000}
REPEATS=${2:-3}
usage() { echo "usage: $0 [N_BRIDGES=1000] [REPEATS=3]" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]{0,5}$ ]] || usage
[[ $REPEATS =~ ^[1-9][0-9]{0,2}$ ]] || usage
PLAN_REPEATS=$((REPEATS > 5 ? REPEATS : 5))

die() { echo "bench/linux: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (creates network namespaces)"
command -v ip >/dev/null || die "needs ip (iproute2)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time for peak RSS (apt-get install time)"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=bench/linux HAVE_TIME=1
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/linux/workload.sh
. "$ROOT/bench/linux/workload.sh"
find_vnetplan

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vnp-bench.XXXXXX")
export VNETPLAN_CACHE_DIR="$TMP/cache"  # a private front-end cache, removed with $TMP
PREFIX="vnp-bench-$$"
CREATED=("$PREFIX-probe")
trap ns_cleanup EXIT
trap 'exit 130' INT TERM HUP

remove_stale_namespaces

signature() { link_signature "$1" bridge veth; }

# --- timing -----------------------------------------------------------------------------------------------------

# --- inputs -----------------------------------------------------------------------------------------------------

# The manifest: one Target (its netns differs per measurement, so it is written per namespace) + the workload
# of bench/linux/workload.sh.
bench_body "$N" >"$TMP/body.yaml"

manifest_for() {  # manifest_for NS FILE
  bench_target "$1" >"$2"
  cat "$TMP/body.yaml" >>"$2"
}

# The same creations for ip -batch, in as few requests as ip allows and vnetplan sends (one RTM_NEWLINK per
# bridge, created up; one per veth pair, created up and enslaved; one to bring each peer up, since the kernel
# refuses to open a veth end before its pair exists).
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    printf "link add br%d up type bridge\n", i
    for (s = 0; s < 2; s++) {
      p = "v" i (s ? "b" : "a")
      printf "link add %s up master br%d type veth peer name %sp\nlink set %sp up\n", p, i, p, p
    }
  }
}' >"$TMP/create.batch"

# --- run --------------------------------------------------------------------------------------------------------

echo "bench/linux: $N bridges x 2 veth ports ($((5 * N)) links + lo), repeats: $REPEATS (no-op plan: $PLAN_REPEATS)"
echo "  vnetplan: $VNETPLAN ($("$VNETPLAN" --version 2>/dev/null | head -n 1))"
echo "  peer:     $(ip -V 2>&1 | head -n 1); kernel $(uname -r); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg);" \
  "IPv6 $([ "${BENCH_IPV6:-1}" = 0 ] && echo off || echo on) in the bench namespaces"
ip -V >/dev/null 2>&1  # warm the page cache for both binaries
"$VNETPLAN" --help >/dev/null 2>&1 || true

# (a) apply from empty vs ip -batch.
A_VNP=() A_IP=() A_RSS=() IP_RSS=() A_VNP_CPU=() A_IP_CPU=() SIG_VNP="" SIG_IP="" SIGS=()
apply_ip() {
  local ns="$PREFIX-ip-$1"
  new_ns "$ns"
  run_timed "apply-ip-$1" ip -n "$ns" -batch "$TMP/create.batch"
  [ "$RC" -eq 0 ] || fail_run "apply-ip-$1" "ip -batch"
  A_IP+=("$ELAPSED")
  A_IP_CPU+=("$CPU")
  IP_RSS+=("$RSS")
  SIG_IP=$(signature "$ns")
  SIGS+=("$SIG_IP")
  drop_ns "$ns"
}
apply_vnp() {
  local ns="$PREFIX-vnp-$1"
  new_ns "$ns"
  manifest_for "$ns" "$TMP/apply-$1.yaml"
  run_timed "apply-vnp-$1" "$VNETPLAN" --state "file://$TMP/state-apply-$1" apply --auto-approve -f "$TMP/apply-$1.yaml"
  [ "$RC" -eq 0 ] || fail_run "apply-vnp-$1" "vnetplan apply"
  A_VNP+=("$ELAPSED")
  A_VNP_CPU+=("$CPU")
  A_RSS+=("$RSS")
  SIG_VNP=$(signature "$ns")
  SIGS+=("$SIG_VNP")
  drop_ns "$ns"
  rm -rf "$TMP/state-apply-$1"
}
for ((r = 1; r <= REPEATS; r++)); do
  if ((r % 2)); then apply_ip "$r"; apply_vnp "$r"; else apply_vnp "$r"; apply_ip "$r"; fi
  echo "  apply repeat $r/$REPEATS: vnetplan $(fmt_s "${A_VNP[-1]}"), ip -batch $(fmt_s "${A_IP[-1]}")"
done
for s in "${SIGS[@]}"; do
  [ "$s" = "${SIGS[0]}" ] || die "end states differ: $(printf '\n  %s' "${SIGS[@]}")"
done

# (b) no-op plan vs the raw dump, on one namespace vnetplan applied (untimed).
P_VNP=() P_IP=() P_RSS=() P_VNP_CPU=() P_IP_CPU=() P_COLD=() P_COLD_CPU=()
NS="$PREFIX-plan"
new_ns "$NS"
manifest_for "$NS" "$TMP/plan.yaml"
run_timed plan-setup "$VNETPLAN" --state "file://$TMP/state-plan" apply --auto-approve -f "$TMP/plan.yaml"
[ "$RC" -eq 0 ] || fail_run plan-setup "vnetplan apply (setup of the no-op plan)"
SIG_PLAN=$(signature "$NS")
plan_ip() {
  OUT=/dev/null run_timed "plan-ip-$1" ip -n "$NS" -d -j link show
  [ "$RC" -eq 0 ] || fail_run "plan-ip-$1" "ip -d -j link show"
  P_IP+=("$ELAPSED")
  P_IP_CPU+=("$CPU")
}
plan_vnp() {
  run_timed "plan-vnp-$1" "$VNETPLAN" --state "file://$TMP/state-plan" plan --detailed-exitcode -f "$TMP/plan.yaml"
  [ "$RC" -eq 0 ] || fail_run "plan-vnp-$1" "vnetplan plan --detailed-exitcode (0 = no changes expected)"
  P_VNP+=("$ELAPSED")
  P_VNP_CPU+=("$CPU")
  P_RSS+=("$RSS")
}
# The same plan with the front-end cache off: what the first plan after a manifest change costs.
plan_cold() {
  run_timed "plan-cold-$1" env VNETPLAN_CACHE=off "$VNETPLAN" --state "file://$TMP/state-plan" plan \
    --detailed-exitcode -f "$TMP/plan.yaml"
  [ "$RC" -eq 0 ] || fail_run "plan-cold-$1" "vnetplan plan --detailed-exitcode (cache off)"
  P_COLD+=("$ELAPSED")
  P_COLD_CPU+=("$CPU")
}
for ((r = 1; r <= PLAN_REPEATS; r++)); do
  if ((r % 2)); then plan_ip "$r"; plan_vnp "$r"; plan_cold "$r"; else plan_cold "$r"; plan_vnp "$r"; plan_ip "$r"; fi
done
DUMP_BYTES=$(ip -n "$NS" -d -j link show | wc -c)
drop_ns "$NS"

# --- report -----------------------------------------------------------------------------------------------------

echo
echo "== bench/linux results (medians) =="
row "apply $N bridges x 2 veth" "$(median "${A_VNP[@]}")" "ip -batch" "$(median "${A_IP[@]}")" 1.5 \
  "$(median "${A_VNP_CPU[@]}")" "$(median "${A_IP_CPU[@]}")"
row "no-op plan $N bridges x 2 veth (unchanged manifests: front end from the cache)" "$(median "${P_VNP[@]}")" \
  "ip -d -j link show" "$(median "${P_IP[@]}")" 2 "$(median "${P_VNP_CPU[@]}")" "$(median "${P_IP_CPU[@]}")"
printf 'no-op plan, cold (VNETPLAN_CACHE=off: YAML + schema + build every run): vnetplan %s, ratio %sx (informational)\n' \
  "$(fmt_s "$(median "${P_COLD[@]}")")" "$(awk -v a="$(median "${P_COLD[@]}")" -v b="$(median "${P_IP[@]}")" 'BEGIN { printf "%.2f", a / b }')"
echo "  samples: apply vnetplan [$(list_s "${A_VNP[@]}")], ip -batch [$(list_s "${A_IP[@]}")]"
echo "           plan vnetplan [$(list_s "${P_VNP[@]}")], cold [$(list_s "${P_COLD[@]}")], ip -d -j link show [$(list_s "${P_IP[@]}")]"
echo "peak RSS vnetplan: apply $(fmt_mb "$(maxof "${A_RSS[@]}")"), no-op plan $(fmt_mb "$(maxof "${P_RSS[@]}")")" \
  "(ip -batch $(fmt_mb "$(maxof "${IP_RSS[@]}")"))"
echo "netlink-visible links after apply: vnetplan $SIG_VNP; ip -batch $SIG_IP"
echo "                     planned namespace: $SIG_PLAN; dump ${DUMP_BYTES} bytes of JSON"
if ((MISSED)); then echo "GOAL MISSED (a measurement, not a failure: exit 0)"; else echo "all goals met"; fi
exit 0
