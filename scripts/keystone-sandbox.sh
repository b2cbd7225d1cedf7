#!/usr/bin/env bash
# A throwaway OpenStack Keystone (identity v3) for tests: Debian's python3-keystone (Zed / 22.0.2), its sqlite
# database, fernet and credential keys, configuration, pidfile and logs all in one directory, served on 127.0.0.1
# by the package's own WSGI entry (/usr/bin/keystone-wsgi-public, Python's wsgiref). No apache, no uwsgi, no system
# service, no /etc/keystone.
#
#   keystone-sandbox.sh start KDIR [PORT]   fresh Keystone on 127.0.0.1:PORT (a free port if omitted or 0):
#       schema (keystone-manage db_sync, made once per keystone version and cached like neutron-sandbox.sh's),
#       keystone-manage bootstrap (admin user/project/roles, region RegionOne), then through the API: the
#       identity endpoint, a "service" role, project "service" with user "neutron" (role service, for
#       keystonemiddleware), project "vnetplan" with user "vnetplan" (roles member and admin) and an application
#       credential "vnetplan-test" of that user. Prints KEY=VALUE lines on stdout:
#         URL=http://127.0.0.1:PORT  AUTH_URL=$URL/v3  CLOUDS_YAML=KDIR/clouds.yaml
#         CLOUD_PASSWORD=vnetplan-password  CLOUD_APPCRED=vnetplan-appcred  CLOUD_ADMIN=admin   (clouds.yaml names)
#         PROJECT_ID  PROJECT_NAME  USER_ID  USER_NAME  APPCRED_ID  PID  LOG  START_SECONDS
#       Secrets (passwords, the application credential's secret) are only in KDIR/clouds.yaml and
#       KDIR/neutron-authtoken.conf (mode 600; the latter is the [keystone_authtoken] section for
#       `neutron-sandbox.sh start DIR --keystone KDIR`), never on stdout, stderr or a command line.
#   keystone-sandbox.sh register KDIR TYPE NAME URL   points catalog service TYPE (created as NAME if missing) at
#       URL for the public, internal and admin interfaces (neutron-sandbox.sh does this for "network").
#   keystone-sandbox.sh stop KDIR    stops the server; no error if none runs.
#   keystone-sandbox.sh check        exit 0 if Keystone can run here, else say what is missing.
#
# Tokens are fernet tokens, living KEYSTONE_SANDBOX_TOKEN_EXPIRATION seconds (default 3600); the
# neutron-authtoken.conf it writes turns keystonemiddleware's cache of validations off, so a revoked or expired
# token is refused at once. bcrypt runs with 4 rounds (password_hash_rounds) so that a password login costs
# milliseconds, not a quarter second. wsgiref serves one request at a time and closes every connection
# (HTTP/1.0 semantics): enough for tests.
# Runs as any user (no root needed). Everything but the KEY=VALUE lines goes to stderr.
set -euo pipefail

PY=/usr/bin/python3  # Debian's interpreter: the one python3-keystone is installed for
START_TIMEOUT=${KEYSTONE_SANDBOX_START_TIMEOUT:-60}
STOP_TIMEOUT=10
SCHEMA_RECIPE=1
TOKEN_EXPIRATION=${KEYSTONE_SANDBOX_TOKEN_EXPIRATION:-3600}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 start KDIR [PORT] | register KDIR TYPE NAME URL | stop KDIR | check" >&2
  exit 2
}

log() { echo "keystone-sandbox: $*" >&2; }

now_us() { echo $((${EPOCHREALTIME/./})); }

running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

group_members() {
  local pgid=$1 f stat fields
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    [ "${fields[2]}" = "$pgid" ] && [ "${fields[0]}" != Z ] && echo "${f//[^0-9]/}"
  done
  return 0
}

# The pid in KDIR/keystone.pid if that process runs and is the keystone of KDIR.
live_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/keystone.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "OS_KEYSTONE_CONFIG_DIR=$dir" || return 1
  echo "$pid"
}

cmd_check() {
  local missing=() f
  for f in "$PY" /usr/bin/keystone-manage /usr/bin/keystone-wsgi-public; do [ -x "$f" ] || missing+=("$f"); done
  command -v ss >/dev/null 2>&1 || missing+=("ss (iproute2)")
  if ((${#missing[@]})); then
    log "missing: ${missing[*]} (install scripts/packages/vpc.list: scripts/setup.sh)"
    return 1
  fi
}

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local pid
  if pid=$(live_pid "$dir"); then
    kill -TERM -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while [ -n "$(group_members "$pid")" ] && ((SECONDS < deadline)); do sleep 0.1; done
    if [ -n "$(group_members "$pid")" ]; then
      log "keystone ($pid) did not exit in ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while [ -n "$(group_members "$pid")" ] && ((SECONDS < deadline)); do sleep 0.1; done
      [ -z "$(group_members "$pid")" ] || { log "cannot stop keystone ($pid)"; return 1; }
    fi
  fi
  rm -f "$dir/keystone.pid"
}

dump_log() {
  local dir=$1 f
  for f in "$dir/keystone.log" "$dir/keystone.out" "$dir/keystone-manage.log"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 40 "$f" >&2
  done
}

start_failed() {
  local dir=$1
  shift
  log "start failed: $*"
  dump_log "$dir"
  cmd_stop "$dir" || true
  exit 1
}

# keystone-manage, quiet: at exit it prints an "Exception ignored ... getcurrent" traceback (eventlet vs. logging
# shutdown) that means nothing; its own log goes to the log_file of the config.
keystone_manage() {
  local dir=$1
  shift
  keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/keystone-manage.log" 2>&1
}

# The database after db_sync for this keystone, from the cache or made now. Prints its path.
schema_file() {
  local dir=$1
  local cache=${KEYSTONE_SANDBOX_CACHE:-}
  if [ -z "$cache" ]; then
    if [ -n "${XDG_CACHE_HOME:-}" ]; then cache=$XDG_CACHE_HOME/vnetplan/peers
    elif [ -n "${HOME:-}" ]; then cache=$HOME/.cache/vnetplan/peers
    else cache=$dir
    fi
  fi
  # No writable cache (a read-only home): the schema is made in DIR, for this start only.
  mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$dir
  local key
  key=$({
    echo "recipe $SCHEMA_RECIPE"
    cat /var/lib/dpkg/info/python3-keystone.md5sums 2>/dev/null || keystone-manage --version 2>/dev/null
  } | sha256sum | cut -c1-16)
  local file="$cache/keystone-schema-$key.sqlite"
  if [ ! -s "$file" ]; then
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp "$cache/.keystone-schema-XXXXXX")
    log "creating the Keystone schema (keystone-manage db_sync, once per keystone version) in $file"
    # db_sync against a config whose only difference is the database file.
    sed "s|^connection = .*|connection = sqlite:///$tmp|" "$dir/keystone.conf" >"$dir/keystone-dbsync.conf"
    if ! keystone-manage --config-file "$dir/keystone-dbsync.conf" db_sync >>"$dir/keystone-manage.log" 2>&1; then
      rm -f "$tmp" "$dir/keystone-dbsync.conf"
      return 1
    fi
    rm -f "$dir/keystone-dbsync.conf"
    chmod 644 "$tmp"
    mv -f "$tmp" "$file"
  fi
  echo "$file"
}

# A fernet key repository with a staged (0) and a primary (1) key, as `keystone-manage fernet_setup` makes it
# (a key is 32 random bytes, urlsafe base64), without paying a Python start for each of the three repositories.
make_key_repository() {
  local repo=$1 i
  mkdir -p "$repo"
  chmod 700 "$repo"
  for i in 0 1; do
    (umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$repo/$i")
  done
}

write_config() {
  local dir=$1
  cat >"$dir/keystone.conf" <<EOF
# Written by scripts/keystone-sandbox.sh: a private Keystone for tests.
[DEFAULT]
log_file = $dir/keystone.log
use_stderr = false
debug = false

[database]
connection = sqlite:///$dir/keystone.sqlite

[token]
provider = fernet
# Seconds a token lives (KEYSTONE_SANDBOX_TOKEN_EXPIRATION; tests of token renewal use a short one).
expiration = $TOKEN_EXPIRATION

[fernet_tokens]
key_repository = $dir/fernet-keys

[fernet_receipts]
key_repository = $dir/fernet-receipts

[credential]
key_repository = $dir/credential-keys

[identity]
password_hash_rounds = 4
# bcrypt's own limit: with the default (4096) every hash logs "Truncating password to ... 72 characters".
max_password_length = 72

# Keystone's in-process cache. Without it every authenticated request runs ~400 SQL statements (each role
# lookup of the token model is repeated) and takes ~0.4 s here; with it ~10 ms. One process, so invalidation is
# exact.
[cache]
enabled = true
backend = dogpile.cache.memory

[oslo_concurrency]
lock_path = $dir/lock
EOF
}

listening_port() {
  ss -Hltnp 2>/dev/null | awk -v pat="pid=$1," 'index($0, pat) { n = split($4, a, ":"); print a[n]; exit }'
}

# True once the API answers /v3 (plain bash: no curl, no interpreter start per try). In a subshell: a
# failed `exec` redirection ends a non-interactive shell, and the port may refuse while the server sets up.
api_answers() {
  local port=$1 status
  status=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET /v3 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 5 line <&3 && echo "$line"
  ) || return 1
  [[ $status =~ ^HTTP/1\.[01]\ 200 ]]
}

cmd_start() {
  local dir=$1 port=$2
  local t0
  t0=$(now_us)
  cmd_check || exit 1
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port > 65535)); then log "bad port: $port"; exit 2; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if live_pid "$dir" >/dev/null; then
    log "a sandbox is already running in $dir (run: $0 stop $dir)"
    exit 1
  fi
  rm -rf "$dir/fernet-keys" "$dir/fernet-receipts" "$dir/credential-keys"
  rm -f "$dir"/keystone.{sqlite,log,out,pid} "$dir/keystone-manage.log" "$dir/clouds.yaml" \
    "$dir/neutron-authtoken.conf" "$dir/admin-password" "$dir/url"
  mkdir -p "$dir/lock"
  write_config "$dir"
  make_key_repository "$dir/fernet-keys"
  make_key_repository "$dir/fernet-receipts"
  make_key_repository "$dir/credential-keys"
  local schema
  schema=$(schema_file "$dir") || start_failed "$dir" "keystone-manage db_sync failed"
  cp "$schema" "$dir/keystone.sqlite"
  # WAL journal: a writer may commit while another connection has a read transaction open. Keystone's server
  # keeps one open somewhere between requests, and in the default rollback journal the second catalog write
  # after a login then fails with "database is locked" (HTTP 500) after sqlite's 5 s busy wait.
  "$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchall()' \
    "$dir/keystone.sqlite"
  (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$dir/admin-password")

  # The server and keystone-manage bootstrap each spend seconds importing keystone: run them side by side. The
  # server touches the database only when a request comes, and none comes before bootstrap is done.
  OS_KEYSTONE_CONFIG_DIR=$dir setsid "$PY" /usr/bin/keystone-wsgi-public --host 127.0.0.1 --port "$port" \
    </dev/null >"$dir/keystone.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/keystone.pid"
  # The password goes through the environment (OS_BOOTSTRAP_PASSWORD), not the command line that ps shows.
  OS_BOOTSTRAP_PASSWORD=$(cat "$dir/admin-password") keystone_manage "$dir" bootstrap \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-region-id RegionOne || start_failed "$dir" "keystone-manage bootstrap failed"

  local deadline=$((SECONDS + START_TIMEOUT)) listening
  # Wait for our process's own listening socket first: with a fixed PORT another server may answer there.
  until listening=$(listening_port "$pid") && [ -n "$listening" ]; do
    running "$pid" || start_failed "$dir" "keystone exited"
    ((SECONDS < deadline)) || start_failed "$dir" "keystone did not listen within ${START_TIMEOUT}s"
    sleep 0.1
  done
  ((port == 0 || port == listening)) || start_failed "$dir" "keystone listens on $listening, not $port"
  port=$listening
  until api_answers "$port"; do
    running "$pid" || start_failed "$dir" "keystone exited"
    ((SECONDS < deadline)) || start_failed "$dir" "keystone on 127.0.0.1:$port did not answer within ${START_TIMEOUT}s"
    sleep 0.1
  done
  local url="http://127.0.0.1:$port"
  echo "$url" >"$dir/url"
  local ids
  ids=$("$PY" "$SCRIPT_DIR/keystone-sandbox.py" setup "$dir" "$url") || start_failed "$dir" "setting up users failed"
  echo "URL=$url"
  echo "AUTH_URL=$url/v3"
  echo "CLOUDS_YAML=$dir/clouds.yaml"
  echo "CLOUD_PASSWORD=vnetplan-password"
  echo "CLOUD_APPCRED=vnetplan-appcred"
  echo "CLOUD_ADMIN=admin"
  echo "$ids"
  echo "PID=$pid"
  echo "LOG=$dir/keystone.log"
  local us=$(($(now_us) - t0))
  printf 'START_SECONDS=%d.%02d\n' $((us / 1000000)) $((us % 1000000 / 10000))
}

cmd_register() {
  local dir=$1
  dir=$(cd "$dir" && pwd)
  live_pid "$dir" >/dev/null || { log "no keystone runs in $dir"; exit 1; }
  "$PY" "$SCRIPT_DIR/keystone-sandbox.py" register "$dir" "$2" "$3" "$4"
}

case "${1:-}" in
  start) (($# == 2 || $# == 3)) || usage; cmd_start "$2" "${3:-0}" ;;
  register) (($# == 5)) || usage; cmd_register "$2" "$3" "$4" "$5" ;;
  stop) (($# == 2)) || usage; cmd_stop "$2" ;;
  check) (($# == 1)) || usage; cmd_check ;;
  *) usage ;;
esac
