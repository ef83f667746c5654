#!/usr/bin/env bash
# `npm run bench:peers` after the build: the VM run (bench/peers.ts), with the host's load sampled
# beside it (bench/host-load.sh) so a window in which other host processes ran is flagged.
cd "$(dirname "$0")/.." || exit 1
mkdir -p .scratch
(echo "$(nproc) CPUs"; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') > .scratch/peers-host.txt
: > .scratch/host-load.txt
bash bench/host-load.sh .scratch/host-load.txt &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT
# The native floor's addon, built on the host (the VM shares the checkout and its node).
case ",${BENCH_PEERS:-}," in
  *,native-floor,*)
    node-gyp rebuild -C bench/native >.scratch/native-build.log 2>&1 || {
      echo "bench:peers: bench/native did not build (it needs make and g++); see .scratch/native-build.log" >&2
      exit 1
    } ;;
esac
VM_ENV='BENCH_SIZES BENCH_KINDS BENCH_PEERS BENCH_SECONDS BENCH_ROUNDS BENCH_WARM BENCH_VICTIMS BENCH_LEGACY BENCH_FILL BENCH_DETECT BENCH_BLACKHOLE BENCH_BLACKHOLE_SIZES BENCH_OUT BENCH_NODE_FLAGS BENCH_DAEMON BENCH_FLOOR_WARM BENCH_FLOOR_CAP BENCH_TABLE_ROUNDS IPVS_WARDEN_SOCKETS' \
  VM_TIMEOUT=${VM_TIMEOUT:-14400} bash test/vm/kernel-lane.sh 'node dist/bench/peers.js'
