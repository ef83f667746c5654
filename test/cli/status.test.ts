// `ipvs-warden status --url` against real local servers that are not a healthy daemon: one that
// never answers, one that sends headers and then nothing, one whose body never ends, one that
// answers HTML, JSON of another shape, or an error status, and a closed port. Each is one line
// on stderr and exit 1, within the deadline; the endless body is cut at the size cap.
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import t, { type Test } from 'tap';
import { closedPort, listen } from '../checks/servers.js';
import { main } from './daemon.js';

function status(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [main, 'status', ...args],
      // A bound for the test only, far past every deadline asserted.
      { timeout: 30_000, maxBuffer: 1 << 20 },
      (error, out, err) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          out,
          err,
        }),
    ),
  );
}

function oneLine(t: Test, r: { code: number | null; err: string }, pattern: RegExp): void {
  t.equal(r.code, 1, 'exit 1');
  t.match(r.err, /^ipvs-warden: [^\n]*\n$/, `one line: ${r.err.slice(0, 300)}`);
  t.match(r.err, pattern);
}

async function http(
  t: Test,
  handler: (res: ServerResponse) => void,
): Promise<{ url: string; sent: () => number }> {
  let sent = 0;
  const server = createHttpServer((_req, res) => {
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer, ...rest: never[]) => {
      sent += chunk.length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    handler(res);
  });
  const l = await listen(server);
  t.teardown(() => l.stop());
  return { url: `http://127.0.0.1:${l.target.port}`, sent: () => sent };
}

t.test('a port that accepts and never answers: the deadline', async (t) => {
  const l = await listen(createServer());
  t.teardown(() => l.stop());
  const url = `http://127.0.0.1:${l.target.port}`;
  const started = Date.now();
  const r = await status('--url', url, '--timeout', '500');
  oneLine(t, r, new RegExp(`no answer from ${url}/status within 500 ms`));
  t.ok(Date.now() - started < 10_000, 'ends after its deadline, not the test bound');
});

t.test('headers, then a body that never comes: the deadline', async (t) => {
  const { url } = await http(t, (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ready":');
  });
  const r = await status('--url', url, '--timeout', '500');
  oneLine(t, r, /did not end within 500 ms/);
});

t.test('a body that never ends: cut at 16 MiB', async (t) => {
  // Bounded here too: at most 64 MiB, so the old code ended rather than ate the machine.
  const chunk = Buffer.alloc(1 << 16, 'x');
  const { url, sent } = await http(t, (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const pump = (): void => {
      while (sent() < 64 << 20 && !res.destroyed) if (!res.write(chunk)) return;
      if (sent() >= 64 << 20) res.end();
    };
    res.on('drain', pump);
    res.on('close', () => res.off('drain', pump));
    pump();
  });
  const r = await status('--url', url);
  oneLine(t, r, /the answer from .* is larger than 16 MiB/);
  t.ok(sent() < 64 << 20, `it stopped reading (${sent()} bytes sent)`);
});

t.test('HTML, JSON of another shape, an error status, a closed port', async (t) => {
  const html = await http(t, (res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body>It works!</body></html>\n');
  });
  oneLine(t, await status('--url', html.url), /is not JSON \(text\/html\): "<html><body>It works/);
  const other = await http(t, (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"hello": "world"}');
  });
  oneLine(t, await status('--url', other.url), /is not an ipvs-warden status document/);
  const array = await http(t, (res) => res.end('[1, 2, 3]'));
  oneLine(t, await status('--url', array.url), /is not an ipvs-warden status document/);
  const refused = await http(t, (res) => {
    res.writeHead(421, { 'content-type': 'text/plain' });
    res.end('misdirected: the Host header names neither this listener\n');
  });
  oneLine(t, await status('--url', refused.url), /answered 421 .*: misdirected: the Host header/);
  const closed = await closedPort();
  oneLine(
    t,
    await status('--url', `http://127.0.0.1:${closed.port}`),
    /cannot reach the daemon at .*: ECONNREFUSED/,
  );
  const bad = await status('--url', html.url, '--timeout', 'soon');
  t.equal(bad.code, 2, 'a bad --timeout is a usage error');
});
