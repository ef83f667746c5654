#!/usr/bin/env bash
# Installs what the test lanes need on a fresh Debian machine (run as root): gcc and libc6-dev
# for the probes in C (src/native/build.sh; native.test.ts asserts it is built); QEMU and busybox
# for the kernel VM, ipvsadm and iproute2 for the checks inside it; ifupdown (realserver's boot stanzas); openssl and the real servers
# the check tests start on loopback with throwaway configs (nginx, dnsmasq, exim4, dovecot,
# vsftpd, jamnntpd, slapd, mariadb, postgresql, kamailio, freeradius, tinyproxy; iputils ping); prometheus
# (and its promtool) for the monitoring tests, prometheus-alertmanager for the alert webhook test; chromium for the status page's browser test (driven by playwright-core); and the peers operators migrate from, ldirectord
# and keepalived: the tests must pass on a director that has them installed (their units and
# files beside ours); dpkg-dev, lintian, pandoc and mandoc build, check and render the Debian
# package and its man pages (test/package/); bird2 and frr check the files of deploy/directors/, and BIRD
# runs in the directors lane. Installing a server package may start its Debian service: the tests never
# use it. Then builds the VM image (Debian's current kernel with IPVS, fetched with apt-get
# download, cached in test/vm/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(gcc libc6-dev qemu-system-x86 busybox-static ipvsadm iproute2 util-linux ifupdown python3 openssl curl nginx-light dnsmasq-base prometheus ldirectord keepalived slapd kamailio exim4-daemon-light dovecot-imapd dovecot-pop3d vsftpd jamnntpd freeradius iputils-ping mariadb-server postgresql tinyproxy prometheus-alertmanager bird2 frr dpkg-dev lintian pandoc mandoc chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash test/vm/build.sh >/dev/null
echo "setup: ready (VM image in test/vm/build/)" >&2
