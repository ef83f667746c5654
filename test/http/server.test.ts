// The listener's answers when building a body fails: a 500 with a one-line body, and the
// response ends (no headers written before the body exists, no half-sent 200 left hanging).
import { Gauge } from 'prom-client';
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
): Promise<{ url: string; metrics: WardenMetrics; loop: ReconcileLoop }> {
  const config = parseConfig(
    `daemon: {backend: memory}\nvirtual_services:\n  - {name: "${name}", address: 10.0.0.1, port: 80, checks: [], real_servers: [{address: 10.0.0.2}]}\n`,
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
