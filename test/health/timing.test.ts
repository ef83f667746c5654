// strictestTiming: the timing a check shared by several services runs with, per field.
import t from 'tap';
import { DEFAULT_TIMING, strictestTiming, type CheckTiming } from '../../src/health/timing.js';

const base: CheckTiming = {
  intervalMs: 2000,
  fastIntervalMs: 1000,
  downIntervalMs: 2000,
  timeoutMs: 1000,
  jitter: 0.1,
};

const cases: { name: string; timings: CheckTiming[]; want: CheckTiming }[] = [
  { name: 'one subscriber: its own', timings: [base], want: base },
  { name: 'equal timings', timings: [base, { ...base }], want: base },
  {
    name: 'a shorter interval wins alone',
    timings: [base, { ...base, intervalMs: 500 }],
    want: { ...base, intervalMs: 500 },
  },
  {
    name: 'each field from whichever is strictest there',
    timings: [
      { intervalMs: 1000, fastIntervalMs: 500, downIntervalMs: 4000, timeoutMs: 800, jitter: 0.2 },
      {
        intervalMs: 5000,
        fastIntervalMs: 250,
        downIntervalMs: 2000,
        timeoutMs: 3000,
        jitter: 0.05,
      },
    ],
    want: {
      intervalMs: 1000,
      fastIntervalMs: 250,
      downIntervalMs: 2000,
      timeoutMs: 800,
      jitter: 0.05,
    },
  },
  {
    name: 'three subscribers',
    timings: [
      { ...base, timeoutMs: 300 },
      { ...base, downIntervalMs: 10_000, jitter: 0 },
      { ...base, fastIntervalMs: 100 },
    ],
    want: { ...base, timeoutMs: 300, jitter: 0, fastIntervalMs: 100 },
  },
  {
    name: 'the defaults against themselves',
    timings: [DEFAULT_TIMING, DEFAULT_TIMING],
    want: DEFAULT_TIMING,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    t.same(strictestTiming(c.timings), c.want);
    t.same(strictestTiming([...c.timings].reverse()), c.want, 'the order does not matter');
  });
}

t.test('no timings is a mistake, not a default', async (t) => {
  t.throws(() => strictestTiming([]), RangeError);
});
