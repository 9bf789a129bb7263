#!/usr/bin/env bash
# Installs what hfchain needs, builds it, and runs the main job on the built-in default
# configuration against a bundled recording (no token or network needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DHFCHAIN_BUILD_TESTS=OFF -DHFCHAIN_BUILD_BENCHMARKS=OFF
"$root/scripts/demo.sh"
