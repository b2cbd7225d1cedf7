#!/usr/bin/env bash
# Run by scripts/setup.sh after apt: etcd-server and prometheus enable their system services on install (systemd
# wants-links and sysvinit rc links), so a machine that boots with systemd or sysvinit would start a system etcd
# on localhost:2379 and a Prometheus on every interface's port 9090. Tests run private daemons only: disable both
# services' start at boot (update-rc.d disable also runs `systemctl disable` where systemd is installed). Starts
# nothing; idempotent and quick (no-op when a package is absent or its service already disabled).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

for svc in etcd prometheus; do
  [ -x "/etc/init.d/$svc" ] || continue
  if [ -e "/etc/systemd/system/multi-user.target.wants/$svc.service" ] ||
    compgen -G "/etc/rc[2-5].d/S??$svc" >/dev/null; then
    echo "fleet.sh: disabling the $svc system service at boot (tests run their own)" >&2
    update-rc.d "$svc" disable >/dev/null 2>&1 ||
      { echo "fleet.sh: update-rc.d $svc disable failed" >&2; exit 1; }
  fi
done
