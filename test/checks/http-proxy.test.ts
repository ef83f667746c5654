// ldirectord's http_proxy service: the real server IS an HTTP proxy, checked by asking it for an
// absolute URL (`GET http://www.example.com/ HTTP/1.1`) that it fetches from the origin. Held to
// tinyproxy from Debian's packages (run in the foreground, throwaway config, loopback port), one
// open and one that wants credentials (407), with a Node server as the origin; a Node server
// that records the request line shows what a proxy receives; a closed port and a proxy that
// never answers are the proxy down.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { HttpChecker } from '../../checks/http.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { closedPort, freePort, listen, until } from './servers.js';

const ctx = (timeoutMs = 3000) => ({ signal: new AbortController().signal, timeoutMs });

/** tinyproxy on 127.0.0.1, in the foreground, stopped at the end of the test. */
async function tinyproxy(t: Test, extra = ''): Promise<CheckTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tinyproxy-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'tinyproxy.conf'),
    `Port ${port}\nListen 127.0.0.1\nTimeout 10\nMaxClients 20\nAllow 127.0.0.1\nLogLevel Warning\n${extra}\n`,
  );
  const proc = spawn('tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
  t.teardown(() => void proc.kill());
  const target = { family: 4, address: '127.0.0.1', port } as const;
  const probe = new HttpChecker({ proxyUrl: 'http://127.0.0.1:1/', expectStatus: '100-599' });
  t.ok(await until(async () => (await probe.check(target, ctx())).healthy, 5000), 'tinyproxy up');
  return target;
}

t.test('through tinyproxy: the origin answers, or the proxy says it could not', async (t) => {
  const seen: IncomingMessage[] = [];
  const origin = await listen(
    createServer((req, res) => {
      seen.push(req);
      res.statusCode = req.url === '/down' ? 503 : 200;
      res.end('status: ok\n');
    }),
  );
  t.teardown(() => origin.stop());
  const proxy = await tinyproxy(t);
  const url = `http://127.0.0.1:${origin.target.port}`;

  for (const httpVersion of ['1.1', '1.0']) {
    const ok = await new HttpChecker({
      proxyUrl: `${url}/healthz`,
      httpVersion,
      bodyMatch: /status: ok/,
      showDigest: true,
    }).check(proxy, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(
      ok.message,
      new RegExp(
        `^HTTP GET ${url}/healthz${httpVersion === '1.0' ? ' HTTP/1\\.0' : ''} -> 127\\.0\\.0\\.1:${proxy.port}: connected; status 200; md5 efe38df2da984d40bd95cd0c23bfa878$`,
      ),
    );
    t.equal(seen.at(-1)?.url, '/healthz', 'the origin was asked for the path');
    t.equal(seen.at(-1)?.headers.host, `127.0.0.1:${origin.target.port}`, "the URL's host");
  }
  const down = await new HttpChecker({ proxyUrl: `${url}/down` }).check(proxy, ctx());
  t.notOk(down.healthy, "the origin's status comes through");
  t.match(down.message, /connected; status 503, expected 200-299$/);
  const gone = await new HttpChecker({
    proxyUrl: `http://127.0.0.1:${(await closedPort()).port}/`,
  }).check(proxy, ctx());
  t.notOk(gone.healthy, 'an origin that refuses: the proxy answers an error status');
  t.match(gone.message, /connected; status 5\d\d, expected 200-299$/);
});

t.test('tinyproxy that wants credentials: 407, then healthy with them', async (t) => {
  const origin = await listen(createServer((_req, res) => res.end('ok')));
  t.teardown(() => origin.stop());
  const proxy = await tinyproxy(t, 'BasicAuth warden s3cret');
  const proxyUrl = `http://127.0.0.1:${origin.target.port}/`;
  const refused = await new HttpChecker({ proxyUrl }).check(proxy, ctx());
  t.notOk(refused.healthy);
  t.match(refused.message, /connected; status 407, expected 200-299$/);
  const credentials = `Basic ${Buffer.from('warden:s3cret').toString('base64')}`;
  const ok = await new HttpChecker({
    proxyUrl,
    headers: { 'Proxy-Authorization': credentials },
  }).check(proxy, ctx());
  t.ok(ok.healthy, ok.message);
  t.notMatch(ok.message, /Basic|s3cret/);
  const wrong = await new HttpChecker({
    proxyUrl,
    httpVersion: '1.0',
    headers: { 'Proxy-Authorization': 'Basic d2FyZGVuOndyb25n' },
  }).check(proxy, ctx());
  t.notOk(wrong.healthy, 'wrong credentials, over HTTP/1.0');
  // tinyproxy answers a 1.0 request with 401 (407 is HTTP/1.1's).
  t.match(wrong.message, /connected; status 401, expected 200-299$/);
});

t.test(
  'what a proxy receives: the absolute URL, the Host of the URL, no secret shown',
  async (t) => {
    const seen: IncomingMessage[] = [];
    const fake = await listen(createServer((req, res) => (seen.push(req), res.end())));
    t.teardown(() => fake.stop());
    for (const httpVersion of ['1.1', '1.0']) {
      const r = await new HttpChecker({
        proxyUrl: 'http://www.example.test:8080/x?token=s3cret',
        httpVersion,
      }).check(fake.target, ctx());
      t.ok(r.healthy);
      t.match(r.message, /^HTTP GET http:\/\/www\.example\.test:8080\/x\?token=… /);
      t.notMatch(r.message, /s3cret/);
      t.equal(seen.at(-1)?.url, 'http://www.example.test:8080/x?token=s3cret');
      t.equal(seen.at(-1)?.headers.host, 'www.example.test:8080');
      t.equal(seen.at(-1)?.httpVersion, httpVersion);
    }
    const host = await new HttpChecker({
      proxyUrl: 'http://www.example.test/',
      host: 'other.test',
    }).check(fake.target, ctx());
    t.ok(host.healthy);
    t.equal(seen.at(-1)?.headers.host, 'other.test', '`host` still wins');
  },
);

t.test('a proxy down: refused, or silent until the deadline', async (t) => {
  const proxyUrl = 'http://www.example.test/';
  const refused = await new HttpChecker({ proxyUrl }).check(await closedPort(), ctx());
  t.notOk(refused.healthy);
  t.match(
    refused.message,
    /^HTTP GET http:\/\/www\.example\.test\/ -> 127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\)$/,
  );
  const silent = await listen(createNetServer(() => undefined));
  t.teardown(() => silent.stop());
  for (const httpVersion of ['1.1', '1.0']) {
    const started = performance.now();
    const r = await new HttpChecker({ proxyUrl, httpVersion }).check(silent.target, ctx(400));
    t.ok(performance.now() - started < 400 + 1500, 'within the deadline');
    t.notOk(r.healthy);
    t.match(r.message, /connected; timed out after 400 ms waiting for the response$/);
  }
  t.ok(await until(() => silent.closed() === 2), 'both connections closed');
});
