#!/usr/bin/env bash
# Builds the manifest fuzzer with clang + libFuzzer + ASan/UBSan in build-fuzz/ and runs it.
#
#   tests/fuzz/run.sh [SECONDS]        (default 60)
#
# The seed corpus (tests/fuzz/corpus, every example manifest, the hostile corpus) is copied into
# build-fuzz/fuzz-corpus/ first, so the checked-in corpus never changes. Anything the fuzzer finds (crash,
# timeout, out-of-memory) is written to build-fuzz/fuzz-artifacts/ and the script exits non-zero; reproduce
# it with  build-fuzz/tests/fuzz/manifest_fuzzer build-fuzz/fuzz-artifacts/<file>.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS, e.g.
#   FUZZ_FLAGS="-len_control=0"       long inputs from the start (libFuzzer grows the length limit slowly, and
#                                     stack-depth and quadratic-time bugs need inputs of tens of KB)
#   FUZZ_FLAGS="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"   keep going past known findings
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$src/build-fuzz"
cxx="${CXX_FUZZ:-clang++}"
if ! command -v "$cxx" >/dev/null; then
  echo "error: $cxx not found; the fuzzer needs clang (libFuzzer)" >&2
  exit 2
fi

# -O1 without NDEBUG: fast enough, and assertions stay on.
cmake -S "$src" -B "$build" -G Ninja -DVNETPLAN_FUZZ=ON -DVNETPLAN_BENCH=OFF \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
ninja -C "$build" manifest_fuzzer

corpus="$build/fuzz-corpus"
artifacts="$build/fuzz-artifacts"
mkdir -p "$corpus" "$artifacts"
cp -f "$src"/tests/fuzz/corpus/* "$corpus"/
find "$src/examples" -type f \( -name '*.yaml' -o -name '*.yml' \) -size -64k -print0 |
  while IFS= read -r -d '' f; do cp -f "$f" "$corpus/example-$(echo "${f#"$src"/examples/}" | tr / _)"; done
if [ -d "$src/tests/hostile/manifests" ]; then
  for f in "$src"/tests/hostile/manifests/*.yaml; do cp -f "$f" "$corpus/hostile-$(basename "$f")"; done
fi

# Symbolized reports; fail hard on any sanitizer finding.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:symbolize=1}"

echo "fuzzing for ${seconds}s; corpus $corpus, findings go to $artifacts/"
set +e
# shellcheck disable=SC2086
"$build/tests/fuzz/manifest_fuzzer" \
  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -max_total_time="$seconds" -print_final_stats=1 \
  -dict="$src/tests/fuzz/manifest.dict" -artifact_prefix="$artifacts/" ${FUZZ_FLAGS:-} \
  "$corpus"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "FUZZER FOUND A PROBLEM (exit $rc); reproducer(s) in $artifacts/:" >&2
  ls -la "$artifacts" >&2
  exit "$rc"
fi
echo "fuzzing finished clean after ${seconds}s"
