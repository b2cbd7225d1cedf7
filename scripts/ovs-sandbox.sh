#!/usr/bin/env bash
# A throwaway Open vSwitch for tests: a private ovsdb-server (and optionally ovs-vswitchd) whose database, sockets,
# pidfiles and logs all live in one directory, so nothing is written to /var/run/openvswitch, /var/log or /etc and
# the system's openvswitch-switch service (if any) is never involved.
#
#   ovs-sandbox.sh start DIR [NETNS]   fresh DIR/conf.db, ovsdb-server on DIR/db.sock; with NETNS also ovs-vswitchd,
#                                      run inside that network namespace. Prints DIR/db.sock as the last stdout line.
#   ovs-sandbox.sh stop DIR            stops ovs-vswitchd, then ovsdb-server; no error if they are not running.
#   ovs-sandbox.sh check               exit 0 if every Open vSwitch binary is installed, else list the missing ones.
#
# ovs-vswitchd is started with --disable-system: only userspace bridges (datapath_type=netdev) work, whether or not
# the kernel has the openvswitch module, so a test behaves the same on every machine and never creates a kernel
# datapath. The netdev datapath creates a TAP device for every bridge and internal port; running ovs-vswitchd in
# NETNS keeps those (and any system port it opens) inside that namespace, away from the host network.
# Everything but the socket path goes to stderr. Needs root for `ip netns exec`.
set -euo pipefail

# Daemons live in /usr/sbin, which a non-login root shell may not have on its PATH.
export PATH="$PATH:/usr/sbin:/sbin"

SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
BINARIES=(ovsdb-server ovs-vswitchd ovs-vsctl ovsdb-tool ovsdb-client ovs-appctl ip)
START_TIMEOUT=10  # seconds each daemon gets to answer
STOP_TIMEOUT=5    # seconds a daemon gets to exit before it is killed

usage() {
  echo "usage: $0 start DIR [NETNS] | stop DIR | check" >&2
  exit 2
}

log() { echo "ovs-sandbox: $*" >&2; }

# Runs "$@" (quietly) every 0.1 s until it succeeds or TIMEOUT seconds have passed; returns its last status.
wait_until() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# True if process PID runs: exists and is not a zombie. A daemon that exited stays a zombie until its parent
# reaps it, and --detach makes that parent PID 1, which in some containers reaps late or never.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the fields after "(comm) "; the first is the state
  [ "${stat%% *}" != Z ]
}

# The pid in DIR/NAME.pid if that process runs and really is NAME (a stale pidfile's pid may have been reused).
live_pid() {
  local dir=$1 name=$2 pid
  pid=$(cat "$dir/$name.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # /proc/PID/comm is truncated to 15 characters: "ovsdb-server" and "ovs-vswitchd" both fit.
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  running "$pid" || return 1
  echo "$pid"
}

not_running() { ! running "$1"; }

# Stops daemon NAME of DIR: `ovs-appctl exit` first, then SIGTERM, then SIGKILL, each with a bounded wait.
stop_daemon() {
  local dir=$1 name=$2 pid
  if pid=$(live_pid "$dir" "$name"); then
    local args=(exit)
    # --cleanup makes ovs-vswitchd delete its datapaths (and their TAP devices) on the way out.
    [ "$name" = ovs-vswitchd ] && args=(exit --cleanup)
    ovs-appctl --timeout="$STOP_TIMEOUT" -t "$dir/$name.ctl" "${args[@]}" >/dev/null 2>&1 || true
    if ! wait_until "$STOP_TIMEOUT" not_running "$pid"; then
      log "$name ($pid) did not exit; sending SIGTERM"
      kill -TERM "$pid" 2>/dev/null || true
      if ! wait_until "$STOP_TIMEOUT" not_running "$pid"; then
        log "$name ($pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_until "$STOP_TIMEOUT" not_running "$pid" || { log "cannot stop $name ($pid)"; return 1; }
      fi
    fi
  fi
  rm -f "$dir/$name.pid" "$dir/$name.ctl"
}

# Prints the end of every log in DIR to stderr (for a failed start).
dump_logs() {
  local dir=$1 f
  for f in "$dir"/ovsdb-server.log "$dir"/ovs-vswitchd.log; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 30 "$f" >&2
  done
}

cmd_check() {
  local missing=() b
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  [ -r "$SCHEMA" ] || missing+=("$SCHEMA")
  if ((${#missing[@]})); then
    echo "ovs-sandbox: missing: ${missing[*]} (install openvswitch-switch: scripts/setup.sh)" >&2
    return 1
  fi
}

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local rc=0
  stop_daemon "$dir" ovs-vswitchd || rc=1
  stop_daemon "$dir" ovsdb-server || rc=1
  return $rc
}

# Called when start fails: show why, and leave nothing running.
start_failed() {
  local dir=$1
  shift
  log "start failed: $*"
  dump_logs "$dir"
  cmd_stop "$dir" || true
  exit 1
}

cmd_start() {
  local dir=$1 netns=${2:-}
  cmd_check || exit 1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)  # the daemons get absolute paths
  if live_pid "$dir" ovsdb-server >/dev/null || live_pid "$dir" ovs-vswitchd >/dev/null; then
    log "a sandbox is already running in $dir (run: $0 stop $dir)"
    exit 1
  fi
  if [ -n "$netns" ] && [ ! -e "/run/netns/$netns" ]; then
    log "network namespace $netns does not exist"
    exit 1
  fi

  # Every default path of the OVS tools points into DIR (pidfiles, control sockets, logs, the database,
  # system-id and SSL files), so even an option we forgot cannot touch the system's directories.
  export OVS_RUNDIR=$dir OVS_LOGDIR=$dir OVS_DBDIR=$dir OVS_SYSCONFDIR=$dir
  local db="unix:$dir/db.sock"

  # A fresh database each time: a test starts from an empty Open_vSwitch.
  rm -f "$dir/conf.db" "$dir/.conf.db.~lock~" "$dir/db.sock" "$dir"/*.log
  ovsdb-tool create "$dir/conf.db" "$SCHEMA" || start_failed "$dir" "ovsdb-tool create"

  # -vconsole:warn: only warnings reach our stderr before the daemon detaches; everything is in its log file.
  ovsdb-server "$dir/conf.db" --detach --no-chdir -vconsole:warn \
    --pidfile="$dir/ovsdb-server.pid" --log-file="$dir/ovsdb-server.log" \
    --remote="punix:$dir/db.sock" --unixctl="$dir/ovsdb-server.ctl" ||
    start_failed "$dir" "ovsdb-server did not start"
  wait_until "$START_TIMEOUT" ovsdb-client --timeout=2 list-dbs "$db" ||
    start_failed "$dir" "ovsdb-server does not answer on $dir/db.sock"
  # The root Open_vSwitch row; --no-wait because no ovs-vswitchd is connected yet.
  ovs-vsctl --db="$db" --timeout="$START_TIMEOUT" --no-wait init || start_failed "$dir" "ovs-vsctl init"

  if [ -n "$netns" ]; then
    ip netns exec "$netns" ovs-vswitchd "$db" --detach --no-chdir --disable-system -vconsole:warn \
      --pidfile="$dir/ovs-vswitchd.pid" --log-file="$dir/ovs-vswitchd.log" --unixctl="$dir/ovs-vswitchd.ctl" ||
      start_failed "$dir" "ovs-vswitchd did not start in netns $netns"
    wait_until "$START_TIMEOUT" ovs-appctl --timeout=2 -t "$dir/ovs-vswitchd.ctl" version ||
      start_failed "$dir" "ovs-vswitchd does not answer on $dir/ovs-vswitchd.ctl"
    wait_until "$START_TIMEOUT" ovs-vsctl --db="$db" --timeout=10 show ||
      start_failed "$dir" "ovs-vsctl show fails"
    # ovs-vswitchd fills in datapath_types once it has read the database: from then on ovs-vsctl without
    # --no-wait (which waits for ovs-vswitchd to apply a change) works.
    wait_until "$START_TIMEOUT" bash -c \
      "[ \"\$(ovs-vsctl --db='$db' --timeout=2 get Open_vSwitch . datapath_types)\" != '[]' ]" ||
      start_failed "$dir" "ovs-vswitchd never connected to the database"
  fi
  echo "$dir/db.sock"
}

case "${1:-}" in
  start) (($# == 2 || $# == 3)) || usage; cmd_start "$2" "${3:-}" ;;
  stop) (($# == 2)) || usage; cmd_stop "$2" ;;
  check) (($# == 1)) || usage; cmd_check ;;
  *) usage ;;
esac
