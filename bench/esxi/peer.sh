#!/usr/bin/env bash
# bench/esxi/peer.sh [REPEATS=20]
#
# What the ESXi test peer itself costs (scripts/esxi-sandbox.sh + the esxcli emulator), so that the esxi provider's
# benchmark can tell its own time from the peer's. Measured, medians over REPEATS (wall clock):
#   (a) one esxcli invocation, run locally (no SSH): `esxcli network vswitch standard list` and a change
#       (`portgroup set -v N`), each timed over a loop of 100 and divided by 100;
#   (b) one SSH connection with nothing in it: `ssh HOST true` (a fresh connection, ControlMaster=no: key
#       exchange, public key authentication, the session, the shell), with the client's default key exchange
#       (OpenSSH 9.2: sntrup761x25519, ~0.12 s of client CPU alone) and with curve25519-sha256 (what libssh 0.10,
#       the provider's client, negotiates);
#   (c) one SSH exec of a single esxcli: `ssh HOST 'esxcli network vswitch standard list'`;
#   (d) one SSH exec of 100 esxcli invocations (changes, each followed by `echo "@@rc=$?"` as a batching provider
#       would), and from it the cost of one invocation inside a batch: ((d) - (b)) / 100.
# The emulator's invocation log is checked afterwards: exactly the invocations made must have been logged.
# Not a timed test: it prints numbers and exits 0 unless a run fails.
#
# Environment: ESXCLI_EMULATOR=path (default build/tests/esxi/esxcli), BENCH_TMPDIR (default $TMPDIR or /tmp).
set -euo pipefail

BENCH=bench/esxi/peer.sh
REPEATS=${1:-20}
[[ $REPEATS =~ ^[1-9][0-9]{0,2}$ ]] || { echo "usage: $0 [REPEATS=20]" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
export ESXCLI_EMULATOR=${ESXCLI_EMULATOR:-$ROOT/build/tests/esxi/esxcli}
[ -x "$ESXCLI_EMULATOR" ] || { echo "$BENCH: no emulator at $ESXCLI_EMULATOR (ninja esxcli_emulator)" >&2; exit 1; }
"$ROOT/scripts/esxi-sandbox.sh" check || exit 1

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vnp-esxi-bench.XXXXXX")
SB=$TMP/host
cleanup() { "$ROOT/scripts/esxi-sandbox.sh" stop "$SB" || true; rm -rf "$TMP"; }
trap cleanup EXIT
eval "$("$ROOT/scripts/esxi-sandbox.sh" start "$SB" | sed -n 's/^\([A-Z_]*\)=\(.*\)$/SB_\1=\2/p' | sed "s/=\(.*\)$/='\1'/")"

SSH=(ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$SB_IDENTITY_FILE"
  -o UserKnownHostsFile="$SB_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
  -o ControlMaster=no -o ControlPath=none -o LogLevel=ERROR -p "$SB_PORT" "$SB_USER@127.0.0.1" --)

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }'; }
ms() { awk -v x="$1" 'BEGIN { printf "%.2f ms", x * 1000 }'; }

local_list=() local_set=() conn=() conn25519=() single=() batch=()
expected=0
BATCH=""
for i in $(seq 100); do BATCH+="esxcli network vswitch standard portgroup set -p 'VM Network' -v $i; echo \"@@rc=\$?\"; "; done

for r in $(seq "$REPEATS"); do
  t=$(now)
  for _ in $(seq 100); do ESXCLI_STATE=$SB_STATE ESXCLI_LOG=$SB_ESXCLI_LOG "$ESXCLI_EMULATOR" network vswitch standard list >/dev/null; done
  local_list+=("$(awk -v x="$(since "$t")" 'BEGIN { print x / 100 }')")
  t=$(now)
  for i in $(seq 100); do
    ESXCLI_STATE=$SB_STATE ESXCLI_LOG=$SB_ESXCLI_LOG "$ESXCLI_EMULATOR" network vswitch standard portgroup set -p 'VM Network' -v "$i"
  done
  local_set+=("$(awk -v x="$(since "$t")" 'BEGIN { print x / 100 }')")
  expected=$((expected + 200))

  t=$(now); "${SSH[@]}" true; conn+=("$(since "$t")")
  t=$(now); "${SSH[@]:0:${#SSH[@]}-2}" -o KexAlgorithms=curve25519-sha256 "${SSH[@]: -2}" true; conn25519+=("$(since "$t")")
  t=$(now); "${SSH[@]}" 'esxcli network vswitch standard list' >/dev/null; single+=("$(since "$t")")
  expected=$((expected + 1))
  if ((r <= (REPEATS + 3) / 4)); then  # the batch takes longest: a quarter of the repeats
    t=$(now); out=$("${SSH[@]}" "$BATCH"); batch+=("$(since "$t")")
    [ "$(grep -c '^@@rc=0$' <<<"$out")" = 100 ] || { echo "$BENCH: the batch failed:" >&2; echo "$out" | tail >&2; exit 1; }
    expected=$((expected + 100))
  fi
done

logged=$(wc -l <"$SB_ESXCLI_LOG")
[ "$logged" = "$expected" ] || { echo "$BENCH: $logged invocations logged, $expected made" >&2; exit 1; }

c=$(median "${conn[@]}") b=$(median "${batch[@]}")
echo "ESXi test peer, medians over $REPEATS repeats ($(nproc) CPUs, $(uptime | sed 's/.*load average: //') load):"
echo "  (a) one esxcli invocation, local: list $(ms "$(median "${local_list[@]}")"), portgroup set $(ms "$(median "${local_set[@]}")")"
echo "  (b) one SSH connection (ssh HOST true):       $(ms "$c"), with curve25519-sha256: $(ms "$(median "${conn25519[@]}")")"
echo "  (c) one SSH exec of a single esxcli (list):   $(ms "$(median "${single[@]}")")"
echo "  (d) one SSH exec of 100 esxcli (set + echo):  $(ms "$b") (${#batch[@]} samples); per invocation in the batch: $(ms "$(awk -v b="$b" -v c="$c" 'BEGIN { print (b - c) / 100 }')")"
echo "  invocations logged: $logged (as made)"
