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
  openvswitch-switch  # only its binaries: tests run a private OVS with scripts/ovs-sandbox.sh, never the service
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Installing openvswitch-switch would start the system's Open vSwitch service (load the kernel module, run
  # ovs-vswitchd on the host's network). The tests need only the binaries, so while apt runs a policy-rc.d that
  # exits 101 ("action forbidden") stops invoke-rc.d/deb-systemd-invoke from starting any service. One that exists
  # already (containers ship one) is left alone; ours is removed afterwards, by the trap also if apt fails or is
  # interrupted.
  POLICY_RC_D=/usr/sbin/policy-rc.d
  our_policy_rc_d=false
  remove_policy_rc_d() { $SUDO rm -f "$POLICY_RC_D"; }
  if [[ " ${missing[*]} " == *" openvswitch-switch "* ]] && [ ! -e "$POLICY_RC_D" ]; then
    our_policy_rc_d=true
    trap remove_policy_rc_d EXIT
    trap 'exit 130' INT TERM HUP  # exit, so that the EXIT trap runs
    printf '#!/bin/sh\n# temporary, from vnetplan scripts/setup.sh: start no services while apt installs\nexit 101\n' |
      $SUDO tee "$POLICY_RC_D" >/dev/null
    $SUDO chmod 755 "$POLICY_RC_D"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if $our_policy_rc_d; then
    remove_policy_rc_d
    trap - EXIT INT TERM HUP
  fi
fi

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
ninja -C build
echo "setup: built build/vnetplan"
