#!/usr/bin/env bash
# Usage: scripts/packages/vmlane.sh [--print]
# Makes Debian's current stock kernel (the image package that the linux-image-amd64 metapackage depends on)
# available to the stock-kernel test lane, WITHOUT installing it on the host: the .deb is fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` into $VMLANE_CACHE (default /var/cache/vnetplan/vmlane),
# then depmod writes the modules.dep that the package's postinst would have written. Idempotent: quick when the
# current version is unpacked already. `$VMLANE_CACHE/current` points at the unpacked tree (boot/vmlinuz-*,
# lib/modules/<kver>/). --print prints that tree's path and exits (nothing fetched).
set -euo pipefail
me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }

CACHE=${VMLANE_CACHE:-/var/cache/vnetplan/vmlane}
META=linux-image-amd64

if [ "${1:-}" = "--print" ]; then
  [ -e "$CACHE/current/.complete" ] || die "no kernel unpacked in $CACHE (run scripts/setup.sh or $0)"
  readlink -f "$CACHE/current"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  # setup.sh runs hooks as the calling user; the cache is root's, like apt's.
  command -v sudo >/dev/null && exec sudo VMLANE_CACHE="$CACHE" bash "$0" "$@"
  echo "$me: not root and no sudo: the stock-kernel lane stays unavailable (its tests SKIP)" >&2
  exit 0
fi

tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT

# The image package the metapackage currently depends on, e.g. linux-image-6.1.0-56-amd64.
image_pkg() { apt-cache depends "$META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}'; }
pkg=$(image_pkg)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(image_pkg)
fi
if [ -z "$pkg" ]; then
  # Offline and no package lists: keep using what is unpacked already.
  [ -e "$CACHE/current/.complete" ] && { echo "$me: cannot resolve $META; keeping $(readlink -f "$CACHE/current")" >&2; exit 0; }
  die "cannot resolve the package that $META depends on (apt-get update?)"
fi
ver=$(apt-cache show --no-all-versions "$pkg" | awk '$1 == "Version:" {print $2; exit}')
[ -n "$ver" ] || die "no version of $pkg in the package lists"
dest="$CACHE/${pkg}_${ver}"

if [ ! -e "$dest/.complete" ]; then
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  tmpdirs+=("$work")
  echo "$me: fetching $pkg $ver"
  # apt's download sandbox user cannot write into a root-only temp dir; the download is still verified by apt.
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null)
  deb=$(ls "$work"/*.deb)
  mkdir "$work/root"
  dpkg-deb -x "$deb" "$work/root"
  kver=$(ls "$work/root/lib/modules")
  [ -f "$work/root/boot/vmlinuz-$kver" ] || die "$pkg has no boot/vmlinuz-$kver"
  depmod -b "$work/root" "$kver"
  # The lane runs as any user (qemu TCG needs no privilege); the image must be readable.
  chmod -R a+rX "$work/root"
  printf '%s %s %s\n' "$pkg" "$ver" "$kver" >"$work/root/.complete"
  rm -rf "$dest"
  mv "$work/root" "$dest"
fi

# The kernel decompresses itself (xz) before its clock starts; under TCG that costs ~5 s of every boot. The same
# kernel, decompressed here once, boots directly through its PVH entry point (qemu -kernel takes the ELF), so the
# lane uses boot/vmlinux-<kver> when it is here and falls back to the bzImage otherwise.
kver=$(cut -d' ' -f3 "$dest/.complete")
if [ ! -e "$dest/boot/vmlinux-$kver" ] && [ ! -e "$dest/boot/.no-vmlinux" ]; then
  bz="$dest/boot/vmlinuz-$kver"
  off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$bz" | head -n1 | cut -d: -f1 || true)
  tmp="$dest/boot/.vmlinux.tmp"
  # xz reports the bytes after the stream (the bzImage's trailer) as corrupt data; the check below is what counts.
  [ -n "$off" ] && tail -c +$((off + 1)) "$bz" | xz -dc >"$tmp" 2>/dev/null || true
  # XEN_ELFNOTE_PHYS32_ENTRY (type 0x12) is the PVH entry qemu needs.
  if [ -s "$tmp" ] && readelf -n "$tmp" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)'; then
    chmod 644 "$tmp"
    mv "$tmp" "$dest/boot/vmlinux-$kver"
  else
    rm -f "$tmp"
    touch "$dest/boot/.no-vmlinux"
    echo "$me: could not decompress $bz into a PVH-bootable vmlinux; the lane boots the bzImage (slower)" >&2
  fi
fi

# netdevsim (the SR-IOV tests' simulated NIC) is not in Debian's build (CONFIG_NETDEVSIM is off). The lane gets
# it built out of tree from Debian's own source of the same kernel version: linux-source-X.Y for the driver,
# linux-headers-<kver> (+ its -common and linux-kbuild-X.Y) for the build, all unpacked in a temp dir, never
# installed. The module is unsigned (the kernel loads it, tainted 'E'). VMLANE_NETDEVSIM=0 skips this; a failed
# build leaves .no-netdevsim (delete it to retry) and the netdevsim tests SKIP.
build_netdevsim() {
  local w=$1 series hdr_pkgs src d
  series=$(awk -F. '{print $1 "." $2}' <<<"$ver")
  hdr_pkgs=$(apt-cache depends "linux-headers-$kver" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-(headers|kbuild)-/ {print $2}')
  [ -n "$hdr_pkgs" ] || { echo "no linux-headers-$kver in the package lists"; return 1; }
  echo "$me: building netdevsim for $kver from linux-source-$series $ver (about a minute)" >&2
  # shellcheck disable=SC2046  # one package name per word
  (cd "$w" && apt-get download -q -o APT::Sandbox::User=root "linux-source-$series=$ver" "linux-headers-$kver=$ver" \
    $(sed "s/\$/=$ver/" <<<"$hdr_pkgs") >/dev/null) || return 1
  mkdir "$w/root"
  for d in "$w"/linux-headers-*.deb "$w"/linux-kbuild-*.deb; do dpkg-deb -x "$d" "$w/root"; done
  # The headers' Makefile includes its -common twin by absolute path (/usr/src/...); point it at ours.
  local common
  common=$(ls -d "$w"/root/usr/src/linux-headers-*-common)
  echo "include $common/Makefile" >"$w/root/usr/src/linux-headers-$kver/Makefile"
  src=$(dpkg-deb -c "$w"/linux-source-*.deb | awk '$NF ~ /\/linux-source-.*\.tar\.xz$/ {print $NF}')
  dpkg-deb --fsys-tarfile "$w"/linux-source-*.deb | tar -xOf - "$src" |
    tar -xJf - -C "$w" --wildcards '*/drivers/net/netdevsim/*' || return 1
  d=$(ls -d "$w"/linux-source-*/drivers/net/netdevsim)
  nice -n 10 make -s -C "$w/root/usr/src/linux-headers-$kver" M="$d" CONFIG_NETDEVSIM=m modules >"$w/build.log" 2>&1 ||
    { tail -n 20 "$w/build.log"; return 1; }
  [ "$(modinfo -F vermagic "$d/netdevsim.ko" | cut -d' ' -f1)" = "$kver" ] || { echo "vermagic mismatch"; return 1; }
  mkdir -p "$dest/lib/modules/$kver/extra"
  strip --strip-debug -o "$dest/lib/modules/$kver/extra/netdevsim.ko" "$d/netdevsim.ko"
  chmod 644 "$dest/lib/modules/$kver/extra/netdevsim.ko"
  depmod -b "$dest" "$kver"
}
if [ "${VMLANE_NETDEVSIM:-1}" != 0 ] && [ ! -e "$dest/lib/modules/$kver/extra/netdevsim.ko" ] &&
  [ ! -e "$dest/.no-netdevsim" ]; then
  nds_work=$(mktemp -d "$CACHE/.netdevsim.XXXXXX")
  tmpdirs+=("$nds_work")
  if ! why=$(build_netdevsim "$nds_work"); then
    printf '%s\n' "$why" >"$dest/.no-netdevsim"
    echo "$me: could not build netdevsim (the netdevsim tests will SKIP; rm $dest/.no-netdevsim to retry): $why" >&2
  fi
fi

# Swap the link atomically, then drop older unpacked versions (400 MB each).
ln -sfn "$(basename "$dest")" "$CACHE/.current.new"
mv -T "$CACHE/.current.new" "$CACHE/current"
for old in "$CACHE"/linux-image-*; do
  [ "$old" = "$dest" ] || rm -rf "$old"
done
echo "$me: stock kernel $(cut -d' ' -f3 "$dest/.complete") ($pkg $ver) in $dest"
