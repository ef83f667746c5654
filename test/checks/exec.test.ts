// The exec probe with real scripts: exit codes and the last line of output, the target in
// arguments and environment, dynamic weight, hanging and forking scripts killed whole, missing
// programs, floods of output, the process cap, cancellation; no capability passed on, as root
// and as under the systemd unit, and another user.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ExecChecker } from '../../checks/exec.js';
import { execConcurrency, setExecConcurrency } from '../../src/health/processes.js';
import { createChecker } from '../../src/checkers.js';
import { parseConfig } from '../../src/checkers.js';

const fixtures = fileURLToPath(new URL('../../../test/checks/exec-fixtures/', import.meta.url));
const script = (name: string): string => join(fixtures, name);
const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
const ctx = (timeoutMs = 3000, signal = new AbortController().signal) => ({ signal, timeoutMs });
const scratch = (): string => mkdtempSync(join(tmpdir(), 'warden-exec-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `exec /path/to/fixtures/NAME`, as a regex source. */
const about = (name: string): string =>
  `^exec ${script(name).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`;

/**
 * Dead: gone (kill(pid, 0) fails with ESRCH) or a zombie. An orphan is reparented to PID 1,
 * which reaps it on a normal system; this sandbox's PID 1 does not, so a killed orphan stays a
 * zombie here: dead, holding nothing but its pid.
 */
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
const pidIn = (file: string): number => Number(readFileSync(file, 'utf8'));

t.test('exit 0 is healthy; exit 1 is not, with the last line of output', async (t) => {
  const ok = await new ExecChecker({ command: [script('say.sh'), '0', 'all good'] }).check(
    target,
    ctx(),
  );
  t.ok(ok.healthy);
  t.equal(ok.weight, undefined);
  t.match(ok.message, new RegExp(`${about('say.sh')} -> 10\\.0\\.0\\.5:80: exited 0$`));
  const bad = await new ExecChecker({
    command: [script('say.sh'), '1', 'checking', 'service down', ''],
  }).check(target, ctx());
  t.notOk(bad.healthy);
  t.match(bad.message, /-> 10\.0\.0\.5:80: exited 1; output: "service down"$/);
  const three = await new ExecChecker({ command: [script('say.sh'), '3'] }).check(target, ctx());
  t.notOk(three.healthy);
  t.match(three.message, /: exited 3$/, 'no output, no output clause');
});

t.test('stderr counts as output; the line is escaped and shortened', async (t) => {
  const r = await new ExecChecker({
    command: [
      '/bin/sh',
      '-c',
      'echo on stdout; printf "tab\\there \\"q\\" %070d\\n" 0 >&2; exit 4',
    ],
  }).check(target, ctx());
  t.notOk(r.healthy);
  t.match(
    r.message,
    /^exec \/bin\/sh -> 10\.0\.0\.5:80: exited 4; output: "tab\\there \\"q\\" 0{47}\.\.\."$/,
  );
});

t.test('the target reaches the command as placeholders and environment', async (t) => {
  const out = join(scratch(), 'args');
  process.env.WARDEN_TEST_NOT_PASSED = 'leak';
  t.teardown(() => delete process.env.WARDEN_TEST_NOT_PASSED);
  const r = await new ExecChecker({
    command: [
      script('args.sh'),
      out,
      '{address}',
      '{port}',
      '{family}',
      'x={address}:{port} y',
      '{other}',
    ],
    env: { EXTRA: 'yes', WARDEN_PORT: 'overridden?' },
  }).check({ family: 6, address: '2001:db8::5', port: 443 }, ctx());
  t.ok(r.healthy);
  t.match(r.message, new RegExp(`${about('args.sh')} -> \\[2001:db8::5\\]:443: exited 0$`));
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  t.same(
    lines.filter((l) => l.startsWith('arg=')),
    ['arg=2001:db8::5', 'arg=443', 'arg=6', 'arg=x=2001:db8::5:443 y', 'arg={other}'],
    'replaced in place, no shell splitting, unknown braces left alone',
  );
  const env = lines.filter((l) => !l.startsWith('arg='));
  t.ok(env.includes('WARDEN_ADDRESS=2001:db8::5'));
  t.ok(env.includes('WARDEN_PORT=443'), 'the target wins over `env`');
  t.ok(env.includes('WARDEN_FAMILY=6'));
  t.ok(env.includes('EXTRA=yes'));
  t.ok(env.includes(`PATH=${process.env.PATH ?? ''}`));
  t.notOk(
    env.some((l) => l.startsWith('WARDEN_TEST_NOT_PASSED=')),
    "the rest of the daemon's environment is not passed",
  );
});

t.test('dynamic weight: exit 2..255 is healthy with weight code - 2', async (t) => {
  const dyn = (code: number, dynamicWeight = true) =>
    new ExecChecker({ command: [script('say.sh'), String(code), 'said'], dynamicWeight }).check(
      target,
      ctx(),
    );
  const seven = await dyn(7);
  t.ok(seven.healthy);
  t.equal(seven.weight, 5);
  t.match(seven.message, /: exited 7 \(weight 5\)$/);
  const two = await dyn(2);
  t.ok(two.healthy);
  t.equal(two.weight, 0);
  t.match(two.message, /: exited 2 \(weight 0\)$/);
  const zero = await dyn(0);
  t.ok(zero.healthy, 'exit 0: healthy');
  t.equal(zero.weight, undefined, 'with the configured weight');
  t.match(zero.message, /: exited 0$/);
  const one = await dyn(1);
  t.notOk(one.healthy, 'exit 1: unhealthy');
  t.equal(one.weight, undefined);
  t.match(one.message, /: exited 1; output: "said"$/);
  const plain = await dyn(7, false);
  t.notOk(plain.healthy, 'without dynamic mode any non-zero exit fails');
  t.equal(plain.weight, undefined);
  t.match(plain.message, /: exited 7; output: "said"$/);
});

t.test('a command that hangs is killed at the deadline', async (t) => {
  const r = await new ExecChecker({ command: ['/bin/sh', '-c', 'echo working; sleep 30'] }).check(
    target,
    ctx(300),
  );
  t.notOk(r.healthy);
  t.match(
    r.message,
    /^exec \/bin\/sh -> 10\.0\.0\.5:80: timed out after 300 ms waiting for the command to exit$/,
  );
  t.ok(r.durationMs >= 290 && r.durationMs < 1000, `took ${r.durationMs} ms`);
});

t.test('what a hanging command forked dies with it at the deadline', async (t) => {
  const pidFile = join(scratch(), 'child.pid');
  const r = await new ExecChecker({ command: [script('forks.sh'), pidFile] }).check(
    target,
    ctx(500),
  );
  t.notOk(r.healthy);
  t.match(
    r.message,
    /forks\.sh -> 10\.0\.0\.5:80: timed out after 500 ms waiting for the command to exit$/,
  );
  const child = pidIn(pidFile);
  t.ok(child > 0);
  await sleep(100);
  t.ok(dead(child), `the forked child ${child} is dead too`);
});

t.test(
  'a command that exits leaving a child behind: healthy at once, the child killed',
  async (t) => {
    const pidFile = join(scratch(), 'child.pid');
    const r = await new ExecChecker({
      command: ['/bin/sh', '-c', 'sleep 30 & echo $! > "$1"; exit 0', 'sh', pidFile],
    }).check(target, ctx(3000));
    t.ok(r.healthy);
    t.match(r.message, /: exited 0$/);
    t.ok(r.durationMs < 1000, `took ${r.durationMs} ms, not until the child's end`);
    await sleep(100);
    t.ok(dead(pidIn(pidFile)), 'the background child is dead');
  },
);

t.test('a child that left the group (setsid) cannot hold the check past the exit', async (t) => {
  const pidFile = join(scratch(), 'escaped.pid');
  const r = await new ExecChecker({
    command: ['/bin/sh', '-c', 'setsid sleep 30 & echo $! > "$1"; exit 0', 'sh', pidFile],
  }).check(target, ctx(3000));
  // Out of the group's reach: the test kills it (a cgroup would be needed for the daemon to).
  const escaped = pidIn(pidFile);
  t.teardown(() => {
    try {
      process.kill(escaped, 'SIGKILL');
    } catch {
      // gone
    }
  });
  t.ok(r.healthy, 'the exit status is the verdict');
  t.match(r.message, /: exited 0$/);
  t.ok(r.durationMs < 1000, `took ${r.durationMs} ms: the output was cut off after a moment`);
});

t.test('a missing or non-executable program cannot run', async (t) => {
  const missing = await new ExecChecker({ command: ['/nonexistent/check', '{address}'] }).check(
    target,
    ctx(),
  );
  t.notOk(missing.healthy);
  t.equal(missing.local, undefined, 'a config fault: a failure, not a local error');
  t.match(
    missing.message,
    /^exec \/nonexistent\/check -> 10\.0\.0\.5:80: cannot run: ENOENT \(no such file or directory\)$/,
  );
  const weighted = await new ExecChecker({
    command: ['/nonexistent/check'],
    dynamicWeight: true,
  }).check(target, ctx());
  t.notOk(weighted.healthy, 'with dynamic weight too: never an exit code of 126 or 127');
  t.match(weighted.message, /: cannot run: ENOENT \(no such file or directory\)$/);
  const notExec = join(scratch(), 'check.sh');
  writeFileSync(notExec, '#!/bin/sh\nexit 0\n');
  chmodSync(notExec, 0o644);
  const denied = await new ExecChecker({ command: [notExec] }).check(target, ctx());
  t.notOk(denied.healthy);
  t.equal(denied.local, undefined);
  t.match(denied.message, /check\.sh -> 10\.0\.0\.5:80: cannot run: EACCES \(permission denied\)$/);
  const nul = await new ExecChecker({ command: ['/bin/true', 'a\0b'] }).check(target, ctx());
  t.notOk(nul.healthy, 'refused synchronously by spawn, still a result');
  t.match(nul.message, /^exec \/bin\/true -> 10\.0\.0\.5:80: cannot run: /);
});

t.test('killed by a signal is named', async (t) => {
  const r = await new ExecChecker({
    command: ['/bin/sh', '-c', 'echo going down; kill -TERM $$'],
  }).check(target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /^exec \/bin\/sh -> 10\.0\.0\.5:80: killed by SIGTERM; output: "going down"$/);
});

t.test('output: megabytes pass through, only the last maxOutput bytes are kept', async (t) => {
  const chatty = await new ExecChecker({ command: [script('chatty.sh')] }).check(target, ctx());
  t.notOk(chatty.healthy);
  t.match(
    chatty.message,
    /chatty\.sh -> 10\.0\.0\.5:80: exited 1; output: "backend says: degraded"$/,
  );
  t.ok(chatty.durationMs < 2000, `3 MB in ${chatty.durationMs} ms`);
  const capped = await new ExecChecker({
    command: ['/bin/sh', '-c', 'printf "first line\\nabcdefghij"; exit 1'],
    maxOutput: 5,
  }).check(target, ctx());
  t.notOk(capped.healthy);
  t.match(capped.message, /: exited 1; output: "fghij"$/, 'the last 5 bytes');
  const none = await new ExecChecker({
    command: [script('say.sh'), '1', 'hidden'],
    maxOutput: 0,
  }).check(target, ctx());
  t.notOk(none.healthy);
  t.match(none.message, /: exited 1$/, 'maxOutput 0 keeps nothing');
  const flood = await new ExecChecker({ command: ['yes', 'flood'] }).check(target, ctx(300));
  t.notOk(flood.healthy);
  t.match(
    flood.message,
    /^exec yes -> 10\.0\.0\.5:80: timed out after 300 ms waiting for the command to exit$/,
  );
  t.ok(flood.durationMs < 1000, `an endless flood is cut at the deadline (${flood.durationMs} ms)`);
});

t.test('at most N commands run at once; waiting counts against the deadline', async (t) => {
  t.equal(execConcurrency(), 32, 'the default cap');
  t.throws(() => setExecConcurrency(0), 'a cap below 1 is refused');
  setExecConcurrency(2);
  t.teardown(() => setExecConcurrency(32));
  const log = join(scratch(), 'log');
  const checker = new ExecChecker({ command: [script('slow.sh'), log, '0.3'] });
  t.equal(checker.limiter.concurrency, 2, 'the cap is declared, so the scheduler holds no slot');
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 4 }, () => checker.check(target, ctx(5000))),
  );
  const took = performance.now() - started;
  for (const r of results) {
    t.ok(r.healthy);
    t.match(r.message, /slow\.sh -> 10\.0\.0\.5:80: exited 0$/);
  }
  t.ok(took >= 600, `4 checks of 300 ms, 2 at a time, took ${Math.round(took)} ms`);
  const events = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([e, ms]) => [e, Number(ms)] as const)
    // At equal times an end goes first: one slot freed, the next command started.
    .sort((a, b) => a[1] - b[1] || (a[0] === 'end' ? -1 : 1));
  t.equal(events.length, 8);
  let running = 0;
  let most = 0;
  for (const [e] of events) {
    running += e === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  t.equal(most, 2, 'never more than 2 at once');

  const busy = new ExecChecker({ command: [script('slow.sh'), log, '0.5'] });
  const holding = [busy.check(target, ctx(5000)), busy.check(target, ctx(5000))];
  const late = await busy.check(target, ctx(200));
  t.notOk(late.healthy);
  t.match(
    late.message,
    /slow\.sh -> 10\.0\.0\.5:80: timed out after 200 ms waiting for a process slot$/,
  );
  for (const r of await Promise.all(holding)) t.ok(r.healthy);
});

t.test('an abort from the caller kills the command and what it forked', async (t) => {
  const ac = new AbortController();
  const pidFile = join(scratch(), 'child.pid');
  const pending = new ExecChecker({ command: [script('forks.sh'), pidFile] }).check(
    target,
    ctx(10_000, ac.signal),
  );
  setTimeout(() => ac.abort(), 200);
  const r = await pending;
  t.notOk(r.healthy);
  t.match(r.message, /forks\.sh -> 10\.0\.0\.5:80: cancelled waiting for the command to exit$/);
  t.ok(r.durationMs < 1000, `took ${r.durationMs} ms`);
  await sleep(100);
  t.ok(dead(pidIn(pidFile)), 'the forked child is dead');

  const before = new ExecChecker({ command: [script('say.sh'), '0'] }).check(
    target,
    ctx(3000, AbortSignal.abort()),
  );
  const b = await before;
  t.notOk(b.healthy, 'already aborted: nothing runs');
  t.match(b.message, /: cancelled waiting for a process slot$/);
});

/** The lines of a file caps.sh wrote, by name: "CapEff" -> "0000000000000000". */
function statusOf(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => /^(\w+):\s*(.*)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [m[1] ?? '', (m[2] ?? '').trim()]),
  );
}
const NONE = '0000000000000000';
const CAP_SETS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];

t.test('the command runs with no capability at all, though the daemon has them', async (t) => {
  const self = statusOf('/proc/self/status');
  t.not(self.CapEff, NONE, `precondition: this test process has capabilities (${self.CapEff})`);
  const out = join(scratch(), 'caps');
  const r = await new ExecChecker({ command: [script('caps.sh'), out] }).check(target, ctx());
  t.ok(r.healthy, r.message);
  const caps = statusOf(out);
  for (const set of CAP_SETS) t.equal(caps[set], NONE, `${set} of the command`);
  t.equal(caps.Uid?.split(/\s+/)[0], String(process.getuid?.()), "the daemon's own user");
});

t.test('user (and group): the command runs as that user, still with no capability', async (t) => {
  const dir = scratch();
  chmodSync(dir, 0o777); // nobody writes its report here
  const nobody = join(dir, 'nobody');
  const r = await new ExecChecker({ command: [script('caps.sh'), nobody], user: 'nobody' }).check(
    target,
    ctx(),
  );
  t.ok(r.healthy, r.message);
  t.match(r.message, /^exec \S+caps\.sh as nobody -> 10\.0\.0\.5:80: exited 0$/);
  const n = statusOf(nobody);
  t.equal(n.Uid, '65534\t65534\t65534\t65534', 'every uid is nobody');
  t.equal(n.Gid, '65534\t65534\t65534\t65534', "nobody's primary group (nogroup)");
  t.equal(n.Groups, '65534', "nobody's groups only: none of root's");
  for (const set of CAP_SETS) t.equal(n[set], NONE, `${set} as nobody`);

  const grouped = join(dir, 'grouped');
  const g = await new ExecChecker({
    command: [script('caps.sh'), grouped],
    user: 'nobody',
    group: 'daemon',
  }).check(target, ctx());
  t.ok(g.healthy, g.message);
  t.equal(statusOf(grouped).Gid, '1\t1\t1\t1', 'the named group');

  const missing = await new ExecChecker({
    command: [script('caps.sh'), join(dir, 'never')],
    user: 'no-such-user-here',
    dynamicWeight: true,
  }).check(target, ctx());
  t.notOk(missing.healthy, 'an unknown user cannot run, whatever the exit code looks like');
  t.equal(missing.local, undefined, 'a config fault, not a local error');
  t.match(missing.message, /: cannot run: .*no-such-user-here/);
});

t.test(
  "as under the systemd unit: an unprivileged daemon's ambient CAP_NET_ADMIN is not passed on",
  async (t) => {
    const dir = scratch();
    chmodSync(dir, 0o777);
    const fixture = fileURLToPath(new URL('./exec-caps-fixture.js', import.meta.url));
    const own = join(dir, 'plain');
    const child = join(dir, 'child');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'setpriv',
        [
          '--reuid=nobody',
          '--regid=nogroup',
          '--clear-groups',
          '--inh-caps=-all,+net_admin',
          '--ambient-caps=+net_admin',
          '--bounding-set=-all,+net_admin',
          '--',
          process.execPath,
          fixture,
          script('caps.sh'),
          own,
          child,
        ],
        { timeout: 30_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const d = statusOf(own);
    t.equal(
      d.CapAmb,
      '0000000000001000',
      'precondition: a plain child of this daemon gets its CAP_NET_ADMIN (ambient)',
    );
    t.equal(d.CapEff, '0000000000001000', 'and effective');
    const { plain, asOther } = JSON.parse(out) as {
      plain: { healthy: boolean; message: string };
      asOther: { healthy: boolean; message: string; weight?: number };
    };
    t.ok(plain.healthy, plain.message);
    const c = statusOf(child);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb'])
      t.equal(c[set], NONE, `${set} of the command`);
    // Lowering the bounding set needs CAP_SETPCAP, which the unit does not give; with nothing
    // inheritable or ambient, and NoNewPrivileges, nothing in it can be regained.
    t.equal(c.CapBnd, '0000000000001000', "the bounding set stays the daemon's");
    t.notOk(
      asOther.healthy,
      `changing user needs a privilege this daemon lacks: a failure, not weight 125 from setpriv's exit code (${asOther.weight ?? '-'})`,
    );
    t.match(asOther.message, /as daemon -> 10\.0\.0\.5:80: cannot run: .*not permitted/i);
  },
);

t.test('config: user and group reach the checker; a non-string is refused', async (t) => {
  const config = (check: string): string => `daemon: {backend: memory}
virtual_services:
  - {name: web, address: 10.0.0.1, port: 80, real_servers: [{address: 10.0.0.2, checks: [${check}]}]}
`;
  const parsed = parseConfig(
    config('{type: exec, command: [/bin/true], user: nobody, group: daemon}'),
    'x',
    {},
  );
  const check = parsed.virtualServices[0]?.realServers[0]?.checks[0];
  t.match(check, { type: 'exec', options: { user: 'nobody', group: 'daemon' } });
  t.equal(check && createChecker(check).description, 'exec /bin/true as nobody:daemon');
  t.throws(
    () => parseConfig(config('{type: exec, command: [/bin/true], user: [nobody]}'), 'x', {}),
    /checks\[0\]\.user/,
  );
});

t.test('description and key', async (t) => {
  const a = new ExecChecker({ command: ['/usr/lib/check', '{address}'] });
  t.equal(a.kind, 'exec');
  t.equal(a.description, 'exec /usr/lib/check');
  t.equal(a.key, new ExecChecker({ command: ['/usr/lib/check', '{address}'] }).key);
  t.not(a.key, new ExecChecker({ command: ['/usr/lib/check', '{port}'] }).key);
  t.not(
    a.key,
    new ExecChecker({ command: ['/usr/lib/check', '{address}'], dynamicWeight: true }).key,
  );
  t.not(a.key, new ExecChecker({ command: ['/usr/lib/check', '{address}'], env: { A: '1' } }).key);
  t.not(a.key, new ExecChecker({ command: ['/usr/lib/check', '{address}'], maxOutput: 1 }).key);
  t.equal(
    new ExecChecker({ command: ['/usr/lib/check'], user: 'nobody' }).description,
    'exec /usr/lib/check as nobody',
  );
  t.throws(() => new ExecChecker({ command: [] }), /needs a command/);
});
