// The TCP probe against real servers: answering, refusing, silent, resetting, garbage, TLS.
import { stat } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import t from 'tap';
import { TcpChecker } from '../../checks/tcp.js';
import { unescape } from '../../src/health/probe.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 2000, signal = new AbortController().signal) => ({ signal, timeoutMs });

t.test('escapes in send and expect strings', async (t) => {
  t.equal(unescape('PING\\r\\n\\x41\\0\\\\'), 'PING\r\nA\0\\');
});

t.test('a listening port is healthy, on IPv4 and IPv6', async (t) => {
  for (const host of ['127.0.0.1', '::1'] as const) {
    const srv = await listen(createServer(), host);
    const r = await new TcpChecker().check(srv.target, ctx());
    const hp =
      host === '::1' ? `\\[::1\\]:${srv.target.port}` : `127\\.0\\.0\\.1:${srv.target.port}`;
    t.ok(r.healthy, host);
    t.match(r.message, new RegExp(`^TCP connect -> ${hp}: connected$`));
    t.ok(await until(() => srv.closed() === 1), 'the probe closed its connection');
    await srv.stop();
  }
});

t.test('a closed port is refused', async (t) => {
  const r = await new TcpChecker().check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('send and expect: a matching reply is healthy, a wrong one is not', async (t) => {
  const srv = await listen(
    createServer((s) =>
      s.on('data', (d) => s.end(d.toString() === 'PING\r\n' ? '+PONG\r\n' : '-ERR\r\n')),
    ),
  );
  const ok = await new TcpChecker({ send: 'PING\\r\\n', expect: '+PONG' }).check(srv.target, ctx());
  t.ok(ok.healthy);
  t.match(ok.message, /connected; sent 6 bytes; reply matched "\+PONG"$/);
  const re = await new TcpChecker({ send: 'PING\\r\\n', expectRegex: /^\+P.NG/ }).check(
    srv.target,
    ctx(),
  );
  t.ok(re.healthy, 'a regex works too');
  const bad = await new TcpChecker({ send: 'HELLO\\r\\n', expect: '+PONG' }).check(
    srv.target,
    ctx(),
  );
  t.notOk(bad.healthy);
  t.match(
    bad.message,
    /sent 7 bytes; connection closed; reply "-ERR\\r\\n" did not match "\+PONG"$/,
  );
  await srv.stop();
});

t.test('a silent server times out, and the probe tears its socket down', async (t) => {
  const srv = await listen(createServer(() => undefined));
  const r = await new TcpChecker({ send: 'PING\\r\\n', expect: 'PONG' }).check(
    srv.target,
    ctx(300),
  );
  t.notOk(r.healthy);
  t.match(
    r.message,
    /connected; sent 6 bytes; timed out after 300 ms waiting for a reply matching "PONG"$/,
  );
  t.ok(r.durationMs >= 290, `took ${r.durationMs} ms`);
  t.ok(await until(() => srv.closed() === 1), 'the server sees the connection closed');
  await srv.stop();
});

t.test(
  'a loop late past the timeout: a connect already done wins, a reply not sent does not',
  async (t) => {
    // The loop is held (a busy director) longer than the timeout, once the connect is under way:
    // the kernel finishes the handshake meanwhile, so when the loop runs again the deadline's
    // timer and the connect are both due, and timers run first.
    // The order a late loop meets them in: the connect is started from an I/O callback (the
    // poll phase; net.connect to an address issues it on the next tick), the loop is held in
    // this turn's immediates, and then the timers are due before the next poll reads the
    // connect (libuv runs timers at the end of a turn). Started from a timer instead, the poll
    // would come first and the test would pass without the fix.
    const fromPoll = (): Promise<void> => new Promise((resolve) => stat('/', () => resolve()));
    const holdLoop = (ms: number): Promise<void> =>
      new Promise((resolve) =>
        setImmediate(() => {
          const end = performance.now() + ms;
          while (performance.now() < end);
          resolve();
        }),
      );
    for (const host of ['127.0.0.1', '::1'] as const) {
      const srv = await listen(
        createServer(() => undefined),
        host,
      );
      await fromPoll();
      const pending = new TcpChecker().check(srv.target, ctx(50));
      await holdLoop(300);
      const r = await pending;
      t.ok(r.healthy, `${host}: healthy, not timed out for our own lateness: ${r.message}`);
      // The server is this process: it cannot reply while the loop is held, and the deadline
      // (already past) holds for what had not come in by then.
      await fromPoll();
      const silent = new TcpChecker({ send: 'PING\\r\\n', expect: 'PONG' }).check(
        srv.target,
        ctx(50),
      );
      await holdLoop(300);
      const s = await silent;
      t.notOk(s.healthy, `${host}: a reply that never came still times out`);
      t.match(s.message, /connected; sent 6 bytes; timed out after 50 ms waiting for a reply/);
      await srv.stop();
    }
  },
);

t.test(
  'a probe closes with a reset (no TIME_WAIT here) unless what it sent may be unread',
  async (t) => {
    // How each connection ended, as the server saw it: a reset (ECONNRESET) or a close (end).
    const endings: string[] = [];
    const received: string[] = [];
    const srv = await listen(
      createServer((s) => {
        s.on('data', (d) => {
          received.push(d.toString());
          if (d.toString() === 'PING\r\n') s.write('+PONG\r\n');
        });
        s.on('end', () => {
          endings.push('close');
          s.end();
        });
        s.on('error', (e: NodeJS.ErrnoException) =>
          endings.push(e.code === 'ECONNRESET' ? 'reset' : String(e.code)),
        );
      }),
    );
    const ok = await new TcpChecker().check(srv.target, ctx());
    t.ok(ok.healthy);
    t.ok(await until(() => endings.length === 1));
    t.same(endings, ['reset'], 'a connect check: reset');
    const matched = await new TcpChecker({ send: 'PING\\r\\n', expect: '+PONG' }).check(
      srv.target,
      ctx(),
    );
    t.ok(matched.healthy);
    t.ok(await until(() => endings.length === 2));
    t.same(endings[1], 'reset', 'a reply that matched: the server has read what was sent');
    const blind = await new TcpChecker({ send: 'QUIT\\r\\n' }).check(srv.target, ctx());
    t.ok(blind.healthy);
    t.ok(await until(() => endings.length === 3));
    t.same(endings[2], 'close', 'sent with nothing expected: closed, so the bytes arrive');
    t.same(received, ['PING\r\n', 'QUIT\r\n']);
    await srv.stop();
  },
);

t.test('a reset is named as such; garbage does not match', async (t) => {
  const reset = await listen(createServer((s) => s.resetAndDestroy()));
  const r = await new TcpChecker({ expect: 'OK' }).check(reset.target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /connection reset by peer \(ECONNRESET\)|connection closed without a reply/);
  await reset.stop();
  const garbage = await listen(createServer((s) => s.end(Buffer.from([0xff, 0x00, 0xfe, 0x13]))));
  const g = await new TcpChecker({ expectRegex: /^OK/ }).check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(g.message, /reply "\\xff\\x00\\xfe\\x13" did not match "\/\^OK\/"$/);
  await garbage.stop();
});

t.test('an abort from the caller ends the check at once', async (t) => {
  const srv = await listen(createServer(() => undefined));
  const ac = new AbortController();
  const pending = new TcpChecker({ expect: 'x' }).check(srv.target, ctx(5000, ac.signal));
  setTimeout(() => ac.abort(), 50);
  const r = await pending;
  t.notOk(r.healthy);
  t.match(r.message, /cancelled waiting for a reply/);
  t.ok(r.durationMs < 2000);
  await srv.stop();
});

t.test('TLS: handshake, certificate verification, SNI', async (t) => {
  const { key, cert } = selfSigned();
  let sni: string | undefined;
  const tlsServer = createTlsServer(
    { key, cert, SNICallback: (name, cb) => ((sni = name), cb(null)) },
    (s) => s.end('hello\n'),
  );
  const srv = await listen(tlsServer);
  const insecure = await new TcpChecker({ tls: { verify: false }, expect: 'hello' }).check(
    srv.target,
    ctx(),
  );
  t.ok(insecure.healthy);
  t.match(
    insecure.message,
    /^TLS connect -> 127\.0\.0\.1:\d+: connected; TLS TLSv1\.3; reply matched "hello"$/,
  );
  const strict = await new TcpChecker({ tls: { servername: 'warden.test' } }).check(
    srv.target,
    ctx(),
  );
  t.notOk(strict.healthy, 'a self-signed certificate fails verification');
  t.match(strict.message, /self.signed certificate/i);
  const trusted = await new TcpChecker({ tls: { servername: 'warden.test', ca: cert } }).check(
    srv.target,
    ctx(),
  );
  t.ok(trusted.healthy, 'trusted with its CA');
  t.equal(sni, 'warden.test', 'the server saw the SNI name');
  await srv.stop();
});
