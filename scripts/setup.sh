#!/usr/bin/env bash
# Installs every Debian 12 package vnetplan needs to build and test, then builds it into build/.
# Idempotent: apt runs only when something is missing. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# One list per area in scripts/packages/*.list (comments with #); every list is installed.
PACKAGES=()
for list in scripts/packages/*.list; do
  PACKAGES+=($(sed -e 's/#.*//' "$list"))
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Installing openvswitch-switch (or etcd-server, neutron-server, ...) would start its system service (for OVS:
  # load the kernel module, run ovs-vswitchd on the host's network). The tests need only the binaries and run
  # private daemons, so while apt runs a policy-rc.d that
  # exits 101 ("action forbidden") stops invoke-rc.d/deb-systemd-invoke from starting any service. One that exists
  # already (containers ship one) is left alone; ours is removed afterwards, by the trap also if apt fails or is
  # interrupted.
  POLICY_RC_D=/usr/sbin/policy-rc.d
  our_policy_rc_d=false
  remove_policy_rc_d() { $SUDO rm -f "$POLICY_RC_D"; }
  if [ ! -e "$POLICY_RC_D" ]; then
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

# Areas that need more than apt (e.g. a kernel image unpacked for the VM lane) have a hook next to their list.
for hook in scripts/packages/*.sh; do
  [ -e "$hook" ] || continue
  bash "$hook"
done

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
ninja -C build
echo "setup: built build/vnetplan"
