# Shared by the bench scripts (source it after setting BENCH, TMP and HAVE_TIME): timing one command the same
# way for vnetplan and its peer, and the small statistics and formatting helpers of the reports.
# shellcheck shell=bash disable=SC2034  # ELAPSED, CPU, RSS, RC are read by the caller

# run_timed TAG CMD...: runs CMD (under /usr/bin/time when HAVE_TIME=1: both sides alike), stdout to $OUT
# (default $TMP/TAG.out), stderr to $TMP/TAG.err; sets ELAPSED (seconds, wall), CPU (user+sys seconds, 10 ms
# resolution), RSS (peak kB) and RC. CPU is printed beside the wall-clock ratios: on a busy machine it is the
# steadier of the two.
run_timed() {
  local tag=$1 t0 t1 stats
  shift
  t0=$EPOCHREALTIME
  set +e
  if ((HAVE_TIME)); then
    /usr/bin/time -f '%M %U %S' -o "$TMP/$tag.time" "$@" >"${OUT:-$TMP/$tag.out}" 2>"$TMP/$tag.err"
  else
    "$@" >"${OUT:-$TMP/$tag.out}" 2>"$TMP/$tag.err"
  fi
  RC=$?
  set -e
  t1=$EPOCHREALTIME
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
  if ((HAVE_TIME)); then
    stats=$(tail -n 1 "$TMP/$tag.time")
    RSS=${stats%% *}
    CPU=$(awk '{ printf "%.2f", $2 + $3 }' <<<"$stats")
  else
    RSS=0 CPU=0
  fi
}

fail_run() {  # fail_run TAG WHAT
  echo "$BENCH: $2 failed (exit $RC); last output:" >&2
  tail -n 20 "$TMP/$1.out" "$TMP/$1.err" >&2 || true
  exit 1
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
fmt_s() { awk -v x="$1" 'BEGIN { printf "%.3fs", x }'; }
fmt_mb() { awk -v x="$1" 'BEGIN { if (x > 0) printf "%.1f MB", x / 1024; else printf "n/a" }'; }
list_s() { local out="" x; for x in "$@"; do out+="$(fmt_s "$x") "; done; echo "${out% }"; }

# --- network namespaces (the linux benches; set PREFIX=vnp-bench-$$ and CREATED=("$PREFIX-probe") first) ---------

# Namespaces a killed earlier run left behind (its pid is gone): only the benches' own naming scheme.
remove_stale_namespaces() {
  local f name pid
  for f in /run/netns/vnp-bench-*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    pid=$(sed -n 's/^vnp-bench-\([0-9][0-9]*\)-.*/\1/p' <<<"$name")
    if [ -n "$pid" ] && [ ! -d "/proc/$pid" ]; then
      echo "$BENCH: removing stale namespace $name" >&2
      ip netns del "$name" || true
    fi
  done
}

# `ip netns del` returns at once, but the kernel tears a namespace with thousands of links down in a worker that
# holds RTNL for seconds: anything measured meanwhile would be charged for it. Wait until a probe namespace can
# be created, used and removed quickly again (SETTLE_S seconds; under TCG everything is slower).
settle() {
  local probe="$PREFIX-probe" deadline=$((SECONDS + 300)) t0 t1
  while :; do
    t0=$EPOCHREALTIME
    ip netns add "$probe"
    ip -n "$probe" link set lo up
    ip netns del "$probe"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" -v s="${SETTLE_S:-0.1}" 'BEGIN { exit !(b - a < s) }' && return 0
    ((SECONDS < deadline)) || { echo "$BENCH: warning: the kernel did not settle in 300s" >&2; return 0; }
    sleep 0.2
  done
}

new_ns() {  # new_ns NAME: a fresh, empty namespace, created once the kernel is idle
  settle
  ip netns add "$1"
  CREATED+=("$1")
  if [ "${BENCH_IPV6:-1}" = 0 ]; then
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  fi
}

drop_ns() {
  ip netns del "$1"
  settle
}

# --- report -----------------------------------------------------------------------------------------------------

MISSED=0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }'; }
judge_goal() {  # judge_goal RATIO GOAL: sets VERDICT (OK or GOAL MISSED), and MISSED=1 on a miss
  if awk -v r="$1" -v g="$2" 'BEGIN { exit !(r <= g) }'; then VERDICT=OK; else VERDICT="GOAL MISSED"; MISSED=1; fi
}
cpu_line() {  # cpu_line PEER_NAME VNP_CPU PEER_CPU
  printf '    cpu (user+sys): vnetplan %s, %s %s, ratio %s\n' "$(fmt_s "$2")" "$1" "$(fmt_s "$3")" "$(ratio "$2" "$3")"
}
row() {  # row LABEL VNP_MEDIAN PEER_NAME PEER_MEDIAN GOAL VNP_CPU_MEDIAN PEER_CPU_MEDIAN; sets MISSED=1 on a miss
  local r
  r=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.2f", a / b }')
  judge_goal "$r" "$5"
  printf '%s: vnetplan %s, %s %s, ratio %sx (goal <= %sx) %s\n' "$1" "$(fmt_s "$2")" "$3" "$(fmt_s "$4")" \
    "$r" "$5" "$VERDICT"
  cpu_line "$3" "$6" "$7"
}

# paired_row LABEL GOAL PEER_NAME CPU_VNP CPU_PEER VNP_SAMPLES... -- PEER_SAMPLES...: like row, for samples taken in
# pairs (vnetplan's i-th run next to the peer's i-th run). Prints the ratio of the medians and the median of the
# per-pair ratios, and judges the goal on the latter: each pair shares the machine's state at that moment, so a
# load that comes and goes over minutes (these machines are shared) moves both sides of a pair together instead of
# deciding the verdict. Sets MISSED=1 on a miss.
paired_row() {
  local label=$1 goal=$2 peer=$3 cv=$4 cp=$5
  shift 5
  local -a v=() p=() ratios=()
  while (($#)) && [ "$1" != -- ]; do v+=("$1"); shift; done
  shift
  p=("$@")
  ((${#v[@]} == ${#p[@]})) || { echo "paired_row: ${#v[@]} vnetplan samples vs ${#p[@]} $peer samples" >&2; exit 1; }
  local i
  for ((i = 0; i < ${#v[@]}; i++)); do ratios+=("$(awk -v a="${v[i]}" -v b="${p[i]}" 'BEGIN { printf "%.4f", a / b }')"); done
  local mv mp rm rp
  mv=$(median "${v[@]}") mp=$(median "${p[@]}")
  rm=$(awk -v a="$mv" -v b="$mp" 'BEGIN { printf "%.2f", a / b }')
  rp=$(awk -v x="$(median "${ratios[@]}")" 'BEGIN { printf "%.2f", x }')
  judge_goal "$rp" "$goal"
  printf '%s: vnetplan %s, %s %s (medians, ratio %sx); per-pair ratio median %sx (goal <= %sx) %s\n' "$label" \
    "$(fmt_s "$mv")" "$peer" "$(fmt_s "$mp")" "$rm" "$rp" "$goal" "$VERDICT"
  printf '    per-pair ratios: %s\n' "$(printf '%s ' "${ratios[@]}" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " " : ""), $i }')"
  cpu_line "$peer" "$cv" "$cp"
}

# find_vnetplan: sets VNETPLAN (absolute) from $VNETPLAN, else build-bench/vnetplan, else build/vnetplan ($ROOT).
find_vnetplan() {
  local c
  if [ -z "${VNETPLAN:-}" ]; then
    for c in "$ROOT/build-bench/vnetplan" "$ROOT/build/vnetplan"; do
      [ -x "$c" ] && { VNETPLAN=$c; break; }
    done
  fi
  if [ -z "${VNETPLAN:-}" ] || [ ! -x "$VNETPLAN" ]; then
    echo "$BENCH: no vnetplan binary: build it (ninja -C build-bench) or set VNETPLAN" >&2
    exit 1
  fi
  VNETPLAN=$(readlink -f "$VNETPLAN")
}

# ns_cleanup: the EXIT trap of the namespace benches: removes every namespace in CREATED, and $TMP unless
# KEEP_TMP=1.
# shellcheck disable=SC2317  # invoked by the EXIT trap
ns_cleanup() {
  local ns
  for ns in "${CREATED[@]}"; do
    if [ -e "/run/netns/$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "$BENCH: kept $TMP" >&2; else rm -rf "$TMP"; fi
}

# link_signature NS TYPE...: what the kernel has in NS as netlink shows it ("1003 links (500 bridge, 500 vlan),
# 1002 up, 500 enslaved"); vnetplan's end state and its peer's must agree.
link_signature() {
  local ns=$1 total up enslaved kinds="" t
  shift
  total=$(ip -n "$ns" -o link show | wc -l)
  for t in "$@"; do kinds+="${kinds:+, }$(ip -n "$ns" -o link show type "$t" | wc -l) $t"; done
  up=$(ip -n "$ns" -o link show up | wc -l)
  enslaved=$(ip -n "$ns" -o link show | grep -c ' master ' || true)
  echo "$total links ($kinds), $up up, $enslaved enslaved"
}
