#!/usr/bin/env bash
# The main job, offline: serves a real recorded Hugging Face router stream on loopback and
# sends a chat request to it through the built-in default chain (the local-responder and
# auth plugins), printing the tokens as they arrive.
#
# With HFCHAIN_DEMO_LIVE=1 and HF_TOKEN set, it sends the request to the Hugging Face router
# instead, with the built-in default configuration as is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${HFCHAIN_BUILD_DIR:-$root/build}
hfchain="$build_dir/cli/hfchain"
prompt=${1:-What is deep learning?}

if [ "${HFCHAIN_DEMO_LIVE:-0}" = 1 ]; then
  exec "$hfchain" generate "$prompt"
fi

recording="$root/tests/data/recorded/router-cerebras-chat-stream-usage.json"
log=$(mktemp)
"$hfchain" replay "$recording" --port 0 --any --chunk-bytes 64 --chunk-delay-ms 40 >"$log" 2>&1 &
replay_pid=$!
trap 'kill "$replay_pid" 2>/dev/null || true; wait "$replay_pid" 2>/dev/null || true; rm -f "$log"' EXIT

url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" || true)
  [ -n "$url" ] && break
  sleep 0.05
done
if [ -z "$url" ]; then
  echo "demo: the replay server did not start:" >&2
  cat "$log" >&2
  exit 1
fi

echo "demo: replaying $(basename "$recording") from $url through the default chain" >&2
"$hfchain" generate --config "$root/config/default.yaml" \
  --url "$url/cerebras/v1" --protocol openai --model llama-3.3-70b \
  --system "You are a helpful assistant." --max-new-tokens 20 "$prompt"
