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
} from '../../src/health/flight.js';

const settings = { min: 16, max: 256 };
const sample: FlightSample = { answers: 40, medianMs: 20, timeoutMs: 1000, lagMs: 0, peak: 200 };

t.test('the limit from one period', async (t) => {
  const cases: [string, number, Partial<FlightSample>, number, number][] = [
    // name, limit, sample, least answer time of late, next limit
    ['too few answers: kept', 200, { answers: MIN_ANSWERS - 1, medianMs: 900 }, 10, 200],
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
    ['grown by one at least', 7, { medianMs: 10 }, 10, 8],
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
  ];
  for (const [name, limit, s, least, want] of cases) {
    const min = name === 'grown by one at least' ? { min: 4, max: 256 } : settings;
    t.equal(nextFlightLimit(limit, { ...sample, ...s }, least, min), want, name);
  }
  t.equal(answerMs({ ...sample, medianMs: 100, lagMs: 50 }), 0, 'never below zero');
  t.equal(answerMs({ ...sample, medianMs: 100, lagMs: 10 }), 70, 'three turns of our loop taken off');
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

t.test('after a cut, no other until the answers queued before it have ended', async (t) => {
  const limits: number[] = [];
  const f = new FlightControl(settings);
  let now = 0;
  const period = (ms: number, inFlight: number): void => {
    for (let i = 0; i < 10; i++) f.answered(ms, 1000);
    now += FLIGHT_PERIOD_MS;
    f.observe(now, inFlight, 0);
    if (f.current() !== (limits.at(-1) ?? settings.max)) limits.push(f.current());
  };
  f.observe(now, 0, 0); // the first period starts
  period(10, 50); // learns 10 ms
  t.same(limits, [], 'at the maximum: nothing to grow');
  period(600, 200);
  t.same(limits, [150], 'cut to 3/4 of the 200 in flight');
  for (let i = 0; i < 5; i++) period(600, 150);
  t.same(limits, [150], 'held for the 600 ms those answers take');
  period(600, 150);
  t.same(limits, [150, 112], 'then cut again: still queued');
  period(20, 100);
  t.same(limits, [150, 112, 126], 'answers quick again: grown');
  for (let i = 0; i < 10; i++) f.answered(10, 1000);
  f.observe(now + 50, 100, 0);
  t.equal(f.current(), 126, 'once a period at most');
});

t.test('a few slow servers among quick ones are not a queue', async (t) => {
  const f = new FlightControl(settings);
  let now = 0;
  f.observe(now, 0, 0);
  const period = (quick: number, slow: number): void => {
    for (let i = 0; i < quick; i++) f.answered(10, 1000);
    for (let i = 0; i < slow; i++) f.answered(900, 1000);
    now += FLIGHT_PERIOD_MS;
    f.observe(now, 200, 0);
  };
  period(10, 0); // learns 10 ms
  period(7, 4); // a mean of 334 ms, a median of 10
  t.equal(f.current(), 256, 'four of eleven at 900 ms: not cut');
  period(4, 7);
  t.equal(f.current(), 150, 'seven of eleven: the median is slow, cut');
});
