// The pid file with real files, links and processes: a symlink planted in its place is refused
// and its target left alone; a second daemon with the same config is refused while the first
// keeps its pid file; a stale file naming a live unrelated process is taken over by the daemon,
// and `ipvs-warden reload` signals nothing it names; a file that no longer names the daemon is
// not removed at its stop.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
  linkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, until } from '../checks/servers.js';
import { cli, exitOf, exitWithin, names, spawnDaemon, type Daemon } from './daemon.js';

async function setup(): Promise<{ dir: string; file: string; pidFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-pid-'));
  const file = join(dir, 'warden.yaml');
  const pidFile = join(dir, 'warden.pid');
  writeFileSync(
    file,
    `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:${await freePort()}", pid_file: ${pidFile}}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [], real_servers: [{address: 192.0.2.11}]}
`,
  );
  return { dir, file, pidFile };
}

async function started(t: Test, d: Daemon): Promise<void> {
  t.teardown(() => d.proc.kill('SIGKILL'));
  t.ok(await until(() => names(d).includes('daemon.started'), 20_000), 'the daemon started');
}

/** A process that is not ours: `sleep`, which SIGHUP would end. */
function sleeper(t: Test): { pid: number; alive: () => boolean } {
  const proc = spawn('sleep', ['600'], { stdio: 'ignore' });
  let exited = false;
  void exitOf(proc).then(() => (exited = true));
  t.teardown(() => proc.kill('SIGKILL'));
  return { pid: proc.pid ?? 0, alive: () => !exited };
}

/** `pid start-time`, as the daemon writes it, read back. */
const pidIn = (path: string): string => readFileSync(path, 'utf8').split('\n')[0] ?? '';

t.test('a symlink planted as the pid file: refused, and its target left as it was', async (t) => {
  const { dir, file, pidFile } = await setup();
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, pidFile);
  const d = spawnDaemon(file);
  t.teardown(() => d.proc.kill('SIGKILL'));
  t.same(await exitWithin(d), { code: 1, signal: null }, 'exit 1');
  t.match(d.errors.join(''), /^ipvs-warden: pid file .*warden\.pid is a symbolic link/m);
  t.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the target is untouched');
  t.notOk(names(d).includes('daemon.starting'), 'nothing was started');

  // A dangling link (the target made later by whoever planted it) is refused the same way.
  const dangling = await setup();
  symlinkSync(join(dangling.dir, 'not-yet'), dangling.pidFile);
  const e = spawnDaemon(dangling.file);
  t.teardown(() => e.proc.kill('SIGKILL'));
  t.same(await exitWithin(e), { code: 1, signal: null });
  t.notOk(existsSync(join(dangling.dir, 'not-yet')), 'nothing created through it');

  // So is a hard link: writing the pid would change the other name's file too.
  const hard = await setup();
  const other = join(hard.dir, 'other');
  writeFileSync(other, 'precious\n');
  linkSync(other, hard.pidFile);
  const h = spawnDaemon(hard.file);
  t.teardown(() => h.proc.kill('SIGKILL'));
  t.same(await exitWithin(h), { code: 1, signal: null });
  t.match(h.errors.join(''), /has 2 links/);
  t.equal(readFileSync(other, 'utf8'), 'precious\n');
});

t.test(
  'a second daemon with the same config is refused; the first keeps its pid file',
  async (t) => {
    const { file, pidFile } = await setup();
    const first = spawnDaemon(file);
    await started(t, first);
    const written = readFileSync(pidFile, 'utf8');
    t.equal(pidIn(pidFile), String(first.pid), 'the pid file names the first');

    const second = spawnDaemon(file);
    t.teardown(() => second.proc.kill('SIGKILL'));
    const outcome = await Promise.race([
      second.exited,
      until(() => false, 20_000).then(() => 'still running'),
    ]);
    t.same(outcome, { code: 1, signal: null }, 'the second exits 1');
    t.match(
      second.errors.join(''),
      new RegExp(`another ipvs-warden \\(pid ${first.pid}\\) holds the pid file`),
    );
    t.notOk(names(second).includes('daemon.starting'), 'it started nothing');
    t.equal(readFileSync(pidFile, 'utf8'), written, 'the pid file is as the first wrote it');

    const reload = await cli('reload', '--config', file);
    t.equal(reload.code, 0, reload.out);
    t.match(reload.out, `asked process ${first.pid} to reload`);
    t.ok(await until(() => names(first).includes('config.reloaded'), 20_000), 'the first reloads');

    first.proc.kill('SIGTERM');
    t.same(await first.exited, { code: 0, signal: null });
    t.notOk(existsSync(pidFile), 'removed at its stop');
  },
);

t.test('a stale pid file naming a live process that is not ours', async (t) => {
  const { file, pidFile } = await setup();
  const sleep = sleeper(t);

  // What an older daemon, or anyone, left: the pid alone.
  writeFileSync(pidFile, `${sleep.pid}\n`);
  const refused = await cli('reload', '--config', file, '--timeout', '500');
  t.equal(refused.code, 1, 'reload refuses');
  t.match(
    refused.out,
    new RegExp(`^ipvs-warden: process ${sleep.pid} .*is not an ipvs-warden daemon.*sleep 600`, 'm'),
  );
  const byPid = await cli(
    'reload',
    '--config',
    file,
    '--pid',
    String(sleep.pid),
    '--timeout',
    '500',
  );
  t.equal(byPid.code, 1, 'and so with --pid');
  // With the start time, a reused pid is told apart at once.
  writeFileSync(pidFile, `${sleep.pid}\n1\n`);
  const stale = await cli('reload', '--config', file);
  t.equal(stale.code, 1);
  t.match(stale.out, /is not the process that wrote .*warden\.pid \(it started at another time\)/);
  t.ok(sleep.alive(), 'the sleep lives');

  // The daemon takes a stale file over, and removes it at its stop.
  const d = spawnDaemon(file);
  await started(t, d);
  t.equal(pidIn(pidFile), String(d.pid), 'the pid file names the daemon now');
  d.proc.kill('SIGTERM');
  t.same(await d.exited, { code: 0, signal: null });
  t.notOk(existsSync(pidFile));
  t.ok(sleep.alive(), 'the sleep lives');
});

t.test('a pid file that no longer names the daemon is not removed at its stop', async (t) => {
  const { file, pidFile } = await setup();
  const d = spawnDaemon(file);
  await started(t, d);
  writeFileSync(pidFile, '1\n');
  d.proc.kill('SIGTERM');
  t.same(await d.exited, { code: 0, signal: null });
  t.equal(readFileSync(pidFile, 'utf8'), '1\n', 'left as someone else wrote it');
});
