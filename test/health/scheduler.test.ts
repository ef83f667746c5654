// The scheduler with probes of our own making (scripted results): intervals, merging of
// identical checks, the concurrency cap, stopping. Time is a manual clock, so every sequence
// is exact: assertions are on order, counts and clock times, never on the machine's speed.
import { getEventListeners } from 'node:events';
import pLimit from 'p-limit';
import t, { type Test } from 'tap';
import { watchAbort, watchers } from '../../src/health/abort.js';
import type { CheckContext, CheckResult, Checker } from '../../src/health/checker.js';
import type { HealthPolicy, HealthState } from '../../src/health/policy.js';
import {
  Scheduler,
  failing,
  jittered,
  nextInterval,
  nextWait,
  SLOT_MS,
  slotFor,
  slotted,
  type CheckEvent,
  waitsOnServer,
} from '../../src/health/scheduler.js';
import type { CheckTiming } from '../../src/health/timing.js';
import { ManualClock } from '../clock.js';

const target = { family: 4, address: '127.0.0.1', port: 9 } as const;
const fast: CheckTiming = {
  intervalMs: 5,
  fastIntervalMs: 5,
  downIntervalMs: 5,
  timeoutMs: 1000,
  jitter: 0,
};
const policy: HealthPolicy = { rise: 2, fall: 3, initial: 'down' };
/**
 * A loop whose stalls are other work (a scrape, a GC): busy under SATURATED_FROM, so the cap
 * halves at the target lag. Without it the scheduler reads this process's own loop.
 */
const unsaturated = (): number => 0.5;

class Scripted implements Checker {
  readonly kind = 'scripted';
  readonly description = 'scripted';
  calls = 0;
  running = 0;
  maxRunning = 0;
  signals: AbortSignal[] = [];
  constructor(
    readonly key: string,
    /** true, false, or 'local': the probe could not run on this director. */
    private readonly script: (
      call: number,
      ctx: CheckContext,
    ) => Promise<boolean | 'local'> | boolean | 'local',
  ) {}
  async check(_target: unknown, ctx: CheckContext): Promise<CheckResult> {
    const call = this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.signals.push(ctx.signal);
    try {
      const healthy = await this.script(call, ctx);
      if (healthy === 'local')
        return { healthy: false, local: true, durationMs: 0, message: `call ${call}: EMFILE` };
      return { healthy, durationMs: 0, message: `call ${call}` };
    } finally {
      this.running--;
    }
  }
}

/**
 * The loop busy `stallMs` (200 ms unless given) at a time, `rounds` times: every timer due
 * meanwhile fires late.
 */
async function busyLoop(clock: ManualClock, rounds: number, stallMs = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    clock.stall(stallMs);
    await clock.advance(20);
  }
}

t.test('intervals: settled up, changing, settled down', async (t) => {
  const timing = { ...fast, intervalMs: 2000, fastIntervalMs: 500, downIntervalMs: 5000 };
  t.equal(nextInterval({ up: true, successes: 4, failures: 0, checked: true }, timing), 2000);
  t.equal(
    nextInterval({ up: true, successes: 0, failures: 1, checked: true }, timing),
    500,
    'failing towards fall',
  );
  t.equal(
    nextInterval({ up: false, successes: 1, failures: 0, checked: true }, timing),
    500,
    'succeeding towards rise',
  );
  t.equal(nextInterval({ up: false, successes: 0, failures: 3, checked: true }, timing), 5000);
  t.same(
    [0, 0.5, 0.999999].map((r) => jittered(1000, 0.1, r)),
    [900, 1000, 1100],
  );
  const jittery = { ...timing, jitter: 0.1 };
  const fresh = { up: false, successes: 0, failures: 0, checked: false };
  const waits: [string, number, number][] = [
    ['first check, low draw', nextWait(fresh, jittery, 0), 0],
    ['first check: anywhere in the first interval', nextWait(fresh, jittery, 0.25), 500],
    [
      'first check, trusted up: still the first interval',
      nextWait({ ...fresh, up: true }, jittery, 0.5),
      1000,
    ],
    [
      'settled up, jittered',
      nextWait({ up: true, successes: 3, failures: 0, checked: true }, jittery, 0),
      1800,
    ],
    [
      'changing, jittered',
      nextWait({ up: true, successes: 0, failures: 1, checked: true }, jittery, 0.999999),
      550,
    ],
    [
      'settled down',
      nextWait({ up: false, successes: 0, failures: 3, checked: true }, jittery, 0.5),
      5000,
    ],
  ];
  for (const [name, got, want] of waits) t.equal(got, want, name);
});

t.test('results go through rise and fall', async (t) => {
  const pattern = [true, true, false, false, false, true];
  const checker = new Scripted('k', (i) => pattern[i] ?? true);
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const at: number[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => (events.push(e), at.push(clock.now())),
    random: () => 0.5,
    clock,
  });
  s.add('svc', checker, target, fast, policy);
  // The first check half way into the first interval (random 0.5 of 5 ms), then every 5 ms.
  await clock.advance(28);
  await s.stop();
  t.same(at, [3, 8, 13, 18, 23, 28], 'on the clock, exactly');
  t.same(
    events.map((e) => e.transition),
    [null, 'up', null, null, 'down', null],
  );
  t.same(
    events.map((e) => e.state.up),
    [false, true, true, true, false, false],
  );
  t.ok(
    events.every((e) => e.latenessMs === 0),
    'lateness is measured: none without a cap to wait for',
  );
});

t.test('local results never move the state, and are still delivered', async (t) => {
  // Local results around every step of rise and fall: none counts, none resets a count.
  const L = 'local' as const;
  const pattern = [L, L, true, true, L, L, L, false, L, false, L];
  const checker = new Scripted('k', (i) => pattern[i] ?? true);
  const clock = new ManualClock(0);
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 50, downIntervalMs: 200 };
  const events: CheckEvent[] = [];
  const at: number[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => (events.push(e), at.push(clock.now())),
    random: () => 0.5,
    clock,
  });
  const id = s.add('svc', checker, target, timing, { rise: 2, fall: 2, initial: 'down' });
  await clock.advance(1200);
  const last = s.state(id);
  await s.stop();
  t.equal(events.length, pattern.length, 'every result is delivered, local ones too');
  t.same(
    events.map((e) => e.result.local ?? false),
    pattern.map((p) => p === L),
  );
  t.same(
    events.map((e) => e.transition),
    [null, null, null, 'up', null, null, null, null, null, 'down', null],
    'up after two successes, down after two failures: the local results in between count for nothing',
  );
  let before = { up: false, successes: 0, failures: 0, checked: false };
  events.forEach((e, i) => {
    if (pattern[i] === L) t.same(e.state, before, `result ${i} (local): the state as it was`);
    before = { ...e.state };
  });
  t.same(last, { up: false, successes: 0, failures: 2, checked: true });
  // After a local result the next check follows the interval the state calls for, not the
  // spread of a first check: down 200, up 100, changing 50.
  t.same(at, [50, 250, 450, 500, 600, 700, 800, 900, 950, 1000, 1200], 'on the clock, exactly');
});

t.test(
  'identical checks of one target run once; the result goes to every subscriber',
  async (t) => {
    const a = new Scripted('same', () => true);
    const b = new Scripted('same', () => true);
    const clock = new ManualClock(0);
    const events: CheckEvent[] = [];
    const s = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
    const id1 = s.add('svc-a', a, target, fast, policy);
    const id2 = s.add('svc-b', b, target, fast, policy);
    t.equal(id1, id2);
    await clock.advance(15); // checks at 0, 5, 10, 15
    await s.stop();
    t.equal(events.length, 4);
    t.equal(a.calls, 4, 'the first checker runs');
    t.equal(b.calls, 0, 'its duplicate never does');
    t.same(events[0]?.subscribers, ['svc-a', 'svc-b']);
  },
);

t.test('a subscriber removed is not handed the next results; one added is', async (t) => {
  const c = new Scripted('same', () => true);
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const s = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
  const id = s.add('svc-a', c, target, fast, policy);
  s.add('svc-b', c, target, fast, policy);
  await clock.advance(0);
  s.remove('svc-a', id);
  await clock.advance(5);
  s.add('svc-c', c, target, fast, policy);
  await clock.advance(5);
  await s.stop();
  t.same(
    events.map((e) => e.subscribers),
    [['svc-a', 'svc-b'], ['svc-b'], ['svc-b', 'svc-c']],
  );
});

t.test("each result hands back every subscriber's tag, the last one added", async (t) => {
  const c = new Scripted('same', () => true);
  const clock = new ManualClock(0);
  const tags: (readonly (string | undefined)[])[] = [];
  const s = new Scheduler<string>({
    slotMs: 0,
    onResult: (e) => tags.push(e.tags),
    random: () => 0,
    clock,
  });
  const id = s.add('svc-a', c, target, fast, policy, 'record a');
  s.add('svc-b', c, target, fast, policy);
  await clock.advance(0);
  // A reload: the same subscriber, a new record.
  s.add('svc-a', c, target, fast, policy, 'record a, reloaded');
  await clock.advance(5);
  s.remove('svc-a', id);
  s.add('svc-b', c, target, fast, policy, 'record b');
  await clock.advance(5);
  await s.stop();
  t.same(tags, [['record a', undefined], ['record a, reloaded', undefined], ['record b']]);
});

t.test('removing the last subscriber stops the check', async (t) => {
  const c = new Scripted('r', () => true);
  const sch = new Scheduler({ slotMs: 0, onResult: () => undefined, clock: new ManualClock() });
  const id = sch.add('a', c, target, fast, policy);
  sch.add('b', c, target, fast, policy);
  sch.remove('a', id);
  t.equal(sch.stats().checks, 1);
  sch.remove('b', id);
  t.equal(sch.stats().checks, 0);
  await sch.stop();
});

t.test('a checker that reports its own wait to start adds it to the lateness', async (t) => {
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => events.push(e),
    concurrency: 1,
    random: () => 0,
    clock,
  });
  const slow = { ...fast, intervalMs: 10_000, fastIntervalMs: 10_000, downIntervalMs: 10_000 };
  // A probe worker's way: the wait happened where the scheduler cannot see it.
  const far = (lateMs: number): Checker => ({
    kind: 'far',
    key: `far ${lateMs}`,
    description: 'far',
    check: () =>
      new Promise((r) =>
        clock.setTimeout(() => r({ healthy: true, durationMs: 10, message: 'ok', lateMs }), 10),
      ),
  });
  s.add('a', far(7), target, slow, policy);
  s.add('b', far(0), target, slow, policy);
  // Both due at 0, one at a time.
  await clock.advance(100);
  await s.stop();
  const late = new Map(events.map((e) => [e.subscribers[0], e.latenessMs]));
  // `a` waited 7 ms in its worker; `b` waited 10 ms for the cap (one at a time) behind `a`.
  t.equal(late.get('a'), 7);
  t.equal(late.get('b'), 10);
});

t.test('the concurrency cap delays checks and drops none', async (t) => {
  const clock = new ManualClock(0);
  const took = (ms: number) => () =>
    new Promise<boolean>((r) => clock.setTimeout(() => r(true), ms));
  const checkers = Array.from({ length: 10 }, (_, i) => new Scripted(`c${i}`, took(30)));
  let maxRunning = 0;
  let running = 0;
  const wrapped: Checker[] = checkers.map((c) => ({
    kind: c.kind,
    key: c.key,
    description: c.description,
    check: async (tg, ctx) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        return await c.check(tg, ctx);
      } finally {
        running--;
      }
    },
  }));
  const events: CheckEvent[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => events.push(e),
    concurrency: 3,
    random: () => 0,
    clock,
  });
  const slow = { ...fast, intervalMs: 10_000, fastIntervalMs: 10_000, downIntervalMs: 10_000 };
  for (const c of wrapped) s.add(c.key, c, target, slow, policy);
  // All ten are due at 0; three at a time, 30 ms each.
  await clock.advance(120);
  await s.stop();
  t.ok(maxRunning <= 3, `at most 3 at once (saw ${maxRunning})`);
  t.equal(maxRunning, 3, 'and the cap is used');
  t.equal(new Set(events.map((e) => e.subscribers[0])).size, 10, 'every check ran');
  t.same(
    events.map((e) => e.latenessMs),
    [0, 0, 0, 30, 30, 30, 60, 60, 60, 90],
    'checks that waited for the cap report it as lateness',
  );
});

t.test(
  'a run removed while it waits for a slot runs no check; the next in line does',
  async (t) => {
    const clock = new ManualClock(0);
    const took = (ms: number) => () =>
      new Promise<boolean>((r) => clock.setTimeout(() => r(true), ms));
    const checkers = Array.from({ length: 4 }, (_, i) => new Scripted(`c${i}`, took(30)));
    const s = new Scheduler({
      slotMs: 0,
      onResult: () => undefined,
      concurrency: 1,
      random: () => 0,
      clock,
    });
    const slow = { ...fast, intervalMs: 10_000, fastIntervalMs: 10_000, downIntervalMs: 10_000 };
    const ids = checkers.map((c) => s.add(c.key, c, target, slow, policy));
    await clock.advance(0);
    t.same(
      s.stats(),
      { checks: 4, running: 1, waiting: 3, limit: 1, inFlightLimit: 1 },
      'one runs, three wait',
    );
    s.remove('c1', ids[1] ?? '');
    await clock.advance(45);
    t.same(
      checkers.map((c) => c.calls),
      [1, 0, 1, 0],
      'c1 never ran; c2 took its turn at 30 ms, c3 waits for 60',
    );
    await clock.advance(15);
    t.equal(checkers[3]?.calls, 1, 'and c3 ran after it');
    await s.stop();
  },
);

t.test('a late event loop lowers the cap to its floor, and it grows back on time', async (t) => {
  const clock = new ManualClock(0);
  let running = 0;
  let maxRunning = 0;
  const took = async (): Promise<boolean> => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    // 40 ms: 200 servers every 100 ms keep 80 in flight, more than the cap.
    await new Promise((r) => clock.setTimeout(() => r(true), 40));
    running--;
    return true;
  };
  const s = new Scheduler({
    slotMs: 0,
    onResult: () => undefined,
    concurrency: 64,
    minConcurrency: 4,
    busyShare: unsaturated,
    random: () => 0,
    clock,
  });
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100 };
  for (let i = 0; i < 200; i++) s.add(`s${i}`, new Scripted(`c${i}`, took), target, timing, policy);
  // The bound on checks in flight doubles from 4 each 100 ms of quick answers: 64 by 400 ms.
  await clock.advance(600);
  t.equal(s.stats().limit, 64, 'a loop on time keeps the configured cap');
  t.equal(maxRunning, 64, 'and uses it');

  // A reconcile tick's own stalls are not the checks' doing (`lagOutside`): the cap stays.
  const ticked = s.ticking();
  await busyLoop(clock, 12);
  ticked();
  t.equal(s.stats().limit, 64, "a tick's stalls leave the cap where it was");
  await clock.advance(600);
  t.equal(s.stats().limit, 64);

  await busyLoop(clock, 12);
  t.equal(s.stats().limit, 4, 'halved period by period down to check_concurrency_min');
  maxRunning = 0;
  await busyLoop(clock, 1);
  t.ok(maxRunning <= 4, `at most 4 at once while late (saw ${maxRunning})`);
  t.ok(s.stats().waiting > 0, 'the rest wait for a slot');

  await clock.advance(3000);
  t.equal(s.stats().limit, 64, 'back to the configured cap once the loop keeps time');
  await s.stop();

  const fixed = new Scheduler({
    slotMs: 0,
    onResult: () => undefined,
    concurrency: 8,
    minConcurrency: 100,
    random: () => 0,
    clock,
  });
  for (let i = 0; i < 20; i++)
    fixed.add(`f${i}`, new Scripted(`f${i}`, took), target, timing, policy);
  await busyLoop(clock, 12);
  t.equal(fixed.stats().limit, 8, 'a floor at or above the cap: the cap is fixed');
  await fixed.stop();
});

t.test(
  'a saturated loop keeps its cap up to 150 ms late, unless its timeouts are short',
  async (t) => {
    /**
     * 200 servers every 100 ms under a cap of 64, each answering in `answerMs`, the loop busy
     * `stallMs` of each 20 ms more: the cap after 12 such rounds. The busy share is the clock's
     * (140 ms of 160: saturated) unless given.
     */
    const run = async (
      stallMs: number,
      timeoutMs: number,
      share?: number,
      answerMs = 40,
    ): Promise<number> => {
      const clock = new ManualClock(0);
      const s = new Scheduler({
        slotMs: 0,
        onResult: () => undefined,
        concurrency: 64,
        minConcurrency: 4,
        busyShare: share === undefined ? () => clock.busyShare() : () => share,
        random: () => 0,
        clock,
      });
      const took = async (): Promise<boolean> =>
        new Promise((r) => clock.setTimeout(() => r(true), answerMs));
      const timing = {
        ...fast,
        intervalMs: 100,
        fastIntervalMs: 100,
        downIntervalMs: 100,
        timeoutMs,
      };
      for (let i = 0; i < 200; i++)
        s.add(`s${i}`, new Scripted(`c${i}`, took), target, timing, policy);
      await clock.advance(600);
      await busyLoop(clock, 12, stallMs);
      const limit = s.stats().limit;
      await s.stop();
      return limit;
    };
    t.equal(await run(140, 1000), 64, 'timers up to 140 ms late on a saturated loop: kept');
    t.equal(await run(140, 1000, 0.5), 4, 'the same lag with CPU to spare: halved to its floor');
    t.equal(await run(300, 1000), 4, 'up to 300 ms late: halved on a saturated loop too');
    t.equal(
      await run(140, 300),
      4,
      'a 300 ms timeout: three turns of 140 ms would take most of it, so halved at 50 ms late',
    );
    t.equal(
      await run(140, 1000, undefined, 520),
      4,
      'answers in 520 ms of 1 s, close calls: halved at 50 ms late',
    );
    t.equal(await run(140, 1000, undefined, 300), 64, 'in 300 ms (440 ms with a stall): kept');
  },
);

t.test('waitsOnServer: 50 ms in flight, or three times a longer lag', async (t) => {
  t.equal(waitsOnServer(49, 0), false);
  t.equal(waitsOnServer(50, 0), true);
  t.equal(waitsOnServer(50, 10), true, 'a loop on time: 50 ms');
  t.equal(waitsOnServer(299, 100), false, 'a loop 100 ms late: not before 300 ms');
  t.equal(waitsOnServer(300, 100), true);
});

/**
 * `hanging` checks that take the whole 1 s timeout and `quick` ones of 10 ms, every 100 ms,
 * on a loop that stays up to 80 ms late (above the 50 ms target, so the cap is lowered), for `ms`.
 */
async function hangingPool(
  concurrency: number,
  hanging: number,
  quick: number,
  ms: number,
): Promise<{ quickChecks: number; maxRunning: number; limit: number }> {
  const clock = new ManualClock(0);
  let running = 0;
  let maxRunning = 0;
  let quickChecks = 0;
  const took = (ms: number, healthy: boolean) => async (): Promise<boolean> => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise<void>((r) => clock.setTimeout(() => r(), ms));
    running--;
    if (healthy) quickChecks++;
    return healthy;
  };
  let seed = 1;
  const s = new Scheduler({
    slotMs: 0,
    onResult: () => undefined,
    concurrency,
    minConcurrency: 4,
    busyShare: unsaturated,
    // Spread, and the same every run (Park-Miller).
    random: () => (seed = (seed * 16807) % 2147483647) / 2147483647,
    clock,
  });
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100 };
  for (let i = 0; i < hanging; i++)
    s.add(`h${i}`, new Scripted(`h${i}`, took(1000, false)), target, timing, policy);
  for (let i = 0; i < quick; i++)
    s.add(`q${i}`, new Scripted(`q${i}`, took(10, true)), target, timing, policy);
  for (let t = 0; t < ms; t += 90) {
    clock.stall(80);
    await clock.advance(10);
  }
  const limit = s.stats().limit;
  await s.stop();
  return { quickChecks, maxRunning, limit };
}

t.test('checks hanging on their servers do not keep a lowered cap from the others', async (t) => {
  // 40 quick checks every 100 ms over 10 s, alone and beside 4 black-holed servers.
  const alone = await hangingPool(16, 0, 40, 10_000);
  const beside = await hangingPool(16, 4, 40, 10_000);
  t.equal(alone.limit, 4, 'the loop is late and checks wait: the cap is at its floor');
  t.equal(beside.limit, 4, 'beside the hanging ones too');
  // Holding their slots for the whole second, the 4 would keep the 4 slots nearly always full.
  // Given back after 240 ms (three times the 80 ms lag), they leave the quick checks most of it.
  t.ok(
    beside.quickChecks >= 0.5 * alone.quickChecks,
    `quick checks beside the hanging ones: ${beside.quickChecks}, alone: ${alone.quickChecks}`,
  );
  t.ok(beside.maxRunning <= 16, `never more than concurrency in flight (${beside.maxRunning})`);

  const bounded = await hangingPool(10, 12, 40, 5000);
  t.ok(bounded.maxRunning <= 10, `concurrency still bounds them all (saw ${bounded.maxRunning})`);
});

/**
 * `servers` checks that each take `answerMs` (slow servers), every second, on a loop that keeps
 * time, for 10 s: how many ran, how late the last round started (at most), the most in flight
 * at once.
 */
async function slowServers(
  t: Test,
  concurrency: number,
  maxInFlight: number | undefined,
  servers: number,
  answerMs: number,
  busy = false,
): Promise<{ checks: number; lateMs: number; maxRunning: number }> {
  const clock = new ManualClock(0);
  let running = 0;
  let maxRunning = 0;
  const took = async (): Promise<boolean> => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise<void>((r) => clock.setTimeout(() => r(), answerMs));
    running--;
    return true;
  };
  const events: CheckEvent[] = [];
  let seed = 1;
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => events.push(e),
    concurrency,
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    busyShare: () => clock.busyShare(),
    random: () => (seed = (seed * 16807) % 2147483647) / 2147483647,
    clock,
  });
  const timing = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  for (let i = 0; i < servers; i++)
    s.add(`s${i}`, new Scripted(`s${i}`, took), target, timing, policy);
  // A busy loop that keeps time: busy 80 % of the time, its timers at most 20 ms late.
  if (busy)
    for (let ms = 0; ms < 10_000; ms += 25) {
      clock.stall(20);
      await clock.advance(5);
    }
  else await clock.advance(10_000);
  t.equal(s.stats().limit, concurrency, 'the loop kept time: the cap stayed at its maximum');
  await s.stop();
  const last = events.slice(-servers);
  return {
    checks: events.length,
    lateMs: Math.max(...last.map((e) => e.latenessMs)),
    maxRunning,
  };
}

t.test('servers that answer slowly give their slots back at the full cap', async (t) => {
  // 20 servers answering in 500 ms, each checked 1 s after its last answer: a round of 1.5 s,
  // 133 checks in 10 s, with about 7 in flight. The cap is 4.
  const kept = await slowServers(t, 4, undefined, 20, 500);
  t.ok(kept.maxRunning <= 4, `without maxInFlight the cap bounds them (${kept.maxRunning})`);
  // 4 at 500 ms make 8 a second: a round of 2.5 s, 1 s of it waiting for a slot.
  t.ok(kept.checks <= 85, `so fewer checks run (${kept.checks} in 10 s)`);
  t.ok(kept.lateMs >= 900, `each of them late (${kept.lateMs} ms)`);

  const given = await slowServers(t, 4, 64, 20, 500);
  t.ok(given.checks >= 125, `given back after 50 ms: every check runs (${given.checks} in 10 s)`);
  t.ok(given.lateMs <= 50, `within 50 ms of its plan (${given.lateMs} ms late)`);
  t.ok(given.maxRunning > 4 && given.maxRunning <= 20, `in flight at most ${given.maxRunning}`);

  // Without CPU to spare, they keep their slots: started, they would wait for the CPU.
  const busy = await slowServers(t, 4, 64, 20, 500, true);
  t.ok(busy.maxRunning <= 4, `a busy loop: the cap bounds them again (${busy.maxRunning})`);
  t.ok(busy.checks <= 85, `and fewer checks run (${busy.checks} in 10 s)`);

  // maxInFlight still bounds them: 5 in flight at 500 ms make 10 a second, a round of 2 s.
  const bounded = await slowServers(t, 4, 5, 20, 500);
  t.equal(bounded.maxRunning, 5, 'never more than maxInFlight in flight, and it is used');
  t.ok(bounded.checks <= 105, `so checks wait again (${bounded.checks} in 10 s)`);
});

t.test(
  'a slot is given back when its check has waited long enough, not at the next event',
  async (t) => {
    // One slot; a server answering in 1 s, checked every 2 s, and a quick one every 100 ms. The
    // quick one's check due while the slow one holds the slot waits 50 ms at most, though nothing
    // else is due or ends until the slow answer.
    const clock = new ManualClock(0);
    const events: CheckEvent[] = [];
    const s = new Scheduler({
      slotMs: 0,
      onResult: (e) => events.push(e),
      concurrency: 1,
      maxInFlight: 8,
      busyShare: () => clock.busyShare(),
      // Each first due as soon as it is added.
      random: () => 0,
      clock,
    });
    const every = (ms: number) => ({
      ...fast,
      intervalMs: ms,
      fastIntervalMs: ms,
      downIntervalMs: ms,
    });
    const took = (ms: number) => () =>
      new Promise<boolean>((r) => clock.setTimeout(() => r(true), ms));
    s.add('quick', new Scripted('quick', took(1)), target, every(100), policy);
    // A period passes first: the loop has shown it has CPU to spare.
    await clock.advance(1000);
    s.add('slow', new Scripted('slow', took(1000)), target, every(2000), policy);
    await clock.advance(4000);
    await s.stop();
    const quick = events.filter((e) => e.subscribers[0] === 'quick');
    t.ok(quick.length >= 45, `the quick one ran every 100 ms or so (${quick.length} in 5 s)`);
    const worst = Math.max(...quick.map((e) => e.latenessMs));
    t.ok(worst > 0 && worst <= 50, `the slot given back after 50 ms (${worst} ms late at most)`);
  },
);

/** Three checks of 10 ms every 100 ms under a cap of two (its floor `min`), their start times. */
function threeChecks(
  clock: ManualClock,
  min: number,
  onResult: (e: CheckEvent) => void,
): { s: Scheduler; starts: number[] } {
  const starts: number[] = [];
  const took = async (): Promise<boolean> => {
    starts.push(clock.monotonic());
    await new Promise((r) => clock.setTimeout(() => r(true), 10));
    return true;
  };
  const s = new Scheduler({
    slotMs: 0,
    onResult,
    concurrency: 2,
    minConcurrency: min,
    busyShare: unsaturated,
    random: () => 0,
    clock,
  });
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100 };
  for (const k of ['a', 'b', 'c']) s.add(k, new Scripted(k, took), target, timing, policy);
  return { s, starts };
}

t.test(
  'a hold keeps new checks back while the loop is late, until released or its bound',
  async (t) => {
    const clock = new ManualClock(0);
    const events: CheckEvent[] = [];
    // Three checks under a cap of two: when the loop stalls, all are due at once and one waits.
    const { s, starts } = threeChecks(clock, 1, (e) => events.push(e));
    /** The loop busy 200 ms at a time until the cap is at its floor. */
    const late = async (): Promise<void> => {
      await busyLoop(clock, 4);
      t.equal(s.stats().limit, 1, 'the loop is late and checks wait: the cap is at its floor');
    };
    const since = (n: number): number[] => [...new Set(starts.slice(n))];

    await clock.advance(5);
    let n = starts.length;
    s.hold(1000);
    await clock.advance(400);
    t.ok(starts.length >= n + 6, 'a loop on time holds nothing: checks go on');

    await late();
    n = starts.length;
    let at = clock.monotonic();
    const release = s.hold(1000);
    await clock.advance(400);
    t.equal(starts.length, n, 'nothing starts while held');
    release();
    await clock.advance(5);
    t.same(since(n), [at + 400], 'released: the waiting checks start at once');
    await clock.advance(30);
    t.ok((events.at(-1)?.latenessMs ?? 0) >= 300, 'late by the hold');

    // That hold lasted 400 ms: another within 400 ms of its end is refused.
    n = starts.length;
    s.hold(1000);
    await clock.advance(300);
    t.ok(starts.length > n, 'a hold right after one is a no-op: checks go on');

    await clock.advance(500);
    await late();
    n = starts.length;
    at = clock.monotonic();
    s.hold(150);
    await clock.advance(140);
    t.equal(starts.length, n, 'held');
    await clock.advance(15);
    t.same(since(n), [at + 150], 'the bound ends a hold nobody releases');

    await clock.advance(1000);
    await late();
    s.hold(10_000);
    await clock.advance(150);
    await s.stop();
    t.pass('stop ends a hold');
  },
);

t.test('failing: up with failures counted towards fall', async (t) => {
  const cases: [Partial<HealthState>, boolean][] = [
    [{ up: true, failures: 0 }, false],
    [{ up: true, failures: 1 }, true],
    [{ up: true, failures: 2, successes: 0 }, true],
    [{ up: false, failures: 3 }, false],
    [{ up: false, failures: 0, successes: 1 }, false],
  ];
  for (const [state, want] of cases)
    t.equal(
      failing({ up: false, successes: 0, failures: 0, checked: true, ...state }),
      want,
      JSON.stringify(state),
    );
});

t.test('a failing server is checked ahead of the checks waiting for the cap', async (t) => {
  // 20 routine checks and one that fails from 2 s on, 50 ms each every 100 ms, two at a time:
  // a routine check waits its turn behind the others, about 450 ms.
  const clock = new ManualClock(0);
  const took = (healthy: () => boolean) => (): Promise<boolean> =>
    new Promise((r) => clock.setTimeout(() => r(healthy()), 50));
  const events: CheckEvent[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => events.push(e),
    concurrency: 2,
    minConcurrency: 2,
    random: () => 0,
    clock,
  });
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100 };
  const up: HealthPolicy = { rise: 1, fall: 3, initial: 'up' };
  for (let i = 0; i < 20; i++)
    s.add(
      `r${i}`,
      new Scripted(
        `r${i}`,
        took(() => true),
      ),
      target,
      timing,
      up,
    );
  s.add(
    'victim',
    new Scripted(
      'victim',
      took(() => clock.monotonic() < 2000),
    ),
    target,
    timing,
    up,
  );
  await clock.advance(5000);
  await s.stop();
  const failed = events.filter((e) => e.subscribers[0] === 'victim' && !e.result.healthy);
  const routine = events.filter((e) => e.subscribers[0] !== 'victim');
  // Its first failure is a routine check; the next two, until it is down, go first.
  const toDown = failed.slice(0, failed.findIndex((e) => e.transition === 'down') + 1);
  t.equal(toDown.length, 3, 'it goes down on its third failure');
  const lateness = toDown.map((e) => e.latenessMs);
  t.ok((lateness[0] ?? 0) >= 300, `the first waited its turn: ${lateness[0]} ms`);
  t.ok(
    lateness.slice(1).every((ms) => ms <= 50),
    `the next two waited at most one check's end: ${lateness.slice(1).join(', ')} ms`,
  );
  const routineLateness = routine.map((e) => e.latenessMs).sort((a, b) => a - b);
  t.ok(
    (routineLateness[Math.floor(routineLateness.length / 2)] ?? 0) >= 300,
    'the routine checks do wait for the cap',
  );
  t.equal(
    new Set(routine.map((e) => e.subscribers[0])).size,
    20,
    'and every one of them still runs',
  );
});

t.test("a hold keeps back every check but a failing server's", async (t) => {
  const clock = new ManualClock(0);
  const starts = new Map<string, number[]>();
  const took = (id: string, healthy: boolean) => async (): Promise<boolean> => {
    starts.set(id, [...(starts.get(id) ?? []), clock.monotonic()]);
    await new Promise((r) => clock.setTimeout(() => r(true), 10));
    return healthy;
  };
  const s = new Scheduler({
    slotMs: 0,
    onResult: () => undefined,
    concurrency: 2,
    minConcurrency: 2,
    random: () => 0,
    clock,
  });
  const timing = { ...fast, intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100 };
  // fall 1,000: the failing one stays up and failing all along.
  const slowFall: HealthPolicy = { rise: 1, fall: 1000, initial: 'up' };
  s.add('ok', new Scripted('ok', took('ok', true)), target, timing, slowFall);
  s.add('bad', new Scripted('bad', took('bad', false)), target, timing, slowFall);
  await busyLoop(clock, 4);
  const at = clock.monotonic();
  const n = (id: string): number => (starts.get(id) ?? []).filter((x) => x > at).length;
  const release = s.hold(1000);
  await clock.advance(400);
  t.equal(n('ok'), 0, 'the healthy one waits');
  t.ok(n('bad') >= 3, `the failing one is checked meanwhile (${n('bad')} checks)`);
  release();
  await clock.advance(5);
  t.equal(n('ok'), 1, 'released: the healthy one goes on');
  await s.stop();
});

t.test('a fixed cap (min = max) holds too while the loop is late', async (t) => {
  const clock = new ManualClock(0);
  const { s, starts } = threeChecks(clock, 2, () => undefined);
  await clock.advance(5);
  let n = starts.length;
  s.hold(1000);
  await clock.advance(400);
  t.ok(starts.length >= n + 6, 'on time: a hold is a no-op');

  await busyLoop(clock, 4);
  t.equal(s.stats().limit, 2, 'the cap never moves');
  n = starts.length;
  const at = clock.monotonic();
  const release = s.hold(1000);
  await clock.advance(300);
  t.equal(starts.length, n, 'late: nothing starts while held');
  release();
  await clock.advance(5);
  t.same([...new Set(starts.slice(n))], [at + 300], 'released: the waiting checks start');
  await s.stop();
});

t.test('stop aborts checks in flight and ends the schedule', async (t) => {
  const hang = new Scripted(
    'hang',
    (_i, ctx) =>
      new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(false))),
  );
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const sch = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
  sch.add('svc', hang, target, fast, policy);
  await clock.advance(0);
  t.equal(hang.calls, 1, 'the check is running');
  await sch.stop();
  t.ok(hang.signals[0]?.aborted, 'the running check was aborted');
  await clock.advance(100);
  t.equal(events.length, 0, 'no result after stop');
  t.equal(hang.calls, 1, 'no check after stop');
  t.equal(clock.pending, 0, 'no timer left');
});

t.test(
  'checks in flight share the stop signal, which carries one listener however many wait',
  async (t) => {
    // A listener per check on one signal would cost each check a walk of the list (an
    // EventTarget looks for a duplicate on every add): probes wait on it through watchAbort.
    const hang = new Scripted(
      'hang',
      (_i, ctx) =>
        new Promise((resolve) => {
          const done = (): void => resolve(false);
          watchAbort(ctx.signal, done);
        }),
    );
    const clock = new ManualClock(0);
    // A fixed cap: all fifty start at once (the bound on checks in flight starts at 16).
    const sch = new Scheduler({
      slotMs: 0,
      onResult: () => undefined,
      random: () => 0,
      clock,
      concurrency: 64,
      minConcurrency: 64,
    });
    for (let port = 1; port <= 50; port++)
      sch.add(`svc${port}`, hang, { ...target, port }, fast, policy);
    await clock.advance(0);
    t.equal(hang.calls, 50, 'fifty checks running');
    const [signal] = hang.signals;
    t.ok(signal && hang.signals.every((s) => s === signal), 'one signal');
    t.equal(signal && getEventListeners(signal, 'abort').length, 1, 'one listener on it');
    t.equal(signal && watchers(signal), 50, 'fifty waiting');
    await sch.stop();
    t.ok(signal?.aborted, 'stop aborts it');
    t.equal(signal && watchers(signal), 0, 'every waiter called');
    t.equal(hang.running, 0, 'every check ended');
  },
);

t.test('a probe that throws counts as a failure and checking goes on', async (t) => {
  const flaky = new Scripted('flaky', (i) => {
    if (i === 0) throw new Error('boom');
    return true;
  });
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const s = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
  s.add('svc', flaky, target, fast, policy);
  await clock.advance(10); // checks at 0, 5, 10
  await s.stop();
  t.notOk(events[0]?.result.healthy);
  t.match(events[0]?.result.message, /check failed: Error: boom/);
  t.same(
    events.map((e) => e.result.healthy),
    [false, true, true],
  );
});

t.test('every event names its run; ids() lists the live runs', async (t) => {
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const s = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
  const other = { ...target, port: 10 };
  const a = s.add('svc-a', new Scripted('same', () => true), target, fast, policy);
  const b = s.add('svc-b', new Scripted('same', () => true), target, fast, policy);
  const c = s.add('svc-c', new Scripted('same', () => true), other, fast, policy);
  t.equal(a, b, 'merged checks share a run id');
  t.not(a, c, 'another target is another run');
  t.same(s.ids().sort(), [a, c].sort());
  await clock.advance(0);
  t.same(events.map((e) => e.id).sort(), [a, c].sort(), 'each event carries its run id');
  t.same(Object.keys(events[0] ?? {})[0], 'id', 'the first field');
  s.remove('svc-c', c);
  t.same(s.ids(), [a], 'a removed run is gone');
  await s.stop();
  t.same(s.ids(), [], 'none after stop');
});

t.test(
  'rise and fall are part of a run: subscribers that differ there are checked apart',
  async (t) => {
    const clock = new ManualClock(0);
    const c = new Scripted('same', () => true);
    const events: CheckEvent[] = [];
    const s = new Scheduler({ slotMs: 0, onResult: (e) => events.push(e), random: () => 0, clock });
    const quick: HealthPolicy = { rise: 1, fall: 1, initial: 'down' };
    const id1 = s.add('a', c, target, fast, quick);
    const id2 = s.add('b', c, target, fast, policy);
    const id3 = s.add('c', c, target, fast, { ...policy, initial: 'up' });
    t.not(id1, id2, 'another rise/fall is another run');
    t.equal(id2, id3, 'the initial state is not part of it');
    t.equal(Scheduler.runId(c, target, quick), id1);
    t.equal(Scheduler.runId(c, target, policy), id2);
    await clock.advance(0);
    t.equal(events.length, 2, 'each run checks');
    t.equal(s.state(id1)?.up, true, 'rise 1: up after one success');
    t.equal(s.state(id2)?.up, false, 'rise 2: not yet');
    t.same(events.find((e) => e.id === id1)?.subscribers, ['a']);
    t.same(events.find((e) => e.id === id2)?.subscribers, ['b', 'c']);
    await s.stop();
  },
);

/** Two services list one check: one fast (a short interval) and one slow, in either order. */
const quickService: CheckTiming = {
  intervalMs: 1000,
  fastIntervalMs: 500,
  downIntervalMs: 4000,
  timeoutMs: 800,
  jitter: 0,
};
const slowService: CheckTiming = {
  intervalMs: 5000,
  fastIntervalMs: 250,
  downIntervalMs: 2000,
  timeoutMs: 3000,
  jitter: 0,
};
const strictest: CheckTiming = {
  intervalMs: 1000,
  fastIntervalMs: 250,
  downIntervalMs: 2000,
  timeoutMs: 800,
  jitter: 0,
};

async function shared(order: readonly (readonly [string, CheckTiming])[]) {
  const clock = new ManualClock(0);
  // Up after two, down after three failures, back: every interval is used.
  const pattern = [true, true, true, false, false, false, false, true, true, true];
  const timeouts: number[] = [];
  const checker = new Scripted('shared', (i, ctx) => {
    timeouts.push(ctx.timeoutMs);
    return pattern[i] ?? true;
  });
  const at: number[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: () => at.push(clock.now()),
    random: () => 0.5,
    clock,
  });
  let id = '';
  for (const [sub, timing] of order) id = s.add(sub, checker, target, timing, policy);
  const timing = s.timing(id);
  await clock.advance(10_000);
  await s.stop();
  return { at, timeouts, timing };
}

t.test('a check shared by a fast and a slow service runs the same in either order', async (t) => {
  const fastFirst = await shared([
    ['fast', quickService],
    ['slow', slowService],
  ]);
  const slowFirst = await shared([
    ['slow', slowService],
    ['fast', quickService],
  ]);
  t.same(fastFirst.timing, strictest, 'fast first: the strictest of each field');
  t.same(slowFirst.timing, strictest, 'slow first: the same');
  // First check half way into the first interval (500), then: down with a success -> fast
  // (250), up -> interval (1000), failing -> fast (250) twice, down -> down interval (2000),
  // then towards rise (250) and up (1000).
  const want = [500, 750, 1750, 2750, 3000, 3250, 5250, 7250, 7500, 8500, 9500];
  t.same(fastFirst.at, want, 'fast first: checks on the strictest timing');
  t.same(slowFirst.at, want, 'slow first: the same checks at the same times');
  t.ok(
    [...fastFirst.timeouts, ...slowFirst.timeouts].every((ms) => ms === 800),
    'the shortest timeout',
  );
});

t.test('a subscriber added again replaces its timing; removing one recomputes', async (t) => {
  const clock = new ManualClock(0);
  const c = new Scripted('k', () => true);
  const s = new Scheduler({ slotMs: 0, onResult: () => undefined, random: () => 0.5, clock });
  const id = s.add('a', c, target, quickService, policy);
  s.add('b', c, target, slowService, policy);
  t.same(s.timing(id), strictest);
  s.add('a', c, target, slowService, policy);
  t.same(s.timing(id), slowService, "a reload slowed a's timing: it is replaced, not merged");
  s.add('a', c, target, quickService, policy);
  t.same(s.timing(id), strictest);
  s.remove('a', id);
  t.same(s.timing(id), slowService, 'the rest decide once a is gone');
  await s.stop();
});

t.test('a timing that makes the next check due sooner reschedules it', async (t) => {
  const clock = new ManualClock(0);
  const c = new Scripted('k', () => true);
  const at: number[] = [];
  const events: CheckEvent[] = [];
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => (at.push(clock.now()), events.push(e)),
    random: () => 0.5,
    clock,
  });
  const slow = { ...fast, intervalMs: 10_000, fastIntervalMs: 10_000, downIntervalMs: 10_000 };
  const quick = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  const id = s.add('slow', c, target, slow, policy); // first check at 5000
  await clock.advance(100);
  s.add('quick', c, target, quick, policy); // half of the new interval: due at 500
  await clock.advance(500);
  t.same(at, [500], 'the first check moved to half the new interval');
  t.equal(events[0]?.latenessMs, 0, 'a moved check is not late');
  s.remove('quick', id); // the next check is planned at 1500, on the quick fast interval
  await clock.advance(1000);
  t.same(at, [500, 1500], 'a slower timing does not postpone a planned check');
  s.add('slower', c, target, { ...slow, intervalMs: 60_000 }, policy);
  await clock.advance(10_000);
  t.same(at, [500, 1500, 11_500], 'up now: the interval of the strictest that is left');
  await s.stop();
});

t.test(
  "an observer that throws is reported; the state is the probe's and checking goes on",
  async (t) => {
    const clock = new ManualClock(0);
    const c = new Scripted('ok', () => true);
    const events: CheckEvent[] = [];
    const reported: [unknown, CheckEvent][] = [];
    const s = new Scheduler({
      slotMs: 0,
      onResult: (e) => {
        events.push(e);
        if (events.length === 1) throw new Error('observer broke');
      },
      onObserverError: (error, event) => reported.push([error, event]),
      random: () => 0,
      clock,
    });
    const id = s.add('svc', c, target, fast, policy);
    await clock.advance(10); // checks at 0, 5, 10
    await s.stop();
    t.same(
      events.map((e) => e.result.healthy),
      [true, true, true],
      "no failure made up from the observer's exception",
    );
    t.same(
      events.map((e) => e.transition),
      [null, 'up', null],
      "rise counts the probe's successes",
    );
    t.equal(c.calls, 3, 'checking goes on');
    t.equal(reported.length, 1, 'reported once');
    t.match(String(reported[0]?.[0]), /observer broke/);
    t.equal(reported[0]?.[1], events[0], 'with the event it was handed');
    t.equal(reported[0]?.[1].id, id);
  },
);

t.test('by default an observer error is one line on stderr', async (t) => {
  const clock = new ManualClock(0);
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  };
  t.teardown(() => void (process.stderr.write = write));
  const s = new Scheduler({
    slotMs: 0,
    onResult: () => {
      throw new Error('observer broke');
    },
    random: () => 0,
    clock,
  });
  const id = s.add('svc', new Scripted('ok', () => true), target, fast, policy);
  await clock.advance(0);
  await s.stop();
  process.stderr.write = write;
  t.equal(lines.length, 1);
  t.match(lines[0], /observer broke/);
  t.ok(lines[0]?.includes(id), 'names the run');
  t.ok(lines[0]?.endsWith('\n') && lines[0].indexOf('\n') === lines[0].length - 1, 'one line');
});

t.test('checks that wait for a cap of their own hold no general slot', async (t) => {
  // Five exec-like checks behind a process cap of 1, 100 ms each, and one TCP-like check of
  // 10 ms, all due at 0 under a general cap of 2: the TCP-like check must not wait for them.
  const clock = new ManualClock(0);
  const took = (ms: number) => () =>
    new Promise<boolean>((r) => clock.setTimeout(() => r(true), ms));
  const processSlots = pLimit(1);
  class ExecLike extends Scripted {
    readonly limiter = processSlots;
  }
  const events: CheckEvent[] = [];
  const at = new Map<string, number>();
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => (events.push(e), at.set(e.subscribers[0] ?? '', clock.now())),
    concurrency: 2,
    random: () => 0,
    clock,
  });
  const once = { ...fast, intervalMs: 60_000, fastIntervalMs: 60_000, downIntervalMs: 60_000 };
  const execs = Array.from(
    { length: 5 },
    (_, i) => new ExecLike(`exec${i}`, () => processSlots(took(100))),
  );
  execs.forEach((c, i) => s.add(`exec${i}`, c, target, once, policy));
  s.add('tcp', new Scripted('tcp', took(10)), target, once, policy);
  await clock.advance(5);
  t.same(
    s.stats(),
    { checks: 6, running: 2, waiting: 4, limit: 2, inFlightLimit: 2 },
    'stats count the exec-like cap too: one running, four waiting, and the TCP-like check',
  );
  await clock.advance(595);
  await s.stop();
  t.equal(at.get('tcp'), 10, 'the TCP-like check ran on time');
  t.equal(events.find((e) => e.subscribers[0] === 'tcp')?.latenessMs, 0, 'not late');
  t.same(
    execs.map((_, i) => at.get(`exec${i}`)),
    [100, 200, 300, 400, 500],
    'the exec-like checks one at a time, none dropped',
  );
  t.same(
    execs.map((c) => c.maxRunning),
    [1, 1, 1, 1, 1],
  );
});

t.test(
  'a run that loses its last subscriber closes its checker, unless a live run shares it',
  async (t) => {
    class Closable extends Scripted {
      closed = 0;
      async close(): Promise<void> {
        this.closed++;
      }
    }
    const clock = new ManualClock(0);
    const s = new Scheduler({ slotMs: 0, onResult: () => undefined, random: () => 0, clock });

    const own = new Closable('own', () => true);
    const id = s.add('a', own, target, fast, policy);
    s.add('b', own, target, fast, policy);
    s.remove('a', id);
    await clock.advance(0);
    t.equal(own.closed, 0, 'a subscriber is left');
    s.remove('b', id);
    await clock.advance(0);
    t.equal(own.closed, 1, 'closed with the last subscriber');
    s.remove('b', id);
    await clock.advance(0);
    t.equal(own.closed, 1, 'once');

    // One checker instance for two targets (two runs), as the probe benchmark does.
    const shared = new Closable('shared', () => true);
    const one = s.add('a', shared, target, fast, policy);
    const two = s.add('a', shared, { ...target, port: 10 }, fast, policy);
    s.remove('a', one);
    await clock.advance(0);
    t.equal(shared.closed, 0, 'the other run still uses it');
    s.remove('a', two);
    await clock.advance(0);
    t.equal(shared.closed, 1, 'closed with the last run that uses it');

    const failing = new Closable('failing', () => true);
    failing.close = () => Promise.reject(new Error('cannot close'));
    s.remove('x', s.add('x', failing, target, fast, policy));
    const throwing = new Closable('throwing', () => true);
    throwing.close = () => {
      throw new Error('cannot close at all');
    };
    s.remove('x', s.add('x', throwing, target, fast, policy));
    await clock.advance(0);
    t.pass('a checker that fails to close is no crash');
    await s.stop();
    t.equal(own.closed + shared.closed, 2, 'stop does not close them again');
  },
);

t.test('a run id names the check and target, never the options it digests', async (t) => {
  const secret =
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----';
  const checker = new Scripted(`tcp:{"tls":{"key":${JSON.stringify(secret)}}}`, () => true);
  const id = Scheduler.runId(checker, target, policy);
  t.match(id, /^scripted:[0-9a-f]{24}@127\.0\.0\.1:9 rise=2 fall=3$/);
  t.notMatch(id, /PRIVATE/);
  const other = new Scripted(`tcp:{"tls":{"key":"another"}}`, () => true);
  t.not(Scheduler.runId(other, target, policy), id, 'other options, another run');
});

t.test('slotted: the nearest grid point, never one already past', async (t) => {
  const rows: [number, number, number, number][] = [
    // at, now, slot, want
    [0, 0, 20, 0],
    [9.9, 0, 20, 0],
    [10, 0, 20, 20],
    [1009, 0, 20, 1000],
    [1017, 0, 20, 1020],
    [1009, 1005, 20, 1020],
    [1000, 1000, 20, 1000],
    [990, 1000, 20, 1000],
    [1017.4, 0, 0, 1017.4],
    [5, 10, 0, 10],
  ];
  for (const [at, now, slot, want] of rows)
    t.equal(slotted(at, now, slot), want, `${at} at ${now} on ${slot}`);
});

t.test(
  'slotFor: about 25 checks a grid point, 1 to 50 ms, at most a 20th of the interval',
  async (t) => {
    const rows: [number, number, number][] = [
      // checks a second, the check's shortest interval in ms, grid in ms
      [0, Infinity, 50],
      [5, Infinity, 50],
      [200, Infinity, 50],
      [500, Infinity, 50],
      [1000, Infinity, 25],
      [3000, Infinity, 8],
      [10_000, Infinity, 3],
      [25_000, Infinity, 1],
      [50_000, Infinity, 1],
      [200, 2000, 50],
      [200, 1000, 50],
      [200, 500, 25],
      [200, 100, 5],
      [200, 5, 1],
      [1000, 100, 5],
      [1000, 400, 20],
      [50_000, 100, 1],
    ];
    for (const [rate, shortest, want] of rows)
      t.equal(slotFor(rate, shortest), want, `${rate} a second, every ${shortest} ms`);
    t.equal(slotFor(200), 50, 'no interval given: the rate alone');
  },
);

t.test('checks due within one slot start together at its end, on one timer', async (t) => {
  const clock = new ManualClock(0);
  const starts: [string, number][] = [];
  // First checks at random x interval: 30, 42.5, 62.5, 72.5 and 77.5 ms, then every second.
  const firsts = [0.03, 0.0425, 0.0625, 0.0725, 0.0775];
  let next = 0;
  const s = new Scheduler({
    onResult: (e) => starts.push([e.target.address, clock.now()]),
    random: () => firsts[next++] ?? 0.5,
    clock,
  });
  const timing = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  const checker = new Scripted('slots', () => true);
  for (let i = 0; i < firsts.length; i++)
    s.add(`sub${i}`, checker, { ...target, address: `127.0.0.${i + 1}` }, timing, policy);
  t.equal(SLOT_MS, 50, 'the default grid');
  t.equal(clock.pending, 2, 'two slots planned (50 and 100 ms), one timer each');
  await clock.advance(100);
  t.same(
    starts,
    [
      ['127.0.0.1', 50],
      ['127.0.0.2', 50],
      ['127.0.0.3', 50],
      ['127.0.0.4', 50],
      ['127.0.0.5', 100],
    ],
    'the first four at 50 ms, the fifth at 100',
  );
  // The next checks: a second after each ended (the results came at once), on the grid again.
  starts.length = 0;
  await clock.advance(1000);
  t.same(
    starts.map(([, at]) => at),
    [1050, 1050, 1050, 1050, 1100],
    'a second later, still together',
  );
  await s.stop();
  t.equal(clock.pending, 0, 'stop cancels the slots');
});

t.test('the grid follows the rate the runs add up to', async (t) => {
  const clock = new ManualClock(0);
  const starts = new Map<string, number>();
  const s = new Scheduler({
    onResult: (e) => starts.set(e.target.address, clock.now()),
    // Every first check planned for 32.1 ms.
    random: () => 0.0321,
    clock,
  });
  const timing = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  const checker = new Scripted('rate', () => true);
  const address = (i: number) => `127.0.${i >> 8}.${i & 255}`;
  for (let i = 0; i < 2500; i++)
    s.add(`sub${i}`, checker, { ...target, address: address(i) }, timing, policy);
  await clock.advance(50);
  t.equal(starts.get(address(0)), 50, 'the first run, alone: the 50 ms grid');
  t.equal(starts.get(address(2499)), 30, 'the last, at 2,500 a second: the 10 ms grid');
  await s.stop();
});

t.test('a check with a short interval starts on a finer grid (a 20th of it)', async (t) => {
  const clock = new ManualClock(0);
  const starts = new Map<string, number>();
  const s = new Scheduler({
    onResult: (e) => starts.set(e.target.address, clock.now()),
    // Each first check at 0.321 of its interval: 32.1 ms every 100 ms, 321 ms every second.
    random: () => 0.321,
    clock,
  });
  const checker = new Scripted('short', () => true);
  const every = (ms: number): CheckTiming => ({
    ...fast,
    intervalMs: ms,
    fastIntervalMs: ms,
    downIntervalMs: ms,
  });
  s.add('a', checker, { ...target, address: '127.0.0.1' }, every(100), policy);
  s.add('b', checker, { ...target, address: '127.0.0.2' }, every(1000), policy);
  await clock.advance(50);
  t.equal(starts.get('127.0.0.1'), 30, 'every 100 ms: the 5 ms grid (32.1 -> 30)');
  t.equal(starts.get('127.0.0.2'), undefined, 'every second: not yet');
  await clock.advance(300);
  t.equal(starts.get('127.0.0.2'), 300, 'every second: the 50 ms grid (321 -> 300)');
  await s.stop();
});

t.test('a run taken out of its slot does not start; the slot goes with its last run', async (t) => {
  const clock = new ManualClock(0);
  const started: string[] = [];
  const s = new Scheduler({
    onResult: (e) => started.push(e.target.address),
    random: () => 0.035,
    clock,
  });
  const timing = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  const checker = new Scripted('slots', () => true);
  const a = s.add('a', checker, { ...target, address: '127.0.0.1' }, timing, policy);
  const b = s.add('b', checker, { ...target, address: '127.0.0.2' }, timing, policy);
  t.equal(clock.pending, 1, 'both in the slot at 50 ms');
  s.remove('a', a);
  t.equal(clock.pending, 1, 'the slot stays for the other');
  s.remove('b', b);
  t.equal(clock.pending, 0, 'its timer is cancelled with its last run');
  s.add('c', checker, { ...target, address: '127.0.0.3' }, timing, policy);
  await clock.advance(1000);
  t.same(started, ['127.0.0.3'], 'only the run still there started, once');
  await s.stop();
});

/**
 * `servers` healthy servers behind one that answers `perS` checks a second in turn (a host, a
 * link or a backend they share), each checked every second with a 1 s timeout, on a loop that
 * keeps time, for 15 s: the checks, the failed ones and the most in flight in the last 5 s, and
 * the checks failed in the first 3 s (each server's first check is due in the first second).
 * The shared server works through a check that timed out all the same.
 */
async function sharedServer(
  minConcurrency: number,
  servers: number,
  perS: number,
): Promise<{ checks: number; failed: number; maxRunning: number; failedAtStart: number }> {
  const clock = new ManualClock(0);
  let free = 0;
  let running = 0;
  let maxRunning = 0;
  const answer = (_call: number, ctx: CheckContext): Promise<boolean> => {
    running++;
    const now = clock.monotonic();
    if (now >= 10_000) maxRunning = Math.max(maxRunning, running);
    free = Math.max(now, free) + 1000 / perS;
    const takes = free - now;
    return new Promise((resolve) =>
      clock.setTimeout(
        () => {
          running--;
          resolve(takes <= ctx.timeoutMs);
        },
        Math.min(takes, ctx.timeoutMs),
      ),
    );
  };
  const events: { at: number; healthy: boolean }[] = [];
  let seed = 7;
  const s = new Scheduler({
    slotMs: 0,
    onResult: (e) => events.push({ at: clock.monotonic(), healthy: e.result.healthy }),
    concurrency: 256,
    maxInFlight: 2048,
    minConcurrency,
    busyShare: () => clock.busyShare(),
    random: () => (seed = (seed * 16807) % 2147483647) / 2147483647,
    clock,
  });
  const timing = { ...fast, intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000 };
  const checker = new Scripted('shared', answer);
  for (let i = 0; i < servers; i++)
    s.add(`s${i}`, checker, { ...target, address: `127.1.${i >> 8}.${i & 255}` }, timing, policy);
  await clock.advance(15_000);
  await s.stop();
  const last = events.filter((e) => e.at >= 10_000);
  return {
    checks: last.length,
    failed: last.filter((e) => !e.healthy).length,
    maxRunning,
    failedAtStart: events.filter((e) => e.at < 3000 && !e.healthy).length,
  };
}

t.test('checks in flight are cut while the answers queue at a server they share', async (t) => {
  // 600 servers a second against 150 answers a second: a queue whatever is done; the question
  // is whether it sits at the shared server, where it makes healthy servers time out, or here.
  const fixed = await sharedServer(256, 600, 150);
  t.ok(
    fixed.failed > fixed.checks / 2,
    `a fixed cap: ${fixed.maxRunning} in flight (slots given back), answers past the timeout (${fixed.failed} of ${fixed.checks} failed)`,
  );
  const adaptive = await sharedServer(16, 600, 150);
  t.equal(adaptive.failed, 0, `adaptive: none failed (of ${adaptive.checks})`);
  t.ok(adaptive.checks >= 5 * 140, `the shared server kept busy (${adaptive.checks} in 5 s)`);
  // Answers within a quarter of the timeout: about 0.25 s x 150 a second in flight.
  t.ok(adaptive.maxRunning <= 48, `in flight at most ${adaptive.maxRunning}`);
  // Every first check is due in the first second: 256 out at once would queue 1.7 s there.
  t.ok(fixed.failedAtStart > 50, `a fixed cap at start: ${fixed.failedAtStart} failed`);
  t.equal(adaptive.failedAtStart, 0, 'adaptive at start (a slow start from 16): none failed');
});
