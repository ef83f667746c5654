// SharedRead as a table: a counting reader whose reads the test finishes by hand, and a manual
// clock, so "in flight", "fresh" and "too old" are exact on any machine.
import t from 'tap';
import { SharedRead } from '../../src/ipvs/shared-read.js';
import { ManualClock, settle } from '../clock.js';

/**
 * Steps: `call` (a reader asks), `ok` / `fail` (the oldest read in flight finishes), `+N` / `-N`
 * (the clock moves), `write` (the daemon changed the table: invalidate). Each call ends as `rN` (the result of read N), `error`, or `pending`.
 */
const cases: {
  name: string;
  maxAgeMs?: number;
  steps: string[];
  calls: string[];
  reads: number;
}[] = [
  {
    name: 'concurrent callers share the read in flight',
    steps: ['call', 'call', 'call', 'ok'],
    calls: ['r1', 'r1', 'r1'],
    reads: 1,
  },
  {
    name: 'a caller within maxAgeMs of the last completed read gets its result',
    steps: ['call', 'ok', '+999', 'call'],
    calls: ['r1', 'r1'],
    reads: 1,
  },
  {
    name: 'at maxAgeMs it reads again',
    steps: ['call', 'ok', '+1000', 'call', 'ok'],
    calls: ['r1', 'r2'],
    reads: 2,
  },
  {
    name: 'the age counts from when the read completed, not when it started',
    steps: ['call', '+600', 'ok', '+900', 'call'],
    calls: ['r1', 'r1'],
    reads: 1,
  },
  {
    name: 'a caller during a newer read in flight shares it',
    steps: ['call', 'ok', '+1500', 'call', 'call', 'ok'],
    calls: ['r1', 'r2', 'r2'],
    reads: 2,
  },
  {
    name: 'a failed read fails everyone waiting on it, and is not kept',
    steps: ['call', 'call', 'fail', 'call', 'ok'],
    calls: ['error', 'error', 'r2'],
    reads: 2,
  },
  {
    name: 'a failure after an old result does not bring the old result back',
    steps: ['call', 'ok', '+1000', 'call', 'fail', 'call', 'ok'],
    calls: ['r1', 'error', 'r3'],
    reads: 3,
  },
  {
    name: 'maxAgeMs 0: only callers of one read in flight share',
    maxAgeMs: 0,
    steps: ['call', 'call', 'ok', 'call', 'ok'],
    calls: ['r1', 'r1', 'r2'],
    reads: 2,
  },
  {
    name: 'a clock stepped back does not make a result fresh for longer',
    steps: ['call', 'ok', '-5000', 'call', 'ok'],
    calls: ['r1', 'r2'],
    reads: 2,
  },
  {
    name: 'a write ends a fresh result: the next caller reads the table again',
    steps: ['call', 'ok', '+10', 'write', 'call', 'ok'],
    calls: ['r1', 'r2'],
    reads: 2,
  },
  {
    name: 'a read in flight at a write serves those already waiting, not later callers',
    steps: ['call', 'write', 'call', 'ok', 'ok'],
    calls: ['r1', 'r2'],
    reads: 2,
  },
  {
    name: 'a read in flight at a write is not kept when it completes',
    steps: ['call', 'write', 'ok', 'call', 'ok'],
    calls: ['r1', 'r2'],
    reads: 2,
  },
  {
    name: 'a read started after a write is kept and shared as usual',
    steps: ['call', 'ok', 'write', 'call', 'call', 'ok', '+500', 'call'],
    calls: ['r1', 'r2', 'r2', 'r2'],
    reads: 2,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const clock = new ManualClock();
    const waiting: { resolve: (v: string) => void; reject: (e: Error) => void; n: number }[] = [];
    let reads = 0;
    const shared = new SharedRead(
      () =>
        new Promise<string>((resolve, reject) => {
          reads++;
          waiting.push({ resolve, reject, n: reads });
        }),
      { clock, ...(c.maxAgeMs === undefined ? {} : { maxAgeMs: c.maxAgeMs }) },
    );
    const outcomes: string[] = [];
    for (const step of c.steps) {
      if (step === 'call') {
        const i = outcomes.push('pending') - 1;
        shared.read().then(
          (v) => (outcomes[i] = v),
          () => (outcomes[i] = 'error'),
        );
      } else if (step === 'write') {
        shared.invalidate();
      } else if (step === 'ok' || step === 'fail') {
        const w = waiting.shift();
        if (!w) throw new Error(`${step}: no read in flight`);
        if (step === 'ok') w.resolve(`r${w.n}`);
        else w.reject(new Error(`read ${w.n} failed`));
      } else {
        await clock.advance(Number(step));
      }
      await settle();
    }
    t.same(outcomes, c.calls, 'what each caller got');
    t.equal(reads, c.reads, 'reads of the source');
  });
}

t.test('the default keeps a result for one second', async (t) => {
  const clock = new ManualClock();
  let reads = 0;
  const shared = new SharedRead(() => Promise.resolve(++reads), { clock });
  t.equal(await shared.read(), 1);
  await clock.advance(999);
  t.equal(await shared.read(), 1);
  await clock.advance(1);
  t.equal(await shared.read(), 2);
});

t.test('a source that throws instead of rejecting is a failed read', async (t) => {
  let reads = 0;
  const shared = new SharedRead<number>(
    () => {
      reads++;
      throw new Error('sync');
    },
    { clock: new ManualClock() },
  );
  await t.rejects(shared.read(), /sync/);
  await t.rejects(shared.read(), /sync/);
  t.equal(reads, 2);
});
