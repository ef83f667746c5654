// The listener's bounds, with real sockets: a connection beyond the cap is closed as it arrives
// (so idle clients cannot take every descriptor the probes need), the listener answers again
// once a connection goes; a connection that sends nothing, one whose headers never end, and a
// kept-alive one left idle are each closed after their bound. Bounds are short here; each time
// is asserted between 0.9x its bound and 10x it.
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { startListener, type ListenerOptions } from '../../src/http/server.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { until } from '../checks/servers.js';

const LONG = 60_000;

async function setup(t: Test, options: ListenerOptions): Promise<number> {
  const config = parseConfig('daemon: {backend: memory}\nvirtual_services: []\n', 'x', {});
  const backend = new MemoryBackend();
  const table = () => backend.table();
  const metrics = new WardenMetrics({ perServer: true, labels: ['remote_address'] }, table);
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  const listener = await startListener('127.0.0.1:0', loop, metrics, table, options);
  t.teardown(() => listener.close());
  return Number(new URL(listener.url).port);
}

interface Conn {
  readonly socket: Socket;
  /** performance.now() when the connection was asked for, and when it closed. */
  readonly opened: number;
  closed: number | null;
  data: string;
}

async function open(t: Test, port: number): Promise<Conn> {
  const conn: Conn = {
    socket: connect(port, '127.0.0.1'),
    opened: performance.now(),
    closed: null,
    data: '',
  };
  t.teardown(() => conn.socket.destroy());
  conn.socket.on('data', (d: Buffer) => (conn.data += d.toString()));
  conn.socket.on('error', () => undefined);
  conn.socket.on('close', () => (conn.closed = performance.now()));
  await new Promise<void>((resolve, reject) => {
    conn.socket.once('connect', resolve).once('error', reject);
  });
  return conn;
}

/** One GET on a fresh connection: its status, or the error that ended it. */
function request(port: number, path = '/healthz'): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function within(t: Test, conn: Conn, from: number, bound: number, what: string): void {
  const took = (conn.closed ?? Infinity) - from;
  t.ok(
    took >= bound * 0.9 && took <= bound * 10,
    `${what}: closed after ${Math.round(took)} ms, bound ${bound} ms`,
  );
}

t.test('beyond the connection cap, connections are closed as they arrive', async (t) => {
  const cap = 4;
  const port = await setup(t, {
    maxConnections: cap,
    idleTimeoutMs: LONG,
    headersTimeoutMs: LONG,
    requestTimeoutMs: LONG,
  });
  const conns: Conn[] = [];
  for (let i = 0; i < cap + 3; i++) conns.push(await open(t, port));
  t.ok(
    await until(() => conns.filter((c) => c.closed !== null).length === 3, 10_000),
    'three are closed',
  );
  t.same(
    conns.map((c) => c.closed !== null),
    [false, false, false, false, true, true, true],
    'the ones past the cap',
  );
  t.not(await request(port), 200, 'no answer while the cap is taken');
  conns[0]?.socket.destroy();
  t.ok(await until(async () => (await request(port)) === 200, 10_000), 'an answer once one goes');
  t.same(
    conns.slice(1, cap).map((c) => c.closed),
    [null, null, null],
    'the others are left alone',
  );
});

t.test('a connection that sends nothing is closed after the idle bound', async (t) => {
  const idle = 500;
  const port = await setup(t, {
    idleTimeoutMs: idle,
    headersTimeoutMs: LONG,
    requestTimeoutMs: LONG,
  });
  const conn = await open(t, port);
  t.ok(await until(() => conn.closed !== null, idle * 10), 'closed');
  within(t, conn, conn.opened, idle, 'idle');
});

t.test('a request whose headers never end is closed after the headers bound', async (t) => {
  const headers = 800;
  const port = await setup(t, {
    idleTimeoutMs: LONG,
    headersTimeoutMs: headers,
    requestTimeoutMs: LONG,
  });
  const conn = await open(t, port);
  conn.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  // A header line now and then: never idle, never done.
  const trickle = setInterval(() => conn.socket.write('X-Slow: 1\r\n'), 50);
  t.teardown(() => clearInterval(trickle));
  t.ok(await until(() => conn.closed !== null, headers * 10), 'closed');
  clearInterval(trickle);
  within(t, conn, conn.opened, headers, 'headers');
  t.match(conn.data, /^HTTP\/1\.1 408 /, 'with a 408');
});

t.test('a kept-alive connection is closed after the keep-alive bound', async (t) => {
  const keepAlive = 400;
  const port = await setup(t, {
    idleTimeoutMs: LONG,
    headersTimeoutMs: LONG,
    requestTimeoutMs: LONG,
    keepAliveTimeoutMs: keepAlive,
  });
  const conn = await open(t, port);
  conn.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  t.ok(await until(() => /\r\n\r\n(?:3\r\n)?ok\n/.test(conn.data), 10_000), 'answered');
  const answered = performance.now();
  t.ok(await until(() => conn.closed !== null, keepAlive * 10), 'closed');
  within(t, conn, answered, keepAlive, 'keep-alive');
});
