#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#   1. install + build (scripts/setup.sh)
#   2. unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   3. the manifest fuzzer for a short run (build-fuzz/, clang + libFuzzer)
#   4. everything: unit, golden, integration (real kernel in network namespaces), examples, hostile input
# Tests that cannot run here print "SKIPPED: reason" and are counted as skipped, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

./scripts/setup.sh

echo "== unit tests under ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVNETPLAN_SANITIZE=ON -DVNETPLAN_BENCH=OFF >/dev/null
ninja -C build-asan unit_tests
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest -L unit -j "$JOBS" --output-on-failure --timeout 300 | tail -n 3)

if [ -x tests/fuzz/run.sh ]; then
  echo "== manifest fuzzer (${FUZZ_SECONDS}s)"
  tests/fuzz/run.sh "$FUZZ_SECONDS"
fi

echo "== full suite"
cd build
ctest -j "$JOBS" --output-on-failure --timeout 600
