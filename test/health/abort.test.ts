// One listener per signal however many wait on it: what a thousand checks in flight on the
// scheduler's stop signal cost the EventTarget, and that each waiter is called once.
import { getEventListeners } from 'node:events';
import t from 'tap';
import { type AbortWatch, unwatchAbort, watchAbort, watchers } from '../../src/health/abort.js';

t.test('waiters on one signal: one listener, each called once, the removed ones not', async (t) => {
  const c = new AbortController();
  const calls: number[] = [];
  const watches = Array.from({ length: 5 }, (_, i) => watchAbort(c.signal, () => calls.push(i)));
  t.equal(getEventListeners(c.signal, 'abort').length, 1);
  t.equal(watchers(c.signal), 5);
  const fourth = watches[3];
  if (fourth) unwatchAbort(fourth);
  if (fourth) unwatchAbort(fourth);
  t.equal(watchers(c.signal), 4, 'taken out once, however often asked');
  c.abort();
  t.same(calls, [0, 1, 2, 4]);
  t.equal(watchers(c.signal), 0);
  for (const w of watches) unwatchAbort(w);
  c.abort();
  t.same(calls, [0, 1, 2, 4], 'never twice, and taking out a called one is a no-op');
});

t.test('the same callback watched twice is called twice, each watch taken out alone', async (t) => {
  const c = new AbortController();
  let calls = 0;
  const fn = (): number => calls++;
  const first = watchAbort(c.signal, fn);
  watchAbort(c.signal, fn);
  watchAbort(c.signal, fn);
  unwatchAbort(first);
  c.abort();
  t.equal(calls, 2);
});

t.test(
  'any watches taken out, in any order: the rest are called in the order they came',
  async (t) => {
    // Every subset of six taken out, each in two orders (first to last, last to first), against
    // an array: the list's first, last and middle links all get taken out and joined again.
    for (let mask = 0; mask < 64; mask++) {
      for (const backwards of [false, true]) {
        const c = new AbortController();
        const calls: number[] = [];
        const watches = Array.from({ length: 6 }, (_, i) =>
          watchAbort(c.signal, () => calls.push(i)),
        );
        const out = [0, 1, 2, 3, 4, 5].filter((i) => mask & (1 << i));
        for (const i of backwards ? out.reverse() : out) {
          const w = watches[i];
          if (w) unwatchAbort(w);
        }
        // One more after the removals goes last.
        watchAbort(c.signal, () => calls.push(6));
        c.abort();
        const kept = [0, 1, 2, 3, 4, 5].filter((i) => !(mask & (1 << i)));
        if (calls.join() !== [...kept, 6].join()) {
          t.fail(`taken out ${out.join()} (backwards ${backwards}): called ${calls.join()}`);
          return;
        }
      }
    }
    t.pass('128 cases');
  },
);

t.test('a watch taken out or called points at nothing', async (t) => {
  // So that a watch left in the old generation keeps no check alive (see abort.ts).
  const c = new AbortController();
  const [a, b, d] = [1, 2, 3].map(() => watchAbort(c.signal, () => undefined));
  const links = (w: AbortWatch | undefined) => w && [w.fn, w.list, w.prev, w.next];
  const none = [undefined, undefined, undefined, undefined];
  t.notSame(links(b), none, 'in the list: linked');
  if (b) unwatchAbort(b);
  t.same(links(b), none, 'taken out');
  t.equal(a?.next, d, 'its neighbours joined');
  t.equal(d?.prev, a);
  c.abort();
  t.same(links(a), none, 'called');
  t.same(links(d), none, 'called');
});

t.test('a waiter that throws: the others are still called, then the error is raised', async (t) => {
  const c = new AbortController();
  const calls: string[] = [];
  watchAbort(c.signal, () => calls.push('a'));
  watchAbort(c.signal, () => {
    throw new Error('boom');
  });
  watchAbort(c.signal, () => calls.push('c'));
  // An EventTarget reports a listener's error as uncaught, on the next tick.
  const raised = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
  c.abort();
  t.same(calls, ['a', 'c']);
  t.match(await raised, { message: 'boom' });
});

t.test('a signal aborted before anyone waits calls nobody later', async (t) => {
  const c = new AbortController();
  c.abort();
  let called = false;
  watchAbort(c.signal, () => (called = true));
  t.equal(watchers(c.signal), 1, 'kept: the caller looks at aborted first');
  t.notOk(called);
});
