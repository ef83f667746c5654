// The HTTP/1.1 reply as the fresh-connection check reads it (http-parser-js over the socket's
// events): replies written byte for byte by a node:net server, in pieces that arrive as separate
// packets, on 127.0.0.1 and ::1; then nginx (Debian's) for a real chunked reply.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HttpChecker, type HttpCheckOptions } from '../../checks/http.js';
import { freePort, listen, until, nginxConf } from './servers.js';

const ctx = (timeoutMs = 2000) => ({ signal: new AbortController().signal, timeoutMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A server that answers the request with `parts`, each written 20 ms after the last (so each
 * is a packet of its own), then closes unless `hold`; it records each request it read.
 */
async function scripted(
  host: '127.0.0.1' | '::1',
  parts: (string | Buffer)[],
  hold = false,
): Promise<Awaited<ReturnType<typeof listen>> & { requests: string[] }> {
  const requests: string[] = [];
  const srv = await listen(
    createServer((s: Socket) => {
      s.setNoDelay(true);
      let got = '';
      const onData = (d: Buffer): void => {
        got += d.toString('latin1');
        if (!got.includes('\r\n\r\n')) return;
        s.off('data', onData);
        requests.push(got);
        void (async () => {
          for (const part of parts) {
            if (s.destroyed) return;
            s.write(part);
            await sleep(20);
          }
          if (!hold) s.end();
        })();
      };
      s.on('data', onData);
    }),
    host,
  );
  return { ...srv, requests };
}

interface Case {
  parts: (string | Buffer)[];
  options?: HttpCheckOptions;
  hold?: boolean;
  healthy: boolean;
  message: RegExp;
}

const head = (fields: string) => `HTTP/1.1 200 OK\r\n${fields}\r\n`;
const cases: Record<string, Case> = {
  'a chunked reply split across packets, mid-size and mid-data': {
    parts: [
      head('Transfer-Encoding: chunked\r\n'),
      '1',
      '0\r\n0123456',
      '789abcdef\r\n',
      '5\r\nready\r\n0\r\n',
      '\r\n',
    ],
    options: { bodyMatch: /^0123456789abcdefready$/ },
    healthy: true,
    message: /: connected; status 200$/,
  },
  'a chunked reply cut inside a chunk': {
    parts: [head('Transfer-Encoding: chunked\r\n'), 'a\r\n01234'],
    healthy: false,
    message:
      /: connected; status 200; body cut short after 5 bytes: connection closed before the end of the body$/,
  },
  '100 and 103 before a 200: the 200 is the reply': {
    parts: [
      'HTTP/1.1 100 Continue\r\n\r\n',
      'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n',
      head('Content-Length: 2\r\n') + 'ok',
    ],
    options: { bodyMatch: /^ok$/ },
    healthy: true,
    message: /: connected; status 200$/,
  },
  '100 before a 503: the 503 is the reply': {
    parts: ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n'],
    healthy: false,
    message: /: connected; status 503, expected 200-299$/,
  },
  'a reply cut in the middle of its declared body': {
    parts: [head('Content-Length: 10\r\n'), 'abc'],
    healthy: false,
    message:
      /: connected; status 200; body cut short after 3 of 10 bytes: connection closed before the end of the body$/,
  },
  'a body that runs to the close, in pieces': {
    parts: [head(''), 're', 'ady'],
    options: { bodyMatch: /^ready$/ },
    healthy: true,
    message: /: connected; status 200$/,
  },
  'a body over max_body: what is past it is not read, nor matched': {
    parts: [head('Content-Length: 1000000\r\n'), 'a'.repeat(20), `${'a'.repeat(20)}MARK`],
    options: { maxBody: 16, bodyNotMatch: /MARK/ },
    hold: true,
    healthy: true,
    message: /: connected; status 200$/,
  },
  'a body over max_body: a match past it fails': {
    parts: [head('Content-Length: 1000000\r\n'), 'a'.repeat(20), `${'a'.repeat(20)}MARK`],
    options: { maxBody: 16, bodyMatch: /MARK/ },
    hold: true,
    healthy: false,
    message: /: connected; status 200; body does not match \/MARK\/$/,
  },
  'HEAD: no body, whatever Content-Length says': {
    parts: [head('Content-Length: 100\r\n')],
    options: { method: 'HEAD' },
    hold: true,
    healthy: true,
    message: /HTTP HEAD \/ -> .*: connected; status 200$/,
  },
  'a status line without a code': {
    parts: ['HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n'],
    healthy: false,
    message: /: connected; not a valid HTTP reply \(not a status line\): "HTTP\/1\.1 OK\\r\\n/,
  },
  'a two-digit status': {
    parts: ['HTTP/1.1 20 OK\r\n\r\n'],
    healthy: false,
    message: /: connected; not a valid HTTP reply \(not a status line\): "HTTP\/1\.1 20 OK/,
  },
  'a four-digit status': {
    parts: ['HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
    healthy: false,
    message: /: connected; not a valid HTTP reply \(not a status line\): "HTTP\/1\.1 2000 OK/,
  },
  'a status line in two packets': {
    parts: ['HTTP/1.1 2', '00 OK\r\nContent-Length: 2\r\n\r\nok'],
    healthy: true,
    message: /: connected; status 200$/,
  },
  'HTTP/2.0 in an HTTP/1.1 status line': {
    parts: ['HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'],
    healthy: false,
    message: /: connected; not a valid HTTP reply \(HTTP\/2\.0 reply\): "HTTP\/2\.0 200 OK/,
  },
  'a Content-Length that is not a number': {
    parts: [head('Content-Length: 12abc\r\n') + 'ok'],
    healthy: false,
    message: /: connected; not a valid HTTP reply \(Invalid character in Content-Length\): "/,
  },
  'headers past 16 KiB, in many packets': {
    parts: [
      'HTTP/1.1 200 OK\r\n',
      ...Array.from({ length: 6 }, () => `X-Pad: ${'p'.repeat(4000)}\r\n`),
    ],
    hold: true,
    healthy: false,
    message: /: connected; not a valid HTTP reply \(Header overflow\): "X-Pad: p+\.\.\."$/,
  },
  "a close in the reply's headers": {
    parts: ['HTTP/1.1 200 OK\r\nContent-'],
    healthy: false,
    message:
      /: connected; connection closed in the reply's headers: "HTTP\/1\.1 200 OK\\r\\nContent-"$/,
  },
};

for (const host of ['127.0.0.1', '::1'] as const) {
  t.test(`replies byte for byte on ${host}`, async (t) => {
    for (const [name, c] of Object.entries(cases)) {
      const srv = await scripted(host, c.parts, c.hold);
      const r = await new HttpChecker(c.options).check(srv.target, ctx());
      t.equal(r.healthy, c.healthy, `${name}: ${r.message}`);
      t.match(r.message, c.message, name);
      t.equal(r.local, undefined, `${name}: never a local result`);
      // The check ends the connection itself once it has its verdict (a held reply included).
      t.ok(await until(() => srv.closed() === 1), `${name}: the connection is closed`);
      await srv.stop();
    }
  });
}

t.test('the request: one HTTP/1.1 request, Host of the target, Connection: close', async (t) => {
  const srv = await scripted('::1', [head('Content-Length: 0\r\n')]);
  const plain = await new HttpChecker({ path: '/healthz' }).check(srv.target, ctx());
  t.ok(plain.healthy, plain.message);
  const body = await new HttpChecker({
    method: 'POST',
    body: 'ping',
    headers: { 'x-token': 'a', 'user-agent': 'probe/1' },
  }).check(srv.target, ctx());
  t.ok(body.healthy, body.message);
  const port = srv.target.port;
  t.equal(
    srv.requests[0],
    `GET /healthz HTTP/1.1\r\nhost: [::1]:${port}\r\nuser-agent: ipvs-warden\r\nconnection: close\r\n\r\n`,
  );
  // The body follows the headers (the server stops reading at the blank line).
  t.match(
    srv.requests[1],
    new RegExp(
      `^POST / HTTP/1\\.1\\r\\nhost: \\[::1\\]:${port}\\r\\nuser-agent: probe/1\\r\\nx-token: a\\r\\nconnection: close\\r\\ncontent-length: 4\\r\\n\\r\\n(ping)?$`,
    ),
  );
  await srv.stop();
});

t.test('nginx: a chunked reply (SSI) and a status from a real server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-nginx-reply-'));
  const port = await freePort();
  // SSI output has no length known in advance: nginx sends it chunked over HTTP/1.1.
  writeFileSync(join(dir, 'ssi.html'), 'status: <!--# echo var="ok_word" -->\n');
  writeFileSync(
    join(dir, 'nginx.conf'),
    nginxConf(
      dir,
      `  server {
    listen 127.0.0.1:${port}; listen [::1]:${port};
    root ${dir};
    location = /ssi.html { ssi on; set $ok_word ready; }
    location = /gone { return 410; }
  }
`,
    ),
  );
  const nginx: ChildProcess = spawn(
    'nginx',
    ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    {
      stdio: 'inherit',
    },
  );
  t.teardown(() => void nginx.kill());
  const v6 = { family: 6, address: '::1', port } as const;
  const ssi = new HttpChecker({ path: '/ssi.html', bodyMatch: /^status: ready\n$/ });
  t.ok(await until(async () => (await ssi.check(v6, ctx())).healthy, 5000), 'nginx answers');
  const r = await ssi.check({ family: 4, address: '127.0.0.1', port }, ctx());
  t.ok(r.healthy, r.message);
  // What nginx sends the check's request: chunked, so the case above read chunks.
  const raw = await new Promise<string>((resolve) => {
    let got = '';
    const s = connect(port, '127.0.0.1', () =>
      s.end('GET /ssi.html HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'),
    );
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
  });
  t.match(raw, /\r\ntransfer-encoding: chunked\r\n[^]*\r\n\r\n[0-9a-f]+\r\nstatus: ready/i);
  const gone = await new HttpChecker({ path: '/gone' }).check(v6, ctx());
  t.notOk(gone.healthy);
  t.match(gone.message, /connected; status 410, expected 200-299$/);
});

t.test(
  'a reply read whole ends the connection with a reset: no TIME_WAIT on the director',
  async (t) => {
    // The server keeps the connection open after its reply (as one that ignores `connection:
    // close` would): the probe closes first, and the server sees a reset, not a close.
    const endings: string[] = [];
    const srv = await listen(
      createServer((s: Socket) => {
        s.once('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
        s.on('end', () => endings.push('close'));
        s.on('error', (e: NodeJS.ErrnoException) => endings.push(String(e.code)));
      }),
    );
    const r = await new HttpChecker({ path: '/' }).check(srv.target, ctx());
    t.ok(r.healthy, r.message);
    t.ok(await until(() => endings.length === 1));
    t.same(endings, ['ECONNRESET']);
    await srv.stop();
  },
);
