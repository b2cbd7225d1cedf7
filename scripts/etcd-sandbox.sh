#!/usr/bin/env bash
# A throwaway single-member etcd for tests: Debian's etcd-server (3.4), its data dir, pidfile, port file and log all
# in one directory, client and peer URLs on 127.0.0.1 only. Never the system's etcd service.
#
#   etcd-sandbox.sh start DIR [CLIENT_PORT]   fresh (empty) etcd with its data in DIR/data, client URL on
#       127.0.0.1:CLIENT_PORT (a free port if omitted or 0), peer URL on another free port. Waits until /health
#       says true, then prints KEY=VALUE lines on stdout:
#         ENDPOINT=http://127.0.0.1:PORT   GATEWAY=$ENDPOINT/v3 (the JSON gateway's prefix)
#         PEER_URL=...  VERSION=3.4.23  PID=N  LOG=DIR/etcd.log  START_SECONDS=S
#   etcd-sandbox.sh restart DIR   stops the member and starts it again on the same ports with the same data (the
#       ENDPOINT stays valid); prints the same lines.
#   etcd-sandbox.sh stop DIR      stops the member; no error if it is not running.
#   etcd-sandbox.sh check         exit 0 if etcd and etcdctl are installed, else say what is missing.
#
# With ETCD_SANDBOX_TLS=TLSDIR at start, the client URL is https and mutual TLS is required: TLSDIR holds ca.pem
# (the CA that signed both), server.pem + server-key.pem (for 127.0.0.1) and client.pem + client-key.pem (used by
# the health check). A restart keeps the TLS setting. ENDPOINT is then https://127.0.0.1:PORT.
#
# The JSON gateway of etcd 3.4 (verified by hand with curl against 3.4.23):
# - Served under /v3/ and /v3beta/ (the same handlers); /v3alpha/ is gone (404). Every call is a POST with a JSON
#   body (GET answers 405); keys and values are base64; int64 fields (revisions, lease IDs, TTLs, counts) come back
#   as JSON strings and are accepted as strings or numbers.
# - Fields at their zero value are left out of replies: a range that finds nothing has neither "kvs" nor "count";
#   a failed txn has no "succeeded" (not false) and, with an empty failure branch, no "responses".
# - Errors: HTTP 400/404/... with {"error": "...", "message": "...", "code": <gRPC code>}, e.g. 404 code 5
#   "etcdserver: requested lease not found" (put with, or revoke of, an unknown lease); 400 code 3 for bad JSON,
#   bad base64 or a missing key; 400 code 11 for a compacted or future revision. Unknown path: 404 text/plain.
# - /v3/lease/keepalive is a one-shot POST whose reply is wrapped: {"result": {"ID", "TTL", ...}}. For a lease
#   that has expired it still answers 200, with no "TTL" in "result": a client must treat a missing or 0 TTL as
#   "lease gone". /v3/lease/timetolive (also at /v3/kv/lease/timetolive) answers TTL "-1" for an expired lease.
# - The smallest lease TTL is 2 s with the default election timeout (1 s): a grant of 0 or 1 gets TTL 2.
#   Expired leases are reaped every 500 ms, so a key bound to a lease of TTL T is gone within ~T+0.5 s.
# - After a restart every lease gets its full TTL again (etcd renews leases when a leader takes over): a lock
#   held by a lease outlives a restart of etcd by up to one TTL.
# - Prometheus metrics are on $ENDPOINT/metrics.
# Runs as any user (no root needed). Everything but the KEY=VALUE lines goes to stderr.
set -euo pipefail

START_TIMEOUT=${ETCD_SANDBOX_START_TIMEOUT:-30}
STOP_TIMEOUT=10
NAME=sandbox

usage() {
  echo "usage: $0 start DIR [CLIENT_PORT] | restart DIR | stop DIR | check" >&2
  exit 2
}

log() { echo "etcd-sandbox: $*" >&2; }

now_us() { echo $((${EPOCHREALTIME/./})); }

running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The pid in DIR/etcd.pid if that process runs and is the etcd of DIR.
live_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/etcd.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = etcd ] || return 1
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-dir $dir/data " || return 1
  echo "$pid"
}

cmd_check() {
  local missing=() b
  for b in etcd etcdctl; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]} (install scripts/packages/fleet.list: scripts/setup.sh)"
    return 1
  fi
}

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local pid
  if pid=$(live_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while running "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    if running "$pid"; then
      log "etcd ($pid) did not exit in ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while running "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
      ! running "$pid" || { log "cannot stop etcd ($pid)"; return 1; }
    fi
  fi
  rm -f "$dir/etcd.pid"
}

# A TCP port nobody listens on (chosen at random: two sandboxes starting at once rarely pick the same one, and
# start retries if etcd finds it taken after all).
free_port() {
  local used port
  used=$(ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  while :; do
    port=$((20000 + RANDOM % 30000))
    grep -qx "$port" <<<"$used" || { echo "$port"; return; }
  done
}

# True if process PID listens on 127.0.0.1:PORT.
listens_on() {
  ss -Hltnp "sport = :$2" 2>/dev/null | grep -qF "pid=$1,"
}

healthy() {
  local port=$1 body tls
  tls=$(cat "$2/tls" 2>/dev/null || true)
  if [ -n "$tls" ]; then
    body=$(curl -s --max-time 5 --cacert "$tls/ca.pem" --cert "$tls/client.pem" --key "$tls/client-key.pem" \
      "https://127.0.0.1:$port/health" 2>/dev/null) || return 1
    [[ $body == *'"health":"true"'* ]]
    return
  fi
  body=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 5 cat <&3
  ) || return 1
  [[ $body == *'"health":"true"'* ]]
}

# Starts etcd on the ports in DIR/ports; returns 3 if a port was taken (the caller may pick others), 1 on another
# failure.
launch() {
  local dir=$1 client peer
  read -r client peer <"$dir/ports"
  local curl="http://127.0.0.1:$client" purl="http://127.0.0.1:$peer" tls tlsflags=()
  tls=$(cat "$dir/tls" 2>/dev/null || true)
  if [ -n "$tls" ]; then
    curl="https://127.0.0.1:$client"
    tlsflags=(--cert-file "$tls/server.pem" --key-file "$tls/server-key.pem" --trusted-ca-file "$tls/ca.pem"
      --client-cert-auth)
  fi
  # --initial-cluster-state new only matters for an empty data dir; a restart rejoins from DIR/data.
  setsid etcd --name "$NAME" --data-dir "$dir/data" \
    --listen-client-urls "$curl" --advertise-client-urls "$curl" \
    --listen-peer-urls "$purl" --initial-advertise-peer-urls "$purl" \
    --initial-cluster "$NAME=$purl" --initial-cluster-state new --initial-cluster-token "vnetplan-$client" \
    "${tlsflags[@]}" --logger zap --log-outputs "$dir/etcd.log" </dev/null >>"$dir/etcd.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/etcd.pid"
  local deadline=$((SECONDS + START_TIMEOUT))
  # Our own process must hold the client port: with a fixed port another etcd may answer there.
  until listens_on "$pid" "$client" && healthy "$client" "$dir"; do
    if ! running "$pid"; then
      grep -q "address already in use" "$dir/etcd.log" "$dir/etcd.out" 2>/dev/null && return 3
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "etcd on 127.0.0.1:$client not healthy within ${START_TIMEOUT}s"
      return 1
    fi
    sleep 0.05
  done
}

dump_log() {
  local dir=$1 f
  for f in "$dir/etcd.log" "$dir/etcd.out"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 30 "$f" >&2
  done
}

report() {
  local dir=$1 t0=$2 client peer scheme=http
  read -r client peer <"$dir/ports"
  [ -s "$dir/tls" ] && scheme=https
  echo "ENDPOINT=$scheme://127.0.0.1:$client"
  echo "GATEWAY=$scheme://127.0.0.1:$client/v3"
  echo "PEER_URL=http://127.0.0.1:$peer"
  echo "VERSION=$(etcd --version 2>/dev/null | awk '/^etcd Version:/ { print $3 }')"
  echo "PID=$(cat "$dir/etcd.pid")"
  echo "LOG=$dir/etcd.log"
  local us=$(($(now_us) - t0))
  printf 'START_SECONDS=%d.%02d\n' $((us / 1000000)) $((us % 1000000 / 10000))
}

cmd_start() {
  local dir=$1 port=$2 t0
  t0=$(now_us)
  cmd_check || exit 1
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port > 65535)); then log "bad port: $port"; exit 2; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if live_pid "$dir" >/dev/null; then
    log "a sandbox is already running in $dir (run: $0 stop $dir)"
    exit 1
  fi
  rm -f "$dir/tls"
  if [ -n "${ETCD_SANDBOX_TLS:-}" ]; then
    local f
    for f in ca.pem server.pem server-key.pem client.pem client-key.pem; do
      [ -r "$ETCD_SANDBOX_TLS/$f" ] || { log "ETCD_SANDBOX_TLS: $ETCD_SANDBOX_TLS/$f is missing"; exit 2; }
    done
    command -v curl >/dev/null || { log "ETCD_SANDBOX_TLS needs curl (the health check)"; exit 1; }
    (cd "$ETCD_SANDBOX_TLS" && pwd) >"$dir/tls"
  fi
  local rc
  for _ in 1 2 3; do
    rm -rf "$dir/data"
    rm -f "$dir/etcd.log" "$dir/etcd.out" "$dir/etcd.pid"
    local client=$port peer
    ((client != 0)) || client=$(free_port)
    peer=$(free_port)
    while ((peer == client)); do peer=$(free_port); done
    echo "$client $peer" >"$dir/ports"
    rc=0
    launch "$dir" || rc=$?
    ((rc == 0)) && { report "$dir" "$t0"; return; }
    cmd_stop "$dir" || true
    # A port given by the caller is not ours to change.
    ((rc == 3 && port == 0)) || break
    log "port taken, trying others"
  done
  log "start failed"
  dump_log "$dir"
  exit 1
}

cmd_restart() {
  local dir=$1 t0
  t0=$(now_us)
  cmd_check || exit 1
  if [ ! -s "$dir/ports" ] || [ ! -d "$dir/data" ]; then log "no sandbox in $dir (run: $0 start $dir)"; exit 1; fi
  dir=$(cd "$dir" && pwd)
  cmd_stop "$dir"
  if ! launch "$dir"; then
    log "restart failed"
    dump_log "$dir"
    cmd_stop "$dir" || true
    exit 1
  fi
  report "$dir" "$t0"
}

case "${1:-}" in
  start) (($# == 2 || $# == 3)) || usage; cmd_start "$2" "${3:-0}" ;;
  restart) (($# == 2)) || usage; cmd_restart "$2" ;;
  stop) (($# == 2)) || usage; cmd_stop "$2" ;;
  check) (($# == 1)) || usage; cmd_check ;;
  *) usage ;;
esac
