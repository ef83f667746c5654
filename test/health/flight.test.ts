// The bound on checks in flight while the servers' answers queue: the decision (a table), the
// least duration remembered, and the shell's hold after a cut. Pure: no clock, no sockets.
import t from 'tap';
import {
  answerMs,
  BASELINE_MS,
  FLIGHT_PERIOD_MS,
  FlightBaseline,
  FlightControl,
  type FlightSample,
  MIN_ANSWERS,
  nextFlightLimit,
  QUIET_MS,
} from '../../src/health/flight.js';

const settings = { min: 16, max: 256, ramp: 256 };
const sample: FlightSample = { answers: 40, medianMs: 20, timeoutMs: 1000, lagMs: 0, peak: 200 };

/** name, limit, sample, least answer time of late, next limit, settings other than `settings` */
type Row = [string, number, Partial<FlightSample>, number, number, Partial<typeof settings>?];

t.test('the limit from one period', async (t) => {
  const check = (rows: Row[], starting: boolean): void => {
    for (const [name, limit, s, least, want, own] of rows) {
      const next = nextFlightLimit(
        limit,
        { ...sample, ...s },
        least,
        { ...settings, ...own },
        starting,
      );
      t.equal(next, want, `${starting ? 'starting: ' : ''}${name}`);
    }
  };
  check(
    [
      [
        'a quiet second (7 answers), the limit full: grown, nothing shows a queue',
        200,
        { answers: MIN_ANSWERS - 1, medianMs: 100 },
        10,
        225,
      ],
      [
        'a quiet second whose 7 answers queued (900 ms): kept, too few to cut on',
        200,
        { answers: MIN_ANSWERS - 1, medianMs: 900 },
        10,
        200,
      ],
      [
        'a quiet second, the limit not full: kept',
        200,
        { answers: 0, medianMs: 0, peak: 20 },
        10,
        200,
      ],
      [
        'queued (30 times the least, 0.6 of the timeout): 3/4 of those in flight',
        256,
        { medianMs: 600 },
        20,
        150,
      ],
      [
        'the cut starts from the limit when more were in flight',
        100,
        { medianMs: 600, peak: 180 },
        20,
        75,
      ],
      ['never below the minimum', 20, { medianMs: 600, peak: 10 }, 20, 16],
      ['slower, but under a quarter of the timeout: kept', 200, { medianMs: 240 }, 20, 200],
      ['every server as slow as ever (600 ms, least 500): grown', 200, { medianMs: 600 }, 500, 225],
      [
        'twice the least but under a quarter of a 5 s timeout: kept',
        200,
        { medianMs: 1000, timeoutMs: 5000 },
        400,
        200,
      ],
      [
        "our loop late: its turns are not the servers' queue",
        200,
        { medianMs: 600, lagMs: 180 },
        20,
        225,
      ],
      ['quick (an eighth of the timeout): grown by an eighth', 100, { medianMs: 120 }, 20, 112],
      ['grown by one at least (minimum 4)', 7, { medianMs: 10 }, 10, 8, { min: 4 }],
      ['grown to the maximum, no further', 250, { medianMs: 10, peak: 250 }, 10, 256],
      [
        'quick, but the limit held nothing back (50 in flight of 200): kept',
        200,
        { medianMs: 10, peak: 50 },
        10,
        200,
      ],
      ['held back within an eighth: grown', 200, { medianMs: 10, peak: 175 }, 10, 225],
      ['a limit out of range is brought in first', 1000, { medianMs: 240 }, 20, 256],
      ['nothing learnt yet (least Infinity): grown', 200, { medianMs: 600 }, Infinity, 225],
    ],
    false,
  );
  check(
    [
      ['quick, the limit full: doubled', 16, { medianMs: 10, peak: 16 }, 10, 32],
      ['doubled up to the maximum, no further', 200, { medianMs: 10, peak: 200 }, 10, 256],
      [
        'doubled up to check_concurrency (ramp 64), no further',
        48,
        { medianMs: 10, peak: 48 },
        10,
        64,
        { ramp: 64 },
      ],
      [
        'past check_concurrency (ramp 64): an eighth',
        64,
        { medianMs: 10, peak: 64 },
        10,
        72,
        { ramp: 64 },
      ],
      ['a quiet second, the limit full: doubled', 32, { answers: 0, peak: 30 }, 10, 64],
      ['a quiet second of queued answers: kept', 32, { answers: 3, medianMs: 900 }, 10, 32],
      ['quick, but the limit held nothing back: kept', 64, { medianMs: 10, peak: 20 }, 10, 64],
      ['queued: cut as ever', 128, { medianMs: 600, peak: 128 }, 20, 96],
      ['slower, under a quarter of the timeout: kept', 64, { medianMs: 240, peak: 64 }, 20, 64],
    ],
    true,
  );
  t.equal(answerMs({ ...sample, medianMs: 100, lagMs: 50 }), 0, 'never below zero');
  t.equal(
    answerMs({ ...sample, medianMs: 100, lagMs: 10 }),
    70,
    'three turns of our loop taken off',
  );
});

t.test('the least duration is remembered for 30 s', async (t) => {
  const b = new FlightBaseline();
  t.equal(b.least(), Infinity, 'nothing yet');
  b.add(0, 50);
  b.add(1000, 30);
  b.add(6000, 80);
  t.equal(b.least(), 30);
  b.add(BASELINE_MS + 1000, 90);
  t.equal(b.least(), 80, 'the first 5 s are forgotten 30 s on');
  b.add(BASELINE_MS + 7000, 200);
  t.equal(b.least(), 90, 'then the next');
});

/** A FlightControl fed whole periods: `quick` answers of 10 ms and `slow` of 900, `peak` out. */
function feeder(): {
  f: FlightControl;
  period: (quick: number, slow: number, peak: number, quickMs?: number) => number;
} {
  const f = new FlightControl(settings);
  let now = 0;
  f.observe(now, 0, 0); // the first period starts
  return {
    f,
    period: (quick, slow, peak, quickMs = 10) => {
      for (let i = 0; i < quick; i++) f.answered(quickMs, 1000);
      for (let i = 0; i < slow; i++) f.answered(900, 1000);
      now += FLIGHT_PERIOD_MS;
      f.observe(now, peak, 0);
      return f.current();
    },
  };
}

/** Quick periods with the limit full until it reaches the maximum; how many it took. */
function rampUp(
  period: (quick: number, slow: number, peak: number) => number,
  f: FlightControl,
): number {
  let periods = 0;
  while (f.current() < settings.max && periods < 100) {
    period(10, 0, f.current());
    periods++;
  }
  return periods;
}

t.test(
  'starts at the minimum, doubles while quick answers fill it, to check_concurrency',
  async (t) => {
    const f = new FlightControl({ min: 16, max: 2048, ramp: 256 });
    t.equal(f.current(), 16, 'check_concurrency_min');
    let now = 0;
    f.observe(now, 0, 0);
    const period = (peak: number, ms = 10): number => {
      for (let i = 0; i < 10; i++) f.answered(ms, 1000);
      now += FLIGHT_PERIOD_MS;
      f.observe(now, peak, 0);
      return f.current();
    };
    t.same([period(16), period(32), period(64)], [32, 64, 128], 'doubled each period');
    t.equal(period(5), 128, 'not while it holds nothing back (64 of 128 out at most)');
    t.same([period(128), period(256)], [256, 288], 'doubled once full, then an eighth from 256');
    t.equal(period(288, 600), 216, 'answers queued: cut to 3/4 of the 288 out');
    for (let i = 0; i < 5; i++) period(216, 600); // held while the 600 ms those answers took pass
    t.equal(period(216, 10), 243, 'quick again: an eighth at a time');
  },
);

t.test('a cut ends the slow start below check_concurrency', async (t) => {
  const f = new FlightControl({ min: 16, max: 2048, ramp: 256 });
  let now = 0;
  f.observe(now, 0, 0);
  const period = (peak: number, ms: number): number => {
    for (let i = 0; i < 10; i++) f.answered(ms, 1000);
    now += FLIGHT_PERIOD_MS;
    f.observe(now, peak, 0);
    return f.current();
  };
  t.same([period(16, 10), period(32, 10)], [32, 64], 'doubled');
  t.equal(period(64, 600), 48, 'queued at 64: cut to 48');
  for (let i = 0; i < 5; i++) period(48, 600);
  t.equal(period(48, 10), 54, 'an eighth from there, not doubled');
});

t.test('starting with every server hanging: doubles each quiet second', async (t) => {
  const f = new FlightControl(settings);
  const limits: number[] = [];
  f.observe(0, 16, 0);
  for (let s = 1; s <= 5; s++) {
    f.observe(s * QUIET_MS, f.current(), 0);
    limits.push(f.current());
  }
  t.same(limits, [32, 64, 128, 256, 256], 'the maximum within 4 s (an eighth a second: 24 s)');
});

t.test('a period lasts until 8 answers have come, or a second', async (t) => {
  const f = new FlightControl(settings);
  f.observe(0, 16, 0);
  for (let i = 0; i < MIN_ANSWERS - 1; i++) f.answered(500, 1000);
  f.observe(300, 16, 0);
  t.equal(f.current(), 16, 'seven answers in 300 ms: not yet');
  f.answered(500, 1000);
  f.observe(310, 16, 0);
  t.equal(f.current(), 32, 'the eighth: decided (all slow alike, doubled)');
  f.observe(1000, 32, 0);
  t.equal(f.current(), 32, 'no answer for 690 ms: not yet');
  f.observe(QUIET_MS + 310, 32, 0);
  t.equal(f.current(), 64, 'none for a second, the limit full: doubled');
  for (let i = 0; i < MIN_ANSWERS; i++) f.answered(900, 1000);
  f.observe(QUIET_MS + 410, 64, 0);
  t.equal(f.current(), 64, 'the quiet second left the least at 500 ms: 900 is not twice it, kept');
});

t.test('after a cut, no other until the answers queued before it have ended', async (t) => {
  const { f, period } = feeder();
  rampUp(period, f);
  t.equal(period(10, 0, 200), 256, 'at the maximum, 200 out');
  t.equal(period(0, 10, 200), 150, 'answers at 900 ms: cut to 3/4 of the 200 in flight');
  const held = Array.from({ length: 8 }, () => period(0, 10, 150));
  t.same(held, Array(8).fill(150), 'held for the 900 ms those answers take');
  t.equal(period(0, 10, 150), 112, 'then cut again: still queued');
  t.equal(period(10, 0, 112), 126, 'answers quick again: grown');
});

t.test('a few slow servers among quick ones are not a queue', async (t) => {
  const { f, period } = feeder();
  rampUp(period, f);
  period(10, 0, 200);
  t.equal(
    period(7, 4, 200),
    256,
    'four of eleven at 900 ms (a mean of 334 ms, a median of 10): not cut',
  );
  t.equal(period(4, 7, 200), 150, 'seven of eleven: the median is slow, cut');
});
