#!/usr/bin/env bash
# The host's CPU, sampled once a second beside a VM bench (bench/peers.sh): one line a second,
# "wall-ms busy-jiffies vm-jiffies", busy over all CPUs (/proc/stat) and the part of it that the
# QEMU processes used. The guest charges a busy process for time the host gave to others
# (emulation has no steal time), so bench:peers flags a window in which other host processes
# ran (bench/peers-lib.ts hostOthers).
out=${1:?usage: host-load.sh FILE}
while :; do
  read -r _ user nice system _ _ irq softirq steal _ < /proc/stat
  vm=0
  for p in $(pgrep -f '^qemu-system'); do
    read -r -a f < "/proc/$p/stat" 2>/dev/null || continue
    # After "pid (comm)": utime and stime are fields 14 and 15 (qemu's comm has no spaces).
    vm=$((vm + ${f[13]:-0} + ${f[14]:-0}))
  done
  echo "$(date +%s%3N) $((user + nice + system + irq + softirq + steal)) $vm" >> "$out"
  sleep 1
done
