// The exec probe with real scripts: exit codes, the target in arguments and environment,
// dynamic weight, hanging and forking scripts killed whole, output capped, the process cap.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ExecChecker, setExecConcurrency } from '../../checks/exec.js';

const fixtures = fileURLToPath(new URL('../../../test/checks/exec-fixtures/', import.meta.url));
const script = (name: string): string => join(fixtures, name);
const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
/** Running, as opposed to gone or a zombie (dead, waiting for an init that may never reap it). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
}
const ctx = (timeoutMs = 3000, signal = new AbortController().signal) => ({ signal, timeoutMs });

t.test('exit 0 is healthy; another exit is not, with the last line of output', async (t) => {
  const ok = await new ExecChecker({ command: [script('args.sh'), '0'] }).check(target, ctx());
  t.ok(ok.healthy);
  t.match(ok.message, /^exec .*args\.sh -> 10\.0\.0\.5:80: exited 0$/);
  const bad = await new ExecChecker({ command: [script('args.sh'), '3'] }).check(target, ctx());
  t.notOk(bad.healthy);
  t.match(bad.message, /: exited 3; output: "args=3 env=10\.0\.0\.5:80\/4 extra="$/);
});

t.test('the target reaches the command as placeholders and environment', async (t) => {
  const r = await new ExecChecker({
    command: [script('args.sh'), '1', '{address}', '{port}', '{family}'],
    env: { EXTRA: 'yes' },
  }).check({ family: 6, address: '2001:db8::5', port: 443 }, ctx());
  t.match(r.message, /output: "args=1 2001:db8::5 443 6 env=2001:db8::5:443\/6 extra=yes"$/);
});

t.test('dynamic weight: 2..255 is healthy with weight code - 2', async (t) => {
  const dyn = (code: number) =>
    new ExecChecker({ command: [script('args.sh'), String(code)], dynamicWeight: true }).check(
      target,
      ctx(),
    );
  const w = await dyn(7);
  t.ok(w.healthy);
  t.equal(w.weight, 5);
  t.match(w.message, /exited 7 \(weight 5\)$/);
  t.equal((await dyn(0)).weight, undefined, 'exit 0: healthy, configured weight');
  t.notOk((await dyn(1)).healthy, 'exit 1: unhealthy');
  t.notOk(
    (await new ExecChecker({ command: [script('args.sh'), '7'] }).check(target, ctx())).healthy,
    'without dynamic mode any non-zero exit fails',
  );
});

t.test('a hanging command that forked is killed at the deadline, children and all', async (t) => {
  const pidFile = join(mkdtempSync(join(tmpdir(), 'warden-exec-')), 'child.pid');
  const r = await new ExecChecker({ command: [script('forks.sh'), pidFile] }).check(
    target,
    ctx(500),
  );
  t.notOk(r.healthy);
  t.match(r.message, /: timed out after 500 ms waiting for the command to exit$/);
  const child = Number(readFileSync(pidFile, 'utf8'));
  t.ok(child > 0);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(running(child), 'the forked child is dead too');
});

t.test('a missing program cannot run', async (t) => {
  const r = await new ExecChecker({ command: ['/nonexistent/check'] }).check(target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /^exec \/nonexistent\/check -> 10\.0\.0\.5:80: cannot run: ENOENT/);
});

t.test('megabytes of output are dropped past the cap; the check still ends', async (t) => {
  const r = await new ExecChecker({ command: [script('chatty.sh')], maxOutput: 1000 }).check(
    target,
    ctx(),
  );
  t.notOk(r.healthy);
  t.match(r.message, /: exited 1; output: "x{60}\.\.\."$/, 'only the first 1000 bytes are kept');
  const full = await new ExecChecker({
    command: [script('chatty.sh')],
    maxOutput: 4_000_000,
  }).check(target, ctx());
  t.match(full.message, /output: "backend says: degraded"$/);
});

t.test('at most N commands run at once; the rest wait their turn', async (t) => {
  setExecConcurrency(2);
  t.teardown(() => setExecConcurrency(32));
  const log = join(mkdtempSync(join(tmpdir(), 'warden-exec-')), 'log');
  const checker = new ExecChecker({ command: [script('slow.sh'), log, '0.3'] });
  const results = await Promise.all(
    Array.from({ length: 4 }, () => checker.check(target, ctx(5000))),
  );
  t.ok(results.every((r) => r.healthy));
  const events = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([e, ms]) => [e, Number(ms)] as const)
    .sort((a, b) => a[1] - b[1]);
  let running = 0;
  let most = 0;
  for (const [e] of events) {
    running += e === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  t.equal(most, 2, 'never more than 2 at once');

  const waiting = new ExecChecker({ command: [script('slow.sh'), log, '1'] });
  const busy = [waiting.check(target, ctx(5000)), waiting.check(target, ctx(5000))];
  const late = await waiting.check(target, ctx(200));
  t.notOk(late.healthy);
  t.match(
    late.message,
    /timed out after 200 ms waiting for a process slot$/,
    'waiting for a slot counts against the deadline',
  );
  await Promise.all(busy);
});

t.test('an abort from the caller kills the command', async (t) => {
  const ac = new AbortController();
  const pidFile = join(mkdtempSync(join(tmpdir(), 'warden-exec-')), 'child.pid');
  const pending = new ExecChecker({ command: [script('forks.sh'), pidFile] }).check(
    target,
    ctx(10_000, ac.signal),
  );
  setTimeout(() => ac.abort(), 200);
  const r = await pending;
  t.match(r.message, /cancelled waiting for the command to exit$/);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(running(Number(readFileSync(pidFile, 'utf8'))), 'and what it forked');
});
