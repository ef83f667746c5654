#!/bin/bash
# Runs one shell command inside a throw-away QEMU VM (software emulation) booting Debian's
# kernel with IPVS loaded. The host's / is shared read-only over virtio-9p and chrooted into, so
# the host's node, ipvsadm and ip run as they are; the command's output streams back and its
# exit status is ours (125: the VM or its setup failed; 124: VM_TIMEOUT).
#
#   test/vm/run.sh 'ipvsadm -A -t 10.0.0.1:80 -s rr && ipvsadm -Ln'
#
# In the guest: cwd is the caller's $PWD, a clean environment, /tmp /run /var/tmp private,
# only lo up, no network device (nothing can leave the VM). Settings:
#   VM_RW="/abs/dir ..."   host dirs shared read-write at the same path
#   VM_ENV="NAME ..."      host variables passed to the command
#   VM_SMP=2 VM_MEM=1G     guest CPUs and memory
#   VM_TIMEOUT=secs        stop the VM after that long (exit 124)
#   VM_APPEND="..."        extra kernel command line
#   VM_KEEP=1              keep the run dir (boot.log is the guest console)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$HERE/build
[ $# -ge 1 ] || { echo "usage: $0 'command'" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 is missing (bash test/setup.sh installs it)" >&2; exit 125; }
"$HERE/build.sh" >&2 || exit 125

RUN=$(mktemp -d /tmp/ipvs-vm.XXXXXX)
QPID=
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null
  [ -n "${VM_KEEP:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
  for v in ${VM_ENV:-}; do [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"; done
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
  printf '%s\n' "$*"
} > "$RUN/cmd.sh"

# 9p shares: the host root (read-only), the run dir, the VM_RW dirs.
FS=("hostroot|local,path=/,security_model=none,readonly=on,multidevs=remap"
    "vmio|local,path=$RUN,security_model=none")
: > "$RUN/rw.list"
i=0
for d in ${VM_RW:-}; do
  d=$(cd "$d" && pwd) || exit 125
  FS+=("rw$i|local,path=$d,security_model=none,multidevs=remap")
  echo "rw$i $d" >> "$RUN/rw.list"
  i=$((i + 1))
done

# Guest stdout/stderr: virtio-serial ports -> file chardevs on FIFOs -> cat -> our fds.
mkfifo "$RUN/stdout" "$RUN/stderr"
cat "$RUN/stdout" & COUT=$!
cat "$RUN/stderr" >&2 & CERR=$!

# Under TCG the PIT calibration of the TSC sometimes fails (the boot hangs): hand the kernel the
# host's rate; tsc=reliable keeps the TSC as clocksource with two vCPUs.
TSC_KHZ=${VM_TSC_KHZ:-$(awk -F: '/^cpu MHz/ {printf "%d", $2*1000; exit}' /proc/cpuinfo)}
KAPPEND="console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off cryptomgr.notests=1 vmnet=lo tsc_early_khz=${TSC_KHZ:-2000000} tsc=reliable ${VM_APPEND:-}"
ARGS=(-machine microvm,acpi=on,rtc=on,isa-serial=on,pit=on,pic=on
  -serial "file:$RUN/boot.log"
  -device virtio-serial-device
  -chardev "file,id=out,path=$RUN/stdout" -device virtserialport,chardev=out,name=stdout
  -chardev "file,id=err,path=$RUN/stderr" -device virtserialport,chardev=err,name=stderr)
for f in "${FS[@]}"; do
  tag=${f%%|*}
  ARGS+=(-fsdev "${f#*|},id=fs_$tag" -device "virtio-9p-device,fsdev=fs_$tag,mount_tag=$tag")
done

qemu-system-x86_64 -accel tcg -cpu max -smp "${VM_SMP:-2}" -m "${VM_MEM:-1G}" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$B/vmlinux" -initrd "$B/initrd.img" -append "$KAPPEND" "${ARGS[@]}" </dev/null &
QPID=$!
if [ -n "${VM_TIMEOUT:-}" ]; then
  # The watchdog holds none of our output and takes its sleep with it when stopped: a sleep
  # left behind would keep a pipe of the caller open for VM_TIMEOUT seconds.
  (
    exec >/dev/null 2>&1
    sleep "$VM_TIMEOUT" & s=$!
    trap 'kill $s; exit 0' TERM
    wait $s
    touch "$RUN/timed_out"
    kill "$QPID"
  ) &
  TPID=$!
fi
wait $QPID
QRC=$?
QPID=
[ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null
# Release the cats even if qemu never opened the FIFOs.
exec 3<>"$RUN/stdout" 4<>"$RUN/stderr"; exec 3>&- 4>&-
wait $COUT $CERR 2>/dev/null

if [ -s "$RUN/init_errors" ]; then
  echo "run.sh: guest setup failed, command not run:" >&2
  sed 's/^/  /' "$RUN/init_errors" >&2
  rc=125
elif [ -f "$RUN/status" ]; then
  rc=$(cat "$RUN/status")
elif [ -e "$RUN/timed_out" ]; then
  echo "run.sh: stopped after VM_TIMEOUT=${VM_TIMEOUT}s" >&2
  rc=124
else
  echo "run.sh: no exit status from the guest (qemu exited $QRC); guest console:" >&2
  tail -n 40 "$RUN/boot.log" >&2
  rc=125
fi
[ -n "${VM_KEEP:-}" ] && echo "run dir: $RUN" >&2
exit "$rc"
