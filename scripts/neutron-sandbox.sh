#!/usr/bin/env bash
# A throwaway OpenStack Neutron API server for tests: Debian's neutron-server (python3-neutron, Zed / 21.0.0) with
# its configuration, sqlite database, lock dir, pidfile and logs all in one directory, listening on 127.0.0.1 only.
# No message bus, no agents, no system service: the process is ours and dies with `stop`.
#
#   neutron-sandbox.sh start DIR [PORT] [--keystone KDIR]
#       fresh DIR/neutron.sqlite, neutron-server on 127.0.0.1:PORT (a free port if PORT is omitted or 0); waits
#       until the API answers, then prints KEY=VALUE lines on stdout (see "What start prints" below).
#       With --keystone KDIR (a running scripts/keystone-sandbox.sh in KDIR) the API takes Keystone tokens
#       (keystonemiddleware, auth_strategy = keystone) and its URL is registered in that Keystone's catalog as the
#       "network" service; otherwise auth_strategy = noauth.
#   neutron-sandbox.sh stop DIR    stops the server and every process it forked; no error if none runs.
#   neutron-sandbox.sh check       exit 0 if neutron-server can run here, else say what is missing.
#
# What start prints (KEY=VALUE, one a line, nothing else on stdout):
#   URL=http://127.0.0.1:PORT      the endpoint; the API is under $URL/v2.0
#   AUTH=noauth|keystone
#   PHYSNET=physnet1               the VLAN physical network; VLAN_RANGE=1:4094 are its tenant-allocatable ids,
#                                  a provider segment (provider:network_type=vlan, provider:segmentation_id) may
#                                  use any id 1..4094 on it
#   FLAT_PHYSNET=extnet            a physical network for flat networks (e.g. router:external ones); any name works
#   TENANT_NETWORK_TYPE=vxlan      what a network without provider attributes gets (VNIs 1:1000)
#   PID=N  LOG=DIR/neutron-server.log  START_SECONDS=S (wall time of this start)
#
# The facts a test must know about this server:
# - noauth: every request runs with an admin context and no project. A POST must carry "tenant_id" (or
#   "project_id") in its body, else 400 "Running without keystone AuthN requires that tenant_id is specified".
#   X-Project-Id / X-Roles headers are ignored. Lists return every project's objects: filter with ?project_id=.
# - Quotas are unlimited by default (a test can set one with PUT /v2.0/quotas/PROJECT).
# - There is no mechanism driver, so ports stay DOWN and nothing is wired anywhere: this is an API peer only.
# - Semantics checked by tests/integration/neutron_peer_test.cpp: a stale "If-Match: revision_number=N" is 412
#   RevisionNumberConstraintFailed, and a tag change bumps revision_number too; PUT .../tags/TAG answers 201 with
#   an empty body; a VLAN segment already in use is 409; add_extraroutes of a route that exists is a no-op 200, a
#   nexthop outside the router's subnets 400. Deletion: an interface an extra route goes through is 409
#   RouterInterfaceInUseByRoute, a router with interfaces 409 RouterInUse; a router whose gateway is still set
#   can be deleted (the gateway port goes with it), so "extra routes, interfaces, gateway, router" works and the
#   gateway step is optional. A new security group comes with two egress rules (IPv4, IPv6); deleting a group
#   that other groups' rules name as remote_group_id succeeds and deletes those rules.
# - Replies of the router API are serialized differently (", " and ": " with spaces) from the others.
#
# Extensions on (GET /v2.0/extensions with this configuration, python3-neutron 2:21.0.0-7+deb12u1):
#   address-group address-scope agent agent-resources-synced allowed-address-pairs auto-allocated-topology
#   availability_zone availability_zone_filter binding binding-extended default-subnetpools dhcp_agent_scheduler
#   dvr empty-string-filtering ext-gw-mode external-net extra_dhcp_opt extraroute extraroute-atomic
#   filter-validation fip-port-details flavors floating-ip-port-forwarding-detail floatingip-pools
#   ip-substring-filtering l3-flavors l3-ha l3-port-ip-change-not-allowed l3_agent_scheduler multi-provider
#   net-mtu net-mtu-writable network-ip-availability network_availability_zone pagination port-device-profile
#   port-mac-address-regenerate port-mac-override port-numa-affinity-policy port-security
#   port-security-groups-filtering project-id provider quota-check-limit quota_details quotas
#   rbac-address-group rbac-address-scope rbac-policies rbac-security-groups rbac-subnetpool revision-if-match
#   router router-admin-state-down-before-update router_availability_zone security-group
#   security-groups-normalized-cidr security-groups-remote-address-group security-groups-shared-filtering
#   service-type sorting standard-attr-description standard-attr-revisions standard-attr-tag
#   standard-attr-timestamp stateful-security-group subnet-service-types subnet_allocation subnet_onboard
#   subnetpool-prefix-ops
# (tag, revisions, timestamp, flavors, auto_allocate and network_ip_availability are service plugins Neutron
# loads by default; "router" is the only one configured here.)
#
# What does not work / is not there:
# - FWaaS (network ACLs): Debian 12 does not package neutron-fwaas (no python3-neutron-fwaas), so there is no
#   fwaas_v2 extension.
# - Neutron's alembic migrations do not run on sqlite; the schema is created from the models instead
#   (neutron.db.migration.models.head metadata create_all), as Neutron's own unit tests do.
# - PUT on a security-group rule: a read-only attribute answers 400, but even "description" (documented as
#   updatable) answers 500 (Ml2Plugin has no update_security_group_rule): rules are delete + create.
#
# Startup cost is mostly Python importing neutron (~3 s on a 2-core machine). Creating the schema costs another
# import, so the empty database is built once per neutron version and kept in a cache (NEUTRON_SANDBOX_CACHE,
# default ${XDG_CACHE_HOME:-~/.cache}/vnetplan/peers, beside vnetplan's own cache) keyed by the dpkg checksums of
# python3-neutron and python3-neutron-lib: `start` then only copies that file. Measured (load 2-6): start 2.6-6 s
# with the cached schema, 4.9-9.7 s when it is built; stop 1.4-2.4 s; a network create ~0.16 s (median), the first
# request of each kind up to 0.5-2 s (Python warming up).
#
# Runs as any user (no root needed). Everything but the KEY=VALUE lines goes to stderr.
set -euo pipefail

PY=/usr/bin/python3  # Debian's interpreter: the one python3-neutron is installed for (a pyenv python3 may shadow it)
START_TIMEOUT=${NEUTRON_SANDBOX_START_TIMEOUT:-60}  # seconds the API gets to answer
STOP_TIMEOUT=10                                       # seconds the server gets to exit before SIGKILL
SCHEMA_RECIPE=1  # bump when the way the schema file is made changes
PHYSNET=physnet1
VLAN_RANGE=1:4094
FLAT_PHYSNET=extnet
VNI_RANGE=1:1000
API_WORKERS=${NEUTRON_SANDBOX_API_WORKERS:-2}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 start DIR [PORT] [--keystone KDIR] | stop DIR | check" >&2
  exit 2
}

log() { echo "neutron-sandbox: $*" >&2; }

# Microseconds since the epoch (bash 5's EPOCHREALTIME: no date/bc process per call).
now_us() { echo $((${EPOCHREALTIME/./})); }

# True if process PID runs: exists and is not a zombie.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The pids of every live process in process group PGID.
group_members() {
  local pgid=$1 f stat fields
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    stat=${stat##*) }  # state ppid pgrp ...
    read -r -a fields <<<"$stat"
    [ "${fields[2]}" = "$pgid" ] && [ "${fields[0]}" != Z ] && echo "${f//[^0-9]/}"
  done
  return 0
}

# The pid in DIR/neutron-server.pid if that process runs and is the server of DIR (a stale pidfile's pid may have
# been reused by another process).
live_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/neutron-server.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/neutron.conf" || return 1
  echo "$pid"
}

cmd_check() {
  local missing=()
  [ -x "$PY" ] || missing+=("$PY")
  # find_spec locates the package without importing it (importing neutron takes seconds).
  if [ -x "$PY" ] && ! "$PY" -c 'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ("neutron", "neutron_lib", "keystonemiddleware")))' 2>/dev/null; then
    missing+=(python3-neutron)
  fi
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
    # The server was started with setsid: its pid is its process group, which holds the API process and the
    # worker processes it forked. SIGTERM lets oslo.service stop the workers; SIGKILL whatever is left.
    kill -TERM -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while [ -n "$(group_members "$pid")" ] && ((SECONDS < deadline)); do sleep 0.1; done
    if [ -n "$(group_members "$pid")" ]; then
      log "neutron-server ($pid) did not exit in ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while [ -n "$(group_members "$pid")" ] && ((SECONDS < deadline)); do sleep 0.1; done
      if [ -n "$(group_members "$pid")" ]; then
        log "cannot stop neutron-server ($pid): $(group_members "$pid" | tr '\n' ' ')"
        return 1
      fi
    fi
  fi
  rm -f "$dir/neutron-server.pid"
}

dump_log() {
  local dir=$1 f
  for f in "$dir/neutron-server.log" "$dir/neutron-server.out"; do
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

# The empty database for this neutron, from the cache or made now (and then cached). Prints its path.
schema_file() {
  local dir=$1
  local cache=${NEUTRON_SANDBOX_CACHE:-}
  if [ -z "$cache" ]; then
    if [ -n "${XDG_CACHE_HOME:-}" ]; then cache=$XDG_CACHE_HOME/vnetplan/peers
    elif [ -n "${HOME:-}" ]; then cache=$HOME/.cache/vnetplan/peers
    else cache=$dir
    fi
  fi
  # No writable cache (a read-only home): the schema is made in DIR, for this start only.
  mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$dir
  local key
  # dpkg's checksum lists change with every file of the packages, so a new neutron (or a patched model) gets a
  # new schema. Without dpkg metadata (neutron not from a .deb) the installed version string is the key.
  key=$({
    echo "recipe $SCHEMA_RECIPE"
    cat /var/lib/dpkg/info/python3-neutron.md5sums /var/lib/dpkg/info/python3-neutron-lib.md5sums 2>/dev/null ||
      "$PY" -c 'import neutron.version as v; print(v.version_info.release_string())'
  } | sha256sum | cut -c1-16)
  local file="$cache/neutron-schema-$key.sqlite"
  if [ ! -s "$file" ]; then
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp "$cache/.neutron-schema-XXXXXX")
    log "creating the Neutron schema from its models (once per neutron version) in $file"
    if ! "$PY" - "$tmp" >&2 <<'EOF'; then
import sys
import sqlalchemy as sa
from neutron.db.migration.models import head
engine = sa.create_engine("sqlite:///" + sys.argv[1])
head.get_metadata().create_all(engine)
engine.dispose()
EOF
      rm -f "$tmp"
      return 1
    fi
    chmod 644 "$tmp"
    mv -f "$tmp" "$file"  # atomic: a concurrent start sees the whole file or none
  fi
  echo "$file"
}

write_config() {
  local dir=$1 port=$2 auth=$3
  cat >"$dir/neutron.conf" <<EOF
# Written by scripts/neutron-sandbox.sh: a private neutron-server for tests.
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = $auth
# oslo.messaging's in-process fake driver: no message bus, the RPC side talks to nobody.
transport_url = fake:/
bind_host = 127.0.0.1
bind_port = $port
# API processes (0: the API in the main process); oslo.service also forks one RPC/services worker. All of them
# are stopped with the group.
api_workers = $API_WORKERS
rpc_workers = 0
rpc_state_report_workers = 0
api_paste_config = $dir/api-paste.ini
state_path = $dir
log_file = $dir/neutron-server.log
use_stderr = false
debug = false
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
allow_overlapping_ips = true

[database]
connection = sqlite:///$dir/neutron.sqlite

[oslo_concurrency]
lock_path = $dir/lock

[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security

[ml2_type_flat]
flat_networks = *

[ml2_type_vlan]
network_vlan_ranges = $PHYSNET:$VLAN_RANGE

[ml2_type_vxlan]
vni_ranges = $VNI_RANGE

[quotas]
default_quota = -1
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1
EOF
  # sqlite under eventlet: green threads of one process interleave inside database transactions (oslo.db yields
  # on purpose), and a second writer's busy-wait then blocks the whole process, holder included, until sqlite's
  # timeout; between processes, a transaction that reads and then writes fails at once with "database is locked"
  # when another process writes (sqlite does not wait where waiting could deadlock). Either way: 500s on
  # concurrent requests, some after the object was committed. So each API process serves one request at a time
  # (a green semaphore) and writes take a file lock shared by the API processes (API_WORKERS); reads of one
  # process still run beside another's write.
  cat >"$dir/vnetplan_sandbox_serialize.py" <<'EOF'
import fcntl
import os

import eventlet.semaphore

_one = eventlet.semaphore.Semaphore(1)
_lock_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lock", "api-writes.lock")


def filter_factory(global_conf, **local_conf):
    def serialize(app):
        def call(environ, start_response):
            with _one:
                fd = None
                if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
                    fd = os.open(_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    body = app(environ, start_response)
                    try:
                        return [b"".join(body)]
                    finally:
                        close = getattr(body, "close", None)
                        if close:
                            close()
                finally:
                    if fd is not None:
                        os.close(fd)
        return call
    return serialize
EOF
  # Neutron's pipeline minus CORS and osprofiler (no browser, no tracing); pipeline_factory picks the line named
  # by auth_strategy.
  cat >"$dir/api-paste.ini" <<'EOF'
[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions
/v2.0: neutronapi_v2_0

[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
noauth = request_id catch_errors serialize extensions neutronapiapp_v2_0
keystone = request_id catch_errors serialize authtoken keystonecontext extensions neutronapiapp_v2_0

[filter:serialize]
paste.filter_factory = vnetplan_sandbox_serialize:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory

[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory

[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory

[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
EOF
}

# The TCP port process PID listens on (on 127.0.0.1), if any.
listening_port() {
  ss -Hltnp 2>/dev/null | awk -v pat="pid=$1," 'index($0, pat) { n = split($4, a, ":"); print a[n]; exit }'
}

# True once the API answers /v2.0/extensions (plain bash: no curl, no interpreter start per try). In a subshell: a
# failed `exec` redirection ends a non-interactive shell, and the port may refuse while the server sets up.
api_answers() {
  local port=$1 status
  status=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET /v2.0/extensions HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 5 line <&3 && echo "$line"
  ) || return 1
  # Under keystone auth the API answers 401 without a token: it is up all the same.
  [[ $status =~ ^HTTP/1\.[01]\ (200|401) ]]
}

cmd_start() {
  local dir=$1 port=$2 kdir=$3
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
  local auth=noauth extra_conf=()
  if [ -n "$kdir" ]; then
    [ -d "$kdir" ] || { log "no keystone sandbox directory $kdir"; exit 1; }
    kdir=$(cd "$kdir" && pwd)
    [ -r "$kdir/neutron-authtoken.conf" ] || { log "$kdir has no running keystone sandbox"; exit 1; }
    auth=keystone
    extra_conf=(--config-file "$kdir/neutron-authtoken.conf")
  fi

  # eventlet binds with SO_REUSEPORT: on a PORT some other server (another sandbox) listens on, neutron-server would
  # start anyway and the kernel would share the connections between both. Refuse instead.
  if ((port != 0)) && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
    log "port $port is in use"
    exit 1
  fi
  rm -f "$dir/neutron.sqlite" "$dir/neutron-server.log" "$dir/neutron-server.out" "$dir/neutron-server.pid"
  mkdir -p "$dir/lock"
  local schema
  schema=$(schema_file "$dir") || start_failed "$dir" "cannot create the schema"
  cp "$schema" "$dir/neutron.sqlite"
  write_config "$dir" "$port" "$auth"

  # setsid: the server and the workers it forks form one process group that stop can end as a whole, and no
  # signal meant for the caller's group (a test runner's Ctrl-C) reaches it half-way.
  PYTHONPATH=$dir${PYTHONPATH:+:$PYTHONPATH} setsid "$PY" -c 'import sys; from neutron.cmd.eventlet.server import main; sys.argv[0] = "neutron-server"; sys.exit(main())' \
    --config-file "$dir/neutron.conf" "${extra_conf[@]}" </dev/null >"$dir/neutron-server.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/neutron-server.pid"

  local deadline=$((SECONDS + START_TIMEOUT)) listening
  # Wait for our process's own listening socket first: with a fixed PORT another server may answer there.
  until listening=$(listening_port "$pid") && [ -n "$listening" ]; do
    running "$pid" || start_failed "$dir" "neutron-server exited"
    ((SECONDS < deadline)) || start_failed "$dir" "neutron-server did not listen within ${START_TIMEOUT}s"
    sleep 0.1
  done
  ((port == 0 || port == listening)) || start_failed "$dir" "neutron-server listens on $listening, not $port"
  port=$listening
  until api_answers "$port"; do
    running "$pid" || start_failed "$dir" "neutron-server exited"
    ((SECONDS < deadline)) || start_failed "$dir" "the API on 127.0.0.1:$port did not answer within ${START_TIMEOUT}s"
    sleep 0.1
  done
  local url="http://127.0.0.1:$port"
  if [ -n "$kdir" ]; then
    "$SCRIPT_DIR/keystone-sandbox.sh" register "$kdir" network neutron "$url" >&2 ||
      start_failed "$dir" "cannot register $url in the keystone catalog of $kdir"
  fi
  echo "URL=$url"
  echo "AUTH=$auth"
  echo "PHYSNET=$PHYSNET"
  echo "VLAN_RANGE=$VLAN_RANGE"
  echo "FLAT_PHYSNET=$FLAT_PHYSNET"
  echo "TENANT_NETWORK_TYPE=vxlan"
  echo "PID=$pid"
  echo "LOG=$dir/neutron-server.log"
  local us=$(($(now_us) - t0))
  printf 'START_SECONDS=%d.%02d\n' $((us / 1000000)) $((us % 1000000 / 10000))
}

case "${1:-}" in
  start)
    (($# >= 2)) || usage
    dir=$2
    shift 2
    port=0 kdir=""
    while (($#)); do
      case "$1" in
        --keystone) (($# >= 2)) || usage; kdir=$2; shift 2 ;;
        *) port=$1; shift ;;
      esac
    done
    cmd_start "$dir" "$port" "$kdir"
    ;;
  stop) (($# == 2)) || usage; cmd_stop "$2" ;;
  check) (($# == 1)) || usage; cmd_check ;;
  *) usage ;;
esac
