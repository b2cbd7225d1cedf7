#!/usr/bin/env bash
# Usage: scripts/vmlane/ctest-lane.sh --dir WORK [run.sh options] -- /abs/test_binary [gtest args]
#
# The fixture-setup ctest test of a vmlane_add_gtest() target (cmake/vmlane.cmake): boots the stock-kernel VM
# once, runs the gtest binary in it with JSON output, and leaves in WORK what the per-case tests
# (cmake/vmlane_report.cmake) read: out/results.json, console.log, or skip.txt when the lane cannot run here.
# Exits 0 when the VM ran the binary (the cases report their own results), 1 when the lane itself failed (did
# not boot, panicked, timed out), and prints "SKIPPED: <reason>" when this machine cannot run the lane.
set -euo pipefail
me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)

[ "${1:-}" = --dir ] && [ -n "${2:-}" ] || { echo "$me: usage: $me --dir WORK [run.sh options] -- BINARY [ARGS]" >&2; exit 64; }
dir=$2
shift 2
mkdir -p "$dir"
rm -rf "$dir/out" "$dir/console.log" "$dir/skip.txt" "$dir/exit_status"

if ! reason=$("$here/run.sh" --check); then
  printf '%s\n' "$reason" >"$dir/skip.txt"
  echo "SKIPPED: the stock-kernel lane cannot run here: $reason"
  exit 0
fi

# What the VM prints is shown with ctest's skip marker defused: one skipped case must not make this whole test
# count as skipped (console.log keeps the original for the case reports).
set +e
"$here/run.sh" --results "$dir/out" "$@" --gtest_output=json:/out/results.json 2>&1 | tee "$dir/console.log" |
  sed -u 's/SKIPPED:/SKIPPED -/g'
rc=${PIPESTATUS[0]}
set -e
echo "$rc" >"$dir/exit_status"
case "$rc" in
  124|125|64|69)
    echo "$me: the lane failed (run.sh exit $rc, see above); the cases of this binary are not run" >&2
    exit 1 ;;
esac
[ -s "$dir/out/results.json" ] ||
  echo "$me: the test binary exited $rc without writing its JSON results; the cases report from the console log"
echo "$me: the test binary exited $rc in the VM; each vm/<Suite>.<Test> test reports its case"
