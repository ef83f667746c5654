// Lean probe connections (src/health/lean.ts) against real sockets on loopback: what a probe
// is told, in what order, and that nothing is told after it ends the connection; and that the
// checks give the same verdicts on net.Socket (IPVS_WARDEN_SOCKETS=node, or a Node without the
// handles) as on the lean path, and as the connect probe in C (native.ts) where it applies.
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { errnoCode, leanConnect, leanSockets, loadBinding } from '../../src/health/lean.js';
import { closedPort, endings, listen, until } from '../checks/servers.js';
import { recorder } from './recorder.js';

const fixture = fileURLToPath(new URL('./lean-fixture.js', import.meta.url));

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('this Node has the handles, so the checks of this suite run on them', async (t) => {
  t.equal(leanSockets.on, true, leanSockets.why);
  t.equal(loadBinding({ IPVS_WARDEN_SOCKETS: 'node' }), 'IPVS_WARDEN_SOCKETS=node');
  t.type(loadBinding({}), 'object');
});

t.test('a libuv status by its errno name, for every errno (data-path binds had two)', async (t) => {
  t.equal(errnoCode(-98), 'EADDRINUSE');
  t.equal(errnoCode(-99), 'EADDRNOTAVAIL');
  t.equal(errnoCode(-111), 'ECONNREFUSED');
  t.equal(errnoCode(-1), 'EPERM');
  t.equal(errnoCode(5), 'errno -5', 'not an errno: said as a number');
});

t.test('connect, write, read, the peer ends; IPv4 and IPv6', async (t) => {
  for (const host of ['127.0.0.1', '::1'] as const) {
    const server = await listen(
      createServer((s) => s.once('data', (d) => s.end(`got ${d.toString('latin1')}`))),
      host,
    );
    t.teardown(() => server.stop());
    const r = recorder();
    const c = leanConnect(server.target.family, host, server.target.port, undefined, r.events);
    t.ok(c, host);
    t.same(r.seen, [], 'nothing told from the call itself');
    await until(() => r.seen.includes('connected'));
    c?.write('ping', Buffer.from([0x21]));
    t.ok(await until(() => r.seen.includes('ended')), `${host}: the end is told`);
    t.equal(r.seen.filter((s) => s.startsWith('data:')).join(''), 'data:got ping!', host);
    t.same([r.seen[0], r.seen.at(-1)], ['connected', 'ended'], host);
    c?.close();
  }
});

t.test('a refused connect is an error with its code, told on a later turn', async (t) => {
  const target = await closedPort();
  const r = recorder();
  leanConnect(4, '127.0.0.1', target.port, undefined, r.events);
  t.same(r.seen, []);
  t.ok(await until(() => r.seen.length > 0));
  t.same(r.seen, ['failed:ECONNREFUSED']);
  t.match(r.errors[0]?.message, `connect ECONNREFUSED 127.0.0.1:${target.port}`);
  await pause(50);
  t.same(r.seen, ['failed:ECONNREFUSED'], 'nothing after the error');
});

t.test('bound where asked; a source this host does not have is a bind error', async (t) => {
  const peers: string[] = [];
  const server = await listen(createServer((s) => peers.push(s.remoteAddress ?? '')));
  t.teardown(() => server.stop());
  const r = recorder();
  const c = leanConnect(4, '127.0.0.1', server.target.port, '127.0.0.2', r.events);
  t.ok(await until(() => peers.length === 1));
  t.same(peers, ['127.0.0.2']);
  c?.reset();
  const bad = recorder();
  leanConnect(4, '127.0.0.1', server.target.port, '192.0.2.1', bad.events);
  t.ok(await until(() => bad.seen.length > 0));
  t.same(bad.seen, ['failed:EADDRNOTAVAIL']);
  t.match(bad.errors[0], { syscall: 'bind' });
});

t.test('a reset reaches the server as one; a close as an end', async (t) => {
  const server = await endings();
  const { outcomes } = server;
  t.teardown(() => server.stop());
  for (const how of ['reset', 'close'] as const) {
    const r = recorder();
    const c = leanConnect(4, '127.0.0.1', server.target.port, undefined, r.events);
    await until(() => r.seen.includes('connected'));
    // The server's side is accepted before the reset, or the kernel drops the connection unseen.
    await until(() => server.accepted.length === (how === 'reset' ? 1 : 2));
    c?.[how]();
    await until(() => outcomes.length === (how === 'reset' ? 1 : 2));
    await pause(20);
    t.same(r.seen, ['connected'], `${how}: nothing told after it`);
  }
  t.same(outcomes, ['ECONNRESET', 'end']);
});

t.test('ended while connecting: the connect never comes', async (t) => {
  // A silent port: a listener whose backlog is full would do; a connect to an address that
  // drops the SYN would too. Here the close comes before the loop has run the connect's
  // completion at all, which is the case that matters: libuv answers ECANCELED to it.
  const server = await listen(createServer());
  t.teardown(() => server.stop());
  const r = recorder();
  const c = leanConnect(4, '127.0.0.1', server.target.port, undefined, r.events);
  c?.reset();
  await pause(50);
  t.same(r.seen, []);
});

t.test('the checks say the same on net.Socket, the lean handles and in C', async (t) => {
  const http = await listen(
    createHttpServer((req, res) => {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/plain' });
      res.end('ok\n');
    }),
  );
  t.teardown(() => http.stop());
  const closed = await closedPort();
  const run = (env: NodeJS.ProcessEnv): Promise<string[]> =>
    new Promise((resolve, reject) =>
      execFile(
        process.execPath,
        [fixture, String(http.target.port), String(closed.port)],
        { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
        (error, out) => (error ? reject(error) : resolve(out.trim().split('\n'))),
      ),
    );
  const native = await run({});
  const lean = await run({ IPVS_WARDEN_SOCKETS: 'lean' });
  const node = await run({ IPVS_WARDEN_SOCKETS: 'node' });
  t.same(JSON.parse(native[0] ?? ''), { lean: true, why: '', native: true }, 'the default');
  t.same(JSON.parse(lean[0] ?? ''), { lean: true, why: '', native: false });
  t.same(JSON.parse(node[0] ?? ''), {
    lean: false,
    why: 'IPVS_WARDEN_SOCKETS=node',
    native: false,
  });
  t.same(node.slice(1), lean.slice(1), 'the same verdicts and messages');
  t.same(native.slice(1), lean.slice(1), 'the same verdicts and messages');
  const verdicts = lean.slice(1).map((l) => JSON.parse(l) as { name: string; healthy: boolean });
  t.same(
    verdicts.map((v) => `${v.name}: ${v.healthy}`),
    [
      'tcp open: true',
      'tcp expect: true',
      'tcp closed: false',
      'http open: true',
      'http 404: false',
      'http closed: false',
    ],
  );
});
