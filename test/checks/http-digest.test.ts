// keepalived's `digest`: the MD5 of the whole body, as its `genhash` tool prints it. Held to the
// real genhash (Debian's keepalived package) against the same bodies, from nginx (nginx-light)
// and from Node's HTTP server (a chunked body, a body longer than max_body), over HTTP/1.1 and
// HTTP/1.0; then a wrong digest, a body past max_digest_body, a trickle, a refusal.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HttpChecker } from '../../checks/http.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { closedPort, freePort, listen, until, nginxConf } from './servers.js';

const ctx = (timeoutMs = 3000) => ({ signal: new AbortController().signal, timeoutMs });

/** What `genhash -s ADDRESS -p PORT -u PATH [more]` prints: the body's MD5. */
function genhash(target: CheckTarget, path: string, ...more: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'genhash',
      ['-s', target.address, '-p', String(target.port), '-u', path, ...more],
      { timeout: 5000 },
      (error, out) => {
        const md5 = /\b([0-9a-f]{32})\b/.exec(out)?.[1];
        if (error || !md5) reject(error ?? new Error(`genhash printed no MD5: ${out}`));
        else resolve(md5);
      },
    );
  });
}

const BIG = randomBytes(200_000); // longer than max_body (64 KiB)

t.test('the digest is what genhash prints, from a Node server', async (t) => {
  const timers: NodeJS.Timeout[] = [];
  const srv = await listen(
    createServer((req, res) => {
      if (req.url === '/chunked') {
        // No Content-Length: chunked to a 1.1 request, to the close for a 1.0 one.
        res.write('hello ');
        timers.push(setTimeout(() => res.end('world\n'), 20));
      } else if (req.url === '/big') res.end(BIG);
      else if (req.url === '/empty') res.end();
      else if (req.url === '/trickle') {
        res.writeHead(200);
        timers.push(setInterval(() => res.write('.'), 50));
      } else res.end('status: ok\n');
    }),
  );
  t.teardown(() => (timers.forEach(clearInterval), srv.stop()));

  for (const path of ['/plain', '/chunked', '/big', '/empty']) {
    const expected = await genhash(srv.target, path);
    for (const httpVersion of ['1.1', '1.0']) {
      const r = await new HttpChecker({ path, httpVersion, digest: expected }).check(
        srv.target,
        ctx(),
      );
      t.ok(r.healthy, `${path} over HTTP/${httpVersion}: ${r.message}`);
      t.match(r.message, new RegExp(`; status 200; md5 ${expected}$`));
    }
  }
  // genhash asks in HTTP/1.0 (as keepalived's checker does by default), so its bodies are never
  // chunked. Asked in 1.1 (-P 1.1), it hashes the chunk framing as it came off the wire (which
  // depends on how the server split its writes); we hash the decoded body, whatever the version.
  t.not(
    await genhash(srv.target, '/chunked', '-P', '1.1'),
    await genhash(srv.target, '/chunked'),
    'genhash -P 1.1 hashes the chunked framing, not the body',
  );

  t.equal(
    await genhash(srv.target, '/big'),
    createHash('md5').update(BIG).digest('hex'),
    'genhash hashes the whole body, no more',
  );
  const plain = await genhash(srv.target, '/plain');
  const wrong = await new HttpChecker({ path: '/big', digest: plain }).check(srv.target, ctx());
  t.notOk(wrong.healthy);
  t.match(wrong.message, `status 200; body of 200000 bytes has md5 `);
  t.match(wrong.message, new RegExp(`, expected ${plain}$`));

  const capped = await new HttpChecker({
    path: '/big',
    digest: await genhash(srv.target, '/big'),
    maxDigestBody: 100_000,
  }).check(srv.target, ctx());
  t.notOk(capped.healthy, 'a body past max_digest_body fails a digest');
  t.match(capped.message, /status 200; body longer than max_digest_body \(100000 bytes\): no md5$/);
  const shown = await new HttpChecker({
    path: '/big',
    showDigest: true,
    maxDigestBody: 100_000,
  }).check(srv.target, ctx());
  t.ok(shown.healthy, 'show_digest alone judges nothing');
  t.match(shown.message, /status 200; no md5: body longer than max_digest_body \(100000 bytes\)$/);
  const matched = await new HttpChecker({
    path: '/big',
    digest: await genhash(srv.target, '/big'),
    bodyMatch: /never there/,
  }).check(srv.target, ctx());
  t.notOk(matched.healthy, 'digest and body_match are both judged');
  t.match(matched.message, /md5 [0-9a-f]{32}; body does not match \/never there\/$/);

  const started = performance.now();
  const trickle = await new HttpChecker({ path: '/trickle', digest: plain }).check(
    srv.target,
    ctx(400),
  );
  t.ok(performance.now() - started < 400 + 1500, 'within the deadline');
  t.notOk(trickle.healthy);
  t.match(trickle.message, /status 200; timed out after 400 ms reading the body$/);
  t.ok(await until(() => srv.closed() >= srv.accepted.length), 'every connection is closed');

  const refused = await new HttpChecker({ digest: plain }).check(await closedPort(), ctx());
  t.notOk(refused.healthy);
  t.match(refused.message, /connection refused \(ECONNREFUSED\)$/);
});

t.test('the digest is what genhash prints, from nginx; nginx sees HTTP/1.0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-digest-'));
  writeFileSync(join(dir, 'big.bin'), BIG);
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    nginxConf(
      dir,
      `  server {
    listen 127.0.0.1:${port};
    root ${dir};
    location = /healthz { return 200 "status: ok\\n"; }
    location = /protocol { return 200 "$server_protocol"; }
  }
`,
    ),
  );
  const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: 'inherit',
  });
  t.teardown(() => void nginx.kill());
  const target = { family: 4, address: '127.0.0.1', port } as const;
  const up = new HttpChecker({ path: '/healthz' });
  t.ok(await until(async () => (await up.check(target, ctx())).healthy, 5000), 'nginx is up');

  for (const path of ['/healthz', '/big.bin']) {
    const expected = await genhash(target, path);
    for (const httpVersion of ['1.1', '1.0']) {
      const r = await new HttpChecker({ path, httpVersion, digest: expected }).check(target, ctx());
      t.ok(r.healthy, `${path} over HTTP/${httpVersion}: ${r.message}`);
    }
  }
  const v10 = await new HttpChecker({
    path: '/protocol',
    httpVersion: '1.0',
    bodyMatch: /^HTTP\/1\.0$/,
  }).check(target, ctx());
  t.ok(v10.healthy, `nginx saw HTTP/1.0: ${v10.message}`);
  const v11 = await new HttpChecker({ path: '/protocol', bodyMatch: /^HTTP\/1\.0$/ }).check(
    target,
    ctx(),
  );
  t.notOk(v11.healthy, 'and HTTP/1.1 by default');
});
