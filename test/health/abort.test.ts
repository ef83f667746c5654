// One listener per signal however many wait on it: what a thousand checks in flight on the
// scheduler's stop signal cost the EventTarget, and that each waiter is called once.
import { getEventListeners } from 'node:events';
import t from 'tap';
import { unwatchAbort, watchAbort, watchers } from '../../src/health/abort.js';

t.test('waiters on one signal: one listener, each called once, the removed ones not', async (t) => {
  const c = new AbortController();
  const calls: number[] = [];
  const fns = Array.from({ length: 5 }, (_, i) => () => calls.push(i));
  for (const fn of fns) watchAbort(c.signal, fn);
  watchAbort(c.signal, fns[0] ?? (() => undefined));
  t.equal(getEventListeners(c.signal, 'abort').length, 1);
  t.equal(watchers(c.signal), 5, 'a waiter added twice waits once');
  unwatchAbort(c.signal, fns[3] ?? (() => undefined));
  unwatchAbort(c.signal, () => undefined);
  c.abort();
  t.same(calls, [0, 1, 2, 4]);
  t.equal(watchers(c.signal), 0);
  c.abort();
  t.same(calls, [0, 1, 2, 4], 'never twice');
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
