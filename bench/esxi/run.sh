#!/usr/bin/env bash
# bench/esxi/run.sh [N_VSWITCHES=20] [PORTGROUPS_PER_VSWITCH=10]
#
# The esxi provider against its test peer (scripts/esxi-sandbox.sh: a real OpenSSH server whose esxcli is the
# emulator of tests/esxi), end to end through the vnetplan binary, against what per-object tools do -- one SSH
# exec per esxcli call -- in the same run. The issue: "a host with 20 vSwitches and 200 port groups: SSH sessions,
# execs and esxcli invocations, and wall time per plan and per apply, against one SSH exec per esxcli call. Goal:
# <= 2 round trips per plan, and the apply >= 10x faster than one exec per command."
#
# Measured on one emulated host (vmnic0..vmnicN+3): a manifest of N vSwitches (mtu 9000, one uplink each) with P
# port groups each (a VLAN each; every 5th overrides security, every 10th the failover order):
#   (a) plan on the fresh host, (b) apply, (c) plan again (no changes, exit 0 expected): wall time, and from the
#       peer's own logs -- sshd's "Accepted publickey" (SSH connections) and "Starting session" (execs = round
#       trips) lines, and the emulator's invocation log (esxcli invocations);
#   (d) the same esxcli invocations as (b)'s apply made (the changes; read from the invocation log) and as (c)'s
#       plan made (the reads), each run as its own `ssh HOST esxcli ...` on the fresh host -- twice: with a new
#       connection per call (what a tool that connects per object does), and over one multiplexed connection
#       (ControlMaster: an exec per call, no handshake). The end state of (d) must equal (b)'s.
# BENCH_SAMPLE=K times only the first K calls of each per-call list and scales the time to all of them (default:
# every call).
# Prints the figures and PASS/MISS for each goal; not a timed test (exit 1 only if a run fails or end states differ).
#
# Environment: VNETPLAN (default build/vnetplan), ESXCLI_EMULATOR (default build/tests/esxi/esxcli),
#              BENCH_TMPDIR (default $TMPDIR or /tmp), BENCH_SAMPLE (see above), KEEP_TMP=1 keeps the directory.
set -euo pipefail

BENCH=bench/esxi/run.sh
N=${1:-20}
P=${2:-10}
usage() { echo "usage: $0 [N_VSWITCHES=20 (1..60)] [PORTGROUPS_PER_VSWITCH=10 (1..100)]" >&2; exit 1; }
if ! [[ $N =~ ^[1-9][0-9]?$ ]] || ((N > 60)); then usage; fi
if ! [[ $P =~ ^[1-9][0-9]{0,2}$ ]] || ((P > 100)); then usage; fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "$BENCH: $*" >&2; exit 1; }
VNETPLAN=${VNETPLAN:-$ROOT/build/vnetplan}
export ESXCLI_EMULATOR=${ESXCLI_EMULATOR:-$ROOT/build/tests/esxi/esxcli}
[ -x "$VNETPLAN" ] || die "no vnetplan at $VNETPLAN (ninja vnetplan, or set VNETPLAN)"
[ -x "$ESXCLI_EMULATOR" ] || die "no emulator at $ESXCLI_EMULATOR (ninja esxcli_emulator, or set ESXCLI_EMULATOR)"
command -v jq >/dev/null || die "jq is needed"
"$ROOT/scripts/esxi-sandbox.sh" check || exit 1
SAMPLE=${BENCH_SAMPLE:-0}
[[ $SAMPLE =~ ^[0-9]+$ ]] || die "BENCH_SAMPLE must be a number"

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vnp-esxi-run.XXXXXX")
SB=$TMP/host
cleanup() {
  "$ROOT/scripts/esxi-sandbox.sh" stop "$SB" || true
  if [ -n "${MUX:-}" ]; then ssh -o ControlPath="$MUX" -O exit x >/dev/null 2>&1 || true; fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "$BENCH: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
eval "$(ESXI_SANDBOX_NICS=$((N + 4)) "$ROOT/scripts/esxi-sandbox.sh" start "$SB" |
  sed -n "s/^\([A-Z_]*\)=\(.*\)$/SB_\1='\2'/p")"
cp "$SB_STATE" "$TMP/fresh.json"

# ---- the manifest
M=$TMP/host.yaml
{
  cat <<EOF
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: esx1}
spec: {provider: esxi, host: 127.0.0.1, port: $SB_PORT, user: $SB_USER, identityFile: $SB_IDENTITY_FILE, knownHostsFile: $SB_KNOWN_HOSTS}
EOF
  for ((v = 1; v <= N; v++)); do
    printf -- '---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: vs%d}\nspec: {targets: [esx1], mtu: 9000, uplinks: {nics: [vmnic%d]}}\n' "$v" "$v"
    for ((g = 1; g <= P; g++)); do
      k=$(((v - 1) * P + g))
      extra=""
      ((k % 5 == 0)) && extra+=", security: {allowForgedTransmits: false}"
      ((k % 10 == 0)) && extra+=", teaming: {active: [vmnic$v], standby: []}"
      printf -- '---\napiVersion: vnetplan.io/v1\nkind: PortGroup\nmetadata: {name: "pg %d"}\nspec: {targets: [esx1], switch: vs%d, vlan: %d%s}\n' \
        "$k" "$v" "$(((k % 4094) + 1))" "$extra"
    done
  done
} >"$M"

conns() { grep -c "Accepted publickey" "$SB_SSHD_LOG" || true; }
execs() { grep -c "Starting session" "$SB_SSHD_LOG" || true; }
invs() { wc -l <"$SB_ESXCLI_LOG"; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
vnp() { env -u SSH_AUTH_SOCK HOME="$TMP" VNETPLAN_CACHE=off "$VNETPLAN" --state "file://$TMP/state" "$@"; }

# One vnetplan run: sets R_CONNS, R_EXECS, R_INVS, R_TIME, R_FROM (first log line of the run, 1-based).
measure() {
  local c0 e0 i0 t rc=0
  c0=$(conns) e0=$(execs) i0=$(invs)
  t=$(now)
  vnp "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
  R_TIME=$(since "$t")
  R_CONNS=$(($(conns) - c0)) R_EXECS=$(($(execs) - e0)) R_INVS=$(($(invs) - i0)) R_FROM=$((i0 + 1)) R_RC=$rc
}

measure plan -f "$M"
[ "$R_RC" = 0 ] || { cat "$TMP/err.txt" >&2; die "plan failed"; }
PLAN0=("$R_CONNS" "$R_EXECS" "$R_INVS" "$R_TIME")
measure apply --auto-approve -f "$M"
[ "$R_RC" = 0 ] || { tail -n 20 "$TMP/out.txt" "$TMP/err.txt" >&2; die "apply failed"; }
APPLY=("$R_CONNS" "$R_EXECS" "$R_INVS" "$R_TIME")
tail -n +"$R_FROM" "$SB_ESXCLI_LOG" | head -n "$R_INVS" | jq -c 'select(.[0] != "--formatter=xml")' >"$TMP/apply.cmds"
cp "$SB_STATE" "$TMP/applied.json"
measure plan --detailed-exitcode -f "$M"
[ "$R_RC" = 0 ] || { cat "$TMP/out.txt" "$TMP/err.txt" >&2; die "the plan after apply is not empty (exit $R_RC)"; }
PLAN1=("$R_CONNS" "$R_EXECS" "$R_INVS" "$R_TIME")
tail -n +"$R_FROM" "$SB_ESXCLI_LOG" | head -n "$R_INVS" >"$TMP/plan.cmds"

# ---- one SSH exec per esxcli call
SSH=(ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$SB_IDENTITY_FILE"
  -o UserKnownHostsFile="$SB_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
  -o KexAlgorithms=curve25519-sha256 -o LogLevel=ERROR -p "$SB_PORT")
MUX=$TMP/mux.sock
restore() {  # the host as it was: the emulator reads state.json afresh on every call
  cp "$1" "$SB_STATE.tmp" && mv "$SB_STATE.tmp" "$SB_STATE"
}
# per_call FILE MODE: runs each JSON argv of FILE as `ssh HOST esxcli ARGS` (mode new|mux); sets PC_TIME (scaled
# to every call when sampling) and PC_N.
per_call() {
  local file=$1 mode=$2 n k=0 t line cmd
  n=$(wc -l <"$file")
  local limit=$n
  ((SAMPLE > 0 && SAMPLE < n)) && limit=$SAMPLE
  local opts=(-o ControlMaster=no -o ControlPath=none)
  if [ "$mode" = mux ]; then
    "${SSH[@]}" -o ControlMaster=yes -o ControlPath="$MUX" -o ControlPersist=600 -fN "$SB_USER@127.0.0.1"
    opts=(-o ControlMaster=no -o ControlPath="$MUX")
  fi
  t=$(now)
  while IFS= read -r line && ((k < limit)); do
    cmd="esxcli $(jq -r '@sh' <<<"$line")"
    "${SSH[@]}" "${opts[@]}" "$SB_USER@127.0.0.1" -- "$cmd" </dev/null >/dev/null || true
    k=$((k + 1))
  done <"$file"
  PC_TIME=$(awk -v s="$(since "$t")" -v n="$n" -v k="$k" 'BEGIN { printf "%.3f", s * n / k }')
  PC_N=$n PC_K=$k
  if [ "$mode" = mux ]; then "${SSH[@]}" -o ControlPath="$MUX" -O exit "$SB_USER@127.0.0.1" >/dev/null 2>&1 || true; fi
}

same_state() { jq -S 'del(.nextPortId)' "$1" >"$TMP/a.json"; jq -S 'del(.nextPortId)' "$2" >"$TMP/b.json"; cmp -s "$TMP/a.json" "$TMP/b.json"; }

restore "$TMP/fresh.json"
c0=$(conns) e0=$(execs)
per_call "$TMP/apply.cmds" new
AP_NEW=$PC_TIME AP_N=$PC_N
# The peer's log must show exactly one connection and one exec per call made.
(($(conns) - c0 == PC_K && $(execs) - e0 == PC_K)) || die "expected $PC_K connections and execs, sshd logged $(($(conns) - c0)) and $(($(execs) - e0))"
if ((SAMPLE == 0 || SAMPLE >= AP_N)); then
  same_state "$SB_STATE" "$TMP/applied.json" || die "one exec per call did not reach the state vnetplan's apply did"
fi
restore "$TMP/fresh.json"
per_call "$TMP/apply.cmds" mux
AP_MUX=$PC_TIME
restore "$TMP/applied.json"
per_call "$TMP/plan.cmds" new
PL_NEW=$PC_TIME PL_N=$PC_N
per_call "$TMP/plan.cmds" mux
PL_MUX=$PC_TIME

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
pass() { awk -v ok="$1" 'BEGIN { print (ok ? "PASS" : "GOAL MISSED") }'; }
echo "esxi provider: $N vSwitches + $((N * P)) port groups on one emulated ESXi host behind OpenSSH"
echo "($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); libssh $(pkg-config --modversion libssh 2>/dev/null || echo '?'), $(ssh -V 2>&1 | cut -d, -f1))"
printf '%-44s %6s %6s %8s %9s\n' "" "SSH" "execs" "esxcli" "wall"
printf '%-44s %6s %6s %8s %9s\n' "vnetplan plan, fresh host" "${PLAN0[0]}" "${PLAN0[1]}" "${PLAN0[2]}" "${PLAN0[3]}s"
printf '%-44s %6s %6s %8s %9s\n' "vnetplan apply (plan + apply + verify)" "${APPLY[0]}" "${APPLY[1]}" "${APPLY[2]}" "${APPLY[3]}s"
printf '%-44s %6s %6s %8s %9s\n' "vnetplan plan after apply (no changes)" "${PLAN1[0]}" "${PLAN1[1]}" "${PLAN1[2]}" "${PLAN1[3]}s"
printf '%-44s %6s %6s %8s %9s\n' "apply's $AP_N changes, 1 exec each, new conn." "$AP_N" "$AP_N" "$AP_N" "${AP_NEW}s"
printf '%-44s %6s %6s %8s %9s\n' "apply's $AP_N changes, 1 exec each, 1 conn." "1" "$AP_N" "$AP_N" "${AP_MUX}s"
printf '%-44s %6s %6s %8s %9s\n' "plan's $PL_N reads, 1 exec each, new conn." "$PL_N" "$PL_N" "$PL_N" "${PL_NEW}s"
printf '%-44s %6s %6s %8s %9s\n' "plan's $PL_N reads, 1 exec each, 1 conn." "1" "$PL_N" "$PL_N" "${PL_MUX}s"
((SAMPLE > 0)) && echo "(per-call rows: the first $SAMPLE calls of each list timed, scaled to all)"
echo "ratios: apply $(ratio "$AP_NEW" "${APPLY[3]}") faster than one exec per change over new connections," \
  "$(ratio "$AP_MUX" "${APPLY[3]}") over one multiplexed connection;"
echo "        plan  $(ratio "$PL_NEW" "${PLAN1[3]}") / $(ratio "$PL_MUX" "${PLAN1[3]}") faster than its reads one exec each"
echo "goal: <= 2 round trips per plan: fresh ${PLAN0[1]}, after apply ${PLAN1[1]} -> $(pass "$((PLAN0[1] <= 2 && PLAN1[1] <= 2))")"
# Per-object tools (terraform-provider-esxi, Ansible's per-task ssh) open a connection per command: that is the
# baseline of the goal. One multiplexed connection is stricter still, and printed beside it.
echo "goal: apply >= 10x faster than one exec per command: $(ratio "$AP_NEW" "${APPLY[3]}") (a connection per call, as" \
  "per-object tools do) -> $(pass "$(awk -v a="$AP_NEW" -v b="${APPLY[3]}" 'BEGIN { print (a >= 10 * b) }')");" \
  "over one multiplexed connection $(ratio "$AP_MUX" "${APPLY[3]}")"
echo "(vnetplan's apply also reads the host before and verifies it after: ${APPLY[2]} invocations against the" \
  "baseline's $AP_N changes)"
