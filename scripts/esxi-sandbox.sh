#!/usr/bin/env bash
# A throwaway "ESXi host" for tests: a private OpenSSH server (Debian's sshd) on 127.0.0.1 whose sessions run the
# client's command in busybox ash (ESXi's shell) with `esxcli` being the emulator (tests/esxi, target
# esxcli_emulator). Keys, configuration, the emulated host's state, pidfile and logs all live in one directory; the
# system's ssh service and /etc/ssh are never involved.
#
#   esxi-sandbox.sh start DIR [PORT]   fresh host keys, client keys, known_hosts, emulator state and sshd_config in
#                                      DIR, then sshd on 127.0.0.1:PORT (a free port if none is given). Prints
#                                      KEY=VALUE lines on stdout (PORT, USER, IDENTITY_FILE, KNOWN_HOSTS, STATE, ...).
#   esxi-sandbox.sh stop DIR           stops that sshd, its connections and every session still running; no error
#                                      if nothing runs.
#   esxi-sandbox.sh check              exit 0 if OpenSSH (server and client) is installed, else list what is missing.
#
# Environment: ESXCLI_EMULATOR  the emulator binary (default: build/tests/esxi/esxcli of this checkout);
#              ESXI_SANDBOX_NICS physical NICs of the emulated host (default 4);
#              ESXI_SANDBOX_IP   vmk0's IPv4 address (default 10.0.0.10).
#
# Several sandboxes (a fleet of hosts) run side by side, each in its own DIR on its own port. A session's
# environment: PATH starts with DIR/bin (esxcli -> the emulator), ESXCLI_STATE=DIR/state.json,
# ESXCLI_LOG=DIR/esxcli.log (one JSON line per esxcli invocation), ESXCLI_FAULTS=DIR/faults.json (fault rules, see
# tests/esxi/emulator/hooks.h). Key authentication only; one client key without a passphrase (IDENTITY_FILE) and
# one with (PASSPHRASE_IDENTITY_FILE, its passphrase in PASSPHRASE_FILE, never printed). Everything but the
# KEY=VALUE lines goes to stderr. As root, sshd needs /run/sshd (its privilege separation directory), which this
# script creates if it is missing.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

SSHD=/usr/sbin/sshd
BINARIES=("$SSHD" ssh ssh-keygen setsid)
START_TIMEOUT=10 # seconds sshd gets to listen
STOP_TIMEOUT=5   # seconds processes get to exit before SIGKILL
PORT_TRIES=10    # free ports tried when none is given
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR | check" >&2
  exit 2
}

log() { echo "esxi-sandbox: $*" >&2; }

die() {
  log "$*"
  exit 1
}

wait_until() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# True if process PID exists and is not a zombie (an orphaned sshd may be reaped late by PID 1).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
not_running() { ! running "$1"; }

# The sshd of DIR, if DIR/sshd.pid names a running sshd started with DIR's config (a stale pidfile's pid may have
# been reused by anything).
live_sshd() {
  local dir=$1 pid cmdline
  pid=$(cat "$dir/sshd.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$dir/sshd_config"* ]] || return 1
  echo "$pid"
}

# Single-quotes a string for sh.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

cmd_check() {
  local missing=() b
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  if ((${#missing[@]})); then
    echo "esxi-sandbox: missing: ${missing[*]} (install openssh-server openssh-client: scripts/setup.sh)" >&2
    return 1
  fi
}

# Every process of DIR's sandbox: the sshd, its descendants (connection handlers, sessions, their commands) and any
# process whose environment names DIR's state file (a session command orphaned from that tree).
sandbox_pids() {
  local dir=$1 main=$2 d pid stat rest ppid
  declare -A children=()
  local -a all=()
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    stat=$(cat "$d/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    read -r _ ppid _ <<<"$rest"
    children[$ppid]+=" $pid"
    all+=("$pid")
  done
  local -a queue=() found=()
  [ -n "$main" ] && queue=("$main")
  while ((${#queue[@]})); do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    found+=("$pid")
    for d in ${children[$pid]:-}; do queue+=("$d"); done
  done
  local want="ESXCLI_STATE=$dir/state.json" var
  for pid in "${all[@]}"; do
    [ "$pid" = "$$" ] && continue
    local -a envs=()
    # (another user's or a kernel thread's environ is unreadable or empty: skipped)
    { mapfile -d '' envs <"/proc/$pid/environ"; } 2>/dev/null || continue
    for var in "${envs[@]}"; do
      if [ "$var" = "$want" ]; then
        found+=("$pid")
        break
      fi
    done
  done
  ((${#found[@]})) && printf '%s\n' "${found[@]}" | sort -un
  return 0
}

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local main="" pid
  main=$(live_sshd "$dir") || main=""
  # Collected before anything is killed: once the sshd dies its children are reparented and the tree is lost.
  local -a pids=()
  mapfile -t pids < <(sandbox_pids "$dir" "$main")
  ((${#pids[@]})) || {
    rm -f "$dir/sshd.pid"
    return 0
  }
  # The listener first, so that no new connection arrives while the others go.
  if [ -n "$main" ]; then kill -TERM "$main" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local left=()
  for pid in "${pids[@]}"; do
    wait_until "$STOP_TIMEOUT" not_running "$pid" || left+=("$pid")
  done
  if ((${#left[@]})); then
    log "sending SIGKILL to ${left[*]}"
    for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${left[@]}"; do
      wait_until "$STOP_TIMEOUT" not_running "$pid" || die "cannot stop process $pid of $dir"
    done
  fi
  rm -f "$dir/sshd.pid"
}

start_failed() {
  local dir=$1
  shift
  log "start failed: $*"
  if [ -f "$dir/sshd.log" ]; then
    echo "---- last lines of $dir/sshd.log ----" >&2
    tail -n 30 "$dir/sshd.log" >&2
  fi
  cmd_stop "$dir" || true
  exit 1
}

# Ports with a listening TCP socket (IPv4 and IPv6), from /proc: no ss/netstat needed.
listening_ports() {
  awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print strtonum("0x" a[2]) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    sort -un
}

pick_port() {
  local port used
  used=" $(listening_ports | tr '\n' ' ') "
  for _ in $(seq 50); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    [[ $used == *" $port "* ]] || {
      echo "$port"
      return 0
    }
  done
  return 1
}

write_sshd_config() {
  local dir=$1 port=$2 user=$3
  cat >"$dir/sshd_config" <<EOF
# esxi-sandbox.sh: a private sshd for tests. Nothing here reads /etc/ssh.
Port $port
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
# The sandbox lives under /tmp, which StrictModes would reject as a path to authorized_keys (world-writable).
StrictModes no
ForceCommand $dir/bin/esxi-session
# sshd runs the ForceCommand with the user's login shell. Debian's bash, started by sshd with SHLVL unset, sources
# ~/.bashrc even for "-c" (SSH_SOURCE_BASHRC) -- on a developer's machine that can cost hundreds of milliseconds
# per session (pyenv init, measured 330 ms). ESXi's ash reads nothing; SHLVL=1 makes bash skip the rc file too.
SetEnv SHLVL=1
PermitUserEnvironment no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
# A fleet test and the concurrency tests open many connections at once; the default 10:30:100 drops some.
MaxStartups 200
MaxSessions 100
LoginGraceTime 30
LogLevel VERBOSE
EOF
}

write_session_wrapper() {
  local dir=$1 shell
  # ESXi's shell is busybox ash; without busybox, sh (dash) is close enough.
  if [ -x /bin/busybox ]; then shell="/bin/busybox ash"; else shell=/bin/sh; fi
  cat >"$dir/bin/esxi-session" <<EOF
#!/bin/sh
# esxi-sandbox.sh: sshd's ForceCommand. Runs the client's command as an ESXi host would: in $shell, with esxcli
# being the emulator and the emulator's state, log and fault files set.
PATH=$(sq "$dir/bin:/usr/sbin:/usr/bin:/sbin:/bin")
ESXCLI_STATE=$(sq "$dir/state.json")
ESXCLI_LOG=$(sq "$dir/esxcli.log")
ESXCLI_FAULTS=$(sq "$dir/faults.json")
export PATH ESXCLI_STATE ESXCLI_LOG ESXCLI_FAULTS
cd /
if [ -n "\${SSH_ORIGINAL_COMMAND-}" ]; then exec $shell -c "\$SSH_ORIGINAL_COMMAND"; fi
exec $shell
EOF
  chmod 755 "$dir/bin/esxi-session"
}

# ssh to the sandbox as a test would (no user or system configuration, strict host key checking).
sandbox_ssh() {
  local dir=$1 port=$2 user=$3
  shift 3
  ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$dir/client_ed25519" \
    -o UserKnownHostsFile="$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
    -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=5 -o LogLevel=ERROR \
    -p "$port" "$user@127.0.0.1" -- "$@"
}

# Starts sshd on PORT; returns 0 when it listens, 2 if the port was taken, 1 on any other failure.
launch_sshd() {
  local dir=$1 port=$2 pid
  rm -f "$dir/sshd.log" "$dir/sshd.pid"
  setsid "$SSHD" -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 &
  pid=$!
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if grep -q "Server listening on 127.0.0.1 port $port" "$dir/sshd.log" 2>/dev/null; then
      echo "$pid" >"$dir/sshd.pid.launched"
      return 0
    fi
    if not_running "$pid"; then
      grep -q "Address already in use" "$dir/sshd.log" 2>/dev/null && return 2
      return 1
    fi
    sleep 0.02
  done
  kill -TERM "$pid" 2>/dev/null || true
  return 1
}

cmd_start() {
  local dir=$1 port=${2:-}
  cmd_check || exit 1
  local emulator=${ESXCLI_EMULATOR:-$REPO/build/tests/esxi/esxcli}
  [ -x "$emulator" ] || die "no esxcli emulator at $emulator (build the esxcli_emulator target or set ESXCLI_EMULATOR)"
  emulator=$(cd "$(dirname "$emulator")" && pwd)/$(basename "$emulator")
  [ -z "$port" ] || [[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "bad port: $port"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # sshd_config has no quoting for these, and expands %-tokens in AuthorizedKeysFile.
  [[ $dir =~ ^[A-Za-z0-9_./+@:-]+$ ]] || die "DIR must be a plain path (letters, digits, _ . / + @ : -): $dir"
  live_sshd "$dir" >/dev/null && die "a sandbox is already running in $dir (run: $0 stop $dir)"
  local user
  user=$(id -un)

  rm -rf "${dir:?}/bin"
  rm -f "$dir"/ssh_host_ed25519_key* "$dir"/client_ed25519* "$dir/authorized_keys" "$dir/known_hosts" \
    "$dir"/state.json* "$dir"/esxcli.log "$dir"/faults.json* "$dir/sshd.log" "$dir/sshd_config" "$dir"/sshd.pid*
  mkdir -p "$dir/bin"
  chmod 700 "$dir"

  ssh-keygen -q -t ed25519 -N '' -C "esxi-sandbox host key" -f "$dir/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "esxi-sandbox client" -f "$dir/client_ed25519"
  # The passphrase is random and stays in a 0600 file: tests read it from there, nothing prints it.
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$dir/client_ed25519_pass.passphrase")
  ssh-keygen -q -t ed25519 -N "$(cat "$dir/client_ed25519_pass.passphrase")" -C "esxi-sandbox client (passphrase)" \
    -f "$dir/client_ed25519_pass"
  {
    echo "restrict $(cat "$dir/client_ed25519.pub")"
    echo "restrict $(cat "$dir/client_ed25519_pass.pub")"
  } >"$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"

  "$emulator" --emulator-init "$dir/state.json" --nics "${ESXI_SANDBOX_NICS:-4}" --ip "${ESXI_SANDBOX_IP:-10.0.0.10}" ||
    die "esxcli --emulator-init failed"
  : >"$dir/esxcli.log"
  : >"$dir/faults.json"
  ln -s "$emulator" "$dir/bin/esxcli"
  write_session_wrapper "$dir"

  if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd
    chmod 755 /run/sshd
  fi

  local tries=1 rc
  [ -n "$port" ] || tries=$PORT_TRIES
  for ((i = 0; i < tries; i++)); do
    local p=$port
    [ -n "$p" ] || p=$(pick_port) || die "no free port found"
    write_sshd_config "$dir" "$p" "$user"
    "$SSHD" -t -f "$dir/sshd_config" || start_failed "$dir" "sshd -t rejects $dir/sshd_config"
    rc=0
    launch_sshd "$dir" "$p" || rc=$?
    if ((rc == 0)); then
      port=$p
      break
    fi
    ((rc == 2)) && [ -z "$port" ] && {
      log "port $p is taken, trying another"
      continue
    }
    start_failed "$dir" "sshd does not listen on 127.0.0.1:$p"
  done
  ((rc == 0)) || start_failed "$dir" "no free port after $tries tries"
  # sshd writes its pidfile once it listens; until then (or if it cannot) we know the pid we launched.
  wait_until 2 test -s "$dir/sshd.pid" || mv "$dir/sshd.pid.launched" "$dir/sshd.pid"
  rm -f "$dir/sshd.pid.launched"

  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
  # The whole path once: TCP, host key, client key, ForceCommand, the shell.
  sandbox_ssh "$dir" "$port" "$user" true || start_failed "$dir" "ssh to 127.0.0.1:$port fails"

  cat <<EOF
DIR=$dir
HOST=127.0.0.1
PORT=$port
USER=$user
IDENTITY_FILE=$dir/client_ed25519
PASSPHRASE_IDENTITY_FILE=$dir/client_ed25519_pass
PASSPHRASE_FILE=$dir/client_ed25519_pass.passphrase
KNOWN_HOSTS=$dir/known_hosts
HOST_KEY=$dir/ssh_host_ed25519_key.pub
STATE=$dir/state.json
ESXCLI_LOG=$dir/esxcli.log
ESXCLI_FAULTS=$dir/faults.json
SSHD_LOG=$dir/sshd.log
SSHD_PID=$(cat "$dir/sshd.pid")
EOF
}

case "${1:-}" in
  start) (($# == 2 || $# == 3)) || usage; cmd_start "$2" "${3:-}" ;;
  stop) (($# == 2)) || usage; cmd_stop "$2" ;;
  check) (($# == 1)) || usage; cmd_check ;;
  *) usage ;;
esac
