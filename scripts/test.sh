#!/usr/bin/env bash
# Builds hfchain and runs every test twice: in a normal build, and in a build with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${HFCHAIN_JOBS:-$(nproc)}

"$root/scripts/install-deps.sh"
# The tokenizer tests use real tokenizer.json files, fetched once into a cache.
"$root/scripts/fetch-tokenizers.sh"

echo "test: normal build"
"$root/scripts/build.sh" "$root/build-test" -DHFCHAIN_BUILD_TESTS=ON -DHFCHAIN_BUILD_BENCHMARKS=ON
ctest --test-dir "$root/build-test" --output-on-failure -j "$jobs" --timeout 300

echo "test: AddressSanitizer and UndefinedBehaviorSanitizer build"
"$root/scripts/build.sh" "$root/build-asan" -DHFCHAIN_SANITIZE=ON -DHFCHAIN_BUILD_TESTS=ON \
  -DHFCHAIN_BUILD_BENCHMARKS=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs" --timeout 600
