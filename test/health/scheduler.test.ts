// The scheduler with probes of our own making (scripted results): intervals, merging of
// identical checks, the concurrency cap, stopping. Time is a manual clock, so every sequence
// is exact: assertions are on order, counts and clock times, never on the machine's speed.
import t from 'tap';
import type { CheckContext, CheckResult, Checker } from '../../src/health/checker.js';
import type { HealthPolicy } from '../../src/health/policy.js';
import { Scheduler, jittered, nextInterval, type CheckEvent } from '../../src/health/scheduler.js';
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

class Scripted implements Checker {
  readonly kind = 'scripted';
  readonly description = 'scripted';
  calls = 0;
  running = 0;
  maxRunning = 0;
  signals: AbortSignal[] = [];
  constructor(
    readonly key: string,
    private readonly script: (call: number, ctx: CheckContext) => Promise<boolean> | boolean,
  ) {}
  async check(_target: unknown, ctx: CheckContext): Promise<CheckResult> {
    const call = this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.signals.push(ctx.signal);
    try {
      const healthy = await this.script(call, ctx);
      return { healthy, durationMs: 0, message: `call ${call}` };
    } finally {
      this.running--;
    }
  }
}

t.test('intervals: settled up, changing, settled down', async (t) => {
  const timing = { ...fast, intervalMs: 2000, fastIntervalMs: 500, downIntervalMs: 5000 };
  t.equal(nextInterval({ up: true, successes: 4, failures: 0, results: 4 }, timing), 2000);
  t.equal(
    nextInterval({ up: true, successes: 0, failures: 1, results: 5 }, timing),
    500,
    'failing towards fall',
  );
  t.equal(
    nextInterval({ up: false, successes: 1, failures: 0, results: 6 }, timing),
    500,
    'succeeding towards rise',
  );
  t.equal(nextInterval({ up: false, successes: 0, failures: 3, results: 7 }, timing), 5000);
  t.same(
    [0, 0.5, 0.999999].map((r) => jittered(1000, 0.1, r)),
    [900, 1000, 1100],
  );
});

t.test('results go through rise and fall', async (t) => {
  const pattern = [true, true, false, false, false, true];
  const checker = new Scripted('k', (i) => pattern[i] ?? true);
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const at: number[] = [];
  const s = new Scheduler({
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

t.test(
  'identical checks of one target run once; the result goes to every subscriber',
  async (t) => {
    const a = new Scripted('same', () => true);
    const b = new Scripted('same', () => true);
    const clock = new ManualClock(0);
    const events: CheckEvent[] = [];
    const s = new Scheduler({ onResult: (e) => events.push(e), random: () => 0, clock });
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

t.test('removing the last subscriber stops the check', async (t) => {
  const c = new Scripted('r', () => true);
  const sch = new Scheduler({ onResult: () => undefined, clock: new ManualClock() });
  const id = sch.add('a', c, target, fast, policy);
  sch.add('b', c, target, fast, policy);
  sch.remove('a', id);
  t.equal(sch.stats().checks, 1);
  sch.remove('b', id);
  t.equal(sch.stats().checks, 0);
  await sch.stop();
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

t.test('stop aborts checks in flight and ends the schedule', async (t) => {
  const hang = new Scripted(
    'hang',
    (_i, ctx) =>
      new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(false))),
  );
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const sch = new Scheduler({ onResult: (e) => events.push(e), random: () => 0, clock });
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

t.test('a probe that throws counts as a failure and checking goes on', async (t) => {
  const flaky = new Scripted('flaky', (i) => {
    if (i === 0) throw new Error('boom');
    return true;
  });
  const clock = new ManualClock(0);
  const events: CheckEvent[] = [];
  const s = new Scheduler({ onResult: (e) => events.push(e), random: () => 0, clock });
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
  const s = new Scheduler({ onResult: (e) => events.push(e), random: () => 0, clock });
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
