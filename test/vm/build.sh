#!/bin/bash
# Builds the kernel VM's image: Debian's current kernel (which has IPVS as modules) and a tiny
# initramfs of busybox-static, the modules IPVS and the VM need, and ./init.
#
#   test/vm/build.sh [path/to/linux-image-*.deb]
#
# Writes test/vm/build/{vmlinux,initrd.img,modules.order}; caches the .deb and its unpacked tree
# in test/vm/.cache/. Does nothing when build/ is newer than this script and ./init.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$HERE/.cache
KDIR=$CACHE/kernel
OUT=$HERE/build
if [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinux" ] &&
   [ "$OUT/initrd.img" -nt "$HERE/build.sh" ] && [ "$OUT/initrd.img" -nt "$HERE/init" ]; then
  exit 0
fi
for tool in busybox python3 dpkg; do
  command -v $tool >/dev/null || { echo "build.sh: $tool is missing (bash test/setup.sh installs it)" >&2; exit 1; }
done
DEB=${1:-}
if [ -z "$DEB" ] && [ ! -d "$KDIR/boot" ]; then
  # Debian's current kernel: what the linux-image-amd64 metapackage depends on. Its ABI number
  # changes with security updates, so it is looked up, never hard-coded.
  pkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
  PKG=$(pkg)
  if [ -z "$PKG" ]; then apt-get update -qq >&2; PKG=$(pkg); fi
  [ -n "$PKG" ] || { echo "build.sh: cannot find Debian's kernel package (linux-image-amd64)" >&2; exit 1; }
  mkdir -p "$CACHE"
  ls "$CACHE/${PKG}"_*.deb >/dev/null 2>&1 || (cd "$CACHE" && apt-get download "$PKG" >&2)
  DEB=$(ls "$CACHE/${PKG}"_*.deb | head -n1)
fi
if [ ! -d "$KDIR/boot" ]; then
  mkdir -p "$KDIR"
  dpkg -x "$DEB" "$KDIR"
fi
KVER=$(ls "$KDIR/lib/modules" | head -n1)
MODDIR=$KDIR/lib/modules/$KVER
# The .deb ships no modules.dep (its postinst runs depmod); busybox has depmod.
[ -f "$MODDIR/modules.dep" ] || busybox depmod -b "$KDIR" "$KVER"

# crc32c_generic first: libcrc32c has "softdep: pre: crc32c" (not in modules.dep) and its init
# fails without a crc32c provider. ip_vs_pe_sip (persistence engine) pulls in nf_conntrack_sip.
# The forwarding lane (forwarding.vm.ts): bridge (DR on one L2 segment), ipip (TUN; creates tunl0
# in every namespace), fou (GUE), ip_vs_ftp (FTP through NAT; pulls in nf_nat). The guest has no
# modprobe, so nothing loads on demand: what a lane needs is here.
WANT="crc32c_generic
 virtio_mmio virtio_console 9pnet_virtio 9p
 veth dummy bridge ipip fou
 ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_mh
 ip_vs_dh ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr ip_vs_sed ip_vs_nq ip_vs_pe_sip ip_vs_ftp
 ${EXTRA_MODULES:-}"

declare -A DEPS SEEN
while IFS= read -r line; do
  DEPS[${line%%:*}]=${line#*:}
done < "$MODDIR/modules.dep"
path_of() { # module name -> its path in modules.dep
  local k
  for k in "${!DEPS[@]}"; do
    case "$k" in */"$1".ko) echo "$k"; return 0;; esac
  done
  return 1
}
ORDER=()
visit() { # post-order: dependencies first
  local p=$1 d
  [ -n "${SEEN[$p]:-}" ] && return 0
  SEEN[$p]=1
  for d in ${DEPS[$p]}; do visit "$d"; done
  ORDER+=("$p")
}
for n in $WANT; do
  if p=$(path_of "$n"); then visit "$p"; else echo "build.sh: module $n is not in kernel $KVER, skipped" >&2; fi
done

R=$OUT/root
rm -rf "$R"; mkdir -p "$R"/{bin,proc,sys,dev,host,io,tmp,lib/modules}
cp "$(command -v busybox)" "$R/bin/busybox"
for a in sh mount umount mkdir insmod chroot poweroff cat echo sleep ls mknod dmesg ip; do
  ln -s busybox "$R/bin/$a"
done
: > "$OUT/modules.order"
for p in "${ORDER[@]}"; do
  cp "$MODDIR/$p" "$R/lib/modules/"
  basename "$p" >> "$OUT/modules.order"
done
cp "$OUT/modules.order" "$R/lib/modules/order"
# Unsigned modules still load (SIG_FORCE is off) and skip an RSA check each under emulation.
python3 - "$R"/lib/modules/*.ko <<'PY'
import struct, sys
MAGIC = b"~Module signature appended~\n"
for p in sys.argv[1:]:
    d = open(p, "rb").read()
    if d.endswith(MAGIC):
        sig_len = struct.unpack(">I", d[-len(MAGIC) - 4:-len(MAGIC)])[0]
        open(p, "wb").write(d[: len(d) - len(MAGIC) - 12 - sig_len])
PY
cp "$HERE/init" "$R/init"; chmod 755 "$R/init"
# The uncompressed kernel boots through PVH and skips ~4 s of xz decompression under TCG.
python3 - "$KDIR/boot/vmlinuz-$KVER" "$OUT/vmlinux" <<'PY'
import lzma, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\x00")
assert i >= 0, "no xz payload in the bzImage"
open(sys.argv[2], "wb").write(lzma.LZMADecompressor().decompress(d[i:]))
PY
(cd "$R" && find . | sort | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
echo "build.sh: kernel $KVER, $(wc -l < "$OUT/modules.order") modules, initrd $(du -h "$OUT/initrd.img" | cut -f1)" >&2
