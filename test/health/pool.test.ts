// Probes on worker threads (src/health/pool.ts), against real servers on 127.0.0.1 and ::1: a
// pooled check says what the same check says on the main thread, checks spread over the
// workers and run off the main thread, a cancel reaches the worker's socket, a worker that
// dies or hangs is replaced and its checks end as local results, what stays on the main thread
// stays there, and a worker's malformed messages are dropped.
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { threadId } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { CATALOG } from '../../checks/index.js';
import { createChecker } from '../../src/checkers.js';
import type { CheckContext, CheckTarget, Checker } from '../../src/health/checker.js';
import { ProbePool, type ProbePoolOptions, type PooledCheck } from '../../src/health/pool.js';
import { normalOptions } from '../../src/health/schema.js';
import { closedPort, listen, until } from '../checks/servers.js';

const worker = new URL('./pool-worker.js', import.meta.url);

function context(timeoutMs = 2000, signal = new AbortController().signal): CheckContext {
  return { signal, timeoutMs };
}

function poolOf(t: Test, options: Partial<ProbePoolOptions> = {}): ProbePool {
  const pool = new ProbePool({ threads: 2, worker, ...options });
  t.teardown(() => pool.close());
  return pool;
}

/** A check of the catalog as the config makes it (defaults filled in). */
function spec(type: string, given: Record<string, unknown> = {}): PooledCheck {
  const declaration = CATALOG.get(type);
  if (!declaration) throw new Error(type);
  return { type, options: normalOptions(declaration.options, given as never) };
}

/** A kind only the test worker knows: its main-thread checker must never run. */
function special(type: string, options: Record<string, unknown> = {}): [PooledCheck, Checker] {
  return [
    { type, options },
    {
      kind: type,
      description: type,
      key: `${type} ${JSON.stringify(options)}`,
      check: () => Promise.reject(new Error('ran on the main thread')),
    },
  ];
}

const here: CheckTarget = { family: 4, address: '127.0.0.1', port: 9 };

t.test('a pooled check says what it says on the main thread, on 127.0.0.1 and ::1', async (t) => {
  const pool = poolOf(t);
  for (const host of ['127.0.0.1', '::1'] as const) {
    let status = 200;
    const web = await listen(
      createHttpServer((_q, res) => ((res.statusCode = status), res.end('ok'))),
      host,
    );
    t.teardown(() => web.stop());
    const closed = await closedPort(host);
    const cases: [string, PooledCheck, CheckTarget, () => void][] = [
      ['http 200', spec('http', { path: '/healthz' }), web.target, () => (status = 200)],
      ['http 503', spec('http', { path: '/healthz' }), web.target, () => (status = 503)],
      ['tcp open', spec('tcp'), web.target, () => undefined],
      ['tcp refused', spec('tcp'), closed, () => undefined],
    ];
    for (const [name, check, target, set] of cases) {
      set();
      const inline = createChecker(check);
      const pooled = pool.wrap(check, createChecker(check));
      const a = await inline.check(target, context());
      const b = await pooled.check(target, context());
      t.same(
        { healthy: b.healthy, message: b.message, local: b.local, weight: b.weight },
        { healthy: a.healthy, message: a.message, local: a.local, weight: a.weight },
        `${host} ${name}: ${a.message}`,
      );
      t.equal(pooled.key, inline.key, 'the same merge key');
      t.notOk('weight' in b, 'no weight where the check gives none');
    }
  }
  t.equal(
    pool.stats().handed.reduce((a, b) => a + b),
    8,
    'every check went to a worker',
  );
});

t.test('checks spread over the workers, each run off the main thread', async (t) => {
  const pool = poolOf(t);
  const [check, inner] = special('thread', { wait_ms: 100 });
  const pooled = pool.wrap(check, inner);
  const results = await Promise.all(
    Array.from({ length: 20 }, () => pooled.check(here, context())),
  );
  t.ok(results.every((r) => r.healthy));
  const threads = new Set(results.map((r) => r.message));
  t.equal(threads.size, 2, `two threads: ${[...threads].join(', ')}`);
  t.notOk(threads.has(`thread ${threadId}`), 'neither is the main thread');
  t.same(pool.stats().handed, [10, 10], 'the least busy worker takes each');
  t.same(pool.stats().inFlight, [0, 0]);
});

t.test('a check reports how long it waited in the worker before it started', async (t) => {
  const pool = poolOf(t, { threads: 1 });
  t.ok(await until(() => pool.stats().ready === 1, 60_000), 'the worker is ready');
  const [busyCheck, busyInner] = special('busy', { wait_ms: 300 });
  const [check, inner] = special('thread');
  // Handed in one batch: the second starts when the first has held the worker's loop 300 ms.
  const [first, second] = await Promise.all([
    pool.wrap(busyCheck, busyInner).check(here, context()),
    pool.wrap(check, inner).check(here, context()),
  ]);
  t.match(first, { healthy: true, message: 'busy' });
  t.match(second, { healthy: true, message: /^thread / });
  const [a, b] = [first.lateMs ?? -1, second.lateMs ?? -1];
  t.ok(a >= 0, `the first reports its wait: ${a} ms`);
  // Handed within a few ms of each other (a margin of 10 for a busy machine), on one clock.
  t.ok(b >= a + 290, `the second waited out the first: ${b} ms`);
});

t.test('a cancel ends the check at once and reaches the probe in the worker', async (t) => {
  const pool = poolOf(t);
  // Accepts and never answers: only the cancel (or the 10 s timeout) ends the probe.
  const mute = await listen(createServer());
  t.teardown(() => mute.stop());
  const check = spec('http', { path: '/' });
  const pooled = pool.wrap(check, createChecker(check));
  const abort = new AbortController();
  const result = pooled.check(mute.target, context(10_000, abort.signal));
  t.ok(await until(() => mute.accepted.length === 1, 5000), 'the worker connected');
  abort.abort();
  t.match(await result, { healthy: false, message: /cancelled$/ });
  t.ok(
    await until(() => mute.closed() === 1, 5000),
    'the worker closed its socket long before its timeout',
  );
  const already = await pooled.check(mute.target, context(10_000, abort.signal));
  t.match(already, { healthy: false, message: /cancelled$/ }, 'an aborted signal: not handed');
  t.same(
    pool.stats().handed.reduce((a, b) => a + b),
    1,
  );
});

t.test(
  'a worker that dies: its checks end as local results, and it is started again',
  async (t) => {
    const exits: string[] = [];
    const pool = poolOf(t, {
      threads: 1,
      restartMs: 100,
      onWorkerExit: (thread, reason) => exits.push(`${thread}: ${reason}`),
    });
    const [slowCheck, slowInner] = special('thread', { wait_ms: 10_000 });
    const [crashCheck, crashInner] = special('crash');
    const slow = pool.wrap(slowCheck, slowInner).check(here, context(20_000));
    const crash = pool.wrap(crashCheck, crashInner).check(here, context(20_000));
    for (const r of [await slow, await crash])
      t.match(r, {
        healthy: false,
        local: true,
        message: /: not finished: its probe worker the crash kind threw; started again$/,
      });
    t.same(exits, ['0: the crash kind threw']);
    t.ok(await until(() => pool.stats().running === 1, 5000), 'running again');
    const web = await listen(createServer());
    t.teardown(() => web.stop());
    const tcp = spec('tcp');
    t.match(await pool.wrap(tcp, createChecker(tcp)).check(web.target, context()), {
      healthy: true,
    });
    t.equal(pool.stats().restarts, 1);
  },
);

t.test('a worker that stops answering is ended after timeout + grace, and replaced', async (t) => {
  const exits: string[] = [];
  const pool = poolOf(t, {
    threads: 1,
    graceMs: 300,
    restartMs: 100,
    onWorkerExit: (_, reason) => exits.push(reason),
  });
  const [check, inner] = special('hang');
  const hung = await pool.wrap(check, inner).check(here, context(200));
  t.match(hung, {
    healthy: false,
    local: true,
    message:
      /its probe worker did not answer within \d+ ms \(stuck\), so it was ended; started again$/,
  });
  t.equal(exits.length, 1);
  t.ok(await until(() => pool.stats().running === 1, 5000), 'running again');
  const [ok, okInner] = special('thread');
  t.match(await pool.wrap(ok, okInner).check(here, context()), { healthy: true });
});

t.test(
  'a worker slow to start: checks wait for it; one that never starts is replaced',
  async (t) => {
    const slow = new URL('./pool-slow-worker.js', import.meta.url);
    const web = await listen(createServer());
    t.teardown(() => web.stop());
    const tcp = spec('tcp');
    // Its start (1.5 s, then loading the checks) is longer than a check's timeout plus the
    // grace (1.2 s), which still leaves the check a second on a busy machine.
    const waiting = poolOf(t, { threads: 1, worker: slow, graceMs: 1000 });
    t.equal(waiting.stats().ready, 0, 'not ready yet');
    const begun = performance.now();
    const result = await waiting.wrap(tcp, createChecker(tcp)).check(web.target, context(200));
    t.match(result, { healthy: true }, result.message);
    t.ok(performance.now() - begun >= 1000, 'it waited for the start');
    t.same(waiting.stats().ready, 1);
    t.equal(waiting.stats().restarts, 0, 'not taken for stuck');

    const exits: string[] = [];
    const never = poolOf(t, {
      threads: 1,
      worker: slow,
      startMs: 300,
      restartMs: 5000,
      onWorkerExit: (_, reason) => exits.push(reason),
    });
    t.match(await never.wrap(tcp, createChecker(tcp)).check(web.target, context(200)), {
      healthy: false,
      local: true,
      message: /its probe worker did not start within 300 ms, so it was ended; started again$/,
    });
    t.same(exits, ['did not start within 300 ms, so it was ended']);
  },
);

t.test('what stays on the main thread: own caps (exec, ping), data-path targets', async (t) => {
  const pool = poolOf(t);
  for (const [type, given] of [
    ['exec', { command: ['/bin/true'] }],
    ['ping', {}],
  ] as const) {
    const check = spec(type, given);
    const inner = createChecker(check);
    t.equal(pool.wrap(check, inner), inner, `${type}: the checker itself`);
  }
  const seen: CheckTarget[] = [];
  const inner: Checker = {
    kind: 'tcp',
    description: 'TCP connect',
    key: 'tcp',
    check: async (target) => {
      seen.push(target);
      return { healthy: true, durationMs: 0, message: 'main thread' };
    },
  };
  const via: CheckTarget = { ...here, dataPath: { mark: 0x7a100000, server: '10.0.0.5' } };
  t.match(await pool.wrap(spec('tcp'), inner).check(via, context()), { message: 'main thread' });
  t.same(seen, [via]);
  t.same(pool.stats().handed, [0, 0]);
});

t.test(
  "a worker's malformed answers are dropped; weights, and checks it cannot make",
  async (t) => {
    const pool = poolOf(t, { threads: 1 });
    const [garbage, garbageInner] = special('garbage');
    t.match(await pool.wrap(garbage, garbageInner).check(here, context()), {
      healthy: true,
      message: 'after the garbage',
      weight: 7,
    });
    const [weight, weightInner] = special('weight');
    t.match(await pool.wrap(weight, weightInner).check(here, context()), { weight: 0 });
    const [nosuch, nosuchInner] = special('nosuch');
    t.match(await pool.wrap(nosuch, nosuchInner).check(here, context()), {
      healthy: false,
      local: true,
      message:
        /^not run in the probe worker: could not make the nosuch check: Error: no check of kind nosuch$/,
    });
    t.equal(pool.stats().running, 1, 'the worker is still the first one');
    t.equal(pool.stats().restarts, 0);
  },
);

t.test('a checker closed on the main thread is closed in the workers that made it', async (t) => {
  const pool = poolOf(t, { threads: 1 });
  const [closing, closingInner] = special('closing');
  const a = pool.wrap(closing, closingInner);
  const b = pool.wrap(closing, closingInner);
  t.match(await a.check(here, context()), { message: 'open' });
  t.match(await b.check(here, context()), { message: 'open' });
  const [count, countInner] = special('closed');
  const closed = pool.wrap(count, countInner);
  await a.close?.();
  // The forget goes in the next batch, before the request behind it.
  t.match(await closed.check(here, context()), { message: '1 closed' });
  await a.close?.();
  const never = pool.wrap(closing, closingInner);
  await never.close?.();
  await b.close?.();
  t.match(
    await closed.check(here, context()),
    { message: '2 closed' },
    'once each, and none for a checker the worker never made',
  );
});

t.test('close: checks in flight end as cancelled, and no check runs after', async (t) => {
  const pool = new ProbePool({ threads: 2, worker });
  const [check, inner] = special('thread', { wait_ms: 10_000 });
  const pooled = pool.wrap(check, inner);
  const pending = pooled.check(here, context(20_000));
  await until(() => pool.stats().running === 2);
  await pool.close();
  t.match(await pending, { healthy: false, message: /cancelled \(the probe workers stopped\)$/ });
  t.equal(pool.stats().running, 0);
  t.match(await pooled.check(here, context()), {
    message: /cancelled \(the probe workers stopped\)$/,
  });
});
