// The HTTP request as the server sees it: a request body (with the Content-Length the client
// sets), HTTP/1.0 (a client of our own: undici speaks only 1.1) and how it reads what comes back
// (garbage, a hang, a reply cut short, a chunked reply, TLS), and case-insensitive body regexes
// from a config file. Node's own HTTP server is the real server here; the raw `node:net` servers
// are fakes that misbehave on purpose.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { CATALOG } from '../../checks/index.js';
import { HttpChecker } from '../../checks/http.js';
import { parseConfig } from '../../src/checkers.js';
import { ConfigError } from '../../src/config/load.js';
import type { CheckResult } from '../../src/health/checker.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 2000) => ({ signal: new AbortController().signal, timeoutMs });
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const http = (h: Handler) => listen(createServer(h));

/** What the server saw of one request. */
interface Seen {
  version: string;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
function recording(reply: (seen: Seen, res: ServerResponse) => void = (_s, res) => res.end('ok')) {
  const seen: Seen[] = [];
  const server = http((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        version: req.httpVersion,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      reply(s, res);
    });
  });
  return { seen, server };
}

/** The result, and that it came before the deadline plus a generous margin. */
async function within(
  t: Test,
  timeoutMs: number,
  run: () => Promise<CheckResult>,
): Promise<CheckResult> {
  const started = performance.now();
  const r = await run();
  const took = performance.now() - started;
  t.ok(took < timeoutMs + 1500, `judged in ${Math.round(took)} ms (deadline ${timeoutMs} ms)`);
  return r;
}

t.test('a request body reaches the server with the Content-Length the client set', async (t) => {
  const { seen, server } = recording((s, res) =>
    res.end(s.body === '{"ping":"é"}' ? 'pong' : 'no'),
  );
  const srv = await server;
  t.teardown(() => srv.stop());
  for (const httpVersion of ['1.1', '1.0']) {
    const r = await new HttpChecker({
      method: 'POST',
      path: '/rpc',
      body: '{"ping":"é"}',
      headers: { 'Content-Type': 'application/json' },
      httpVersion,
      bodyMatch: /^pong$/,
    }).check(srv.target, ctx());
    t.ok(r.healthy, r.message);
    const s = seen.at(-1);
    t.equal(s?.version, httpVersion, `HTTP/${httpVersion} on the wire`);
    t.equal(s?.method, 'POST');
    t.equal(s?.body, '{"ping":"é"}', 'the body, as UTF-8');
    t.equal(s?.headers['content-length'], '13', 'its length in bytes, set by the client');
    t.equal(s?.headers['content-type'], 'application/json');
    t.notMatch(r.message, /ping/, 'the body (it may be a credential) is not in the message');
  }
  const wrong = await new HttpChecker({ method: 'POST', body: 'other', bodyMatch: /pong/ }).check(
    srv.target,
    ctx(),
  );
  t.notOk(wrong.healthy, 'the server answered the body it was sent');
  t.match(wrong.message, /status 200; body does not match \/pong\/$/);
});

t.test('HTTP/1.0: the server sees 1.0, Host, User-Agent and the headers', async (t) => {
  const { seen, server } = recording((s, res) => {
    res.statusCode = s.url === '/down' ? 503 : 200;
    res.end('status: ok\n');
  });
  const srv = await server;
  t.teardown(() => srv.stop());
  const ok = await new HttpChecker({
    path: '/healthz',
    httpVersion: '1.0',
    host: 'www.example.test',
    headers: { 'x-check': 'warden' },
    bodyMatch: /status: ok/,
  }).check(srv.target, ctx());
  t.ok(ok.healthy, ok.message);
  t.match(ok.message, /^HTTP GET \/healthz HTTP\/1\.0 -> 127\.0\.0\.1:\d+: connected; status 200$/);
  t.same(
    { version: seen[0]?.version, url: seen[0]?.url, host: seen[0]?.headers.host },
    { version: '1.0', url: '/healthz', host: 'www.example.test' },
  );
  t.equal(seen[0]?.headers['user-agent'], 'ipvs-warden');
  t.equal(seen[0]?.headers['x-check'], 'warden');
  const down = await new HttpChecker({ path: '/down', httpVersion: '1.0' }).check(
    srv.target,
    ctx(),
  );
  t.notOk(down.healthy);
  t.match(down.message, /connected; status 503, expected 200-299$/);
  t.ok(await until(() => srv.closed() === 2), 'each 1.0 connection is closed');
  const head = await new HttpChecker({ method: 'HEAD', httpVersion: '1.0' }).check(
    srv.target,
    ctx(),
  );
  t.ok(head.healthy, 'HEAD: a Content-Length and no body');
  t.equal(seen.at(-1)?.method, 'HEAD');
});

t.test('HTTP/1.0: refused, garbage, a hang, a reply cut short, chunked', async (t) => {
  const refused = await new HttpChecker({ httpVersion: '1.0' }).check(await closedPort(), ctx());
  t.notOk(refused.healthy);
  t.match(refused.message, /-> 127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\)$/);

  // Raw servers: each answers a whole request with `send`.
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
  const servers = {
    garbage: await raw((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n')),
    hang: await raw(() => undefined),
    headersCut: await raw((s) => s.end('HTTP/1.0 200 OK\r\nContent-Le')),
    bodyCut: await raw(
      (s) => (
        s.write('HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\npartial'),
        s.resetAndDestroy()
      ),
    ),
    untilClose: await raw((s) =>
      s.end('HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it, to the close'),
    ),
    chunked: await raw((s) =>
      s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    ),
    hugeHeaders: await raw((s) => s.write(`HTTP/1.0 200 OK\r\nX-Long: ${'x'.repeat(20000)}`)),
    badStatus: await raw((s) => s.end('HTTP/1.0 OK\r\n\r\n')),
  };
  t.teardown(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  const v10 = (o: ConstructorParameters<typeof HttpChecker>[0] = {}) =>
    new HttpChecker({ httpVersion: '1.0', ...o });

  const garbage = await within(t, 2000, () => v10().check(servers.garbage.target, ctx()));
  t.notOk(garbage.healthy);
  t.match(garbage.message, /connected; not an HTTP reply: "SSH-2\.0-OpenSSH_9\.2\\r\\n"$/);
  const hang = await within(t, 400, () => v10().check(servers.hang.target, ctx(400)));
  t.notOk(hang.healthy);
  t.match(hang.message, /connected; timed out after 400 ms waiting for the response$/);
  t.ok(await until(() => servers.hang.closed() === 1), 'the socket is closed at the deadline');
  const headersCut = await v10().check(servers.headersCut.target, ctx());
  t.notOk(headersCut.healthy);
  t.match(
    headersCut.message,
    /connection closed in the reply's headers: "HTTP\/1\.0 200 OK\\r\\nContent-Le"$/,
  );
  const bodyCut = await v10().check(servers.bodyCut.target, ctx());
  t.notOk(bodyCut.healthy);
  t.match(bodyCut.message, /status 200; body cut short after 7 of 100 bytes: .+$/);
  const untilClose = await v10({ bodyMatch: /to the close$/, showDigest: true }).check(
    servers.untilClose.target,
    ctx(),
  );
  t.ok(untilClose.healthy, 'no Content-Length: the body ends at the close');
  t.match(untilClose.message, /status 200; md5 [0-9a-f]{32}$/);
  const chunked = await v10().check(servers.chunked.target, ctx());
  t.notOk(chunked.healthy);
  t.match(chunked.message, /connected; a "chunked" reply to an HTTP\/1\.0 request$/);
  const huge = await v10().check(servers.hugeHeaders.target, ctx());
  t.notOk(huge.healthy);
  t.match(huge.message, /connected; reply headers longer than 16384 bytes$/);
  const badStatus = await v10().check(servers.badStatus.target, ctx());
  t.notOk(badStatus.healthy);
  t.match(badStatus.message, /not an HTTP\/1\.x status line: "HTTP\/1\.0 OK"$/);
  const cancelled = await within(t, 300, () =>
    v10().check(servers.untilClose.target, { ...ctx(300), signal: AbortSignal.abort() }),
  );
  t.notOk(cancelled.healthy, 'a check cancelled before it starts');
  t.match(cancelled.message, /: cancelled waiting for the connection$/);
});

t.test('HTTP/1.0 over TLS: verified, and refused when verification fails', async (t) => {
  const { key, cert } = selfSigned();
  let version = '';
  const srv = await listen(
    createHttpsServer({ key, cert }, (req, res) => ((version = req.httpVersion), res.end('s'))),
  );
  t.teardown(() => srv.stop());
  const ok = await new HttpChecker({
    httpVersion: '1.0',
    tls: { servername: 'warden.test', ca: cert },
  }).check(srv.target, ctx());
  t.ok(ok.healthy, ok.message);
  t.match(
    ok.message,
    /^HTTPS GET \/ HTTP\/1\.0 -> 127\.0\.0\.1:\d+: connected; TLS TLSv1\.3; status 200$/,
  );
  t.equal(version, '1.0');
  const strict = await new HttpChecker({ httpVersion: '1.0', tls: {} }).check(srv.target, ctx());
  t.notOk(strict.healthy);
  t.match(strict.message, /self.signed certificate/i);
  // A server that accepts and never says a word of TLS: the deadline falls in the handshake.
  const mute = await listen(createNetServer(() => undefined));
  t.teardown(() => mute.stop());
  const started = performance.now();
  const silent = await new HttpChecker({ httpVersion: '1.0', tls: {} }).check(
    mute.target,
    ctx(400),
  );
  t.ok(performance.now() - started < 400 + 1500, 'within the deadline');
  t.notOk(silent.healthy);
  t.match(silent.message, /: timed out after 400 ms waiting for the connection$/);
  t.ok(await until(() => mute.closed() === 1), 'the socket is closed');
});

/** The first check of a config with one real server, made by its declaration. */
function fromConfig(check: string) {
  const config = parseConfig(
    `virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.0.2, checks: [${check}]}
`,
    '/nonexistent/x.yaml',
    {},
  );
  const c = config.virtualServices[0]?.realServers[0]?.checks[0];
  if (!c) throw new Error('no check');
  return CATALOG.get(c.type)?.create(c.options as never) as HttpChecker;
}
function configProblems(check: string): string[] {
  try {
    fromConfig(check);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // The path below virtual_services.0.real_servers.0.checks.0
    return e.problems.map((p) => `${p.path.slice(6).join('.')}: ${p.message}`).sort();
  }
  return [];
}

t.test('from a config: a case-insensitive body match, HTTP/1.0, a body, a digest', async (t) => {
  const { seen, server } = recording((_s, res) => res.end('Status: OK\n'));
  const srv = await server;
  t.teardown(() => srv.stop());
  const ci = fromConfig('{type: http, body_match: {pattern: "^status: ok$", flags: im}}');
  t.ok((await ci.check(srv.target, ctx())).healthy, 'flags i and m from the config');
  const cs = fromConfig('{type: http, body_match: "^status: ok$"}');
  const miss = await cs.check(srv.target, ctx());
  t.notOk(miss.healthy, 'and without them the case matters');
  t.match(miss.message, /body does not match \/\^status: ok\$\/$/);
  const notCi = fromConfig('{type: http, body_not_match: {pattern: "STATUS: OK", flags: i}}');
  t.notOk((await notCi.check(srv.target, ctx())).healthy, 'body_not_match takes flags too');

  // An unquoted 1.0 is a YAML number (1): read as 1.0 all the same.
  for (const v of ['1.0', '"1.0"']) {
    const c = fromConfig(`{type: http, http_version: ${v}, method: put, body: "a=1"}`);
    t.ok((await c.check(srv.target, ctx())).healthy);
    t.same([seen.at(-1)?.version, seen.at(-1)?.method, seen.at(-1)?.body], ['1.0', 'PUT', 'a=1']);
  }
  const digest = fromConfig('{type: http, digest: 2D0D0C2C0BC1A0D6A5B1B14B43EBB9F5}');
  const d = await digest.check(srv.target, ctx());
  t.notOk(d.healthy, 'an uppercase digest is compared as lowercase');
  t.match(d.message, /has md5 [0-9a-f]{32}, expected 2d0d0c2c0bc1a0d6a5b1b14b43ebb9f5$/);

  t.same(
    configProblems(
      '{type: http, http_version: 2, digest: abc, reuse: true, max_digest_body: 0, proxy_url: "ftp://x/", path: /}',
    ),
    [
      'http_version: must be 1.1 or 1.0',
      'proxy_url: must be an absolute http:// URL with a path, such as http://www.example.com/',
      'max_digest_body: must be a whole number 1..1073741824, got 0',
      'digest: must be an MD5 digest: 32 hex digits',
    ].sort(),
    'each mistake at its key',
  );
  t.same(configProblems('{type: http, path: /, proxy_url: "http://x.test/"}'), [
    'proxy_url: give path or proxy_url, not both',
  ]);
  t.same(configProblems('{type: http, http_version: 1.0, reuse: true}'), [
    'reuse: HTTP/1.0 closes the connection after each reply: no reuse',
  ]);
  t.same(configProblems('{type: http, headers: {Content-Length: "3"}, body: abc}'), [
    'headers.Content-Length: not a header a check may send (the client sets it)',
  ]);
});
