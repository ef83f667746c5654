// The probes in C (src/native/probe.c through src/health/native.ts) against real sockets on
// loopback: what a probe is told and when, that it resets what it connected, that a connect
// given up is closed and never told, that no descriptor is left behind, and that it runs in a
// worker thread and lets the process end; then the exchange (a request written and its reply
// read in C): what the server gets, what the probe is told in order, a reply larger than a turn's
// buffer, how it ends (reset or FIN), and its errors. The checks' verdicts beside the other two
// socket kinds are lean.test.ts's.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { closedPort, endings, listen, until } from '../checks/servers.js';
import { recorder } from './recorder.js';

// The default, whatever the environment that runs the tests says: before the module loads.
delete process.env.IPVS_WARDEN_SOCKETS;
const { loadAddon, nativeConnect, nativeExchange, nativeProbes } =
  await import('../../src/health/native.js');
const { TcpChecker } = await import('../../checks/tcp.js');

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const openFds = (): number => readdirSync('/proc/self/fd').length;

/**
 * A listener in a process of its own (python3), so that its sockets are not counted as ours:
 * `accept` accepts, prints each peer's address and closes; `silent` never accepts, and with
 * listen(0) Linux queues one connection and then drops SYNs, so a connect hangs as it does to a
 * black-holed server. `refusing` is a port it holds bound and not listening: refused, and unlike
 * a port closed after binding, no other test's listener can take it meanwhile.
 */
async function pyListener(
  t: { teardown(fn: () => void): void },
  mode: 'accept' | 'silent',
): Promise<{ port: number; refusing: number; peers: string[] }> {
  const child = spawn('python3', [
    '-c',
    [
      'import socket,sys,time',
      's=socket.socket(); s.bind(("127.0.0.1",0))',
      'r=socket.socket(); r.bind(("127.0.0.1",0))',
      `s.listen(${mode === 'silent' ? 0 : 4096})`,
      'print(s.getsockname()[1], r.getsockname()[1], flush=True)',
      mode === 'silent'
        ? 'time.sleep(120)'
        : 'while True:\n  c,a=s.accept(); print(a[0], flush=True); c.close()',
    ].join('\n'),
  ]);
  t.teardown(() => child.kill());
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.once('error', (e) => lines.push(`error ${e.message}`));
  if (!(await until(() => lines.length > 0, 5000))) throw new Error('python3 did not listen');
  const [port = NaN, refusing = NaN] = (lines.shift() ?? '').split(' ').map(Number);
  if (mode === 'silent') {
    // Fill the queue: connects that complete (queued) until one hangs. A connect to loopback
    // completes within the call and is told at the next loop turn; a second is margin enough
    // for a busy machine's turn, and a hung one is only told when given up.
    for (let i = 0; i < 8; i++) {
      const r = recorder();
      const cancel = nativeConnect(4, '127.0.0.1', port, undefined, r.events);
      if (!(await until(() => r.seen.length > 0, 1000))) {
        cancel?.();
        return { port, refusing, peers: lines };
      }
    }
    throw new Error('the silent port kept accepting');
  }
  return { port, refusing, peers: lines };
}

t.test('the addon is built here, so the connect checks below run in C', async (t) => {
  t.equal(nativeProbes.on, true, nativeProbes.why);
  t.type(loadAddon({}), 'object', 'the default');
  t.equal(loadAddon({ IPVS_WARDEN_SOCKETS: 'lean' }), 'IPVS_WARDEN_SOCKETS=lean');
  t.equal(loadAddon({ IPVS_WARDEN_SOCKETS: 'node' }), 'IPVS_WARDEN_SOCKETS=node');
  const native = { IPVS_WARDEN_SOCKETS: 'native' };
  t.match(loadAddon(native, '/nonexistent/probe.node'), /^not built/);
  t.type(loadAddon(native), 'object');
});

t.test('connected, IPv4 and IPv6, told on a later turn', async (t) => {
  for (const host of ['127.0.0.1', '::1'] as const) {
    const server = await listen(createServer(), host);
    const r = recorder();
    nativeConnect(host === '::1' ? 6 : 4, host, server.target.port, undefined, r.events);
    t.same(r.seen, [], `${host}: nothing told from the call`);
    t.ok(await until(() => r.seen.length > 0));
    t.same(r.seen, ['connected'], host);
    await server.stop();
  }
});

t.test('refused: an error with its code and address, as net.Socket has it', async (t) => {
  for (const host of ['127.0.0.1', '::1'] as const) {
    const target = await closedPort(host);
    const r = recorder();
    nativeConnect(target.family, host, target.port, undefined, r.events);
    t.same(r.seen, []);
    t.ok(await until(() => r.seen.length > 0));
    t.same(r.seen, ['failed:ECONNREFUSED'], host);
    t.match(r.errors[0], {
      message: `connect ECONNREFUSED ${host}:${target.port}`,
      code: 'ECONNREFUSED',
      syscall: 'connect',
      address: host,
      port: target.port,
    });
  }
});

t.test('bound where asked; a source this host lacks is a bind error; not an address', async (t) => {
  // The address as accept(2) gives it: the probe's reset may come before the accept.
  const server = await pyListener(t, 'accept');
  const r = recorder();
  nativeConnect(4, '127.0.0.1', server.port, '127.0.0.2', r.events);
  t.ok(await until(() => server.peers.length === 1));
  t.same(server.peers, ['127.0.0.2']);
  t.same(r.seen, ['connected']);
  const bad = recorder();
  nativeConnect(4, '127.0.0.1', server.port, '192.0.2.1', bad.events);
  t.same(bad.seen, [], 'told on a later turn, not from the call');
  t.ok(await until(() => bad.seen.length > 0));
  t.same(bad.seen, ['failed:EADDRNOTAVAIL']);
  t.match(bad.errors[0], { syscall: 'bind' });
  const wrong = recorder();
  nativeConnect(4, '::1', server.port, undefined, wrong.events);
  t.ok(await until(() => wrong.seen.length > 0));
  t.same(wrong.seen, ['failed:EINVAL'], 'an IPv6 address given as IPv4');
});

t.test('a connect is reset by the probe: the server sees a reset, never an end', async (t) => {
  const server = await endings();
  const { outcomes } = server;
  t.teardown(() => server.stop());
  for (let i = 0; i < 5; i++) {
    const r = recorder();
    nativeConnect(4, '127.0.0.1', server.target.port, undefined, r.events);
    t.ok(await until(() => r.seen.length > 0));
  }
  t.ok(await until(() => outcomes.length === 5), `every connection ended: ${outcomes.join()}`);
  t.same(outcomes, Array(5).fill('ECONNRESET'));
});

t.test('given up while connecting: closed, never told, its slot reused', async (t) => {
  const { port } = await pyListener(t, 'silent');
  const before = openFds();
  const r = recorder();
  const cancel = nativeConnect(4, '127.0.0.1', port, undefined, r.events);
  t.equal(openFds(), before + 1, 'the connect holds one socket');
  cancel?.();
  t.equal(openFds(), before, 'given up: closed at once');
  cancel?.();
  t.equal(openFds(), before, 'giving up twice closes nothing else');
  await pause(100);
  t.same(r.seen, []);
  // The TCP check's deadline is this path: a hanging connect times out with its stage.
  const check = await new TcpChecker().check(
    { family: 4, address: '127.0.0.1', port },
    { signal: new AbortController().signal, timeoutMs: 100 },
  );
  t.notOk(check.healthy);
  t.match(check.message, /timed out after 100 ms waiting for the connection/);
  t.equal(openFds(), before, 'the timed-out check left no socket');
});

t.test('thousands of connects, refused and accepted, leave no descriptor behind', async (t) => {
  const server = await pyListener(t, 'accept');
  const before = openFds();
  // A deadline (given up and counted) rather than a hang, if a SYN is lost on a busy machine:
  // its retransmits come 1 and 3 s later.
  const one = (port: number): Promise<string> =>
    new Promise((resolve) => {
      const done = (outcome: string): void => {
        clearTimeout(timer);
        resolve(outcome);
      };
      // Told on a later turn, never from the call: `timer` is set by then.
      const cancel = nativeConnect(4, '127.0.0.1', port, undefined, {
        connected: () => done('ok'),
        failed: (e) => done((e as { code?: string }).code ?? ''),
      });
      const timer = setTimeout(() => {
        cancel?.();
        done('timed out');
      }, 10_000);
    });
  const counts = new Map<string, number>();
  for (let round = 0; round < 10; round++) {
    const ports = Array.from({ length: 200 }, (_, i) => (i % 2 ? server.refusing : server.port));
    for (const outcome of await Promise.all(ports.map(one)))
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  }
  t.same(Object.fromEntries(counts), { ok: 1000, ECONNREFUSED: 1000 });
  t.equal(openFds(), before);
});

t.test('a bare TCP check timed by the engine: deadlines by timeout, in order', async (t) => {
  const silent = await pyListener(t, 'silent');
  const open = await pyListener(t, 'accept');
  const before = openFds();
  const signal = new AbortController().signal;
  const check = (port: number, timeoutMs: number) =>
    new TcpChecker().check({ family: 4, address: '127.0.0.1', port }, { signal, timeoutMs });
  const ended: string[] = [];
  const mark = <R>(name: string, p: Promise<R>): Promise<R> =>
    p.then((r) => {
      ended.push(name);
      return r;
    });
  // The long deadline is queued first: the short one must not wait behind it, and the checks
  // that connect or are refused meanwhile must not hold either up.
  const long = mark('long', check(silent.port, 600));
  const short = mark('short', check(silent.port, 100));
  const others = Array.from({ length: 50 }, (_, i) =>
    check(i % 2 ? open.port : open.refusing, 600),
  );
  const [l, s, ...rest] = await Promise.all([long, short, ...others]);
  t.same(ended, ['short', 'long'], 'each deadline at its own time');
  for (const [r, ms] of [
    [s, 100],
    [l, 600],
  ] as const) {
    t.notOk(r?.healthy);
    t.match(r?.message, `: timed out after ${ms} ms waiting for the connection`);
    t.ok((r?.durationMs ?? 0) >= ms, `not before its deadline: ${r?.durationMs} ms`);
  }
  t.ok((s?.durationMs ?? Infinity) < 600, 'the short one did not wait for the long one');
  t.same(
    rest.map((r) => r.healthy),
    Array.from({ length: 50 }, (_, i) => i % 2 === 1),
  );
  t.match(rest[0]?.message, /: connection refused \(ECONNREFUSED\)$/);
  t.equal(rest[1]?.message, `TCP connect -> 127.0.0.1:${open.port}: connected`);
  t.equal(openFds(), before, 'every socket closed');
});

t.test('a bare TCP check timed by the engine: its caller cancels every one at once', async (t) => {
  const silent = await pyListener(t, 'silent');
  const before = openFds();
  const ac = new AbortController();
  const target = { family: 4 as const, address: '127.0.0.1', port: silent.port };
  const pending = Array.from({ length: 20 }, () =>
    new TcpChecker().check(target, { signal: ac.signal, timeoutMs: 30_000 }),
  );
  t.equal(openFds(), before + 20, 'twenty connects hang');
  await pause(50);
  ac.abort();
  const results = await Promise.all(pending);
  t.same(
    new Set(results.map((r) => r.message)),
    new Set([`TCP connect -> 127.0.0.1:${silent.port}: cancelled waiting for the connection`]),
  );
  t.ok(results.every((r) => !r.healthy && r.durationMs < 10_000));
  t.equal(openFds(), before, 'their sockets closed');
  const late = await new TcpChecker().check(target, { signal: ac.signal, timeoutMs: 30_000 });
  t.match(late.message, /cancelled waiting for the connection$/, 'a signal aborted already');
  t.equal(openFds(), before);
});

t.test('a deadline still armed does not keep the process alive', async (t) => {
  const server = await listen(createServer((s) => s.on('error', () => undefined)));
  t.teardown(() => server.stop());
  const url = new URL('../../checks/tcp.js', import.meta.url).href;
  // A check that connects at once, with a deadline a minute out: the process ends with it.
  const started = performance.now();
  const child = spawn(process.execPath, [
    '--input-type=module',
    '-e',
    `const { TcpChecker } = await import(${JSON.stringify(url)});
     const r = await new TcpChecker().check(
       { family: 4, address: '127.0.0.1', port: ${server.target.port} },
       { signal: new AbortController().signal, timeoutMs: 60_000 },
     );
     console.log(r.healthy);`,
  ]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0);
  t.equal(out.trim(), 'true');
  t.ok(performance.now() - started < 30_000, 'ended long before the deadline');
});

t.test('in a worker thread: an engine of its own, and the worker ends', async (t) => {
  const server = await listen(createServer((s) => s.on('error', () => undefined)));
  t.teardown(() => server.stop());
  const url = new URL('../../src/health/native.js', import.meta.url).href;
  const worker = new Worker(
    `import(${JSON.stringify(url)}).then(({ nativeConnect, nativeProbes }) => {
       const { parentPort } = require('node:worker_threads');
       nativeConnect(4, '127.0.0.1', ${server.target.port}, undefined, {
         connected: () => parentPort.postMessage(['connected', nativeProbes.on]),
         failed: (e) => parentPort.postMessage(['failed', e.message]),
       });
     });`,
    { eval: true },
  );
  // Both listened for at once: on a busy machine the exit can come in the same turn as the
  // message, before a listener added after the message would be.
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const message = await new Promise<unknown>((resolve) => worker.once('message', resolve));
  t.same(message, ['connected', true]);
  // With its engine open and idle, the worker's loop has nothing left and the worker ends.
  t.equal(await exited, 0);
});

/**
 * A server that reads a request (up to its blank line and `bodyLength` bytes after it), then
 * does `reply` with the socket; it records each request and how each connection ended.
 */
async function replying(
  host: '127.0.0.1' | '::1',
  reply: (s: Socket) => void,
  bodyLength = 0,
): Promise<Awaited<ReturnType<typeof listen>> & { requests: string[]; ends: string[] }> {
  const requests: string[] = [];
  const ends: string[] = [];
  const server = await listen(
    createServer((s: Socket) => {
      let got = '';
      const onData = (d: Buffer): void => {
        got += d.toString('latin1');
        const blank = got.indexOf('\r\n\r\n');
        if (blank < 0 || got.length < blank + 4 + bodyLength) return;
        s.off('data', onData);
        requests.push(got);
        reply(s);
      };
      s.on('data', onData);
      s.on('error', (e: Error & { code?: string }) => ends.push(e.code ?? 'error'));
      s.on('end', () => ends.push('end'));
    }),
    host,
  );
  return { ...server, requests, ends };
}

const REQUEST = { text: 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', body: undefined };

t.test(
  'an exchange: the request written once connected, the reply told, then the end',
  async (t) => {
    for (const host of ['127.0.0.1', '::1'] as const) {
      const server = await replying(
        host,
        (s) => {
          s.write('HTTP/1.1 200 OK\r\n');
          setTimeout(() => s.end('content-length: 2\r\n\r\nok'), 50);
        },
        4,
      );
      const r = recorder();
      const family = host === '::1' ? 6 : 4;
      const body = Buffer.from('ping');
      const text = 'POST / HTTP/1.1\r\nhost: \xe9\r\ncontent-length: 4\r\n\r\n';
      nativeExchange(family, host, server.target.port, undefined, { text, body }, r.events);
      t.same(r.seen, [], `${host}: nothing told from the call`);
      t.ok(await until(() => r.seen.at(-1) === 'ended'), r.seen.join());
      // Latin-1 as written (é is one byte), then the body's bytes.
      t.same(server.requests, [`${text}ping`], `${host}: what the server read`);
      // Two writes 50 ms apart: two reads, told in order, then the peer's end.
      t.same(
        r.seen,
        ['connected', 'data:HTTP/1.1 200 OK\r\n', 'data:content-length: 2\r\n\r\nok', 'ended'],
        host,
      );
      await server.stop();
    }
  },
);

t.test("a reply past a turn's buffer (256 KiB) arrives whole and in order", async (t) => {
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  const server = await replying('127.0.0.1', (s) => s.end(big));
  const chunks: Buffer[] = [];
  let ended = false;
  nativeExchange(4, '127.0.0.1', server.target.port, undefined, REQUEST, {
    connected: () => undefined,
    data: (chunk) => chunks.push(chunk),
    ended: () => (ended = true),
    failed: (e) => t.fail(e.message),
  });
  t.ok(await until(() => ended, 10_000));
  const got = Buffer.concat(chunks);
  t.equal(got.length, big.length);
  t.ok(got.equals(big), 'the same bytes');
  t.ok(
    chunks.every((c) => c.length <= 256 * 1024),
    'no read larger than the buffer',
  );
  await server.stop();
});

t.test('ended by the probe: a reset once connected, or a FIN when asked', async (t) => {
  const server = await replying('127.0.0.1', (s) => s.write('HTTP/1.1 200 OK\r\n'));
  for (const close of [false, true]) {
    const r = recorder();
    const end = nativeExchange(4, '127.0.0.1', server.target.port, undefined, REQUEST, r.events);
    t.ok(await until(() => r.seen.length === 2), r.seen.join());
    end?.(close);
    end?.(close);
    t.ok(await until(() => server.ends.length === (close ? 2 : 1)));
    await pause(50);
    t.same(r.seen, ['connected', 'data:HTTP/1.1 200 OK\r\n'], 'never told after its end');
  }
  t.same(server.ends, ['ECONNRESET', 'end']);
  await server.stop();
});

t.test("an exchange's errors name their syscall: connect, bind, read", async (t) => {
  const refused = await closedPort();
  const r = recorder();
  nativeExchange(4, '127.0.0.1', refused.port, undefined, REQUEST, r.events);
  t.ok(await until(() => r.seen.length > 0));
  t.same(r.seen, ['failed:ECONNREFUSED']);
  t.match(r.errors[0], { syscall: 'connect', port: refused.port });
  // The server reads the request, then resets: the write is done, the read fails.
  const server = await replying('127.0.0.1', (s) => s.resetAndDestroy());
  const reset = recorder();
  nativeExchange(4, '127.0.0.1', server.target.port, undefined, REQUEST, reset.events);
  t.ok(await until(() => reset.seen.length === 2), reset.seen.join());
  t.same(reset.seen, ['connected', 'failed:ECONNRESET']);
  t.match(reset.errors[0], { syscall: 'read', address: '127.0.0.1' });
  const bind = recorder();
  nativeExchange(4, '127.0.0.1', server.target.port, '192.0.2.1', REQUEST, bind.events);
  t.ok(await until(() => bind.seen.length > 0));
  t.same(bind.seen, ['failed:EADDRNOTAVAIL']);
  t.match(bind.errors[0], { syscall: 'bind' });
  await server.stop();
});

t.test('thousands of exchanges, answered, refused and given up, leave no descriptor', async (t) => {
  const server = await pyListener(t, 'accept');
  const before = openFds();
  const one = (port: number, giveUp: boolean): Promise<string> =>
    new Promise((resolve) => {
      const done = (outcome: string): void => {
        end?.();
        resolve(outcome);
      };
      const end = nativeExchange(4, '127.0.0.1', port, undefined, REQUEST, {
        connected: () => (giveUp ? done('given up') : undefined),
        data: () => undefined,
        ended: () => done('ended'),
        failed: (e) => done((e as { code?: string }).code ?? ''),
      });
    });
  const counts = new Map<string, number>();
  for (let round = 0; round < 10; round++) {
    const runs = Array.from({ length: 150 }, (_, i) =>
      one(i % 3 === 0 ? server.refusing : server.port, i % 3 === 1),
    );
    for (const outcome of await Promise.all(runs))
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  }
  // python closes each connection it accepts: an exchange not given up sees its end (or,
  // when the close beat the request, a reset or a broken pipe).
  const ended = ['ended', 'ECONNRESET', 'EPIPE'].reduce((n, k) => n + (counts.get(k) ?? 0), 0);
  t.same(
    { refused: counts.get('ECONNREFUSED'), given: counts.get('given up'), ended },
    { refused: 500, given: 500, ended: 500 },
  );
  t.equal(openFds(), before);
});
