// The HTTP(S) probe against real servers: statuses, headers, bodies, slow and trickling
// servers, endless bodies, refusal, TLS with verification and SNI, kept-alive vs fresh.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import t from 'tap';
import { HttpChecker } from '../../checks/http.js';
import { parseStatusSet } from '../../src/health/options.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 2000) => ({ signal: new AbortController().signal, timeoutMs });
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const http = (h: Handler, host: '127.0.0.1' | '::1' = '127.0.0.1') => listen(createServer(h), host);

t.test('status sets', async (t) => {
  const ok = parseStatusSet('200-299, 301,302');
  t.same([200, 250, 299, 300, 301, 302, 404].map(ok), [true, true, true, false, true, true, false]);
  t.throws(() => parseStatusSet('2xx'), /"2xx" is not a status/);
  t.throws(() => parseStatusSet('300-200'), /backwards/);
});

t.test('an expected status is healthy; another is not, and says which', async (t) => {
  const srv = await http((req, res) => {
    res.statusCode = req.url === '/healthz' ? 200 : req.url === '/moved' ? 302 : 503;
    res.end('body');
  });
  const ok = await new HttpChecker({ path: '/healthz' }).check(srv.target, ctx());
  t.ok(ok.healthy);
  t.match(ok.message, /^HTTP GET \/healthz -> 127\.0\.0\.1:\d+: connected; status 200$/);
  const down = await new HttpChecker({ path: '/other' }).check(srv.target, ctx());
  t.notOk(down.healthy);
  t.match(down.message, /connected; status 503, expected 200-299$/);
  const moved = await new HttpChecker({ path: '/moved', expectStatus: '200,301-302' }).check(
    srv.target,
    ctx(),
  );
  t.ok(moved.healthy, '302 is in 200,301-302');
  await srv.stop();
});

t.test('method, Host header and extra headers reach the server; IPv6', async (t) => {
  let seen: IncomingMessage | undefined;
  const srv = await http((req, res) => ((seen = req), res.end()), '::1');
  const r = await new HttpChecker({
    method: 'HEAD',
    path: '/x',
    host: 'www.example.test',
    headers: { 'x-check': 'warden' },
  }).check(srv.target, ctx());
  t.ok(r.healthy);
  t.match(r.message, /^HTTP HEAD \/x -> \[::1\]:\d+: connected; status 200$/);
  t.equal(seen?.method, 'HEAD');
  t.equal(seen?.headers.host, 'www.example.test');
  t.equal(seen?.headers['x-check'], 'warden');
  await srv.stop();
});

t.test('body regex and its negation', async (t) => {
  const srv = await http((_req, res) => res.end('status: ok\nmaintenance: off\n'));
  t.ok((await new HttpChecker({ bodyMatch: /status: ok/ }).check(srv.target, ctx())).healthy);
  const miss = await new HttpChecker({ bodyMatch: /status: ready/ }).check(srv.target, ctx());
  t.notOk(miss.healthy);
  t.match(miss.message, /status 200; body does not match \/status: ready\/$/);
  const neg = await new HttpChecker({ bodyNotMatch: /maintenance: off/ }).check(srv.target, ctx());
  t.notOk(neg.healthy);
  t.match(neg.message, /body matches \/maintenance: off\/$/);
  await srv.stop();
});

t.test(
  'a server that never answers times out waiting for the response, and the socket is closed',
  async (t) => {
    const srv = await http(() => undefined);
    const r = await new HttpChecker().check(srv.target, ctx(300));
    t.notOk(r.healthy);
    t.match(r.message, /connected; timed out after 300 ms waiting for the response$/);
    t.ok(await until(() => srv.closed() === 1), 'the server sees the connection closed');
    await srv.stop();
  },
);

t.test('a trickling body is cut by the deadline of the whole exchange', async (t) => {
  const timers: NodeJS.Timeout[] = [];
  const srv = await http((_req, res) => {
    res.writeHead(200);
    timers.push(setInterval(() => res.write('.'), 50));
  });
  const r = await new HttpChecker({ bodyMatch: /never/ }).check(srv.target, ctx(400));
  t.notOk(r.healthy);
  t.match(r.message, /timed out after 400 ms reading the body$/);
  const statusOnly = await new HttpChecker().check(srv.target, ctx(400));
  t.notOk(statusOnly.healthy, 'a status-only check waits for the end of the body too');
  t.match(statusOnly.message, /status 200; timed out after 400 ms reading the body$/);
  timers.forEach(clearInterval);
  await srv.stop();
});

t.test('an endless body is read up to maxBody, then cancelled', async (t) => {
  const timers: NodeJS.Timeout[] = [];
  const srv = await http((_req, res) => {
    res.writeHead(200);
    timers.push(setInterval(() => res.write('x'.repeat(65536)), 1));
  });
  const r = await new HttpChecker().check(srv.target, ctx(2000));
  t.ok(r.healthy);
  t.ok(r.durationMs < 1000, `done in ${r.durationMs} ms`);
  t.ok(await until(() => srv.closed() === 1), 'the connection is closed');
  timers.forEach(clearInterval);
  await srv.stop();
});

t.test('a body cut short fails a status-only check; the whole declared body passes', async (t) => {
  // Raw servers: headers that declare 100 bytes, then 7 and a reset (or a close), or all 100.
  const raw = (send: (s: Socket) => void) =>
    listen(
      createNetServer((s) => {
        let request = '';
        s.on('data', (d: Buffer) => {
          request += d.toString('latin1');
          if (request.includes('\r\n\r\n')) send(s);
        });
      }),
    );
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n';
  const reset = await raw((s) => (s.write(`${head}partial`), s.resetAndDestroy()));
  const closed = await raw((s) => s.end(`${head}partial`));
  const whole = await raw((s) => s.end(`${head}${'x'.repeat(100)}`));
  t.teardown(() => Promise.all([reset.stop(), closed.stop(), whole.stop()]));

  const cut = await new HttpChecker().check(reset.target, ctx());
  t.notOk(cut.healthy, 'reset after 7 of 100 bytes');
  t.equal(cut.local, undefined);
  t.match(cut.message, /connected; status 200; body cut short after 7 of 100 bytes: .+$/);
  const short = await new HttpChecker().check(closed.target, ctx());
  t.notOk(short.healthy, 'closed after 7 of 100 bytes');
  t.match(short.message, /connected; status 200; body cut short after 7 of 100 bytes: .+$/);
  const ok = await new HttpChecker().check(whole.target, ctx());
  t.ok(ok.healthy, 'all 100 bytes, then the end');
  t.match(ok.message, /connected; status 200$/);
  const matched = await new HttpChecker({ bodyMatch: /^x+$/ }).check(whole.target, ctx());
  t.ok(matched.healthy, 'and with a body to match');
  const cutMatch = await new HttpChecker({ bodyMatch: /partial/ }).check(reset.target, ctx());
  t.notOk(cutMatch.healthy, 'a cut body fails even when what came matches');
  t.match(cutMatch.message, /body cut short after 7 of 100 bytes/);
});

t.test('a closed port is refused', async (t) => {
  const r = await new HttpChecker({ path: '/healthz' }).check(await closedPort('::1'), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /^HTTP GET \/healthz -> \[::1\]:\d+: connection refused \(ECONNREFUSED\)$/);
});

t.test('HTTPS: verification on and off, SNI, a trusted CA', async (t) => {
  const { key, cert } = selfSigned();
  let sni: string | undefined;
  const server = createHttpsServer({ key, cert }, (req, res) => {
    sni = (req.socket as { servername?: string }).servername;
    res.end('secure');
  });
  const srv = await listen(server);
  const insecure = await new HttpChecker({ tls: { verify: false } }).check(srv.target, ctx());
  t.ok(insecure.healthy);
  t.match(
    insecure.message,
    /^HTTPS GET \/ -> 127\.0\.0\.1:\d+: connected; TLS TLSv1\.3; status 200$/,
  );
  const strict = await new HttpChecker({ tls: { servername: 'warden.test' } }).check(
    srv.target,
    ctx(),
  );
  t.notOk(strict.healthy);
  t.match(strict.message, /self.signed certificate/i);
  const trusted = await new HttpChecker({ tls: { servername: 'warden.test', ca: cert } }).check(
    srv.target,
    ctx(),
  );
  t.ok(trusted.healthy);
  t.equal(sni, 'warden.test');
  await srv.stop();
});

t.test('fresh connection per check by default; reuse keeps one', async (t) => {
  const srv = await http((_req, res) => res.end('ok'));
  const fresh = new HttpChecker();
  for (let i = 0; i < 3; i++) t.ok((await fresh.check(srv.target, ctx())).healthy);
  t.equal(srv.accepted.length, 3, 'three checks, three connections');
  const reuse = new HttpChecker({ reuse: true });
  for (let i = 0; i < 3; i++) t.ok((await reuse.check(srv.target, ctx())).healthy);
  t.equal(srv.accepted.length, 4, 'three more checks over one kept-alive connection');
  await reuse.close();
  t.ok(await until(() => srv.closed() === 4), 'close releases it');
  await srv.stop();
});

t.test('a reply the parser refuses, or none, is said plainly, fresh or kept-alive', async (t) => {
  const replies: Record<string, [string | null, RegExp]> = {
    garbage: [
      'SSH-2.0-OpenSSH_9.2\r\n',
      /connected; not a valid HTTP reply .*"SSH-2\.0-OpenSSH_9\.2\\r\\n"$/,
    ],
    'a close before any reply': [null, /connected; connection closed without a reply$/],
    'a chunked body cut short': [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
      /status 200; body cut short after 2 bytes: connection closed before the end of the body$/,
    ],
    'two Content-Lengths': [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
      /connected; not a valid HTTP reply \(Duplicate Content-Length\)/,
    ],
    'headers past 16 KiB': [
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      /connected; not a valid HTTP reply \(Header overflow\)/,
    ],
  };
  for (const [name, [reply, message]] of Object.entries(replies)) {
    const srv = await listen(
      createNetServer((s) => s.once('data', () => (reply === null ? s.end() : s.end(reply)))),
    );
    const r = await new HttpChecker().check(srv.target, ctx());
    t.notOk(r.healthy, name);
    t.equal(r.local, undefined, `${name}: the server's fault`);
    t.match(r.message, message, name);
    await srv.stop();
  }
  // The same exchange chunked and whole is healthy: the parser decodes chunks.
  const chunked = await listen(
    createNetServer((s) =>
      s.once('data', () =>
        s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nready\r\n0\r\n\r\n'),
      ),
    ),
  );
  const ok = await new HttpChecker({ bodyMatch: /^ready$/ }).check(chunked.target, ctx());
  t.ok(ok.healthy, ok.message);
  await chunked.stop();
});
