#!/usr/bin/env bash
# One command from a fresh Debian 12 machine: install, build, and run the built-in demo
# (plan + apply of examples/quickstart in a throwaway network namespace, which is removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO ./build/vnetplan demo
