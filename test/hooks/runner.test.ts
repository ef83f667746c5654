// The hook runner with real processes: the arguments and environment a command gets, a shell
// line run only when asked for, a hanging command (and what it forked) killed at its deadline,
// failures logged and counted, the shared process cap, a bounded queue, runs of one server in
// order, and no capability passed on (as exec checks: test/checks/exec.test.ts).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { HookRun } from '../../src/hooks/decide.js';
import { HookRunner, type HookResult } from '../../src/hooks/runner.js';
import { execConcurrency, setExecConcurrency } from '../../src/health/processes.js';
import { MemoryLog } from '../../src/log.js';

const fixtures = fileURLToPath(new URL('../../../test/checks/exec-fixtures/', import.meta.url));
const script = (name: string): string => join(fixtures, name);
const scratch = (): string => mkdtempSync(join(tmpdir(), 'warden-hook-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hook(program: string, args: string[], more: Partial<HookRun> = {}): HookRun {
  return {
    hook: 'server_down',
    service: 'web',
    server: 'a',
    program,
    args,
    env: { WARDEN_HOOK: 'server_down', WARDEN_SERVICE: 'web', WARDEN_SERVER: 'a' },
    timeoutMs: 3000,
    key: 'web\na',
    ...more,
  };
}

function runner(more: { maxQueued?: number } = {}) {
  const log = new MemoryLog();
  const results: [string, HookResult][] = [];
  const r = new HookRunner({ log, onResult: (h, res) => results.push([h, res]), ...more });
  return { log, results, r };
}

function dead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z';
  } catch {
    return true;
  }
}

t.test('the facts reach the command as arguments and environment; success at debug', async (t) => {
  const { log, results, r } = runner();
  const out = join(scratch(), 'args');
  const started = performance.now();
  r.run([hook(script('args.sh'), [out, 'web', 'a b', 'down'])]);
  t.ok(performance.now() - started < 50, 'run() returns at once');
  await r.idle();
  const lines = readFileSync(out, 'utf8').split('\n');
  t.same(lines.slice(0, 3), ['arg=web', 'arg=a b', 'arg=down']);
  t.ok(lines.includes('WARDEN_SERVICE=web'));
  t.ok(lines.includes('WARDEN_HOOK=server_down'));
  t.notOk(
    // (tap's own instrumentation adds its variables to every child in a test run)
    lines.some((l) => l.startsWith('HOME=') || l.startsWith('USER=')),
    "none of the daemon's environment but PATH",
  );
  t.same(results, [['server_down', 'success']]);
  t.match(
    log.events.filter((e) => e.event === 'hook.ran'),
    [{ level: 'debug', fields: { hook: 'server_down', service: 'web', server: 'a' } }],
  );
});

t.test('a shell line runs with /bin/sh -c; the facts are variables', async (t) => {
  const { results, r } = runner();
  const out = join(scratch(), 'sh');
  r.run([hook('/bin/sh', ['-c', `echo "$WARDEN_SERVICE/$WARDEN_SERVER" > ${out}`])]);
  await r.idle();
  t.equal(readFileSync(out, 'utf8'), 'web/a\n');
  t.same(results, [['server_down', 'success']]);
});

t.test(
  'failures: non-zero exit, a missing program, logged as hook.failed and counted',
  async (t) => {
    const { log, results, r } = runner();
    r.run([
      hook('/bin/sh', ['-c', 'echo broken >&2; exit 3'], { key: '1' }),
      hook('/nonexistent/notify', [], { key: '2', hook: 'fallback_on' }),
    ]);
    await r.idle();
    t.same(results.sort(), [
      ['fallback_on', 'error'],
      ['server_down', 'failure'],
    ]);
    t.same(
      log.events.filter((e) => e.event === 'hook.failed').map((e) => e.level),
      ['warn', 'warn'],
    );
    const failed = log.named('hook.failed');
    t.ok(failed.some((f) => f.message === 'exited 3; output: "broken"'));
    t.ok(failed.some((f) => /^cannot run: .*No such file or directory/.test(String(f.message))));
  },
);

t.test('a hanging command and what it forked are killed at the deadline', async (t) => {
  const { log, results, r } = runner();
  const pidFile = join(scratch(), 'child.pid');
  const started = performance.now();
  r.run([hook(script('forks.sh'), [pidFile], { timeoutMs: 300 })]);
  await r.idle();
  const took = performance.now() - started;
  t.ok(took >= 300 && took < 2000, `killed at the deadline (${Math.round(took)} ms)`);
  t.same(results, [['server_down', 'timeout']]);
  t.match(log.named('hook.failed'), [{ result: 'timeout', message: /^killed after 300 ms/ }]);
  const child = Number(readFileSync(pidFile, 'utf8'));
  await sleep(100);
  t.ok(dead(child), `the forked child ${child} is dead too`);
});

t.test('the shared process cap bounds hooks too', async (t) => {
  const before = execConcurrency();
  setExecConcurrency(2);
  t.teardown(() => setExecConcurrency(before));
  const { results, r } = runner();
  const dir = scratch();
  const line = `touch ${dir}/$$; ls ${dir} | grep -c . >> ${dir}.seen; sleep 0.2; rm ${dir}/$$`;
  r.run(Array.from({ length: 6 }, (_, i) => hook('/bin/sh', ['-c', line], { key: String(i) })));
  await r.idle();
  const seen = readFileSync(`${dir}.seen`, 'utf8').trim().split('\n').map(Number);
  t.equal(seen.length, 6);
  t.ok(Math.max(...seen) <= 2, `at most 2 at once (${seen.join(',')})`);
  t.equal(results.filter(([, res]) => res === 'success').length, 6);
});

t.test('runs of one server run in order; more than maxQueued are dropped', async (t) => {
  const { log, results, r } = runner({ maxQueued: 3 });
  const out = join(scratch(), 'order');
  const say = (word: string, ms: string): HookRun =>
    hook('/bin/sh', ['-c', `sleep ${ms}; echo ${word} >> ${out}`]);
  r.run([say('down', '0.2'), say('up', '0'), say('down2', '0'), say('dropped', '0')]);
  await r.idle();
  t.equal(readFileSync(out, 'utf8'), 'down\nup\ndown2\n');
  t.same(results.at(0), ['server_down', 'dropped']);
  t.match(log.named('hook.failed'), [{ result: 'dropped' }]);
});

t.test('the command runs with no capability at all, though the daemon has them', async (t) => {
  const NONE = '0000000000000000';
  const status = (text: string): Record<string, string> =>
    Object.fromEntries(
      text
        .trim()
        .split('\n')
        .map((l) => /^(\w+):\s*(.*)$/.exec(l))
        .filter((m) => m !== null)
        .map((m) => [m[1] ?? '', (m[2] ?? '').trim()]),
    );
  const self = status(readFileSync('/proc/self/status', 'utf8'));
  t.not(self.CapEff, NONE, `precondition: this test process has capabilities (${self.CapEff})`);
  const { r } = runner();
  const out = join(scratch(), 'caps');
  r.run([hook(script('caps.sh'), [out])]);
  await r.idle();
  const caps = status(readFileSync(out, 'utf8'));
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'])
    t.equal(caps[set], NONE, `${set} of the hook`);
});

t.test(
  'user and group: the hook runs as them (keepalived notify_up SCRIPT USER GROUP)',
  async (t) => {
    t.equal(
      process.getuid?.(),
      0,
      'precondition: the test runs as root (CI does), as setuid needs',
    );
    const dir = scratch();
    chmodSync(dir, 0o777); // nobody writes its report here
    const { r, log } = runner();
    r.run([
      hook('/bin/sh', ['-c', `id -u > ${dir}/as-user; id -g >> ${dir}/as-user`], {
        user: 'nobody',
      }),
      hook('/bin/sh', ['-c', `id -u > ${dir}/as-group; id -g >> ${dir}/as-group`], {
        user: 'nobody',
        group: 'daemon',
        key: 'other',
      }),
      hook('/bin/true', [], { user: 'no-such-user-here', key: 'third' }),
    ]);
    await r.idle();
    const ids = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n');
    const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
    const nogroup = execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim();
    const daemon = execFileSync('getent', ['group', 'daemon'], { encoding: 'utf8' }).split(':')[2];
    t.same(ids('as-user'), [nobody, nogroup], "nobody, in nobody's own group");
    t.same(ids('as-group'), [nobody, daemon], 'nobody, in the group given');
    t.match(log.named('hook.failed'), [
      { result: 'error', message: /^cannot run: id: .*no-such-user-here.*no such user/ },
    ]);
  },
);

t.test('stop: the running hook ends, the waiting ones are dropped, later ones too', async (t) => {
  const { results, r } = runner();
  const out = join(scratch(), 'stop');
  r.run([
    hook('/bin/sh', ['-c', `sleep 0.2; echo first >> ${out}`]),
    hook('/bin/sh', ['-c', `echo second >> ${out}`]),
  ]);
  await sleep(50);
  await r.stop();
  r.run([hook('/bin/sh', ['-c', `echo third >> ${out}`], { key: 'other' })]);
  await r.idle();
  t.equal(readFileSync(out, 'utf8'), 'first\n');
  t.same(
    results,
    [
      ['server_down', 'success'],
      ['server_down', 'dropped'],
      ['server_down', 'dropped'],
    ],
    'the running one, then the waiting one, then one asked for after the stop',
  );
});
