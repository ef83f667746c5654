// An exec check under the shipped unit: the daemon as the unit runs it (an unprivileged user,
// the unit's capabilities, NoNewPrivileges and its system-call filter, emulated by setpriv and
// unit-seccomp.py, which reads the unit file) runs `probe exec` with a command that exits 0.
// setpriv, which drops the command's capabilities, calls capset: a filter that denies it fails
// every exec check (it did, with the unit's ~@privileged alone).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import t from 'tap';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const seccomp = join(root, 'test/checks/unit-seccomp.py');
const unit = join(root, 'deploy/systemd/ipvs-warden.service');
const main = join(root, 'dist/src/main.js');

function capsOf(file: string, key: string): string {
  const caps = readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((l) => (l.startsWith(`${key}=`) ? l.slice(key.length + 1).split(/\s+/) : []))
    .filter(Boolean)
    .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  return ['-all', ...caps].join(',');
}

function asUnit(args: string[]): Promise<{ code: number; out: string }> {
  const ambient = capsOf(unit, 'AmbientCapabilities');
  return new Promise((resolve) =>
    execFile(
      'setpriv',
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        `--inh-caps=${ambient}`,
        `--ambient-caps=${ambient}`,
        `--bounding-set=${capsOf(unit, 'CapabilityBoundingSet')}`,
        '--no-new-privs',
        '--',
        '/usr/bin/python3',
        seccomp,
        unit,
        '--',
        process.execPath,
        main,
        ...args,
      ],
      // Not the test runner's NODE_OPTIONS (its hooks write where nobody may).
      { timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      (error, out, err) =>
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, out: out + err }),
    ),
  );
}

t.test('an exec check runs under the unit', async (t) => {
  const ok = await asUnit([
    'probe',
    'exec',
    '127.0.0.1:1',
    '--timeout',
    '10000',
    '--',
    '/bin/true',
  ]);
  t.equal(ok.code, 0, ok.out);
  t.match(ok.out, /^healthy in [\d.]+ ms: exec \/bin\/true -> 127\.0\.0\.1:1: exited 0/);
  const bad = await asUnit([
    'probe',
    'exec',
    '127.0.0.1:1',
    '--timeout',
    '10000',
    '--',
    '/bin/false',
  ]);
  t.equal(bad.code, 1, 'and a failing command still fails');
  t.match(bad.out, /exited 1/);
});
