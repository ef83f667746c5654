// The one classifier of probe errors: which errnos are the director's own (a local result) and
// which are evidence about the server or the config (a failure), also when wrapped in a cause.
import t from 'tap';
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
