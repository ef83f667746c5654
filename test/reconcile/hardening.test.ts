// The loop where it used to go wrong, driven by a manual clock and a table whose reads and
// answers the test controls: a reload racing a tick, a reload that fails, a maintenance
// directory that cannot be read, acknowledgements lost after the kernel applied, and a burst of
// tick requests sharing one table read.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { Config } from '../../src/config/model.js';
import { createChecker } from '../../src/checkers.js';
import type { Checker } from '../../src/health/checker.js';
import type { OperationResult } from '../../src/ipvs/backend.js';
import { IpvsError } from '../../src/ipvs/errors.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import type { Operation, TableEntry } from '../../src/ipvs/model.js';
import { operationTarget } from '../../src/ipvs/backend.js';
import { MemoryLog } from '../../src/log.js';
import { nextTickAt, ReconcileLoop, readsTable, tickGap } from '../../src/reconcile/loop.js';
import { scriptedChecker } from './scripted.js';
import { ManualClock, settle } from '../clock.js';

/** The memory table, with reads that can be held and answers that can be lost. */
class ControlledBackend extends MemoryBackend {
  reads = 0;
  gate: Promise<void> | null = null;
  /** Operations applied by the table whose acknowledgement is then reported lost. */
  loseAcks = false;
  /** While set, operations wait here before they are applied. */
  applyGate: Promise<void> | null = null;
  /** Told when operations arrive, before the gate. */
  applying: (() => void) | null = null;
  /** The table as a test looks at it: not counted, never held. */
  peek(): Promise<TableEntry[]> {
    return super.table();
  }
  override async table(): Promise<TableEntry[]> {
    this.reads++;
    if (this.gate) await this.gate;
    return super.table();
  }
  override async apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    this.applying?.();
    if (this.applyGate) await this.applyGate;
    const results = await super.apply(operations);
    if (!this.loseAcks) return results;
    return results.map((r) => ({
      operation: r.operation,
      error: new IpvsError('ETIMEDOUT', {
        op: r.operation.op,
        target: operationTarget(r.operation),
        outcomeUnknown: true,
      }),
    }));
  }
}

/** Services on 192.0.2.1, one per port, each with servers 10.0.0.1.. without checks (always up). */
function config(ports: number[], daemon = '', servers = 2): Config {
  const rs = Array.from({ length: servers }, (_, i) => `{address: 10.0.0.${i + 1}}`).join(', ');
  return parseConfig(
    `daemon: {backend: memory, min_tick_interval: 250ms${daemon}}\nvirtual_services:\n` +
      ports
        .map((p) => `  - {address: 192.0.2.1, port: ${p}, checks: [], real_servers: [${rs}]}\n`)
        .join(''),
    'test.yaml',
    {},
  );
}

async function ports(b: MemoryBackend): Promise<number[]> {
  return (await b.table()).map((e) => ('port' in e.service.key ? e.service.key.port : 0));
}

/** Awaits `p` while moving the manual clock on, as time would pass for a real daemon. */
async function drive<T>(
  clock: ManualClock,
  p: Promise<T>,
  stepMs = 50,
  maxSteps = 200,
): Promise<T> {
  let done = false;
  const mark = (): void => void (done = true);
  p.then(mark, mark);
  for (let i = 0; i < maxSteps && !done; i++) await clock.advance(stepMs);
  return p;
}

function setup(cfg: Config, options: Partial<ConstructorParameters<typeof ReconcileLoop>[1]> = {}) {
  const backend = new ControlledBackend();
  const clock = new ManualClock();
  const log = new MemoryLog();
  const loop = new ReconcileLoop(cfg, { backend, log, clock, ...options });
  return { backend, clock, log, loop };
}

t.test('a reload racing a tick: the tick plans with the state it started with', async (t) => {
  const { backend, clock, log, loop } = setup(config([80, 81]));
  t.teardown(() => loop.stop());
  await loop.start();
  t.same(await ports(backend), [80, 81]);
  // A tick that waits on the kernel; meanwhile a reload removes service 81.
  let release = (): void => undefined;
  backend.gate = new Promise((r) => (release = r));
  await clock.advance(10_000); // the resync tick starts and waits on its read
  t.ok(loop.stats.ticks >= 2, 'the resync tick is running');
  const reloaded = loop.reload(config([80]));
  backend.gate = null;
  release();
  await drive(clock, reloaded);
  await clock.advance(1000);
  t.same(log.named('table.unowned'), [], 'service 81 was never taken for someone else’s');
  t.same(await ports(backend), [80], 'and it was retired and drained out');
});

t.test('a reload that fails changes nothing; the next reload and stop still work', async (t) => {
  const bad = config([80, 82], ', cleanstop: true');
  const explode = (c: Parameters<typeof createChecker>[0]) => {
    if (c.type === 'exec') throw new Error('cannot build this check');
    return createChecker(c);
  };
  const { backend, clock, log, loop } = setup(config([80], ', cleanstop: true'), {
    createChecker: explode,
  });
  await loop.start();
  const withExec: Config = {
    ...bad,
    virtualServices: bad.virtualServices.map((vs) => ({
      ...vs,
      realServers: vs.realServers.map((rs) => ({
        ...rs,
        checks: [{ type: 'exec' as const, options: { command: ['/bin/true'] } }],
      })),
    })),
  };
  await t.rejects(drive(clock, loop.reload(withExec)), /cannot build this check/);
  t.equal(loop.currentConfig().virtualServices.length, 1, 'the running config stays');
  t.equal(loop.servers().length, 2, 'with its servers');
  await drive(clock, loop.reload(bad));
  t.same(await ports(backend), [80, 82], 'the next reload applied');
  t.same(log.named('config.reloaded').length, 1);
  await loop.stop();
  t.same(await ports(backend), [], 'stop ran cleanstop');
});

t.test('stop after a failed reload still stops and cleans up', async (t) => {
  const { backend, clock, loop } = setup(config([80], ', cleanstop: true'), {
    createChecker: () => {
      throw new Error('no checkers today');
    },
  });
  await loop.start();
  const withCheck: Config = {
    ...config([80]),
    virtualServices: config([80]).virtualServices.map((vs) => ({
      ...vs,
      realServers: vs.realServers.map((rs) => ({
        ...rs,
        checks: [{ type: 'tcp' as const, options: {} }],
      })),
    })),
  };
  await t.rejects(drive(clock, loop.reload(withCheck)));
  await loop.stop();
  t.same(await ports(backend), [], 'cleanstop ran');
});

t.test('a maintenance directory that cannot be read keeps the flags it had', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-maint-'));
  let failWith: string | null = null;
  const { backend, clock, log, loop } = setup(
    config([80], `, maintenance_dir: ${dir}, maintenance_poll: 1s`),
    {
      // The real directory, read synchronously: a thread-pool read would race the manual clock.
      readdir: async (d) => {
        if (failWith) throw Object.assign(new Error(failWith), { code: failWith });
        return readdirSync(d);
      },
    },
  );
  t.teardown(() => loop.stop());
  await loop.start();
  const weight2 = async () =>
    (await backend.table())[0]?.destinations.find((d) => d.key.address === '10.0.0.2')?.weight;
  t.equal(await weight2(), 1, 'in rotation');
  writeFileSync(join(dir, '10.0.0.2'), '');
  await clock.advance(1500);
  t.equal(await weight2(), 0, 'flagged: weight 0');
  for (const [how, code] of [
    ['the directory disappears', 'ENOENT'],
    ['it is replaced by a file', 'ENOTDIR'],
    ['it cannot be read (EACCES: as root, only an injected failure shows it)', 'EACCES'],
  ] as const) {
    if (code === 'ENOENT') rmSync(dir, { recursive: true });
    if (code === 'ENOTDIR') writeFileSync(dir, '');
    failWith = code === 'EACCES' ? 'EACCES' : null;
    await clock.advance(3000);
    t.equal(await weight2(), 0, `${how}: still in maintenance`);
    t.match(log.named('maintenance.unreadable').at(-1), { error: code, kept: ['10.0.0.2'] }, how);
  }
  t.equal(log.named('maintenance.unreadable').length, 3, 'logged once per change, not per poll');
  failWith = null;
  rmSync(dir, { force: true });
  mkdirSync(dir);
  await clock.advance(2000);
  t.equal(await weight2(), 1, 'readable and empty again: back in rotation');
  t.equal(log.named('maintenance.readable').length, 1);
});

t.test('acknowledgements lost after the kernel applied are not read as drift', async (t) => {
  const { backend, clock, log, loop } = setup(config([80]));
  t.teardown(() => loop.stop());
  backend.loseAcks = true;
  await loop.start();
  t.equal(log.named('reconcile.operation_failed').length, 3, 'service and two servers: unknown');
  t.match(log.named('reconcile.operation_failed')[0], { errno: 'ETIMEDOUT', outcome: /unknown/ });
  backend.loseAcks = false;
  await clock.advance(2000); // the retry re-reads the table
  t.same(log.named('drift.detected'), [], 'what the kernel applied is not someone else’s edit');
  t.equal(loop.stats.driftRepairs, 0);
  t.same(await ports(backend), [80]);
});

t.test('a burst of tick requests shares one table read (min_tick_interval)', async (t) => {
  const { backend, clock, loop } = setup(config([80]));
  t.teardown(() => loop.stop());
  await loop.start();
  const before = backend.reads;
  for (let i = 0; i < 20; i++) loop.requestTick(`transition ${i}`);
  await settle();
  t.equal(backend.reads, before, 'nothing read before min_tick_interval has passed');
  await clock.advance(249);
  t.equal(backend.reads, before, 'still nothing at 249 ms');
  await clock.advance(1);
  await loop.idle();
  t.equal(backend.reads, before + 1, 'twenty requests, one read');
});

t.test(
  "nextTickAt: after the last tick, and its kind's share from that kind's last end",
  async (t) => {
    const I = Infinity;
    // min tick, last end (any kind), the kind's last end and length, urgent, checks waiting -> at
    const cases: [number, number, number, number, boolean, boolean, number, string][] = [
      [250, -I, -I, 0, false, false, -I, 'no tick yet: at once'],
      [250, 1000, 1000, 100, false, false, 1250, 'min_tick_interval after the last'],
      [250, 1000, 1000, 100, true, false, 1100, 'urgent: as long as the last took'],
      [250, 1000, 1000, 400, true, false, 1250, 'urgent: never more than min_tick_interval'],
      [250, 1000, 1000, 400, true, true, 1800, 'checks waiting: twice the last of its kind'],
      [250, 1000, 1000, 400, false, true, 1800, 'the same when not urgent'],
      [250, 1000, 500, 100, true, true, 1100, 'its kind last ran before the last tick'],
      [
        250,
        9000,
        900,
        4000,
        true,
        true,
        9250,
        'a long tick of its kind long ago: min_tick_interval',
      ],
      [250, 9000, 8000, 900, true, true, 9800, 'the share counts from the end of its kind'],
    ];
    for (const [minTickMs, lastEnd, end, ms, urgent, checksWaiting, want, name] of cases)
      t.equal(
        nextTickAt({ minTickMs, lastEnd, kind: { end, ms }, urgent, checksWaiting }),
        want,
        name,
      );
  },
);

t.test(
  'readsTable: a tick reads the table unless it is for health transitions alone',
  async (t) => {
    // known, wanted, urgent, now, resyncAt, drainAt -> reads
    const I = Infinity;
    const cases: [boolean, boolean, boolean, number, number, number, boolean, string][] = [
      [false, false, false, 0, I, I, true, 'nothing known (first tick, after a failure, a reload)'],
      [false, false, true, 0, I, I, true, 'nothing known, urgent'],
      [true, true, false, 0, I, I, true, 'a request that wants a read'],
      [true, true, true, 0, I, I, true, 'a request that wants a read, urgent'],
      [true, false, false, 0, I, I, false, 'transitions alone'],
      [true, false, true, 0, I, I, false, 'a server down'],
      [true, false, false, 9999, 10_000, I, false, 'resync not due yet'],
      [true, false, false, 10_000, 10_000, I, true, 'resync due'],
      [true, false, true, 10_000, 10_000, I, true, 'resync due, urgent'],
      [true, false, false, 999, I, 1000, false, 'drain not due yet'],
      [true, false, false, 1000, I, 1000, true, 'drain due'],
      [true, false, true, 1000, I, 1000, false, 'drain due, but a server went down: it goes first'],
    ];
    for (const [known, wanted, urgent, now, resyncAt, drainAt, want, name] of cases)
      t.equal(readsTable({ known, wanted, urgent, now, resyncAt, drainAt }), want, name);
  },
);

t.test(
  'tickGap: min_tick_interval, a server going down waits less, and while checks wait ticks take at most a third of the loop',
  async (t) => {
    const cases: [number, number, boolean, boolean, number][] = [
      // min, last tick, urgent, checks waiting, gap
      [250, 0, false, false, 250],
      [250, 0, true, false, 0],
      [250, 80, true, false, 80],
      [250, 400, true, false, 250],
      [250, 400, false, false, 250],
      [250, -5, true, false, 0],
      [250, 0, true, true, 0],
      [250, 80, false, true, 250],
      [250, 80, true, true, 160],
      [250, 400, true, true, 800],
      [250, 400, false, true, 800],
      [1000, 400, false, true, 1000],
    ];
    for (const [min, last, urgent, waiting, want] of cases)
      t.equal(
        tickGap(min, last, urgent, waiting),
        want,
        `min ${min}, last tick ${last} ms, urgent ${urgent}, checks waiting ${waiting}`,
      );
  },
);

t.test('a server that goes down ticks at once; servers that come up wait', async (t) => {
  const healthy = new Map<string, boolean>();
  const checker = scriptedChecker(healthy);
  const cfg = parseConfig(
    `daemon: {backend: memory, min_tick_interval: 10s, resync_interval: 60s}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, jitter: 0, rise: 1, fall: 1}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [{type: tcp}], real_servers: [{address: 10.0.0.1}, {address: 10.0.0.2}]}
`,
    'test.yaml',
    {},
  );
  const { backend, clock, log, loop } = setup(cfg, { createChecker: checker });
  t.teardown(() => loop.stop());
  const destinations = async () => (await backend.peek())[0]?.destinations ?? [];
  /** The servers new connections go to. */
  const pool = async (): Promise<string[]> =>
    (await destinations())
      .filter((d) => d.weight > 0)
      .map((d) => d.key.address)
      .sort();
  const table = async (): Promise<string[]> =>
    (await destinations()).map((d) => d.key.address).sort();
  await loop.start();
  await clock.advance(4000);
  t.equal(log.named('server.up').length, 2, 'both checked up');
  t.same(await pool(), [], 'coming up waits for min_tick_interval after the start tick');
  await clock.advance(6500);
  t.same(await pool(), ['10.0.0.1', '10.0.0.2']);

  healthy.set('10.0.0.1', false);
  const reads = backend.reads;
  await clock.advance(1000);
  await loop.idle();
  t.same(await pool(), ['10.0.0.2'], 'down: out on its first failed check, not 10 s later');
  t.equal(backend.reads, reads, 'from the table as last read: no read');
  t.same(
    await table(),
    ['10.0.0.1', '10.0.0.2'],
    'at weight 0 until a read counts its connections',
  );
  // The drain's read is not urgent: it waits for min_tick_interval.
  await clock.advance(10_000);
  await loop.idle();
  t.equal(backend.reads, reads + 1, 'one read');
  t.same(await table(), ['10.0.0.2'], 'no connections: deleted');

  // Down while a slow tick is applying (it planned before the failure): the next tick waits
  // as long as that one took, not min_tick_interval.
  healthy.set('10.0.0.1', true);
  let release = (): void => undefined;
  let heldAt = 0;
  backend.applying = () => (heldAt = clock.monotonic());
  backend.applyGate = new Promise((r) => (release = r));
  await clock.advance(11_000); // 10.0.0.1 is up again; its tick, 10 s on, is held adding it
  t.same(await pool(), ['10.0.0.2'], 'the add is held');
  healthy.set('10.0.0.2', false);
  await clock.advance(1000);
  t.equal(log.named('server.down').length, 2, '10.0.0.2 is down during the tick');
  backend.applyGate = null;
  backend.applying = null;
  // The tick started at most a check's interval before its operations arrived.
  const took = clock.monotonic() - heldAt + 1000;
  t.ok(took < 5000, `the held tick took at most ${took} ms, far less than min_tick_interval`);
  release();
  await settle();
  await loop.idle();
  t.same(await pool(), ['10.0.0.1', '10.0.0.2'], 'the add went in; 10.0.0.2 waits');
  await clock.advance(took);
  await loop.idle();
  t.same(await pool(), ['10.0.0.1'], 'out once as long as the held tick took has passed');
});

t.test(
  'while checks wait for a slot, a server going down waits twice as long as the last tick of its kind took',
  async (t) => {
    // One slot, kept by a check in flight (check_in_flight_max 1): while 10.0.0.1's check hangs,
    // the other servers' checks wait for it.
    const healthy = new Map<string, boolean>();
    let hang: ((healthy: boolean) => void) | null = null;
    let hanging = false;
    /** Any server's next check hangs, not only 10.0.0.1's. */
    let hangAny = false;
    const checker = (): Checker => ({
      kind: 'tcp',
      description: 'scripted',
      key: 'scripted',
      check: (target) => {
        const result = (ok: boolean) => ({ healthy: ok, durationMs: 0, message: 'scripted' });
        if ((target.address === '10.0.0.1' || hangAny) && hanging && hang === null)
          return new Promise((resolve) => (hang = (ok) => resolve(result(ok))));
        return Promise.resolve(result(healthy.get(target.address) ?? true));
      },
    });
    const rs = [1, 2, 3, 4, 5, 6].map((i) => `{address: 10.0.0.${i}}`).join(', ');
    const cfg = parseConfig(
      `daemon: {backend: memory, min_tick_interval: 10s, resync_interval: 60s, check_concurrency: 1, check_concurrency_min: 1, check_in_flight_max: 1}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, jitter: 0, rise: 1, fall: 1}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [{type: tcp}], real_servers: [${rs}]}
`,
      'test.yaml',
      {},
    );
    const { backend, clock, loop } = setup(cfg, { createChecker: checker });
    t.teardown(() => loop.stop());
    /** The servers new connections go to. */
    const pool = async (): Promise<number> =>
      ((await backend.peek())[0]?.destinations ?? []).filter((d) => d.weight > 0).length;
    await loop.start();
    await clock.advance(11_000);
    t.equal(await pool(), 6, 'all six in');

    // 10.0.0.2 goes down, and its tick (from the table as last read) is held 3 s on applying;
    // meanwhile 10.0.0.1's next check hangs, holding the slot.
    let release = (): void => undefined;
    let heldAt = -1;
    backend.applying = () => (heldAt = clock.monotonic());
    backend.applyGate = new Promise((r) => (release = r));
    const reads = backend.reads;
    healthy.set('10.0.0.2', false);
    for (let i = 0; i < 100 && heldAt < 0; i++) await clock.advance(100);
    t.ok(heldAt >= 0, "10.0.0.2's tick is held");
    hanging = true;
    await clock.advance(1000);
    t.ok(hang, "10.0.0.1's check hangs");
    t.ok(loop.checkStats().waiting > 0, 'the other checks wait for the slot');
    await clock.advance(heldAt + 3000 - clock.monotonic());
    backend.applyGate = null;
    backend.applying = null;
    release();
    await settle();
    await loop.idle();
    t.equal(await pool(), 5, '10.0.0.2 out');
    t.equal(backend.reads, reads, 'without a read');

    // Down while the others still wait: the next tick waits twice the held one (at least 3 s).
    // The next check to take the slot hangs in turn, so checks go on waiting.
    healthy.set('10.0.0.1', false);
    const answer = hang!;
    hang = null;
    hangAny = true;
    answer(false);
    await settle();
    t.ok(hang, 'another check hangs');
    t.ok(loop.checkStats().waiting > 0, 'checks still wait for the slot');
    await clock.advance(3500);
    await loop.idle();
    t.equal(await pool(), 5, 'still in after as long as the tick took: checks are waiting');
    await clock.advance(3500);
    await loop.idle();
    t.equal(await pool(), 4, 'out once twice as long has passed');
  },
);

t.test("a tick's own stalls do not lower the checks' cap", async (t) => {
  // 40 servers checked every 100 ms, each check 40 ms: 16 in flight wanted, a cap of 8, so
  // checks wait for a slot. A loop late by 200 ms, a turn at a time, while a tick runs.
  const checker = (): Checker => ({
    kind: 'tcp',
    description: 'scripted',
    key: 'scripted',
    check: () =>
      new Promise((resolve) =>
        clock.setTimeout(() => resolve({ healthy: true, durationMs: 40, message: 'ok' }), 40),
      ),
  });
  const rs = Array.from({ length: 40 }, (_, i) => `{address: 10.0.1.${i + 1}}`).join(', ');
  const cfg = parseConfig(
    `daemon: {backend: memory, resync_interval: 2s, check_concurrency: 8, check_concurrency_min: 2}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, jitter: 0}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [{type: tcp}], real_servers: [${rs}]}
`,
    'test.yaml',
    {},
  );
  const { backend, clock, loop } = setup(cfg, { createChecker: checker });
  t.teardown(() => loop.stop());
  await loop.start();
  await clock.advance(1000);
  t.equal(loop.checkStats().limit, 8, 'on time: the configured cap');
  t.ok(loop.checkStats().waiting > 0, 'checks wait for a slot');
  // The resync tick waits on its read while the loop stalls.
  let release = (): void => undefined;
  backend.gate = new Promise((r) => (release = r));
  const reads = backend.reads;
  for (let i = 0; i < 100 && backend.reads === reads; i++) await clock.advance(20);
  t.equal(backend.reads, reads + 1, 'the resync tick reads');
  for (let i = 0; i < 12; i++) {
    clock.stall(200);
    await clock.advance(20);
  }
  t.equal(loop.checkStats().limit, 8, 'the cap stays while the tick runs');
  backend.gate = null;
  release();
  await settle();
  await loop.idle();
  await clock.advance(20);
  t.equal(loop.checkStats().limit, 8, 'and after it');
  // The same stalls with no tick running are the checks' doing.
  for (let i = 0; i < 12; i++) {
    clock.stall(200);
    await clock.advance(20);
  }
  t.equal(loop.checkStats().limit, 2, 'without a tick: halved to check_concurrency_min');
});

t.test('a wall clock stepped back (NTP) does not hold ticks off', async (t) => {
  const { backend, clock, loop } = setup(config([80]));
  t.teardown(() => loop.stop());
  await loop.start();
  await clock.advance(300);
  const before = backend.reads;
  clock.stepWall(-3_600_000);
  loop.requestTick('after the step');
  await clock.advance(0);
  await loop.idle();
  t.equal(backend.reads, before + 1, 'ticks at once: the floor is on the monotonic clock');
});

t.test('a wall clock stepped back (NTP) does not put off the resync', async (t) => {
  const { backend, clock, loop } = setup(config([80]));
  t.teardown(() => loop.stop());
  await loop.start();
  await clock.advance(300);
  const before = backend.reads;
  clock.stepWall(-3_600_000);
  // A tick for a transition alone, which does not read: its next wake is the resync's.
  loop.requestTick('a transition', false, false);
  await clock.advance(0);
  await loop.idle();
  t.equal(backend.reads, before, 'the transition did not read');
  await clock.advance(10_000);
  await loop.idle();
  t.equal(backend.reads, before + 1, 'the resync read the table 10 s on, not an hour');
});

t.test('local errors hold the table; when they clear, real failures apply', async (t) => {
  // What each server's check says: healthy, unhealthy, or "could not run here" (EMFILE).
  const says = new Map<string, 'ok' | 'fail' | 'local'>();
  const checker = (): Checker => ({
    kind: 'tcp',
    description: 'scripted',
    key: 'scripted',
    check: (target) => {
      const s = says.get(target.address) ?? 'ok';
      return Promise.resolve({
        healthy: s === 'ok',
        durationMs: 0,
        message: s,
        ...(s === 'local' ? { local: true } : {}),
      });
    },
  });
  const cfg = parseConfig(
    `daemon: {backend: memory}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, jitter: 0, rise: 1, fall: 1}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [{type: tcp}], real_servers: [{address: 10.0.0.1}, {address: 10.0.0.2}, {address: 10.0.0.3}, {address: 10.0.0.4}]}
`,
    'test.yaml',
    {},
  );
  const { backend, clock, log, loop } = setup(cfg, { createChecker: checker });
  t.teardown(() => loop.stop());
  await loop.start();
  await clock.advance(2000);
  const servers = async () => ((await backend.table())[0]?.destinations ?? []).length;
  t.equal(await servers(), 4, 'all four in');
  for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) says.set(a, 'local');
  await clock.advance(1500);
  t.match(log.named('service.hold_on'), [{ service: 'TCP 192.0.2.1:80' }]);
  await drive(clock, loop.reload(cfg));
  t.same(log.named('service.hold_off'), [], 'a reload keeps what this director cannot check');
  says.set('10.0.0.4', 'fail');
  await clock.advance(3000);
  t.equal(await servers(), 4, 'held: not even the really failed one leaves');
  t.same(
    log.named('server.down').map((e) => e.server),
    ['10.0.0.4:80'],
    'a local error is no transition; the real failure is',
  );
  for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) says.set(a, 'ok');
  await clock.advance(3000);
  t.equal(log.named('service.hold_off').length, 1);
  t.equal(await servers(), 3, 'the failed one leaves once this director can check again');
});
