// The director's role: the pure decisions (the `role` arguments, keepalived's notify form, the
// role file's text, the sync daemon a role wants), and `ipvs-warden role` as a process on real
// files in a temp dir.
import t from 'tap';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncSettings } from '../../src/config/daemon.js';
import { parseRoleArgs, parseRoleText, syncRoleFor, type Role } from '../../src/director/role.js';
import { wantedSyncDaemons } from '../../src/reconcile/sync.js';
import { execFile } from 'node:child_process';
import { cli, main } from '../cli/daemon.js';

/** `cli` under umask 077, as keepalived runs its notify scripts. */
function cliUmask(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      '/bin/sh',
      ['-c', 'umask 077; exec "$@"', 'sh', process.execPath, main, ...args],
      (error, out, err) =>
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, out: out + err }),
    ),
  );
}

t.test('parseRoleArgs: by hand and as keepalived calls a notify script', async (t) => {
  const cases: [string[], string][] = [
    [[], 'show'],
    [['master'], 'set master (command line)'],
    [['backup'], 'set backup (command line)'],
    [['fault'], 'set fault (command line)'],
    [['Master'], 'error: role must be master, backup or fault, got "Master"'],
    [['primary'], 'error: role must be master, backup or fault, got "primary"'],
    // keepalived/vrrp/vrrp_notify.c: script {GROUP|INSTANCE} NAME {MASTER|BACKUP|FAULT|STOP} PRIO
    [['INSTANCE', 'VI_1', 'MASTER', '100'], 'set master (keepalived instance VI_1 MASTER)'],
    [['INSTANCE', 'VI_1', 'BACKUP', '90'], 'set backup (keepalived instance VI_1 BACKUP)'],
    [['INSTANCE', 'VI_1', 'FAULT', '0'], 'set fault (keepalived instance VI_1 FAULT)'],
    [['INSTANCE', 'VI_1', 'STOP', '100'], 'set backup (keepalived instance VI_1 STOP)'],
    [['GROUP', 'G1', 'MASTER', '0'], 'set master (keepalived group G1 MASTER)'],
    [
      ['INSTANCE', 'VI_1', '{UNKNOWN}', '100'],
      'error: keepalived notify state must be MASTER, BACKUP, FAULT or STOP, got "{UNKNOWN}"',
    ],
    [
      ['INSTANCE', 'VI_1', 'MASTER', 'high'],
      'error: keepalived notify priority must be a number 0..255, got "high"',
    ],
    [
      ['INSTANCE', 'VI_1', 'MASTER'],
      'error: role takes master, backup or fault (or keepalived\'s notify arguments "INSTANCE NAME STATE PRIORITY"), got "INSTANCE VI_1 MASTER"',
    ],
    [
      ['master', 'backup'],
      'error: role takes master, backup or fault (or keepalived\'s notify arguments "INSTANCE NAME STATE PRIORITY"), got "master backup"',
    ],
  ];
  for (const [args, want] of cases) {
    const r = parseRoleArgs(args);
    const got =
      r.kind === 'show'
        ? 'show'
        : r.kind === 'set'
          ? `set ${r.role} (${r.from})`
          : `error: ${r.message}`;
    t.equal(got, want, args.join(' ') || '(none)');
  }
});

t.test('parseRoleText: one word, any case, surrounding space; else null', async (t) => {
  const cases: [string, Role | null][] = [
    ['master\n', 'master'],
    ['  BACKUP \n', 'backup'],
    ['fault', 'fault'],
    ['', null],
    ['mast', null],
    ['master\nbackup\n', null],
  ];
  for (const [text, want] of cases) t.equal(parseRoleText(text), want, JSON.stringify(text));
});

t.test('follow-role: the sync daemon each role wants, as keepalived lvs_sync_daemon', async (t) => {
  const s: SyncSettings = {
    state: 'follow-role',
    interface: 'eth1',
    syncId: 3,
    group: '224.0.0.81',
    port: 8848,
    ttl: 1,
    maxPacketLength: 0,
  };
  const cases: [SyncSettings['state'], Role | null, string][] = [
    ['follow-role', 'master', 'master'],
    ['follow-role', 'backup', 'backup'],
    ['follow-role', 'fault', 'backup'],
    ['follow-role', null, 'backup'],
    // A fixed state ignores the role.
    ['master', 'backup', 'master'],
    ['backup', 'master', 'backup'],
    ['both', null, 'master,backup'],
    ['none', 'master', 'untouched'],
  ];
  for (const [state, role, want] of cases) {
    const got = wantedSyncDaemons({ ...s, state }, role);
    t.equal(got ? got.map((d) => d.state).join(',') : 'untouched', want, `${state}, role ${role}`);
  }
  t.equal(syncRoleFor(null), 'backup');
  t.match(wantedSyncDaemons(s, 'master'), [{ interface: 'eth1', syncId: 3 }], 'with the settings');
});

t.test('ipvs-warden role: writes, prints, takes keepalived arguments', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'warden-role-'));
  const dir = join(tmp, 'state', 'sub');
  // keepalived runs notify scripts with umask 077: the modes must not depend on it.
  const r1 = await cliUmask('role', 'INSTANCE', 'VI_1', 'MASTER', '100', '--state-dir', dir);
  t.equal(r1.code, 0, r1.out);
  t.match(r1.out, `role master written to ${dir}/role (from keepalived instance VI_1 MASTER)`);
  t.equal(await readFile(join(dir, 'role'), 'utf8'), 'master\n');
  t.equal((await stat(dir)).mode & 0o777, 0o755, 'the missing directory made 0755');
  t.equal((await stat(join(tmp, 'state'))).mode & 0o777, 0o755, 'and its missing parent');
  t.equal((await stat(join(dir, 'role'))).mode & 0o777, 0o644, 'the file 0644');
  t.same(await readdir(dir), ['role'], 'no temporary file left');
  t.same(await cli('role', '--state-dir', dir), { code: 0, out: 'master\n' }, 'printed');

  // Options after the role, as `notify "/usr/bin/ipvs-warden role --state-dir DIR"` gives them
  // before keepalived's four.
  t.equal((await cli('role', '--state-dir', dir, 'INSTANCE', 'VI_1', 'STOP', '100')).code, 0);
  t.equal(await readFile(join(dir, 'role'), 'utf8'), 'backup\n', 'STOP: backup');
  t.equal((await cli('role', 'fault', '--state-dir', dir)).code, 0);
  t.equal(await readFile(join(dir, 'role'), 'utf8'), 'fault\n');

  const cfg = join(tmp, 'w.yaml');
  const other = join(tmp, 'from-config');
  await writeFile(cfg, `daemon:\n  state_dir: ${other}\nvirtual_services: []\n`);
  t.equal((await cli('role', 'master', '--config', cfg)).code, 0);
  t.equal(await readFile(join(other, 'role'), 'utf8'), 'master\n', "the config's state_dir");
  t.match(await cli('role', 'master', '--config', join(tmp, 'missing.yaml')), {
    code: 1,
    out: /missing\.yaml: 1 problem:\n.*cannot read: ENOENT/,
  });
  t.match(await cli('role', '--state-dir', join(tmp, 'none')), {
    code: 0,
    out: /^none \(no .*\/none\/role: the daemon takes the backup side\)/,
  });
  await writeFile(join(other, 'role'), 'primary\n');
  t.match(await cli('role', '--config', cfg), {
    code: 1,
    out: /role holds "primary\\n", not a role: write one with "ipvs-warden role master\|backup\|fault"/,
  });

  const usage: [string[], RegExp][] = [
    [
      ['role', 'primary', '--state-dir', dir],
      /role must be master, backup or fault, got "primary"/,
    ],
    [['role', 'INSTANCE', 'VI_1', 'UP', '1', '--state-dir', dir], /state must be MASTER, BACKUP/],
    [['role', 'master', '--state-dir', 'rel/dir'], /--state-dir must be an absolute path/],
    [['role', 'master', '--state-dir', dir, '--config', cfg], /--config FILE or --state-dir DIR/],
    [['role', 'master', '--colour'], /Unknown option '--colour'/],
  ];
  for (const [args, message] of usage) {
    const r = await cli(...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.out, message);
    t.match(r.out, /Usage: ipvs-warden/);
  }
  t.equal(await readFile(join(dir, 'role'), 'utf8'), 'fault\n', 'a usage error writes nothing');

  // A file where the directory should be: said in one line, exit 1.
  await writeFile(join(tmp, 'file'), '');
  const bad = await cli('role', 'master', '--state-dir', join(tmp, 'file', 'x'));
  t.same(bad, { code: 1, out: `ipvs-warden: cannot write ${tmp}/file/x/role: ENOTDIR\n` });
});
