#!/usr/bin/env bash
# bench/linux-vlan/run.sh [N_VLANS=500] [REPEATS=5]
#
# 500 bridges on 500 VLANs over one uplink (the case nmstate publishes at 99 s for 500), through the vnetplan
# binary against its real peer in the same run, on Debian's stock kernel in the stock-kernel lane
# (scripts/vmlane/: the CI machines' kernel has no 802.1Q devices). The script re-runs itself inside the VM.
#   workload:   nmstate's: N bridges br<vid>, each holding the 802.1Q sub-interface eth1.<vid> of one uplink eth1
#               (one end of a veth pair), VLANs 100 ... 99+N. As manifests: N Switches and N Ports of type vlan
#               (link eth1, vlanId, switch). (N PortGroups in the bridge-per-VLAN shape build the same thing, but a
#               switch holds at most 480 port groups: see docs/linux-layer2.md.)
#   apply:      vnetplan from an empty namespace (only the uplink's veth pair in it) vs `ip -batch` making the
#               same bridges, sub-interfaces and enslavements. Goal: <= 1.5x. Measured twice: with the manifests
#               read cold (a new path each repeat: the front-end cache misses), and after an untimed
#               `vnetplan plan` of them (plan, then apply: the cache hits).
#   no-op plan: `vnetplan plan --detailed-exitcode` on the applied namespace (exit 0 expected) vs the raw
#               `ip -d -j link show` dump of it. Goal: <= 2x.
# Both sides run in the same VM, alternating within each repeat (apply: ip, cold, after plan / after plan, cold, ip;
# plan: ip dump, vnetplan, in each of max(REPEATS, 11) repeats). The goals are judged on the median of the per-pair
# ratios (each vnetplan run over the peer's run next to it), which a load on the machine that comes and goes
# between repeats moves much less than a ratio of medians; both are printed. The absolute times are those of an
# emulated CPU (TCG: no KVM here); the ratios are what the goals are about. A missed goal prints
# GOAL MISSED and exits 0; exit 1 only when the run is invalid (a failed apply/plan, end states that differ).
# Exit 69 when the lane cannot run here (scripts/vmlane/run.sh --check says why).
#
# Environment: VNETPLAN=path/to/vnetplan (default: build-bench/vnetplan, then build/vnetplan),
#              BENCH_LOCAL=1 runs on this machine's kernel instead of the VM (it must have 8021q),
#              BENCH_VM_TIMEOUT=seconds for the whole VM (default 3000).
set -euo pipefail

N=${1:-500}
REPEATS=${2:-5}
usage() { echo "usage: $0 [N_VLANS=500] [REPEATS=5]" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]{0,3}$ ]] && ((N <= 3994)) || usage
[[ $REPEATS =~ ^[1-9][0-9]?$ ]] || usage
PLAN_REPEATS=$((REPEATS > 11 ? REPEATS : 11))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=bench/linux-vlan HAVE_TIME=1
die() { echo "$BENCH: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

find_vnetplan

# --- host side: hand the run to the VM ---------------------------------------------------------------------------
if [ -z "${VNP_BENCH_IN_VM:-}" ] && [ "${BENCH_LOCAL:-0}" != 1 ]; then
  lane=$ROOT/scripts/vmlane/run.sh
  if ! why=$("$lane" --check 2>&1); then
    echo "$BENCH: SKIPPED: the stock-kernel lane cannot run here: $why" >&2
    exit 69
  fi
  echo "$BENCH: running in the stock-kernel lane (qemu TCG); the VM's console follows"
  for tool in /usr/bin/time /usr/bin/mawk /usr/bin/sort; do
    [ -x "$tool" ] || die "needs $tool on this machine (it is copied into the VM)"
  done
  exec "$lane" --timeout "${BENCH_VM_TIMEOUT:-3000}" --mem 2048 --include "$ROOT/bench" --include "$VNETPLAN" \
    --include /usr/bin/time --include /usr/bin/mawk --include /usr/bin/sort --env VNP_BENCH_IN_VM=1 \
    --env "VNETPLAN=$VNETPLAN" --env SETTLE_S=1 -- /bin/bash "$ROOT/bench/linux-vlan/run.sh" "$N" "$REPEATS"
fi

# --- inside the VM (or BENCH_LOCAL=1) ----------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "needs root (creates network namespaces)"
# Inside the VM, busybox stands in for coreutils; these two are the real ones (sort -g, awk printf).
if [ -n "${VNP_BENCH_IN_VM:-}" ]; then
  awk() { /usr/bin/mawk "$@"; }
  sort() { /usr/bin/sort "$@"; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vnp-bench.XXXXXX")
PREFIX="vnp-bench-$$"
CREATED=("$PREFIX-probe")
trap ns_cleanup EXIT
trap 'exit 130' INT TERM HUP
remove_stale_namespaces

# The uplink: a veth pair, made (untimed) in each namespace before either side runs.
uplink_ns() {  # uplink_ns NAME
  new_ns "$1"
  ip -n "$1" link add eth1 type veth peer name eth1p
  ip -n "$1" link set eth1p up
  ip -n "$1" link set eth1 up
}

manifest_for() {  # manifest_for NS FILE
  {
    printf 'apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: bench}\nspec: {provider: linux, netns: %s}\n' "$1"
    awk -v n="$N" 'BEGIN {
      for (i = 0; i < n; i++) {
        v = 100 + i
        printf "---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br%d}\nspec: {targets: [bench], stp: false}\n", v
        printf "---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: eth1.%d}\n", v
        printf "spec: {targets: [bench], type: vlan, link: eth1, vlanId: %d, switch: br%d}\n", v, v
      }
    }'
  } >"$2"
}

# The same end state for ip -batch, one request per device as vnetplan sends them: per VLAN a bridge, and a
# sub-interface created up and enslaved.
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    v = 100 + i
    printf "link add br%d up type bridge stp_state 0\n", v
    printf "link add link eth1 name eth1.%d up master br%d type vlan id %d\n", v, v, v
  }
}' >"$TMP/create.batch"

signature() { link_signature "$1" bridge vlan; }

echo "$BENCH: $N bridges on $N VLANs over one uplink, repeats: $REPEATS (no-op plan: $PLAN_REPEATS)"
echo "  vnetplan: $VNETPLAN ($("$VNETPLAN" --version 2>/dev/null | head -n 1))"
echo "  peer:     $(ip -V 2>&1 | head -n 1); kernel $(uname -r); $(nproc) CPUs${VNP_BENCH_IN_VM:+ (qemu TCG)}"

A_VNP=() A_IP=() A_VNP_CPU=() A_IP_CPU=() A_RSS=() SIG_VNP="" SIG_IP=""
W_VNP=() W_VNP_CPU=() SIG_WARM=""
apply_ip() {
  local ns="$PREFIX-ip-$1"
  uplink_ns "$ns"
  run_timed "apply-ip-$1" ip -n "$ns" -batch "$TMP/create.batch"
  [ "$RC" -eq 0 ] || fail_run "apply-ip-$1" "ip -batch"
  A_IP+=("$ELAPSED") A_IP_CPU+=("$CPU")
  SIG_IP=$(signature "$ns")
  drop_ns "$ns"
}
# apply_vnp REPEAT [warm]: vnetplan from an empty namespace. With "warm", after an untimed `vnetplan plan` of the
# same manifests: the usual flow (plan, review, apply), in which the apply finds the manifests already read (the
# front-end cache, docs/ARCHITECTURE.md). Cold, it reads and validates them first (under TCG about 1.5 s for these
# 1,000 documents).
apply_vnp() {
  local mode=${2:-cold}
  local ns="$PREFIX-$mode-$1" m="$TMP/$mode-$1.yaml" st="file://$TMP/state-$mode-$1"
  uplink_ns "$ns"
  manifest_for "$ns" "$m"
  if [ "$mode" = warm ]; then
    "$VNETPLAN" --state "$st" plan -f "$m" >/dev/null 2>&1 || fail_run "plan-warm-$1" "vnetplan plan (before the warm apply)"
  fi
  run_timed "apply-$mode-$1" "$VNETPLAN" --state "$st" apply --auto-approve -f "$m"
  [ "$RC" -eq 0 ] || fail_run "apply-$mode-$1" "vnetplan apply ($mode)"
  if [ "$mode" = warm ]; then
    W_VNP+=("$ELAPSED") W_VNP_CPU+=("$CPU") SIG_WARM=$(signature "$ns")
  else
    A_VNP+=("$ELAPSED") A_VNP_CPU+=("$CPU") SIG_VNP=$(signature "$ns")
  fi
  A_RSS+=("$RSS")
  drop_ns "$ns"
  rm -rf "$TMP/state-$mode-$1"
}
for ((r = 1; r <= REPEATS; r++)); do
  if ((r % 2)); then apply_ip "$r"; apply_vnp "$r"; apply_vnp "$r" warm; else apply_vnp "$r" warm; apply_vnp "$r"; apply_ip "$r"; fi
  echo "  apply repeat $r/$REPEATS: vnetplan $(fmt_s "${A_VNP[-1]}") (after plan: $(fmt_s "${W_VNP[-1]}")), ip -batch $(fmt_s "${A_IP[-1]}")"
  [ "$SIG_VNP" = "$SIG_IP" ] || die "end states differ: vnetplan: $SIG_VNP; ip -batch: $SIG_IP"
  [ "$SIG_WARM" = "$SIG_IP" ] || die "end states differ: vnetplan after plan: $SIG_WARM; ip -batch: $SIG_IP"
done

P_VNP=() P_IP=() P_VNP_CPU=() P_IP_CPU=() P_RSS=()
NS="$PREFIX-plan"
uplink_ns "$NS"
manifest_for "$NS" "$TMP/plan.yaml"
run_timed plan-setup "$VNETPLAN" --state "file://$TMP/state-plan" apply --auto-approve -f "$TMP/plan.yaml"
[ "$RC" -eq 0 ] || fail_run plan-setup "vnetplan apply (setup of the no-op plan)"
for ((r = 1; r <= PLAN_REPEATS; r++)); do
  OUT=/dev/null run_timed "plan-ip-$r" ip -n "$NS" -d -j link show
  [ "$RC" -eq 0 ] || fail_run "plan-ip-$r" "ip -d -j link show"
  P_IP+=("$ELAPSED") P_IP_CPU+=("$CPU")
  run_timed "plan-vnp-$r" "$VNETPLAN" --state "file://$TMP/state-plan" plan --detailed-exitcode -f "$TMP/plan.yaml"
  [ "$RC" -eq 0 ] || fail_run "plan-vnp-$r" "vnetplan plan --detailed-exitcode (0 = no changes expected)"
  P_VNP+=("$ELAPSED") P_VNP_CPU+=("$CPU") P_RSS+=("$RSS")
done
SIG_PLAN=$(signature "$NS")
drop_ns "$NS"

echo
echo "== $BENCH results (medians) =="
paired_row "apply $N bridges on $N VLANs (manifests read cold)" 1.5 "ip -batch" "$(median "${A_VNP_CPU[@]}")" \
  "$(median "${A_IP_CPU[@]}")" "${A_VNP[@]}" -- "${A_IP[@]}"
paired_row "apply $N bridges on $N VLANs (after plan)" 1.5 "ip -batch" "$(median "${W_VNP_CPU[@]}")" \
  "$(median "${A_IP_CPU[@]}")" "${W_VNP[@]}" -- "${A_IP[@]}"
paired_row "no-op plan $N bridges on $N VLANs" 2 "ip -d -j link show" "$(median "${P_VNP_CPU[@]}")" \
  "$(median "${P_IP_CPU[@]}")" "${P_VNP[@]}" -- "${P_IP[@]}"
echo "  samples: apply vnetplan [$(list_s "${A_VNP[@]}")], after plan [$(list_s "${W_VNP[@]}")], ip -batch [$(list_s "${A_IP[@]}")]"
echo "           plan vnetplan [$(list_s "${P_VNP[@]}")], ip -d -j link show [$(list_s "${P_IP[@]}")]"
echo "peak RSS vnetplan: apply $(fmt_mb "$(maxof "${A_RSS[@]}")"), no-op plan $(fmt_mb "$(maxof "${P_RSS[@]}")")"
echo "links after apply: vnetplan $SIG_VNP; ip -batch $SIG_IP; planned namespace: $SIG_PLAN"
if ((MISSED)); then echo "GOAL MISSED (a measurement, not a failure: exit 0)"; else echo "all goals met"; fi
exit 0
