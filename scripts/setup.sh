#!/usr/bin/env bash
# Installs every Debian 12 package vnetplan needs to build and test, then builds it into build/.
# Idempotent: apt runs only when something is missing. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config git clang libclang-rt-14-dev
  # libraries
  libyaml-cpp-dev libnl-3-dev libnl-route-3-dev libnftables-dev libcpp-httplib-dev libssl-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libvalijson-dev libcli11-dev libssh-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the real peers tests and benchmarks run against
  iproute2 procps time
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
ninja -C build
echo "setup: built build/vnetplan"
