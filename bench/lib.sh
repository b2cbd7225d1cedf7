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
