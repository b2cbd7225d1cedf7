#!/usr/bin/env bash
# bench/ovs/run.sh [N_PORTS=1000] [REPEATS=3]
#
# The ovs provider against its real peer, end to end through the vnetplan binary, in the same run. The issue:
#   "bench/ovs: 1,000 access ports on one bridge — apply from empty and a no-op plan — with ratios against one
#    chained `ovs-vsctl -- add-port … -- add-port …` invocation (the limit) and against one `ovs-vsctl` call per
#    port (what per-object tools do). Goal: <= 1.2x the chained call, >= 20x faster than per-port calls."
# Measured (wall seconds, medians over REPEATS):
#   (a) apply:      `vnetplan apply --auto-approve` of one Switch br0 (datapathType netdev) + N Ports p1..pN
#                   (internal, vlan (i % 4094) + 1), from an empty database, with a fresh state directory;
#   (b) chained:    ONE `ovs-vsctl --no-wait add-br br0 -- set bridge br0 datapath_type=netdev -- add-port br0 p1
#                   tag=T -- set interface p1 type=internal -- …` making the same bridge, ports, tags and types;
#   (c) per-port:   `ovs-vsctl --no-wait add-br …` once, then one `ovs-vsctl --no-wait add-port br0 pI tag=T --
#                   set interface pI type=internal` per port. Each call reads the whole database, so a call costs
#                   more the more ports exist: by default only PERPORT_SAMPLE (200) calls are timed, spread over
#                   8 strata of the fill level (the ports around each timed block are made untimed by chained
#                   calls), and each stratum's time is scaled to its size: the sum estimates all N calls. On a
#                   busy 2-CPU machine full runs of 1,000 calls took 26 s and 36 s, the estimates 22-29 s: if
#                   anything the estimate is low, which only makes the ">= 20x faster" goal harder.
#                   PERPORT_SAMPLE=N (or more) times every call;
#   (d) no-op plan: `vnetplan plan --detailed-exitcode` (exit 0 expected) on the database (a) applied, vs (b), and
#                   (informational) vs a raw read of the same tables: one `ovsdb-client transact` selecting every
#                   row of Bridge, Port and Interface (vnetplan's observe is one such transaction, with fewer
#                   columns). The no-op plan takes at least max(REPEATS, 5) samples in all: it is cheap.
# Goals (PASS/MISS each): apply and no-op plan <= 1.2x the chained call; apply and no-op plan >= 20x faster than
# the per-port calls.
# Every measurement gets a fresh private ovsdb-server (scripts/ovs-sandbox.sh, no ovs-vswitchd, no netns) in a
# temp directory, stopped afterwards and on exit. Nobody waits for ovs-vswitchd: ovs-vsctl runs with --no-wait
# and vnetplan with VNETPLAN_OVS_SETTLE_MS=0. The order of (a), (b), (c) rotates per repeat so machine noise hits
# all. After every run the end state is checked (list-ports br0 counts N, one port's tag and interface type),
# and the three end states must agree (bridge and datapath type, every port's tag, every interface's type;
# vnetplan's own bookkeeping columns, external_ids and vlan_mode=access, are not compared). Not a timed test: a
# missed goal prints GOAL MISSED and still exits 0. Exit 1 only when the run itself is invalid (missing tools, a
# failed apply/plan/ovs-vsctl, or end states that differ). Needs no root (root is fine).
# One more, untimed, apply and no-op plan at the end run with --log-level debug: their log lines (vnetplan's
# phase timings) are printed as a timeline in ms since the process started.
#
# Environment: VNETPLAN=path/to/vnetplan (default: the newer of build-bench/vnetplan and build/vnetplan),
#              BENCH_TMPDIR=dir for sandboxes, manifests and state (default: $TMPDIR or /tmp),
#              KEEP_TMP=1 keeps that directory for inspection (the sandboxes are stopped anyway),
#              PERPORT_SAMPLE=number of per-port ovs-vsctl calls timed per repeat (default 200; >= N: all).
set -euo pipefail

N=${1:-1000}
REPEATS=${2:-3}
usage() { echo "usage: $0 [N_PORTS=1000 (1..10000)] [REPEATS=3]" >&2; exit 1; }
# The chained call passes ~10 arguments (~140 bytes with their pointers) per port on one command line: 10,000
# ports stay below the usual 2 MB ARG_MAX.
if ! [[ $N =~ ^[1-9][0-9]{0,4}$ ]] || ((N > 10000)); then usage; fi
[[ $REPEATS =~ ^[1-9][0-9]{0,2}$ ]] || usage
PLAN_REPEATS=$((REPEATS > 5 ? REPEATS : 5))
PLAN_PER_REPEAT=$(((PLAN_REPEATS + REPEATS - 1) / REPEATS))
SAMPLE=${PERPORT_SAMPLE:-200}
[[ $SAMPLE =~ ^[1-9][0-9]{0,5}$ ]] || { echo "PERPORT_SAMPLE must be a positive number" >&2; exit 1; }
((SAMPLE > N)) && SAMPLE=$N

die() { echo "bench/ovs: $*" >&2; exit 1; }
# The daemons live in /usr/sbin, which a non-login root shell may not have on its PATH.
export PATH="$PATH:/usr/sbin:/sbin"
# Applied by the ovsdb-server only: vnetplan must not wait for an ovs-vswitchd that is not there.
export VNETPLAN_OVS_SETTLE_MS=0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SANDBOX="$ROOT/scripts/ovs-sandbox.sh"
[ -r "$SANDBOX" ] || die "missing $SANDBOX"
bash "$SANDBOX" check || die "needs Open vSwitch (ovsdb-server, ovs-vsctl, ovsdb-client, ...)"
HAVE_TIME=0
[ -x /usr/bin/time ] && HAVE_TIME=1
BENCH=bench/ovs
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
if [ -z "${VNETPLAN:-}" ]; then
  # The newer of the two: a build-bench that predates the ovs provider would reject the manifest.
  for c in "$ROOT/build-bench/vnetplan" "$ROOT/build/vnetplan"; do
    [ -x "$c" ] && { [ -z "${VNETPLAN:-}" ] || [ "$c" -nt "$VNETPLAN" ]; } && VNETPLAN=$c
  done
fi
if [ -z "${VNETPLAN:-}" ] || [ ! -x "$VNETPLAN" ]; then
  die "no vnetplan binary: build it (ninja -C build-bench) or set VNETPLAN"
fi

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vnp-bench-ovs.XXXXXX")
export VNETPLAN_CACHE_DIR="$TMP/cache"  # a private front-end cache (reconciler/frontcache.h), removed with $TMP
# A unix socket path must fit in sockaddr_un (108 bytes): DIR/db.sock with DIR = $TMP/<tag>.
((${#TMP} < 80)) || { rm -rf "$TMP"; die "BENCH_TMPDIR gives too long a path for the database socket: $TMP"; }
SANDBOXES=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local d
  for d in "${SANDBOXES[@]}"; do bash "$SANDBOX" stop "$d" 2>/dev/null || true; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench/ovs: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- sandboxes --------------------------------------------------------------------------------------------------

SOCK=""
new_sandbox() {  # new_sandbox TAG: a fresh ovsdb-server with an empty Open_vSwitch database in $TMP/TAG; sets SOCK
  local dir="$TMP/$1"
  SANDBOXES+=("$dir")
  SOCK=$(bash "$SANDBOX" start "$dir" 2>"$TMP/$1.sandbox.err" | tail -n 1) ||
    { cat "$TMP/$1.sandbox.err" >&2; die "cannot start the OVS sandbox in $dir"; }
  [ -S "$SOCK" ] || { cat "$TMP/$1.sandbox.err" >&2; die "the OVS sandbox in $dir has no socket"; }
}

drop_sandbox() {  # drop_sandbox TAG
  bash "$SANDBOX" stop "$TMP/$1" 2>>"$TMP/$1.sandbox.err" || die "cannot stop the OVS sandbox in $TMP/$1"
  rm -rf "${TMP:?}/$1"
}

vsctl() { ovs-vsctl --no-wait --timeout=60 --db="unix:$SOCK" "$@"; }

# What the database holds, as ovs-vsctl shows it: bridges with their datapath type, every port's tag, every
# interface's type (a digest of the sorted lists, plus a readable summary). All three end states must agree.
signature() {
  local bridges ports ifaces
  bridges=$(vsctl --format=csv --no-headings --columns=name,datapath_type list Bridge | sort)
  ports=$(vsctl --format=csv --no-headings --columns=name,tag list Port | sort)
  ifaces=$(vsctl --format=csv --no-headings --columns=name,type list Interface | sort)
  printf '%s bridge(s) [%s], %s ports (%s tagged), %s interfaces (%s internal), digest %s\n' \
    "$(wc -l <<<"$bridges")" "$(tr '\n' ' ' <<<"$bridges" | sed 's/ $//')" "$(wc -l <<<"$ports")" \
    "$(grep -vc ',\[\]$' <<<"$ports" || true)" "$(wc -l <<<"$ifaces")" "$(grep -c ',internal$' <<<"$ifaces" || true)" \
    "$(printf '%s\n--\n%s\n--\n%s\n' "$bridges" "$ports" "$ifaces" | md5sum | cut -c1-12)"
}

SIGS=()
check_state() {  # check_state WHAT: the database of $SOCK has br0 with p1..pN, pN tagged and internal
  local what=$1 count tag type want=$(((N % 4094) + 1))
  count=$(vsctl list-ports br0 | wc -l) || die "$what: ovs-vsctl list-ports br0 failed"
  [ "$count" -eq "$N" ] || die "$what: br0 has $count ports, expected $N"
  tag=$(vsctl get port "p$N" tag) || die "$what: no port p$N"
  [ "$tag" = "$want" ] || die "$what: port p$N has tag $tag, expected $want"
  type=$(vsctl get interface "p$N" type) || die "$what: no interface p$N"
  [ "$type" = internal ] || die "$what: interface p$N has type $type, expected internal"
  SIGS+=("$(signature)  <- $what")
}

# --- timing -----------------------------------------------------------------------------------------------------

tag_of() { echo $((($1 % 4094) + 1)); }

# --- inputs -----------------------------------------------------------------------------------------------------

# The manifest: one Target (its database socket differs per sandbox, so it is written per sandbox) + the Switch
# br0 + N access Ports p1..pN.
awk -v n="$N" 'BEGIN {
  printf "---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br0}\n"
  printf "spec: {targets: [bench], ovs: {datapathType: netdev}}\n"
  for (i = 1; i <= n; i++) {
    printf "---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: p%d}\n", i
    printf "spec: {targets: [bench], switch: br0, type: internal, vlan: %d}\n", (i % 4094) + 1
  }
}' >"$TMP/body.yaml"

manifest_for() {  # manifest_for SOCK FILE
  printf 'apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: bench}\nspec: {provider: ovs, db: "unix:%s"}\n' \
    "$1" >"$2"
  cat "$TMP/body.yaml" >>"$2"
}

# The chained call's commands (after the global options): the bridge, then every port with its tag and type.
port_cmds() {  # port_cmds FROM TO: appends "-- add-port … -- set interface …" for pFROM..pTO to CMDS
  local i
  for ((i = $1; i <= $2; i++)); do
    CMDS+=(-- add-port br0 "p$i" "tag=$(tag_of "$i")" -- set interface "p$i" type=internal)
  done
}
CMDS=(add-br br0 -- set bridge br0 datapath_type=netdev)
port_cmds 1 "$N"
CHAIN=("${CMDS[@]}")

# The per-port strata: STRATA ranges of the fill level (1 when every call is timed); in each, a block of calls
# centred in the range is timed (its mean fill is the range's) and the rest is made by untimed chained calls.
STRATA=$((SAMPLE < 8 ? SAMPLE : 8))
((SAMPLE >= N || N < 4 * STRATA)) && { SAMPLE=$N; STRATA=1; }
PERPORT_NOTE="every call timed"
((SAMPLE < N)) && PERPORT_NOTE="estimated: $SAMPLE of $N calls timed in $STRATA strata, each scaled to its size"

# --- measurements -----------------------------------------------------------------------------------------------

A_VNP=() A_VNP_CPU=() A_RSS=() B_CHAIN=() B_CHAIN_CPU=() B_RSS=() C_PORT=() C_SAMPLE_S=()
P_VNP=() P_VNP_CPU=() P_RSS=() P_RAW=() P_RAW_CPU=()
RAW_QUERY='["Open_vSwitch",{"op":"select","table":"Bridge","where":[]},{"op":"select","table":"Port","where":[]},{"op":"select","table":"Interface","where":[]}]'

# The no-op plan and the raw read, on the database of $SOCK that measure_vnp's apply made ($tag, $k: its locals).
plan_raw() {
  OUT=/dev/null run_timed "raw-$tag-$k" ovsdb-client transact "unix:$SOCK" "$RAW_QUERY"
  [ "$RC" -eq 0 ] || fail_run "raw-$tag-$k" "ovsdb-client transact (raw read)"
  P_RAW+=("$ELAPSED") P_RAW_CPU+=("$CPU")
}
plan_vnp() {
  run_timed "plan-$tag-$k" "$VNETPLAN" --state "file://$TMP/state-$tag" plan -f "$TMP/$tag.yaml" --detailed-exitcode
  [ "$RC" -eq 0 ] || fail_run "plan-$tag-$k" "vnetplan plan --detailed-exitcode (0 = no changes expected)"
  P_VNP+=("$ELAPSED") P_VNP_CPU+=("$CPU") P_RSS+=("$RSS")
}

measure_vnp() {  # (a) apply from empty, then (d) the no-op plan and the raw read on the same database
  local r=$1 tag="vnp-$1" k
  new_sandbox "$tag"
  manifest_for "$SOCK" "$TMP/$tag.yaml"
  run_timed "apply-$tag" "$VNETPLAN" --state "file://$TMP/state-$tag" -q apply -f "$TMP/$tag.yaml" --auto-approve
  [ "$RC" -eq 0 ] || fail_run "apply-$tag" "vnetplan apply"
  A_VNP+=("$ELAPSED") A_VNP_CPU+=("$CPU") A_RSS+=("$RSS")
  check_state "vnetplan apply (repeat $r)"
  for ((k = 1; k <= PLAN_PER_REPEAT; k++)); do
    if (((r + k) % 2)); then plan_raw; plan_vnp; else plan_vnp; plan_raw; fi
  done
  RAW_BYTES=$(ovsdb-client transact "unix:$SOCK" "$RAW_QUERY" | wc -c)
  drop_sandbox "$tag"
  rm -rf "$TMP/state-$tag"
}

measure_chain() {  # (b) one chained ovs-vsctl
  local r=$1 tag="chain-$1"
  new_sandbox "$tag"
  run_timed "$tag" ovs-vsctl --no-wait --timeout=60 --db="unix:$SOCK" "${CHAIN[@]}"
  [ "$RC" -eq 0 ] || fail_run "$tag" "the chained ovs-vsctl"
  B_CHAIN+=("$ELAPSED") B_CHAIN_CPU+=("$CPU") B_RSS+=("$RSS")
  check_state "chained ovs-vsctl (repeat $r)"
  drop_sandbox "$tag"
}

measure_perport() {  # (c) one ovs-vsctl per port (timed for a sample; see the header)
  local r=$1 tag="port-$1" g lo hi m start i t0 t1 made=0 est=0 timed=0
  new_sandbox "$tag"
  t0=$EPOCHREALTIME
  vsctl add-br br0 -- set bridge br0 datapath_type=netdev >/dev/null || die "per-port: ovs-vsctl add-br failed"
  t1=$EPOCHREALTIME
  est=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
  for ((g = 0; g < STRATA; g++)); do
    lo=$((g * N / STRATA)) hi=$(((g + 1) * N / STRATA))  # this stratum makes p(lo+1)..p(hi)
    m=$(((SAMPLE * (hi - lo) + N / 2) / N))
    ((m < 1)) && m=1
    ((m > hi - lo)) && m=$((hi - lo))
    start=$((lo + (hi - lo - m) / 2))  # timed: p(start+1)..p(start+m)
    if ((start > made)); then          # untimed fill up to the timed block
      CMDS=()
      port_cmds $((made + 1)) "$start"
      vsctl "${CMDS[@]}" >/dev/null || die "per-port: the untimed fill failed"
    fi
    t0=$EPOCHREALTIME
    for ((i = start + 1; i <= start + m; i++)); do
      vsctl add-port br0 "p$i" "tag=$(tag_of "$i")" -- set interface "p$i" type=internal ||
        die "per-port: ovs-vsctl add-port p$i failed"
    done
    t1=$EPOCHREALTIME
    est=$(awk -v e="$est" -v a="$t0" -v b="$t1" -v m="$m" -v s="$((hi - lo))" 'BEGIN { printf "%.6f", e + (b - a) * s / m }')
    timed=$(awk -v x="$timed" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", x + b - a }')
    made=$((start + m))
  done
  if ((made < N)); then
    CMDS=()
    port_cmds $((made + 1)) "$N"
    vsctl "${CMDS[@]}" >/dev/null || die "per-port: the untimed fill failed"
  fi
  C_PORT+=("$est") C_SAMPLE_S+=("$timed")
  check_state "per-port ovs-vsctl (repeat $r)"
  drop_sandbox "$tag"
}

# --- run --------------------------------------------------------------------------------------------------------

echo "bench/ovs: $N access ports on one netdev bridge, repeats: $REPEATS (no-op plan: $((PLAN_PER_REPEAT * REPEATS)))"
echo "  vnetplan: $VNETPLAN ($("$VNETPLAN" --version 2>/dev/null | head -n 1))"
echo "  peer:     $(ovs-vsctl --version | head -n 1), ovsdb-server only (no ovs-vswitchd), $(nproc) CPUs," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  per-port: $PERPORT_NOTE"
"$VNETPLAN" --help >/dev/null 2>&1 || true  # warm the page cache for both binaries
ovs-vsctl --version >/dev/null 2>&1

for ((r = 1; r <= REPEATS; r++)); do
  case $((r % 3)) in
    1) measure_chain "$r"; measure_vnp "$r"; measure_perport "$r" ;;
    2) measure_vnp "$r"; measure_perport "$r"; measure_chain "$r" ;;
    0) measure_perport "$r"; measure_chain "$r"; measure_vnp "$r" ;;
  esac
  echo "  repeat $r/$REPEATS: apply vnetplan $(fmt_s "${A_VNP[-1]}"), chained ovs-vsctl $(fmt_s "${B_CHAIN[-1]}")," \
    "per-port ovs-vsctl $(fmt_s "${C_PORT[-1]}") ($(fmt_s "${C_SAMPLE_S[-1]}") timed);" \
    "no-op plan $(list_s "${P_VNP[@]: -PLAN_PER_REPEAT}")"
done
first=${SIGS[0]%%  <- *}
for s in "${SIGS[@]}"; do
  [ "${s%%  <- *}" = "$first" ] || die "end states differ: $(printf '\n  %s' "${SIGS[@]}")"
done

# One more apply and no-op plan, untimed, with --log-level debug: vnetplan's own phase timings.
timeline() {  # timeline T0 FILE: the log lines of FILE (but the per-step ones) as "+MS ms  message" since T0
  local t0=$1 file=$2 ts rest t
  while IFS= read -r line; do
    ts=${line%% *} rest=${line#* }
    [[ $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+$ ]] || continue
    [[ $rest == *" step="[0-9]*/* ]] && continue
    [[ $rest == *" progress="[0-9]*/* ]] && continue
    t=$(date -d "${ts/T/ }" +%s.%N)
    printf '    %+8.1f ms  %s\n' "$(awk -v a="$t0" -v b="$t" 'BEGIN { print (b - a) * 1000 }')" "${rest:0:150}"
  done <"$file"
}
new_sandbox debug
manifest_for "$SOCK" "$TMP/debug.yaml"
T0=$EPOCHREALTIME
"$VNETPLAN" --state "file://$TMP/state-debug" --log-level debug apply -f "$TMP/debug.yaml" --auto-approve \
  >/dev/null 2>"$TMP/debug-apply.log" || { RC=$?; fail_run debug-apply "vnetplan apply --log-level debug"; }
T1=$EPOCHREALTIME
DEBUG_APPLY=$(timeline "$T0" "$TMP/debug-apply.log")
DEBUG_APPLY_END=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
T0=$EPOCHREALTIME
"$VNETPLAN" --state "file://$TMP/state-debug" --log-level debug plan -f "$TMP/debug.yaml" --detailed-exitcode \
  >/dev/null 2>"$TMP/debug-plan.log" || { RC=$?; fail_run debug-plan "vnetplan plan --log-level debug"; }
T1=$EPOCHREALTIME
DEBUG_PLAN=$(timeline "$T0" "$TMP/debug-plan.log")
DEBUG_PLAN_END=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
drop_sandbox debug

# --- report -----------------------------------------------------------------------------------------------------

MISSED=0
verdict() {  # verdict OK?: sets V to PASS or MISS (and remembers a miss)
  if [ "$1" = 1 ]; then V=PASS; else MISSED=1; V=MISS; fi
}
goal_le() {  # goal_le LABEL VNP PEER_NAME PEER GOAL: vnetplan / peer <= GOAL
  local r ok
  r=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.2f", a / b }')
  ok=$(awk -v r="$r" -v g="$5" 'BEGIN { print (r <= g) ? 1 : 0 }')
  verdict "$ok"
  printf '  %-44s %s: %sx the %s (goal <= %sx)\n' "$1" "$V" "$r" "$3" "$5"
}
goal_ge() {  # goal_ge LABEL VNP PEER_NAME PEER GOAL: peer / vnetplan >= GOAL
  local r ok
  r=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.1f", b / a }')
  ok=$(awk -v r="$r" -v g="$5" 'BEGIN { print (r >= g) ? 1 : 0 }')
  verdict "$ok"
  printf '  %-44s %s: %sx faster than the %s (goal >= %sx)\n' "$1" "$V" "$r" "$3" "$5"
}

MA=$(median "${A_VNP[@]}") MB=$(median "${B_CHAIN[@]}") MC=$(median "${C_PORT[@]}") MP=$(median "${P_VNP[@]}")
MR=$(median "${P_RAW[@]}")
echo
echo "== bench/ovs results (medians, wall) =="
printf '  (a) vnetplan apply, %d ports from empty:      %s   cpu %s\n' "$N" "$(fmt_s "$MA")" \
  "$(fmt_s "$(median "${A_VNP_CPU[@]}")")"
printf '  (b) one chained ovs-vsctl (the limit):        %s   cpu %s\n' "$(fmt_s "$MB")" \
  "$(fmt_s "$(median "${B_CHAIN_CPU[@]}")")"
printf '  (c) one ovs-vsctl per port (%s):\n' "$PERPORT_NOTE"
printf '                                                %s   (timed part: %s)\n' "$(fmt_s "$MC")" \
  "$(fmt_s "$(median "${C_SAMPLE_S[@]}")")"
printf '  (d) vnetplan no-op plan:                      %s   cpu %s\n' "$(fmt_s "$MP")" \
  "$(fmt_s "$(median "${P_VNP_CPU[@]}")")"
printf '      raw read (ovsdb-client transact, select Bridge+Port+Interface): %s   cpu %s, %s bytes of JSON\n' \
  "$(fmt_s "$MR")" "$(fmt_s "$(median "${P_RAW_CPU[@]}")")" "$RAW_BYTES"
echo "ratios:"
echo "  apply / chained $(ratio "$MA" "$MB"), per-port / apply $(ratio "$MC" "$MA");" \
  "no-op plan / chained $(ratio "$MP" "$MB"), per-port / no-op plan $(ratio "$MC" "$MP"),"
echo "  no-op plan / raw read $(ratio "$MP" "$MR") (informational);" \
  "cpu: apply / chained $(ratio "$(median "${A_VNP_CPU[@]}")" "$(median "${B_CHAIN_CPU[@]}")")," \
  "no-op plan / chained $(ratio "$(median "${P_VNP_CPU[@]}")" "$(median "${B_CHAIN_CPU[@]}")")"
echo "goals:"
goal_le "apply $N ports vs chained ovs-vsctl" "$MA" "chained call" "$MB" 1.2
goal_ge "apply $N ports vs per-port ovs-vsctl" "$MA" "per-port calls" "$MC" 20
goal_le "no-op plan $N ports vs chained ovs-vsctl" "$MP" "chained call" "$MB" 1.2
goal_ge "no-op plan $N ports vs per-port ovs-vsctl" "$MP" "per-port calls" "$MC" 20
echo "samples: apply vnetplan [$(list_s "${A_VNP[@]}")], chained [$(list_s "${B_CHAIN[@]}")]," \
  "per-port [$(list_s "${C_PORT[@]}")]"
echo "         no-op plan [$(list_s "${P_VNP[@]}")], raw read [$(list_s "${P_RAW[@]}")]"
if ((HAVE_TIME)); then
  echo "peak RSS: vnetplan apply $(fmt_mb "$(maxof "${A_RSS[@]}")"), no-op plan $(fmt_mb "$(maxof "${P_RSS[@]}")");" \
    "chained ovs-vsctl $(fmt_mb "$(maxof "${B_RSS[@]}")")"
else
  echo "peak RSS: n/a (no /usr/bin/time; CPU columns are 0)"
fi
echo "end state (all runs alike): ${SIGS[0]%%  <- *}"
echo "vnetplan --log-level debug, one untimed apply (ms since start; per-step lines left out):"
echo "$DEBUG_APPLY"
printf '    %+8.1f ms  (exit)\n' "$DEBUG_APPLY_END"
echo "vnetplan --log-level debug, one untimed no-op plan:"
echo "$DEBUG_PLAN"
printf '    %+8.1f ms  (exit)\n' "$DEBUG_PLAN_END"
if ((MISSED)); then echo "GOAL MISSED (a measurement, not a failure: exit 0)"; else echo "all goals met"; fi
exit 0
