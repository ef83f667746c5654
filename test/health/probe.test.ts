// The one classifier of probe errors: which errnos are the director's own (a local result) and
// which are evidence about the server or the config (a failure), also when wrapped in a cause.
import { getEventListeners } from 'node:events';
import t from 'tap';
import { watchers } from '../../src/health/abort.js';
import { cancelCheck, type CancelHook } from '../../src/health/checker.js';
import { ProbeRun, localErrno } from '../../src/health/probe.js';

const errno = (code: string, cause?: unknown): Error =>
  Object.assign(new Error(`${code} happened`), { code }, cause === undefined ? {} : { cause });

t.test('local errnos: descriptors, memory, ports, buffers, processes', async (t) => {
  for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL', 'EAGAIN'])
    t.equal(localErrno(errno(code)), code, code);
});

t.test('everything else is not local: the server, the network or the config', async (t) => {
  const cases: [string, unknown][] = [
    ['refused', errno('ECONNREFUSED')],
    ['reset', errno('ECONNRESET')],
    ['unreachable', errno('EHOSTUNREACH')],
    ['a command that is missing (config)', errno('ENOENT')],
    ['a command that may not run (config)', errno('EACCES')],
    ['a timeout', new DOMException('check timed out', 'TimeoutError')],
    ['a code that is not a string', { code: 24 }],
    ['not an error at all', 'EMFILE'],
    ['nothing', undefined],
  ];
  for (const [name, error] of cases) t.equal(localErrno(error), undefined, name);
});

t.test('wrapped: the errno in a cause counts (undici wraps socket errors)', async (t) => {
  t.equal(localErrno(errno('UND_ERR_SOCKET', errno('EMFILE'))), 'EMFILE');
  t.equal(localErrno(errno('UND_ERR_SOCKET', errno('ECONNRESET'))), undefined);
  const loop = errno('UND_ERR_SOCKET') as Error & { cause?: unknown };
  loop.cause = loop;
  t.equal(localErrno(loop), undefined, 'a cause that is itself ends the search');
  const a = errno('A') as Error & { cause?: unknown };
  a.cause = errno('B', a);
  t.equal(localErrno(a), undefined, 'so does a cycle of causes');
});

t.test('failWith: a local error is a local result that says so; others fail', async (t) => {
  const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
  const ctx = { signal: new AbortController().signal, timeoutMs: 1000 };
  const local = new ProbeRun('TCP connect', target, ctx).failWith(errno('EMFILE'), 'connecting');
  t.match(local, {
    healthy: false,
    local: true,
    message:
      "TCP connect -> 10.0.0.5:80: local error on this director, not the server's: too many open files in this process (EMFILE)",
  });
  const refused = new ProbeRun('TCP connect', target, ctx).failWith(
    errno('ECONNREFUSED'),
    'connecting',
  );
  t.equal(refused.healthy, false);
  t.equal(refused.local, undefined, 'a failure carries no local flag at all');
  t.equal(refused.message, 'TCP connect -> 10.0.0.5:80: connection refused (ECONNREFUSED)');
});

t.test(
  'probes on one shared signal: one listener on it, each cancelled by its abort',
  async (t) => {
    const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
    const stop = new AbortController();
    const ctx = { signal: stop.signal, timeoutMs: 60_000 };
    const runs = Array.from({ length: 1000 }, () => new ProbeRun('TCP connect', target, ctx));
    t.equal(getEventListeners(stop.signal, 'abort').length, 1, 'one listener, not a thousand');
    t.equal(watchers(stop.signal), 1000);
    const ended = runs.slice(0, 400).map((r) => r.ok());
    t.ok(ended.every((r) => r.healthy));
    t.equal(watchers(stop.signal), 600, 'a probe that ended no longer waits');
    stop.abort();
    t.equal(watchers(stop.signal), 0);
    t.same(
      [runs[0]?.signal.aborted, runs[400]?.signal.aborted, runs[999]?.signal.aborted],
      [false, true, true],
      'the ones in flight are aborted, not the ones that ended',
    );
    const cancelled = runs.slice(400).map((r) => r.failWith(new Error('aborted'), 'connecting'));
    t.ok(
      cancelled.every((r) => !r.healthy && r.message.endsWith('cancelled connecting')),
      'each says so',
    );
  },
);

t.test(
  "a caller's cancel hook stops one probe of many on a shared signal, and says so",
  async (t) => {
    const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
    const shared = new AbortController().signal;
    const hooks: CancelHook[] = Array.from({ length: 3 }, () => ({ stop: undefined }));
    const runs = hooks.map(
      (cancel) =>
        new ProbeRun('TCP connect', target, { signal: shared, timeoutMs: 60_000, cancel }),
    );
    t.ok(
      hooks.every((h) => typeof h.stop === 'function'),
      'each probe sets its hook',
    );
    t.equal(getEventListeners(shared, 'abort').length, 1, 'one listener on the shared signal');
    const calls: string[] = [];
    runs[1]?.watch(() => calls.push('stopped'));
    cancelCheck(hooks[1] as CancelHook, new DOMException('gone', 'AbortError'));
    t.same(calls, ['stopped'], 'its waiters are called');
    t.same(
      runs.map((r) => r.aborted),
      [false, true, false],
      'that probe alone',
    );
    t.match(runs[1]?.failWith(new Error('aborted'), 'connecting'), {
      message: /cancelled connecting$/,
    });
    t.equal(hooks[1]?.stop, undefined, 'a result clears the hook');
    t.equal(runs[0]?.ok().healthy, true);
    t.equal(hooks[0]?.stop, undefined);
    runs[2]?.ok();
    t.equal(watchers(shared), 0, 'nothing waits on the shared signal afterwards');

    // Cancelled before the probe set its hook (a check that starts late): it starts stopped.
    const early: CancelHook = { stop: undefined };
    cancelCheck(early, new DOMException('gone', 'AbortError'));
    const late = new ProbeRun('TCP connect', target, {
      signal: shared,
      timeoutMs: 60_000,
      cancel: early,
    });
    t.ok(late.aborted, 'stopped as it starts');
    t.match(late.failWith(new Error('aborted'), 'connecting'), {
      message: /cancelled connecting$/,
    });
    t.equal(watchers(shared), 0, 'and leaves nothing waiting');
  },
);

t.test(
  'watch: called once when the probe stops, without a signal; a late signal says why',
  async (t) => {
    const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
    const stop = new AbortController();
    const calls: string[] = [];
    const deadline = new ProbeRun('TCP connect', target, { signal: stop.signal, timeoutMs: 1 });
    deadline.watch(() => calls.push('deadline'));
    const removed = (): number => calls.push('removed');
    deadline.watch(removed);
    deadline.unwatch(removed);
    t.notOk(deadline.aborted);
    await new Promise((resolve) => deadline.watch(() => resolve(undefined)));
    t.same(calls, ['deadline'], 'the removed one is not called');
    t.ok(deadline.aborted);
    t.equal((deadline.reason as DOMException).name, 'TimeoutError');
    t.ok(deadline.signal.aborted, 'a signal asked for afterwards is aborted');
    t.equal(deadline.signal.reason, deadline.reason, 'with the same reason');
    t.match(deadline.failWith(new Error('x'), 'connecting'), { message: /timed out after 1 ms/ });

    const cancelled = new ProbeRun('TCP connect', target, {
      signal: stop.signal,
      timeoutMs: 60_000,
    });
    const signal = cancelled.signal;
    cancelled.watch(() => calls.push('cancelled'));
    stop.abort(new Error('stopping'));
    t.same(calls, ['deadline', 'cancelled'], 'the caller stops it: the waiter is called');
    t.ok(signal.aborted, 'and the signal made before is aborted');
    t.match(cancelled.reason, { message: 'stopping' });
    t.match(cancelled.failWith(new Error('x'), 'connecting'), { message: /cancelled connecting$/ });
  },
);
