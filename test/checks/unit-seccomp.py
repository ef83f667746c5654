#!/usr/bin/python3
# Test fixture: runs a command under the system-call filter a systemd unit would give it, so a
# test can see what a probe does under the unit without systemd as PID 1. Reads the unit file
# and its drop-ins (in order) for SystemCallFilter= and SystemCallErrorNumber=, expands @groups
# with `systemd-analyze syscall-filter`, loads the filter with libseccomp and execs the command.
# Run it as the unprivileged user with no_new_privs already set (setpriv --no-new-privs).
#   unit-seccomp.py UNIT [DROPIN...] -- COMMAND [ARGS...]
import ctypes
import errno
import os
import subprocess
import sys

sep = sys.argv.index('--')
units, command = sys.argv[1:sep], sys.argv[sep + 1:]

groups = {}
current = None
for line in subprocess.run(['systemd-analyze', 'syscall-filter', '--no-pager'],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    if line.startswith('@'):
        current = groups.setdefault(line.strip(), [])
    elif current is not None and line.strip() and not line.strip().startswith('#'):
        current.append(line.strip())


def expand(name, seen=()):
    if not name.startswith('@'):
        return {name}
    if name in seen:
        return set()
    out = set()
    for n in groups.get(name, []):
        out |= expand(n, seen + (name,))
    return out


allow_mode = None
names = set()
error_number = errno.EPERM
for unit in units:
    in_service = False
    for raw in open(unit):
        line = raw.strip()
        if line.startswith('['):
            in_service = line == '[Service]'
            continue
        if not in_service or '=' not in line or line.startswith('#'):
            continue
        key, value = line.split('=', 1)
        if key == 'SystemCallErrorNumber':
            error_number = getattr(errno, value)
        if key != 'SystemCallFilter':
            continue
        deny = value.startswith('~')
        listed = set()
        for n in value.lstrip('~').split():
            listed |= expand(n)
        if allow_mode is None:
            allow_mode = not deny
        if allow_mode != deny:  # allow list + plain, or deny list + ~: add
            names |= listed
        else:
            names -= listed

if allow_mode:
    names |= expand('@default')  # systemd allows these whatever the list says

lib = ctypes.CDLL('libseccomp.so.2')
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
ALLOW = 0x7fff0000
ERRNO = 0x00050000 | error_number
ctx = lib.seccomp_init(ERRNO if allow_mode else ALLOW)
for n in sorted(names):
    nr = lib.seccomp_syscall_resolve_name(n.encode())
    if nr < 0:
        continue  # not a call of this architecture
    if lib.seccomp_rule_add(ctx, ALLOW if allow_mode else ERRNO, nr, 0) != 0:
        sys.exit(f'unit-seccomp: cannot add {n}')
if lib.seccomp_load(ctx) != 0:
    sys.exit('unit-seccomp: seccomp_load failed (no_new_privs not set?)')
os.execvp(command[0], command)
