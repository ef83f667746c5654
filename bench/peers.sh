#!/usr/bin/env bash
# `npm run bench:peers` after the build: the VM run (bench/peers.ts), with the host's load sampled
# beside it (bench/host-load.sh) so a window in which other host processes ran is flagged.
# `npm run bench:peers:host` (BENCH_HOST=1): the same peers on the host itself, off the emulation.
cd "$(dirname "$0")/.." || exit 1
mkdir -p .scratch
if [ "${BENCH_HOST:-}" = 1 ]; then
  # keepalived's IPVS requests answered on a host without IPVS (bench/native/ipvs-shim.c).
  mkdir -p bench/native/build
  cc -O2 -Wall -shared -fPIC -o bench/native/build/ipvs-shim.so bench/native/ipvs-shim.c -ldl || {
    echo "bench:peers:host: bench/native/ipvs-shim.c did not build (it needs a C compiler)" >&2
    exit 1
  }
  node dist/bench/peers.js
  exit
fi
(echo "$(nproc) CPUs"; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') > .scratch/peers-host.txt
: > .scratch/host-load.txt
bash bench/host-load.sh .scratch/host-load.txt &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT
# The BENCH_* settings go in by kernel-lane.sh.
VM_ENV='IPVS_WARDEN_SOCKETS' \
  VM_TIMEOUT=${VM_TIMEOUT:-14400} bash test/vm/kernel-lane.sh 'node dist/bench/peers.js'
