#!/usr/bin/env bash
# Usage: scripts/vmlane/run.sh [options] -- /abs/path/to/command [ARGS...]
#        scripts/vmlane/run.sh --check
#
# The stock-kernel lane: boots Debian's stock kernel (unpacked by scripts/packages/vmlane.sh) in qemu with a
# freshly built initramfs and runs one command in it as root. The command's stdout/stderr stream to this
# script's stdout (serial console) as it runs; files it writes under /out come back to --results DIR; this
# script exits with the command's exit status.
#
# Options:
#   --machine pc|q35|q35-iommu  machine type (default pc); q35-iommu adds -device intel-iommu and intel_iommu=on
#   --nic e1000                 add an emulated e1000 NIC (no host network behind it)
#   --mem MB                    guest memory (default 1536)
#   --smp N                     virtual CPUs (default 2)
#   --timeout SECONDS           wall-clock limit for the whole VM (default 600)
#   --include PATH              copy PATH (file or directory) into the VM at the same absolute path; ELF files
#                               are stripped of debug info and bring their shared libraries (repeatable)
#   --module NAME               load this kernel module too, with its dependencies (repeatable)
#   --env NAME=VALUE            set in the command's (otherwise clean) environment (repeatable)
#   --results DIR               receive the VM's /out into DIR (created; emptied first)
#   --append ARGS               extra kernel command line
#   --verbose                   kernel messages on the console
#   --keep                      keep the work dir (initramfs, console log) and print its path
#   --check                     print why the lane cannot run here and exit 69, or exit 0
#
# The command itself is always included (with its libraries). Always included too: busybox (shell and
# coreutils), ip, bridge, tc, and nft, tcpdump when installed.
#
# Exit status: the command's; 124 when the VM timed out; 125 when the VM did not report the command's exit
# status (did not boot, kernel panic, init failed); 64 usage error; 69 lane unavailable (see --check).
set -euo pipefail
me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "$me: $1" >&2; exit "${2:-64}"; }
log() { echo "$me: $*" >&2; }

# The modules the project's tests need; each comes with its dependencies from the kernel's modules.dep.
DEFAULT_MODULES=(
  veth tun tap macvlan macvtap vxlan dummy bonding 8021q bridge netdevsim
  sch_htb sch_tbf sch_ingress act_mirred cls_matchall cls_u32
  nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_reject_inet nft_fib_inet nft_meta_bridge nft_reject_bridge
  nf_conntrack_bridge openvswitch
  vfio vfio_iommu_type1 vfio-pci e1000
)

machine=pc nic="" mem=1536 smp=2 timeout=600 results="" append="" verbose=false keep=false check=false
includes=() modules=() envs=()
while (($#)); do
  case "$1" in
    --machine) machine=${2:?}; shift 2 ;;
    --nic) nic=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --include) includes+=("${2:?}"); shift 2 ;;
    --module) modules+=("${2:?}"); shift 2 ;;
    --env) envs+=("${2:?}"); shift 2 ;;
    --results) results=${2:?}; shift 2 ;;
    --append) append=${2:?}; shift 2 ;;
    --verbose) verbose=true; shift ;;
    --keep) keep=true; shift ;;
    --check) check=true; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$machine" in pc|q35|q35-iommu) ;; *) die "--machine: pc, q35 or q35-iommu, not $machine" ;; esac
case "$nic" in ""|e1000) ;; *) die "--nic: only e1000" ;; esac
[[ "$timeout" =~ ^[0-9]+$ && "$mem" =~ ^[0-9]+$ && "$smp" =~ ^[0-9]+$ ]] || die "--timeout/--mem/--smp take numbers"

# ---------------------------------------------------------------- can the lane run here?
unavailable() {
  command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed (scripts/setup.sh)"; return; }
  command -v cpio >/dev/null || { echo "cpio is not installed (scripts/setup.sh)"; return; }
  # (not a pipe into grep -q: with pipefail, busybox's SIGPIPE would fail the check at random)
  [ -x /bin/busybox ] && grep -qx insmod < <(/bin/busybox --list 2>/dev/null) ||
    { echo "busybox-static is not installed (scripts/setup.sh)"; return; }
  command -v objcopy >/dev/null || { echo "binutils (objcopy) is not installed"; return; }
  kroot=$(bash "$repo/scripts/packages/vmlane.sh" --print 2>/dev/null) ||
    { echo "no stock kernel unpacked (run scripts/setup.sh or scripts/packages/vmlane.sh as root)"; return; }
  [ -r "$kroot/.complete" ] || { echo "the unpacked kernel in $kroot is not readable"; return; }
}
reason=$(unavailable)
if $check; then
  [ -z "$reason" ] || { echo "$reason"; exit 69; }
  exit 0
fi
[ -z "$reason" ] || die "lane unavailable: $reason" 69
(($#)) || die "no command given (see --help)"
[[ "$1" == /* ]] || die "the command must be an absolute path: $1"
[ -x "$1" ] || die "not executable: $1"

kroot=$(bash "$repo/scripts/packages/vmlane.sh" --print)
kver=$(cut -d' ' -f3 "$kroot/.complete")
# The decompressed kernel (made by vmlane.sh) boots ~5 s faster under TCG than the self-decompressing bzImage.
kernel="$kroot/boot/vmlinux-$kver"
[ -r "$kernel" ] || kernel="$kroot/boot/vmlinuz-$kver"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmlane.XXXXXX")
qpid=""
cleanup() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -KILL "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  if $keep; then log "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP  # exit, so that the EXIT trap stops qemu

# ---------------------------------------------------------------- the initramfs tree
t0=$(date +%s.%N)
root="$work/root"
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,tmp,run,out,root,etc,vmlane,var}
# Merged /usr like the host, so that a path the host's ldd or a test names resolves the same way inside.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"

declare -A copied=()
is_elf() { [ -f "$1" ] && [ "$(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

# Copies one file to the same absolute path inside (content of the link target if it is a symlink); ELF files
# lose their debug info (the VM holds everything in RAM) and bring their shared libraries.
add_file() {
  local src=$1 dst="$root$1"
  [ -z "${copied[$src]:-}" ] || return 0
  copied[$src]=1
  mkdir -p "$(dirname "$dst")"
  if is_elf "$src"; then
    objcopy --strip-debug "$src" "$dst" 2>/dev/null || cp -L "$src" "$dst"
    chmod --reference="$src" "$dst"
    local lib libs
    libs=$(elf_libs "$src") || exit $?
    for lib in $libs; do add_file "$lib"; done
  else
    cp -L --preserve=mode "$src" "$dst"
  fi
}
# The shared libraries (and the loader) ldd resolves for an ELF file; nothing for a static one.
elf_libs() {
  local out
  out=$(ldd "$1" 2>/dev/null) || return 0
  if grep -q 'not found' <<<"$out"; then
    die "$1: missing shared libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')" 69
  fi
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
}
add_path() {
  local p=$1 f
  [ -e "$p" ] || die "--include: no such file or directory: $p"
  [[ "$p" == /* ]] || die "--include needs an absolute path: $p"
  case "$p" in /proc/*|/sys/*|/dev/*) die "--include: $p would be hidden by the VM's /proc, /sys or /dev" ;; esac
  p=${p%/}
  if [ -d "$p" ]; then
    while IFS= read -r -d '' f; do add_file "$f"; done < <(find -L "$p" -type f -print0)
  else
    add_file "$p"
  fi
}

cp "$here/init" "$root/init"
chmod 755 "$root/init"
add_file /bin/busybox
# The host's /bin/sh (dash) is the VM's /bin/sh: busybox's sh runs its own applets before PATH (a standalone
# shell), so `sh -c "ip ..."` -- what popen() and system() do -- would get busybox's ip instead of iproute2's.
add_file /bin/sh
for tool in ip bridge tc nft tcpdump; do
  p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$tool" || true)
  [ -n "$p" ] && add_file "$p"
done
# Libraries vnetplan opens on first use (base/dynlib.h), which ldd does not list.
for so in libnftables.so.1 libssh.so.4; do
  p=$(/sbin/ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !found {print $NF; found = 1}')  # reads it all: no SIGPIPE under pipefail
  [ -n "$p" ] && add_file "$p"
done
for p in /etc/iproute2 /etc/protocols /etc/services /etc/ethertypes /etc/nftables; do
  [ -e "$p" ] && add_path "$p"
done
add_file "$1"
for p in "${includes[@]}"; do add_path "$p"; done
# busybox provides every command that no real tool above provides (the shell, coreutils, insmod, modprobe...).
for applet in $(/bin/busybox --list); do
  [ -e "$root/usr/bin/$applet" ] || [ -e "$root/usr/sbin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
done
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tcpdump:x:101:101::/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tcpdump:x:101:
nogroup:x:65534:
EOF
printf '127.0.0.1 localhost vmlane\n::1 localhost ip6-localhost\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"

# Modules: the closure of the wanted ones in load order, as kmod's modprobe resolves it from the kernel's
# modules.dep and softdeps (busybox's modprobe in the VM knows no softdeps, hence the explicit order). A module this kernel lacks is noted, not fatal: the test that needs it SKIPs.
mods="$work/modules.list"
: >"$mods"
mkdir -p "$root/etc/modprobe.d"
declare -A staged=()
missing=()
for m in "${DEFAULT_MODULES[@]}" "${modules[@]}"; do
  deps=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null) || { missing+=("$m"); continue; }
  while read -r kind path opts; do
    [ "$kind" = insmod ] || continue
    [ -z "${staged[$path]:-}" ] || continue
    staged[$path]=1
    rel=${path#"$kroot"}
    mkdir -p "$root$(dirname "$rel")"
    cp "$path" "$root$rel"
    name=$(basename "$path" .ko)
    echo "$name" >>"$mods"
    # The options Debian's modprobe.d gives (bonding max_bonds=0, dummy numdummies=0: no bond0/dummy0 at load).
    [ -z "$opts" ] || echo "options $name $opts" >>"$root/etc/modprobe.d/vmlane.conf"
  done <<<"$deps"
done
((${#missing[@]} == 0)) || log "modules not in kernel $kver: ${missing[*]}"
cp "$mods" "$root/vmlane/modules"
for f in modules.order modules.builtin modules.builtin.modinfo; do cp "$kroot/lib/modules/$kver/$f" "$root/lib/modules/$kver/"; done
# An index of just these modules, for init's modprobe and the kernel's on-demand loads (e.g. nft expressions).
depmod -b "$root" "$kver"

# The command, quoted for the guest's sh.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  printf '\n'
} >"$root/vmlane/cmd"
printf '%s\n' "$*" >"$root/vmlane/cmd.txt"
{
  printf 'VMLANE_RESULTS=%s\n' "$([ -n "$results" ] && echo 1 || echo 0)"
  printf 'VMLANE_ENV='
  env_words=""
  for e in "${envs[@]}"; do
    [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*=[^[:space:]\'\"\\]*$ ]] || die "--env: NAME=VALUE without spaces or quotes: $e"
    env_words+="$e "
  done
  printf '%s\n' "$(q "$env_words")"
} >"$root/vmlane/config"

initrd="$work/initrd.cpio"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet >"$initrd")
t1=$(date +%s.%N)
log "initramfs $(du -m "$initrd" | cut -f1) MB, $(wc -l <"$mods") modules, built in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"

# ---------------------------------------------------------------- boot
cmdline="console=ttyS0,115200 rdinit=/init panic=-1 random.trust_cpu=on"
$verbose && cmdline+=" loglevel=7" || cmdline+=" loglevel=4"
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot -m "$mem" -smp "$smp")
# TCG unless VMLANE_ACCEL=kvm: these machines have a /dev/kvm on which a guest hangs without a word (no
# nested virtualisation), and -accel kvm -accel tcg does not fall back from that. -cpu max gives TCG the SSE4.2
# that crc32c-intel (a softdep of nf_tables' libcrc32c) wants.
accel=${VMLANE_ACCEL:-tcg}
qemu+=(-accel "$accel" -cpu max)
case "$machine" in
  pc) qemu+=(-machine pc) ;;
  q35) qemu+=(-machine q35) ;;
  q35-iommu) qemu+=(-machine q35 -device intel-iommu); cmdline+=" intel_iommu=on" ;;
esac
# The NIC has no host network behind it: a hub port with nothing else on the hub.
# shellcheck disable=SC2054  # qemu's own comma-separated options
[ "$nic" = e1000 ] && qemu+=(-netdev hubport,id=n0,hubid=0 -device e1000,netdev=n0,mac=52:54:00:12:34:56)
[ -n "$append" ] && cmdline+=" $append"
console="$work/console.log"
channel="$work/channel.txt"
qemu+=(-kernel "$kernel" -initrd "$initrd" -append "$cmdline"
  -chardev "stdio,id=con,signal=off,logfile=$console" -serial chardev:con
  -chardev "file,id=res,path=$channel" -serial chardev:res)

start=$(date +%s.%N)
# --pdeathsig: qemu dies with this script even when the script is SIGKILLed (the EXIT trap covers the rest).
setpriv --pdeathsig KILL -- "${qemu[@]}" </dev/null &
qpid=$!
timed_out=false
deadline=$(($(date +%s) + timeout))
while kill -0 "$qpid" 2>/dev/null; do
  if (($(date +%s) >= deadline)); then
    timed_out=true
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
qrc=0
wait "$qpid" || qrc=$?
qpid=""
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')

tail_console() { log "last console lines:"; tail -n 15 "$console" | tr -d '\r' | sed 's/^/    /' >&2; }
if $timed_out; then
  log "TIMEOUT: the VM ran for more than ${timeout} s and was killed"
  grep -a '^\[ RUN' "$console" | tail -n1 | sed "s/^/$me: last gtest case started: /" >&2 || true
  tail_console
  exit 124
fi
status=$(tr -d '\r' <"$channel" | awk '$1 == "VMLANE-EXIT" {print $2}' | tail -n1)
if [ -z "$status" ]; then
  if grep -aq 'Kernel panic' "$console"; then
    log "VM FAILED: kernel panic (qemu exit $qrc, after $elapsed s)"
  elif ! grep -aq 'vmlane: init started' "$console"; then
    log "VM FAILED: the VM did not boot to init (qemu exit $qrc, after $elapsed s)"
  else
    log "VM FAILED: init did not report the command's exit status (qemu exit $qrc, after $elapsed s)"
  fi
  tail_console
  exit 125
fi
if [ -n "$results" ]; then
  rm -rf "$results"
  mkdir -p "$results"
  tr -d '\r' <"$channel" | sed -n '/^VMLANE-RESULTS-BEGIN$/,/^VMLANE-RESULTS-END$/p' | sed '1d;$d' |
    base64 -d | tar -C "$results" -xf - || die "could not unpack the VM's /out into $results" 125
fi
log "VM ran $elapsed s (kernel $kver, $machine, $accel); command exit status $status"
exit "$status"
