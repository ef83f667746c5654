// The connect probe in C (src/native/probe.c through src/health/native.ts) against real sockets
// on loopback: what a probe is told and when, that it resets what it connected, that a connect
// given up is closed and never told, that no descriptor is left behind, and that it runs in a
// worker thread and lets the process end. The checks' verdicts beside the other two socket
// kinds are lean.test.ts's.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { closedPort, endings, listen, until } from '../checks/servers.js';
import { recorder } from './recorder.js';

// The default, whatever the environment that runs the tests says: before the module loads.
delete process.env.IPVS_WARDEN_SOCKETS;
const { loadAddon, nativeConnect, nativeProbes } = await import('../../src/health/native.js');
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
