#!/usr/bin/env bash
# Installs the pinned reference parser from the npm registry (once) and runs its benchmark.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${here}"
if [[ ! -d node_modules/eventsource-parser ]]; then
  npm install --no-audit --no-fund --silent
fi
exec node bench.mjs
