// The listener's answers when building a body fails: a 500 with a one-line body, and the
// response ends (no headers written before the body exists, no half-sent 200 left hanging).
import { Gauge } from 'prom-client';
import { get, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { startListener } from '../../src/http/server.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';

async function setup(
  t: Test,
  name = 'web',
  servers = 1,
): Promise<{ url: string; metrics: WardenMetrics; loop: ReconcileLoop }> {
  const real = Array.from({ length: servers }, (_, i) =>
    i === 0 ? '{address: 10.0.0.2}' : `{address: 10.1.${i >> 8}.${i & 0xff}}`,
  );
  const config = parseConfig(
    `daemon: {backend: memory}\nvirtual_services:\n  - {name: "${name}", address: 10.0.0.1, port: 80, checks: [], real_servers: [${real.join(', ')}]}\n`,
    'x',
    {},
  );
  const backend = new MemoryBackend();
  const table = () => backend.table();
  const metrics = new WardenMetrics({ perServer: true, labels: ['remote_address'] }, table);
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  metrics.attach(loop);
  const listener = await startListener('127.0.0.1:0', loop, metrics, table);
  t.teardown(() => listener.close());
  return { url: listener.url, metrics, loop };
}

t.test(
  '/metrics: a metric that fails to collect is a 500 with one line, and the response ends',
  async (t) => {
    const { url, metrics } = await setup(t);
    new Gauge({
      name: 'broken',
      help: 'fails on every scrape',
      registers: [metrics.registry],
      collect() {
        throw new Error('boom\nsecond line');
      },
    });
    const res = await fetch(`${url}/metrics`);
    t.equal(res.status, 500);
    t.equal(res.headers.get('content-type'), 'text/plain');
    const body = await res.text();
    t.match(body, /^[^\n]*boom\n$/, 'one line, naming the error');
  },
);

t.test(
  '/events and /status: a body that fails to serialise is a 500, and the response ends',
  async (t) => {
    const { url, loop } = await setup(t);
    // JSON.stringify throws on a bigint: a stand-in for any serialisation failure.
    loop.recent.push({ time: 0, event: 'x', service: 'web', message: 1n as unknown as string });
    for (const path of ['/events', '/status']) {
      const res = await fetch(`${url}${path}`);
      t.equal(res.status, 500, path);
      t.match(await res.text(), /^[^\n]*BigInt[^\n]*\n$/, `${path}: one line`);
    }
  },
);

t.test('the endpoints still answer', async (t) => {
  const { url } = await setup(t);
  const metrics = await fetch(`${url}/metrics`);
  t.equal(metrics.status, 200);
  t.match(await metrics.text(), /ipvs_warden_ready 0/);
  t.equal((await fetch(`${url}/healthz`)).status, 200);
  t.equal((await fetch(`${url}/readyz`)).status, 503);
  t.equal((await fetch(`${url}/status`)).status, 200);
  t.equal((await fetch(`${url}/nope`)).status, 404);
});

t.test(
  '/metrics is sent as the scrape makes it: chunked, the page render() makes; HEAD: no body',
  async (t) => {
    const { url, metrics } = await setup(t);
    const res = await fetch(`${url}/metrics`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('transfer-encoding'), 'chunked', 'no length: parts as they come');
    t.equal(res.headers.get('x-content-type-options'), 'nosniff');
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const names = (text: string): string[] =>
      text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .sort();
    const body = await res.text();
    t.same(names(body), names(await metrics.render()), 'every family, once');
    t.ok(body.endsWith('\n'));
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    t.equal(head.status, 200);
    t.equal(await head.text(), '');
  },
);

t.test('/metrics: labels beyond ASCII arrive as UTF-8 (ASCII parts go as Latin-1)', async (t) => {
  const { url, loop } = await setup(t, 'wéb ✓');
  await loop.start();
  t.teardown(() => loop.stop());
  const body = await (await fetch(`${url}/metrics`)).text();
  t.match(
    body,
    /^ipvs_warden_server_state\{service="wéb ✓",remote_address="10\.0\.0\.2",state="up"\} 1$/m,
  );
  t.match(body, /^# TYPE ipvs_warden_check_results_total counter$/m, 'and the ASCII around them');
});

/** A GET or HEAD with these headers, as raw bytes: fetch() would undo the gzip itself. */
function raw(
  url: string,
  headers: Record<string, string>,
  method = 'GET',
  path = '/metrics',
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(`${url}${path}`, { headers, method }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

t.test('/metrics is gzipped when the client takes it, and is the same page', async (t) => {
  // 2,000 servers: a page of 2.4 MB, 37 parts of 64 KiB, each more than zlib's queue holds, so
  // the render waits for it to drain again and again.
  const { url, loop } = await setup(t, 'web', 2000);
  await loop.start();
  t.teardown(() => loop.stop());
  // The per-server and per-check lines hold still between two scrapes (the process' do not).
  const ours = (page: string): string[] =>
    page.split('\n').filter((l) => /^ipvs_warden_(server|service|check)_/.test(l));
  const plain = await raw(url, { 'accept-encoding': 'identity' });
  t.equal(plain.headers['content-encoding'], undefined, 'identity: plain');
  t.equal(plain.headers.vary, 'accept-encoding', 'caches are told the body varies');
  const page = plain.body.toString('utf8');
  t.equal(page.match(/^ipvs_warden_server_state\{.*state="up"\} 1$/gm)?.length, 2000, 'all 2,000');
  const zipped = await raw(url, { 'accept-encoding': 'gzip' });
  t.equal(zipped.status, 200);
  t.equal(zipped.headers['content-encoding'], 'gzip');
  t.equal(zipped.headers.vary, 'accept-encoding');
  t.equal(zipped.headers['transfer-encoding'], 'chunked', 'still sent as it is made');
  t.match(zipped.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.ok(zipped.body.length * 10 < plain.body.length, 'a tenth of the bytes or less');
  const unzipped = gunzipSync(zipped.body).toString('utf8');
  t.same(ours(unzipped), ours(page), 'the same lines');
  t.ok(unzipped.endsWith('\n'), 'whole: gunzip checked the length and CRC too');
  const none = await raw(url, {});
  t.equal(none.headers['content-encoding'], undefined, 'no Accept-Encoding: plain');
  const head = await raw(url, { 'accept-encoding': 'gzip' }, 'HEAD');
  t.equal(head.headers['content-encoding'], 'gzip', 'HEAD: the headers a GET gets');
  t.equal(head.body.length, 0, 'and no body');
});

t.test('/ and /status are gzipped when the client takes it; a small body goes plain', async (t) => {
  const { url, loop } = await setup(t, 'web', 2000);
  await loop.start();
  t.teardown(() => loop.stop());
  for (const path of ['/', '/status']) {
    const plain = await raw(url, { 'accept-encoding': 'identity' }, 'GET', path);
    t.equal(plain.headers['content-encoding'], undefined, `${path}: identity: plain`);
    t.equal(plain.headers.vary, 'accept-encoding', `${path}: caches are told it varies`);
    const zipped = await raw(url, { 'accept-encoding': 'gzip, deflate' }, 'GET', path);
    t.equal(zipped.status, 200);
    t.equal(zipped.headers['content-encoding'], 'gzip', `${path}: gzip`);
    t.equal(zipped.headers['content-type'], plain.headers['content-type']);
    t.ok(zipped.body.length * 5 < plain.body.length, `${path}: a fifth of the bytes or less`);
    const text = gunzipSync(zipped.body).toString('utf8');
    t.equal(text.length, plain.body.toString('utf8').length, `${path}: the same length unzipped`);
    t.match(text, /10\.1\.7\.207/, `${path}: the last server is there`);
  }
  const status = JSON.parse(
    gunzipSync((await raw(url, { 'accept-encoding': 'gzip' }, 'GET', '/status')).body).toString(),
  ) as { services: { real_servers: unknown[] }[] };
  t.equal(status.services[0]?.real_servers.length, 2000, '/status: JSON, every server');
  // /events holds no transition here (no checks): a few bytes, not worth gzip's 18.
  const events = await raw(url, { 'accept-encoding': 'gzip' }, 'GET', '/events');
  t.ok(events.body.length < 1024, 'a small body');
  t.equal(events.headers['content-encoding'], undefined, 'goes plain');
  t.type(JSON.parse(events.body.toString('utf8')), 'object', 'JSON as it is');
});
