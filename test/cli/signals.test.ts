// The daemon's signals from its first moment to its last, with real processes and real signals:
// a SIGHUP or SIGTERM sent as soon as the pid file appears, `ipvs-warden reload` sent the moment
// the daemon is spawned, a SIGHUP the moment the process catches it (before its config is read),
// and a SIGHUP and a second SIGTERM while it stops. None may end the process by a signal (which
// systemd's Restart=on-failure counts as a clean exit, so a director would be left unmanaged);
// a SIGHUP that came early is a reload once the daemon is ready, and SIGTERM exits 0.
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { until } from '../checks/servers.js';
import { cli, main, names, spawnDaemon, type Daemon } from './daemon.js';

function config(dir: string, more = ''): { file: string; pidFile: string } {
  const file = join(dir, 'warden.yaml');
  const pidFile = join(dir, 'warden.pid');
  writeFileSync(
    file,
    `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:0", pid_file: ${pidFile}${more}}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [], real_servers: [{address: 192.0.2.11}]}
`,
  );
  return { file, pidFile };
}

const after = (d: Daemon, first: string, then: string): boolean => {
  const seen = names(d);
  const i = seen.indexOf(first);
  return i >= 0 && seen.indexOf(then, i) > i;
};

/** Polls as fast as the test can: the point is to hit the first moment, not to wait. */
async function soon(cond: () => boolean, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

/**
 * Whether the daemon has a handler for `signal` (its bit in /proc/PID/status SigCgt). Until its
 * exec the child is a copy of this process, with tap's handlers: the command line tells.
 */
function catches(pid: number, signal: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!argv.startsWith(`${process.execPath}\0${main}\0run\0`)) return false;
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(signal - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}
const SIGHUP = 1;

/**
 * Whether no signal waits for `pid` in the kernel (SigPnd of each thread, ShdPnd of the process):
 * each one sent has reached node's handler, which queues it for the event loop at once.
 */
function delivered(pid: number): boolean {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.every((tid) => {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].every(
        (m) => BigInt(`0x${m[1]}`) === 0n,
      );
    });
  } catch {
    return true; // gone
  }
}

t.test('a SIGHUP as soon as the pid file appears: not fatal, a reload once ready', async (t) => {
  for (let round = 1; round <= 3; round++) {
    const { file, pidFile } = config(mkdtempSync(join(tmpdir(), 'warden-sig-')));
    const d = spawnDaemon(file);
    t.teardown(() => d.proc.kill('SIGKILL'));
    t.ok(await soon(() => existsSync(pidFile)), `round ${round}: the pid file appears`);
    d.proc.kill('SIGHUP');
    t.ok(
      await until(() => after(d, 'daemon.started', 'config.reloaded'), 20_000),
      `round ${round}: the SIGHUP is a reload after the start`,
    );
    d.proc.kill('SIGTERM');
    t.same(await d.exited, { code: 0, signal: null }, `round ${round}: SIGTERM exits 0`);
  }
});

t.test('a SIGTERM as soon as the pid file appears: exit 0, not death by signal', async (t) => {
  for (let round = 1; round <= 2; round++) {
    const { file, pidFile } = config(mkdtempSync(join(tmpdir(), 'warden-sig-')));
    const d = spawnDaemon(file);
    t.teardown(() => d.proc.kill('SIGKILL'));
    t.ok(await soon(() => existsSync(pidFile)), `round ${round}: the pid file appears`);
    d.proc.kill('SIGTERM');
    t.same(await d.exited, { code: 0, signal: null }, `round ${round}: exit 0`);
    t.notOk(existsSync(pidFile), `round ${round}: the pid file is removed`);
  }
});

t.test(
  '`ipvs-warden reload --pid` at once after spawn: it waits until the daemon can take it',
  async (t) => {
    for (let round = 1; round <= 3; round++) {
      const { file } = config(mkdtempSync(join(tmpdir(), 'warden-sig-')));
      const d = spawnDaemon(file);
      t.teardown(() => d.proc.kill('SIGKILL'));
      const reload = await cli('reload', '--config', file, '--pid', String(d.pid));
      t.equal(reload.code, 0, `round ${round}: ${reload.out}`);
      t.ok(
        await until(() => after(d, 'daemon.started', 'config.reloaded'), 20_000),
        `round ${round}: reloaded once ready`,
      );
      d.proc.kill('SIGTERM');
      t.same(await d.exited, { code: 0, signal: null }, `round ${round}: SIGTERM exits 0`);
    }
  },
);

t.test(
  '`reload` to a daemon frozen before it catches SIGHUP: refused in time, and it lives',
  async (t) => {
    const { file } = config(mkdtempSync(join(tmpdir(), 'warden-sig-')));
    // Stopped before Node boots (a SIGHUP now would end it): the reload must not send one.
    const d = spawnDaemon(file, undefined, true);
    t.teardown(() => d.proc.kill('SIGKILL'));
    const state = (): string =>
      /\) (\S)/.exec(readFileSync(`/proc/${d.pid}/stat`, 'utf8'))?.[1] ?? '?';
    t.ok(await until(() => state() === 'T', 20_000), 'stopped itself');
    const reload = await cli(
      'reload',
      '--config',
      file,
      '--pid',
      String(d.pid),
      '--timeout',
      '1000',
    );
    t.equal(reload.code, 1, 'refused');
    t.match(reload.out, /^ipvs-warden: process \d+ does not catch SIGHUP yet .*1000 ms/m);
    d.proc.kill('SIGCONT');
    t.ok(await until(() => names(d).includes('daemon.started'), 20_000), 'it starts');
    d.proc.kill('SIGTERM');
    t.same(await d.exited, { code: 0, signal: null }, 'and SIGTERM exits 0');
  },
);

t.test('a SIGHUP the moment the process catches it, before its config is read', async (t) => {
  for (let round = 1; round <= 3; round++) {
    const { file } = config(mkdtempSync(join(tmpdir(), 'warden-sig-')));
    const d = spawnDaemon(file);
    t.teardown(() => d.proc.kill('SIGKILL'));
    // The catch is in place before the program's modules load, some tenths of a second before
    // the config is read: this SIGHUP comes while the daemon is starting.
    t.ok(await soon(() => catches(d.pid, SIGHUP)), `round ${round}: SIGHUP is caught`);
    d.proc.kill('SIGHUP');
    t.ok(
      await until(() => after(d, 'daemon.started', 'config.reloaded'), 20_000),
      `round ${round}: queued, then a reload once ready`,
    );
    t.equal(names(d).filter((e) => e === 'config.reloaded').length, 1, 'one reload');
    d.proc.kill('SIGTERM');
    t.same(await d.exited, { code: 0, signal: null }, `round ${round}: SIGTERM exits 0`);
  }
});

t.test('a SIGHUP and a second SIGTERM while the daemon stops: not fatal', async (t) => {
  // The daemon's log goes to a FIFO that the test fills: its writes queue up, so after its stop
  // the process stays until the test drains the pipe. Nothing here depends on timing.
  const dir = mkdtempSync(join(tmpdir(), 'warden-sig-'));
  const { file, pidFile } = config(dir);
  const fifo = join(dir, 'log');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const out = openSync(fifo, constants.O_WRONLY);
  const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  const daemon = spawnDaemon(file, out);
  const proc = daemon.proc;
  closeSync(out);
  t.teardown(() => {
    proc.kill('SIGKILL');
    closeSync(reader);
    closeSync(filler);
  });
  const exited = daemon.exited;
  let done = false;
  void exited.then(() => (done = true));
  const d = { events: [] as Record<string, unknown>[] };
  let rest = '';
  const buf = Buffer.alloc(1 << 16);
  /** Reads what the pipe holds now (the daemon's lines, and the test's filler, skipped). */
  const drain = (): void => {
    for (;;) {
      let n: number;
      try {
        n = readSync(reader, buf);
      } catch {
        return; // EAGAIN: empty for now
      }
      if (n === 0) return;
      rest += buf.subarray(0, n).toString().replaceAll('#', '');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('{')) d.events.push(JSON.parse(l) as never);
    }
  };
  t.ok(
    await until(() => (drain(), names(d).includes('daemon.started')), 20_000),
    'the daemon started',
  );
  // Fill the pipe to the last byte (blocks, then single bytes: a write that does not fit whole
  // fails): every line the daemon writes from here on waits for the test.
  for (const size of [4096, 1]) {
    const block = Buffer.alloc(size, '#');
    for (;;) {
      try {
        writeSync(filler, block);
      } catch {
        break;
      }
    }
  }
  proc.kill('SIGTERM');
  // The pid file goes at the very end of the stop: from then on the process is held only by
  // the lines it could not write yet.
  t.ok(await until(() => !existsSync(pidFile), 20_000), 'the stop has run to its end');
  proc.kill('SIGHUP');
  proc.kill('SIGTERM');
  proc.kill('SIGINT');
  // A kill(2) only marks the signal pending; a busy machine may run the thread that takes it
  // after the daemon's last turn of its loop, and a signal handed to node after that is never
  // read (as it would not be in production: the log is closed by then). Drained only once all
  // three are with node, so the lines they cause are still written.
  t.ok(await until(() => delivered(proc.pid ?? 0), 20_000), 'the kernel has handed all three over');
  t.ok(await until(() => (drain(), done), 20_000), 'it exits once its log is read');
  t.same(await exited, { code: 0, signal: null }, 'exit 0, not death by signal');
  drain();
  t.same(
    d.events
      .filter((e) => e.event === 'daemon.signal_ignored')
      .map((e) => e.signal)
      .sort(),
    ['SIGHUP', 'SIGINT', 'SIGTERM'],
    'each signal during the stop is noted and ignored',
  );
  t.equal(names(d).at(-1), 'daemon.signal_ignored');
});
