#!/usr/bin/env bash
# Installs the pinned reference library from the npm registry (once) and runs the benchmark.
# Usage: bench/tokenizer_ref/run.sh [CACHE_DIR]   (default: tests/data/tokenizers/cache)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${here}"
if [[ ! -d node_modules/@anush008/tokenizers ]]; then
  npm install --no-audit --no-fund --silent
fi
exec node bench.mjs "$@"
