#!/usr/bin/env bash
# `npm run package:deb [-- OUTDIR]`: builds ipvs-warden_VERSION_ARCH.deb in OUTDIR (default: the
# repository) with dpkg-deb from a staging tree: the program as `npm pack` ships it (prepack
# builds it), its production modules from package-lock.json (`npm ci --omit=dev`: the npm
# registry, or npm's cache), the man pages (pandoc, from the README and the schema), the unit,
# sysusers.d, modules-load.d and the example config as a conffile. The package is for this
# machine's architecture: sockopt is compiled here (its "linux" prebuilds are macOS binaries)
# and netlink's prebuild for it is kept. Needs dpkg-dev, pandoc and what `npm ci` needs to
# compile sockopt (g++, make, python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root}" && cd "${1:-$root}" && pwd)
cd "$root"
version=$(node -p "require('./package.json').version")
arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) nodearch=x64 ;;
  arm64) nodearch=arm64 ;;
  *) echo "package:deb: no netlink prebuild for $arch" >&2; exit 1 ;;
esac
# The changelog's date dates the man pages and every file, so a rebuild is byte for byte the same.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$here/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
lib=$stage/usr/lib/ipvs-warden
doc=$stage/usr/share/doc/ipvs-warden

# The program, as the npm tarball has it; prepack builds dist/ first.
npm pack --silent --pack-destination "$work" >/dev/null
mkdir -p "$lib"
tar -xzf "$work/ipvs-warden-$version.tgz" -C "$lib" --strip-components=1 --no-same-owner
cp package-lock.json "$lib/"
(cd "$lib" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
rm "$lib/package-lock.json"
# deploy/ goes where Debian wants each file (below); the README is the man pages.
rm -rf "$lib/deploy" "$lib/README.md"
find "$lib/dist" -name '*.map' -delete
# Native modules: only what this architecture loads. sockopt's build leftovers and its
# prebuilds (Mach-O files, whatever their directory says) go; netlink keeps its linux-$nodearch.
nm=$lib/node_modules
find "$nm/sockopt/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$nm/sockopt/build/Release" -mindepth 1 ! -name sockopt.node -exec rm -rf {} +
rm -rf "$nm/sockopt/prebuilds"
find "$nm/netlink/prebuilds" -mindepth 1 -maxdepth 1 ! -name "linux-$nodearch" -exec rm -rf {} +
find "$nm" "$lib/dist" -name '*.node' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
# Files no program reads: the addons' sources, type declarations (netlink lists @types/node
# as a dependency), source maps, npm's own records.
rm -rf "$nm/sockopt/src" "$nm/netlink/src" "$nm/.package-lock.json"
find "$nm" -depth \( -name '@types' -type d -exec rm -rf {} + \) -o \( -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name .npmignore \) -delete \)
# Modes as Debian wants them: scripts (#!) executable, everything else (addons too) not.
find "$lib" -type f -exec chmod 644 {} +
find "$lib" -type f -exec sh -c 'for f; do [ "$(head -c 2 "$f")" = "#!" ] && chmod 755 "$f"; done; true' sh {} +

install -D -m 755 "$here/ipvs-warden.sh" "$stage/usr/bin/ipvs-warden"
install -D -m 644 deploy/systemd/ipvs-warden.service "$stage/lib/systemd/system/ipvs-warden.service"
install -D -m 644 deploy/sysusers.d/ipvs-warden.conf "$stage/usr/lib/sysusers.d/ipvs-warden.conf"
install -D -m 644 deploy/modules-load.d/ipvs-warden.conf "$stage/usr/lib/modules-load.d/ipvs-warden.conf"
install -D -m 644 deploy/ipvs-warden.yaml "$stage/etc/ipvs-warden/ipvs-warden.yaml"
install -d -m 755 "$stage/etc/ipvs-warden/maintenance"
# Examples: what a director may add (ping checks and persistent services need sysctls the package
# does not set for the whole host), monitoring, and the peers' configs for more than one director.
ex=$doc/examples
install -D -m 644 deploy/systemd/ipvs-warden.service.d/ping.conf "$ex/systemd/ipvs-warden.service.d/ping.conf"
install -D -m 644 deploy/sysctl.d/ipvs-warden.conf "$ex/sysctl.d/ipvs-warden.conf"
install -D -m 644 deploy/prometheus/ipvs-warden.rules.yml "$ex/prometheus/ipvs-warden.rules.yml"
install -D -m 644 deploy/grafana/ipvs-warden.json "$ex/grafana/ipvs-warden.json"
for f in deploy/directors/*.conf; do install -D -m 644 "$f" "$ex/directors/$(basename "$f")"; done
install -D -m 644 "$here/copyright" "$doc/copyright"
gzip -9n -c "$here/changelog" >"$work/changelog.gz"
install -D -m 644 "$work/changelog.gz" "$doc/changelog.Debian.gz"
install -D -m 644 "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/ipvs-warden"

node dist/test/write-man.js "$work/man"
install -D -m 644 "$work/man/ipvs-warden.8" "$stage/usr/share/man/man8/ipvs-warden.8"
install -D -m 644 "$work/man/ipvs-warden.yaml.5" "$stage/usr/share/man/man5/ipvs-warden.yaml.5"
gzip -9n "$stage/usr/share/man/man8/ipvs-warden.8" "$stage/usr/share/man/man5/ipvs-warden.yaml.5"

# Control: the shared libraries the addons link (dpkg-shlibdeps, which wants a debian/ tree).
mkdir -p "$work/src/debian" "$stage/DEBIAN"
printf 'Source: ipvs-warden\n\nPackage: ipvs-warden\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && find "$nm" -name '*.node' -print0 | xargs -0 dpkg-shlibdeps -O 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --apparent-size "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: ipvs-warden
Version: $version-1
Architecture: $arch
Maintainer: ipvs-warden developers <ipvs-warden@users.noreply.github.com>
Installed-Size: $size
Depends: nodejs (>= 20.18), systemd, $shlibs
Suggests: ipvsadm, iputils-ping, keepalived
Section: net
Priority: optional
Homepage: https://github.com/ipvs-warden/ipvs-warden
Description: health-checking controller for Linux Virtual Server (IPVS)
 ipvs-warden probes every real server behind kernel IPVS (TCP, HTTP/HTTPS, DNS,
 SMTP, IMAP, POP3, FTP, LDAP, MySQL, PostgreSQL, SIP, RADIUS, UDP, ping, exec)
 and keeps the kernel's IPVS table in step with what the probes say, as
 ldirectord and keepalived's checker do. It reads its own YAML config, or an
 ldirectord.cf or keepalived.conf as it is, exports Prometheus metrics and runs
 as an unprivileged user with CAP_NET_ADMIN only.
CONTROL
echo /etc/ipvs-warden/ipvs-warden.yaml >"$stage/DEBIAN/conffiles"
install -m 755 "$here/postinst" "$here/postrm" "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)
chmod 644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"
find "$stage" -type d -exec chmod 755 {} +
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$out/ipvs-warden_${version}-1_$arch.deb
dpkg-deb --build --root-owner-group -Zxz "$stage" "$deb" >/dev/null
echo "$deb"
