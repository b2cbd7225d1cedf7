#!/usr/bin/env bash
# bench/vpc/run.sh [N_SUBNETS=50] [N_GROUPS=50] [RULES=10] [REPEATS=1]
#
# The vpc provider against its real peer (Debian's neutron-server, scripts/neutron-sandbox.sh: noauth, sqlite,
# loopback), end to end through the vnetplan binary, in the same run. The issue:
#   "bench/vpc: 50 subnets and 50 security groups of 10 rules — requests per plan (goal: O(kinds)) and apply time
#    with --parallelism 1 vs the default, in the same run."
# Measured:
#   (a) requests per plan from empty, for the full manifest (one Vpc, N_SUBNETS Subnets, N_GROUPS SecurityGroups
#       of RULES rules) and for a small one (1 Subnet, 1 SecurityGroup): O(kinds) means the two are equal;
#   (b) apply from empty with --parallelism 1 and with the default parallelism (wall and CPU seconds, requests),
#       each into a project of its own on the same server with a fresh state directory; the order alternates
#       per repeat so machine noise hits both;
#   (c) requests and time of the no-op plan after apply (exit 0 of --detailed-exitcode expected), and the same
#       for the small manifest applied: again equal under O(kinds).
# Requests are counted from vnetplan's own debug log: one line per HTTP attempt ("vpc: METHOD PATH -> STATUS"
# or "vpc: METHOD PATH: PROBLEM"), retries included. After every apply the end state is checked through the API
# (networks, subnets and security groups tagged for the project; rules of one group). Not a timed test: prints
# the figures and exits 0; exit 1 only when the run is invalid (missing tools, a failed apply or plan, an end
# state that differs from the manifest). Needs no root.
#
# Measured (2026-11-28, 2 busy cores shared with compiles, neutron-server with 2 API workers whose writes are
# serialized under a file lock, scripts/neutron-sandbox.sh): plan from empty 5 requests for 101 resources and for
# 3; no-op plan after apply 6 requests for both (O(kinds): PASS), 0.8-1.8 s; apply from empty 467 requests,
# 76 s with --parallelism 1 vs 104 s with the default (10): on this peer parallel requests only queue behind the
# sandbox's write lock, so the default is not faster here (one repeat, noisy machine).
#
# Environment: VNETPLAN=path/to/vnetplan (default: the newest of build-*/vnetplan),
#              BENCH_TMPDIR=dir for the sandbox, manifests and state (default: $TMPDIR or /tmp),
#              KEEP_TMP=1 keeps that directory for inspection (the server is stopped anyway).
set -euo pipefail

NSUB=${1:-50}
NGRP=${2:-50}
RULES=${3:-10}
REPEATS=${4:-1}
usage() { echo "usage: $0 [N_SUBNETS=50 (1..250)] [N_GROUPS=50 (1..500)] [RULES=10 (1..100)] [REPEATS=1]" >&2; exit 1; }
[[ $NSUB =~ ^[1-9][0-9]{0,2}$ && $NGRP =~ ^[1-9][0-9]{0,2}$ && $RULES =~ ^[1-9][0-9]{0,2}$ ]] || usage
((NSUB <= 250 && RULES <= 100)) || usage
[[ $REPEATS =~ ^[1-9]$ ]] || usage

die() { echo "bench/vpc: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SANDBOX="$ROOT/scripts/neutron-sandbox.sh"
[ -r "$SANDBOX" ] || die "missing $SANDBOX"
bash "$SANDBOX" check >&2 || die "needs neutron-server (scripts/packages: python3-neutron)"
command -v curl >/dev/null || die "needs curl"
# shellcheck disable=SC2034  # read by bench/lib.sh
HAVE_TIME=0
# shellcheck disable=SC2034
[ -x /usr/bin/time ] && HAVE_TIME=1
# shellcheck disable=SC2034
BENCH=bench/vpc
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
if [ -z "${VNETPLAN:-}" ]; then
  for c in "$ROOT"/build*/vnetplan; do
    [ -x "$c" ] && { [ -z "${VNETPLAN:-}" ] || [ "$c" -nt "$VNETPLAN" ]; } && VNETPLAN=$c
  done
fi
[[ -n ${VNETPLAN:-} && -x $VNETPLAN ]] || die "no vnetplan binary: build it (ninja -C build) or set VNETPLAN"

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vnp-bench-vpc.XXXXXX")
cleanup() {
  bash "$SANDBOX" stop "$TMP/neutron" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench/vpc: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

bash "$SANDBOX" start "$TMP/neutron" >"$TMP/neutron.facts" || die "neutron-sandbox.sh start failed"
URL=$(sed -n 's/^URL=//p' "$TMP/neutron.facts")
PHYSNET=$(sed -n 's/^PHYSNET=//p' "$TMP/neutron.facts")
[ -n "$URL" ] || die "neutron-sandbox.sh printed no URL"

project_id() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# manifest PROJECT NSUB NGRP RULES: one Vpc, NSUB private Subnets, NGRP SecurityGroups of RULES ingress rules.
manifest() {
  local project=$1 nsub=$2 ngrp=$3 nrules=$4 i k
  printf 'apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: cloud}\n'
  printf 'spec: {provider: vpc, endpoint: "%s", auth: noauth, project: "%s", physicalNetwork: %s}\n' \
    "$URL" "$project" "$PHYSNET"
  printf -- '---\napiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: bench}\nspec: {targets: [cloud]}\n'
  for ((i = 1; i <= nsub; i++)); do
    printf -- '---\napiVersion: vnetplan.io/v1\nkind: Subnet\nmetadata: {name: s%d}\n' "$i"
    printf 'spec: {targets: [cloud], vpc: bench, cidr: 10.1.%d.0/24}\n' "$i"
  done
  for ((i = 1; i <= ngrp; i++)); do
    printf -- '---\napiVersion: vnetplan.io/v1\nkind: SecurityGroup\nmetadata: {name: g%d}\n' "$i"
    printf 'spec:\n  targets: [cloud]\n  vpc: bench\n  rules:\n'
    for ((k = 1; k <= nrules; k++)); do
      printf '  - {direction: ingress, protocol: tcp, ports: %d, cidr: 10.%d.0.0/16}\n' $((1000 + k)) "$i"
    done
  done
}

# requests TAG: HTTP attempts vnetplan logged in $TMP/TAG.err.
requests() { grep -cE 'vpc: (GET|POST|PUT|DELETE) [^ ]+( -> |: )' "$TMP/$1.err" || true; }

# vnp TAG STATE ARGS...: vnetplan with debug logs (the request lines) and its own state directory.
vnp() {
  local tag=$1 state=$2
  shift 2
  run_timed "$tag" "$VNETPLAN" --state "file://$TMP/$state" --log-level debug "$@"
}

# count COLLECTION PROJECT: objects of the project in Neutron carrying vnetplan's owner tag.
count() {
  curl -sf "$URL/v2.0/$1?project_id=$2&tags=vnetplan%3Aowner%3Dcloud&fields=id" | grep -o '"id"' | wc -l
}

# check PROJECT NSUB NGRP RULES: the end state in Neutron is the manifest's.
check() {
  local project=$1 nsub=$2 ngrp=$3 nrules=$4 n gid
  n=$(count networks "$project")
  [ "$n" = "$nsub" ] || die "project $project: $n networks, expected $nsub"
  n=$(count subnets "$project")
  [ "$n" = "$nsub" ] || die "project $project: $n subnets, expected $nsub"
  n=$(count security-groups "$project")
  [ "$n" = "$ngrp" ] || die "project $project: $n security groups, expected $ngrp"
  n=$(count routers "$project")
  [ "$n" = 1 ] || die "project $project: $n routers, expected 1"
  gid=$(curl -sf "$URL/v2.0/security-groups?project_id=$project&tags=vnetplan%3Aowner%3Dcloud&fields=id&limit=1" |
    sed -n 's/.*"id": *"\([0-9a-f-]*\)".*/\1/p')
  n=$(curl -sf "$URL/v2.0/security-group-rules?security_group_id=$gid&direction=ingress&fields=id" | grep -o '"id"' | wc -l)
  [ "$n" = "$nrules" ] || die "group $gid: $n ingress rules, expected $nrules"
}

echo "bench/vpc: vnetplan $VNETPLAN; neutron-server $URL; $NSUB subnets, $NGRP security groups of $RULES rules"

# (a) requests per plan from empty: the full manifest and a small one.
P=$(project_id)
manifest "$P" "$NSUB" "$NGRP" "$RULES" >"$TMP/full-$P.yaml"
manifest "$P" 1 1 "$RULES" >"$TMP/small-$P.yaml"
vnp plan-full "state-plan" plan -f "$TMP/full-$P.yaml"
((RC == 0)) || fail_run plan-full "plan from empty (full manifest)"
REQ_PLAN_FULL=$(requests plan-full) T_PLAN_FULL=$ELAPSED
vnp plan-small "state-plan" plan -f "$TMP/small-$P.yaml"
((RC == 0)) || fail_run plan-small "plan from empty (small manifest)"
REQ_PLAN_SMALL=$(requests plan-small)

# (b) apply with --parallelism 1 and the default, alternating; (c) the no-op plan after each.
declare -a T1 TD C1 CD R1 RD NOOP_T NOOP_R
for ((r = 0; r < REPEATS; r++)); do
  order=(1 default)
  ((r % 2)) && order=(default 1)
  for par in "${order[@]}"; do
    P=$(project_id)
    manifest "$P" "$NSUB" "$NGRP" "$RULES" >"$TMP/m-$P.yaml"
    args=()
    [ "$par" = 1 ] && args=(--parallelism 1)
    vnp "apply-$par-$r" "state-$P" "${args[@]}" apply --auto-approve -f "$TMP/m-$P.yaml"
    ((RC == 0)) || fail_run "apply-$par-$r" "apply (parallelism $par)"
    if [ "$par" = 1 ]; then
      T1+=("$ELAPSED") C1+=("$CPU") R1+=("$(requests "apply-$par-$r")")
    else
      TD+=("$ELAPSED") CD+=("$CPU") RD+=("$(requests "apply-$par-$r")")
    fi
    check "$P" "$NSUB" "$NGRP" "$RULES"
    vnp "noop-$par-$r" "state-$P" plan --detailed-exitcode -f "$TMP/m-$P.yaml"
    ((RC == 0)) || fail_run "noop-$par-$r" "no-op plan after apply (exit 0 expected)"
    NOOP_T+=("$ELAPSED") NOOP_R+=("$(requests "noop-$par-$r")")
  done
done

# The no-op plan of a small manifest applied, for the O(kinds) comparison.
P=$(project_id)
manifest "$P" 1 1 "$RULES" >"$TMP/s-$P.yaml"
vnp apply-small "state-$P" apply --auto-approve -f "$TMP/s-$P.yaml"
((RC == 0)) || fail_run apply-small "apply (small manifest)"
vnp noop-small "state-$P" plan --detailed-exitcode -f "$TMP/s-$P.yaml"
((RC == 0)) || fail_run noop-small "no-op plan of the small manifest"
REQ_NOOP_SMALL=$(requests noop-small)

objects=$((1 + NSUB + NGRP))
echo
echo "requests per plan from empty: $REQ_PLAN_FULL for $objects resources ($(fmt_s "$T_PLAN_FULL")), $REQ_PLAN_SMALL for 3 resources"
echo "requests per no-op plan after apply: ${NOOP_R[*]} for $objects resources, $REQ_NOOP_SMALL for 3 resources"
if [ "$REQ_PLAN_FULL" = "$REQ_PLAN_SMALL" ] && [ "$(maxof "${NOOP_R[@]}")" = "$REQ_NOOP_SMALL" ]; then
  echo "  O(kinds): PASS (the number of requests does not grow with the number of objects)"
else
  echo "  O(kinds): GOAL MISSED (requests grow with the number of objects)"
fi
echo "no-op plan time: $(list_s "${NOOP_T[@]}")"
echo "apply --parallelism 1: $(list_s "${T1[@]}") wall, ${C1[*]} s CPU, ${R1[*]} requests"
echo "apply (default):       $(list_s "${TD[@]}") wall, ${CD[*]} s CPU, ${RD[*]} requests"
m1=$(median "${T1[@]}") md=$(median "${TD[@]}")
echo "  speed-up of the default over --parallelism 1 (medians): $(awk -v a="$m1" -v b="$md" 'BEGIN { printf "%.2fx", a / b }')"
