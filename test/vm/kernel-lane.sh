#!/bin/bash
# The kernel lane: boots the VM once, with the project shared read-write, and runs the built
# kernel tests there in one node process (or the command given, e.g. a benchmark):
#
#   test/vm/kernel-lane.sh                              # node dist/test/vm/kernel.vm.js
#   test/vm/kernel-lane.sh 'node dist/bench/table.js'
#
# Run `npm run build` first. Under CI=true a VM that cannot start fails the lane; elsewhere
# IPVS_WARDEN_SKIP_KERNEL=1 turns that into a loud skip.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CMD=${1:-node dist/test/vm/kernel.vm.js}

unavailable() {
  if [ "${CI:-}" != "true" ] && [ -n "${IPVS_WARDEN_SKIP_KERNEL:-}" ]; then
    echo "kernel lane SKIPPED: $1"
    exit 0
  fi
  echo "kernel lane FAILED: $1" >&2
  echo "  (bash test/setup.sh installs what it needs; IPVS_WARDEN_SKIP_KERNEL=1 skips it outside CI)" >&2
  exit 1
}

for tool in qemu-system-x86_64 busybox ipvsadm ip setpriv python3; do
  command -v "$tool" >/dev/null || unavailable "$tool is not installed"
done
[ -f dist/test/vm/kernel.vm.js ] || unavailable "dist/ is not built (npm run build)"
bash test/vm/build.sh >&2 || unavailable "the VM image could not be built"

# The benchmarks' settings (every BENCH_* set here) go in with CI: a list of names kept by each
# benchmark's script once left some out, and the VM run used its defaults without a word.
BENCH_ENV=$(compgen -e | grep '^BENCH_' | tr '\n' ' ')
VM_RW=$ROOT VM_ENV="CI $BENCH_ENV${VM_ENV:-}" VM_TIMEOUT=${VM_TIMEOUT:-900} bash test/vm/run.sh "$CMD"
rc=$?
case $rc in
  124) unavailable "the VM ran out of time (VM_TIMEOUT=${VM_TIMEOUT:-900})" ;;
  125) unavailable "the VM did not start (see above)" ;;
esac
exit $rc
