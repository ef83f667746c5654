// The metrics' labels as node_exporter writes them (so series join with node_ipvs_backend_*),
// the per-server switch and label subset, and kernel numbers read in one dump per scrape.
import { createServer } from 'node:http';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { createChecker } from '../../src/checkers.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import {
  IPVS_LABELS,
  ipvsLabelValues,
  labelCollision,
  type IpvsLabel,
} from '../../src/ipvs/labels.js';
import type { CheckResult } from '../../src/health/checker.js';
import type { CheckEvent } from '../../src/health/scheduler.js';
import { Staleness, WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop, observers } from '../../src/reconcile/loop.js';
import { listen, until } from '../checks/servers.js';

t.test("label values in node_exporter's formats", async (t) => {
  t.same(
    ipvsLabelValues(
      { family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 },
      { family: 4, address: '10.0.0.2', port: 8080 },
    ),
    {
      local_address: '10.0.0.1',
      local_port: '80',
      remote_address: '10.0.0.2',
      remote_port: '8080',
      proto: 'TCP',
      local_mark: '',
    },
  );
  t.same(
    ipvsLabelValues({ family: 6, fwmark: 255 }, { family: 6, address: '2001:db8::2', port: 0 }),
    {
      local_address: '',
      local_port: '0',
      remote_address: '2001:db8::2',
      remote_port: '0',
      proto: 'FWM',
      local_mark: '000000FF',
    },
  );
  t.equal(
    ipvsLabelValues({ family: 6, protocol: 'sctp', address: '2001:db8::1', port: 5060 }).proto,
    'SCTP',
  );
});

t.test('a label subset that gives two servers one series: the first such pair', async (t) => {
  const tcp = { family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
  const servers = [
    { service: 'web', serviceKey: tcp, destination: { family: 4, address: '10.0.0.2', port: 80 } },
    { service: 'web', serviceKey: tcp, destination: { family: 4, address: '10.0.0.3', port: 80 } },
    { service: 'web', serviceKey: tcp, destination: { family: 4, address: '10.0.0.2', port: 81 } },
    {
      service: 'mark',
      serviceKey: { family: 4, fwmark: 1 },
      destination: { family: 4, address: '10.0.0.2', port: 0 },
    },
    {
      service: 'mark',
      serviceKey: { family: 4, fwmark: 2 },
      destination: { family: 4, address: '10.0.0.2', port: 0 },
    },
  ] as const;
  t.equal(labelCollision(servers, IPVS_LABELS), null, 'every label: no collision');
  t.equal(labelCollision(servers, ['remote_address', 'remote_port', 'local_mark']), null);
  const byAddress = labelCollision(servers, ['remote_address']);
  t.equal(byAddress?.first, servers[0]);
  t.equal(byAddress?.second, servers[2]);
  t.same(byAddress?.add, ['remote_port']);
  const byPort = labelCollision(servers, ['remote_port']);
  t.same(
    [byPort?.first, byPort?.second, byPort?.add],
    [servers[0], servers[1], ['remote_address']],
  );
  const marks = labelCollision(servers.slice(3), ['remote_address', 'remote_port']);
  t.same(marks?.add, ['local_mark'], 'two fwmark services of one name: the mark tells them apart');
});

async function scrape(
  t: Test,
  perServer: boolean,
  labels: readonly IpvsLabel[],
): Promise<{ text: string; dumps: number; metrics: WardenMetrics }> {
  const config = parseConfig(
    'daemon: {backend: memory}\nvirtual_services:\n  - {name: web, address: 10.0.0.1, port: 80, checks: [], real_servers: [{address: 10.0.0.2, weight: 3}]}\n  - {name: mark, fwmark: 7, checks: [], real_servers: [{address: 10.0.0.3, port: 0}]}\n',
    'x',
    {},
  );
  const backend = new MemoryBackend();
  let dumps = 0;
  const metrics = new WardenMetrics({ perServer, labels }, () => {
    dumps++;
    return backend.table();
  });
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  metrics.attach(loop);
  t.teardown(() => loop.stop());
  await loop.start();
  if (
    !(await until(async () => (await backend.table()).every((e) => e.destinations.length === 1)))
  ) {
    throw new Error('precondition: every service has its one server in the table');
  }
  await loop.idle();
  return { text: await metrics.render(), dumps, metrics };
}

t.test(
  'scrapes at once each get every series (each drops what it rebuilt when it ends)',
  async (t) => {
    const { text, metrics } = await scrape(t, true, IPVS_LABELS);
    const series = (x: string): string[] =>
      x.split('\n').filter((l) => /^ipvs_warden_(server|service|check)_\w+\{/.test(l));
    t.ok(series(text).length >= 20, `per-server and per-service series: ${series(text).length}`);
    const together = await Promise.all([metrics.render(), metrics.render(), metrics.render()]);
    for (const x of together) t.same(series(x), series(text));
    t.same(series(await metrics.render()), series(text), 'and after them');
  },
);

t.test(
  'a finished scrape keeps nothing of its page: the chain renders wait on settles to nothing',
  async (t) => {
    const { metrics } = await scrape(t, true, IPVS_LABELS);
    await metrics.render();
    // `rendering` is the only thing a WardenMetrics keeps of a scrape once it has ended.
    t.equal(await (Reflect.get(metrics, 'rendering') as Promise<unknown>), undefined);
  },
);

t.test('per-server series with every label; the kernel read once per scrape', async (t) => {
  const { text, dumps } = await scrape(t, true, IPVS_LABELS);
  t.match(
    text,
    'ipvs_warden_server_kernel_weight{service="web",local_address="10.0.0.1",local_port="80",remote_address="10.0.0.2",remote_port="80",proto="TCP",local_mark=""} 3',
  );
  t.match(
    text,
    'ipvs_warden_server_state{service="mark",local_address="",local_port="0",remote_address="10.0.0.3",remote_port="0",proto="FWM",local_mark="00000007",state="up"} 1',
  );
  t.match(
    text,
    /ipvs_warden_service_healthy_servers\{service="web",local_address="10.0.0.1",local_port="80",proto="TCP",local_mark=""\} 1/,
  );
  t.match(
    text,
    /ipvs_warden_reconcile_operations_total\{op="add-destination",result="applied",errno=""\} 2/,
  );
  t.match(text, /ipvs_warden_ready 1/);
  t.equal(dumps, 1, 'one table dump served every kernel series of the scrape');
});

t.test('tick durations by whether the tick read the table', async (t) => {
  const config = parseConfig(
    'daemon: {backend: memory}\nvirtual_services:\n  - {name: web, address: 10.0.0.1, port: 80, checks: [], real_servers: [{address: 10.0.0.2}]}\n',
    'x',
    {},
  );
  const backend = new MemoryBackend();
  const metrics = new WardenMetrics({ perServer: false, labels: [] }, () => backend.table());
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  metrics.attach(loop);
  t.teardown(() => loop.stop());
  await loop.start();
  await loop.idle();
  const count = (text: string, table: string): number =>
    Number(
      new RegExp(
        `^ipvs_warden_reconcile_duration_seconds_count\\{result="success",table="${table}"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1] ?? 0,
    );
  const before = await metrics.render();
  t.ok(count(before, 'read') >= 1, 'the start tick read the table');
  // A request for a health transition alone (as a server's check changing its state makes).
  const ended = loop.nextTick();
  loop.requestTick('a transition', false, false);
  await ended;
  const after = await metrics.render();
  t.equal(count(after, 'known') - count(before, 'known'), 1, 'one tick without a read');
  t.equal(count(after, 'read'), count(before, 'read'), 'and no read');
});

t.test('a label subset, and per-server series off', async (t) => {
  const subset = await scrape(t, true, ['remote_address', 'remote_port']);
  t.match(
    subset.text,
    'ipvs_warden_server_kernel_weight{service="web",remote_address="10.0.0.2",remote_port="80"} 3',
  );
  const off = await scrape(t, false, []);
  t.notMatch(off.text, /ipvs_warden_server_state/);
  t.notMatch(off.text, /ipvs_warden_server_kernel_weight/);
  t.match(off.text, /ipvs_warden_service_servers\{service="web"/);
  t.equal(off.dumps, 0, 'no per-server series, no dump');
});

t.test('two checks of one target with the same description are two series', async (t) => {
  // Two "HTTP GET /healthz" checks of one server, for two virtual hosts: one passes, one fails.
  const server = await listen(
    createServer((req, res) => {
      res.statusCode = req.headers.host === 'good.example' ? 200 : 503;
      res.end();
    }),
  );
  t.teardown(() => server.stop());
  const config = parseConfig(
    `daemon: {backend: memory}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, rise: 1, fall: 1}
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    checks: [{type: http, path: /healthz, host: good.example}, {type: http, path: /healthz, host: bad.example}]
    real_servers: [{address: 127.0.0.1, port: ${server.target.port}}]
`,
    'x',
    {},
  );
  const backend = new MemoryBackend();
  const metrics = new WardenMetrics({ perServer: true, labels: IPVS_LABELS }, () =>
    backend.table(),
  );
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  metrics.attach(loop);
  t.teardown(() => loop.stop());
  await loop.start();
  const failures = async (): Promise<string[]> =>
    (await metrics.render())
      .split('\n')
      .filter((l) => l.startsWith('ipvs_warden_check_consecutive_failures{'));
  t.ok(
    await until(async () => {
      const lines = await failures();
      return lines.some((l) => / 0$/.test(l)) && lines.some((l) => / [1-9]\d*$/.test(l));
    }),
    'a series at 0 failures and one counting failures',
  );
  const lines = await failures();
  t.equal(lines.length, 2, lines.join('\n'));
  for (const l of lines) {
    t.match(l, /check="HTTP GET \/healthz"/, 'the description stays, for humans');
    t.match(l, /check_id="[0-9a-f]{12}"/, 'a short stable id tells them apart');
  }
});

t.test('a local result counts as outcome "unknown"; every outcome starts at 0', async (t) => {
  const metrics = new WardenMetrics({ perServer: true, labels: IPVS_LABELS }, () =>
    Promise.resolve([]),
  );
  const state = { up: true, successes: 3, failures: 0, checked: true };
  const event = (result: CheckResult): CheckEvent => ({
    id: 'tcp:abc@10.0.0.2:80 rise=2 fall=3',
    subscribers: ['web'],
    tags: [undefined],
    checker: {
      kind: 'tcp',
      description: 'TCP connect',
      key: 'k',
      check: () => Promise.resolve(result),
    },
    target: { family: 4, address: '10.0.0.2', port: 80 },
    result,
    state,
    transition: null,
    latenessMs: 0,
  });
  const results = async (): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await metrics.render())
        .split('\n')
        .filter((l) => l.startsWith('ipvs_warden_check_results_total{'))
        .map((l) => [/outcome="(\w+)"/.exec(l)?.[1] ?? '?', Number(l.split(' ').at(-1))]),
    );
  metrics.checkResult(event({ healthy: true, durationMs: 1, message: 'connected' }));
  t.same(await results(), { healthy: 1, unhealthy: 0, unknown: 0 }, 'all three from the first');
  metrics.checkResult(
    event({ healthy: false, local: true, durationMs: 0, message: 'local error (EMFILE)' }),
  );
  metrics.checkResult(
    event({ healthy: false, local: true, durationMs: 0, message: 'local error (EMFILE)' }),
  );
  t.same(
    await results(),
    { healthy: 1, unhealthy: 0, unknown: 2 },
    'local: unknown, not unhealthy',
  );
  t.match(
    await metrics.render(),
    /\nipvs_warden_check_consecutive_failures\{[^}]*\} 0\n/,
    'failures in a row: as the unchanged state says',
  );
  metrics.checkResult(event({ healthy: true, durationMs: 30, message: 'connected' }));
  const text = await metrics.render();
  t.match(
    text,
    /\nipvs_warden_check_last_duration_seconds\{kind="tcp",check="TCP connect",check_id="[0-9a-f]{12}",target="10.0.0.2:80"\} 0.03\n/,
    "the last run's duration, per check",
  );
  t.match(
    text,
    /\nipvs_warden_check_duration_seconds_bucket\{le="0.025",kind="tcp"\} 3\n/,
    'the histogram is per kind: three runs under 25 ms',
  );
  t.match(text, /\nipvs_warden_check_duration_seconds_count\{kind="tcp"\} 4\n/);
  t.notMatch(text, /ipvs_warden_check_duration_seconds_\w+\{[^}]*check_id/, 'no series per check');
});

/** A checker with no sockets: always healthy. */
const fakeChecker: typeof createChecker = (check) => ({
  kind: check.type,
  description: `fake ${check.type}`,
  key: `${check.type}:${JSON.stringify(check.options)}`,
  check: () => Promise.resolve({ healthy: true, durationMs: 1, message: 'ok' }),
});

for (const perServer of [true, false]) {
  t.test(
    `series of a check or server that a reload removed go (per-server ${perServer})`,
    async (t) => {
      const head = `daemon: {backend: memory}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, rise: 1, fall: 1}
virtual_services:
`;
      const web = (check: string): string =>
        `  - {name: web, address: 10.0.0.1, port: 80, checks: [${check}], real_servers: [{address: 10.0.0.2}]}\n`;
      const api =
        '  - {name: api, address: 10.0.0.1, port: 81, checks: [{type: tcp}], real_servers: [{address: 10.0.0.3}]}\n';
      const backend = new MemoryBackend();
      const metrics = new WardenMetrics({ perServer, labels: IPVS_LABELS }, () => backend.table());
      // api's last result, to land again after the reload that removes it.
      let apiResult: CheckEvent | undefined;
      const loop = new ReconcileLoop(parseConfig(head + web('{type: tcp}') + api, 'x', {}), {
        backend,
        log: new MemoryLog(),
        observer: observers(metrics, {
          checkResult: (e) => {
            if (e.target.address === '10.0.0.3') apiResult = e;
          },
        }),
        createChecker: fakeChecker,
      });
      metrics.attach(loop);
      t.teardown(() => loop.stop());
      const lines = async (name: string): Promise<string[]> =>
        (await metrics.render()).split('\n').filter((l) => l.startsWith(`${name}{`));
      const checks = (): Promise<string[]> => lines('ipvs_warden_check_consecutive_failures');
      const transitions = (): Promise<string[]> => lines('ipvs_warden_server_transitions_total');

      await loop.start();
      t.ok(
        await until(
          async () => (await checks()).length === 2 && (await transitions()).length === 4,
        ),
        'both servers checked and up',
      );
      t.match(
        (await transitions()).join('\n'),
        /service="api"[^\n]*to="down"\} 0$/m,
        'a down series from the first transition, at 0, so increase() sees the first down',
      );
      t.equal((await lines('ipvs_warden_check_results_total')).length, 6, 'three outcomes each');
      const apiRecord = loop.servers().find((r) => r.vs.name === 'api');

      // api goes; web's tcp check becomes an http check.
      await loop.reload(parseConfig(head + web('{type: http, path: /x}'), 'x', {}));
      t.ok(
        await until(async () => (await checks()).some((l) => l.includes('kind="http"'))),
        "web's new check reports",
      );
      for (const [name, outcomes] of [
        ['ipvs_warden_check_consecutive_failures', 1],
        ['ipvs_warden_check_results_total', 3],
        ['ipvs_warden_check_last_duration_seconds', 1],
      ] as const) {
        const now = (await metrics.render()).split('\n').filter((l) => l.startsWith(`${name}{`));
        t.equal(now.length, outcomes, `${name}: only the live check\n${now.join('\n')}`);
        for (const line of now)
          t.match(
            line,
            /kind="http",check="fake http",check_id="[0-9a-f]{12}",target="10.0.0.2:80"/,
          );
      }
      const left = await transitions();
      t.equal(left.length, 2, `transitions: only web's\n${left.join('\n')}`);
      for (const line of left) t.match(line, /service="web"/);
      t.match(left[0], /to="up"\} 1$/, 'kept, with its count');
      t.match(left[1], /to="down"\} 0$/);

      // A result and a transition of api landing after the reload (a check in flight), once
      // the scrapes above have pruned: the next scrape drops them again.
      if (!apiResult || !apiRecord) throw new Error('precondition: api was checked');
      metrics.checkResult(apiResult);
      metrics.transition(apiRecord, 'up', 'down');
      const late = await checks();
      t.equal(late.length, 1, `a late result of api's check: no series\n${late.join('\n')}`);
      const lateTransitions = await transitions();
      t.equal(lateTransitions.length, 2, `nor a late transition\n${lateTransitions.join('\n')}`);
      t.same(await transitions(), lateTransitions, 'and the scrape after it the same');
    },
  );
}

t.test('Staleness: prune after a swap of the records or a series added, else not', async (t) => {
  const a = new Map();
  const b = new Map();
  const gate = new Staleness();
  const steps: [string, () => boolean, boolean][] = [
    ['first look', () => gate.due(a), true],
    ['the same records', () => gate.due(a), false],
    ['again', () => gate.due(a), false],
    ['a series added', () => (gate.added(), gate.due(a)), true],
    ['then nothing', () => gate.due(a), false],
    ['records swapped', () => gate.due(b), true],
    ['then nothing', () => gate.due(b), false],
    ['swapped and added', () => (gate.added(), gate.due(a)), true],
    ['then nothing', () => gate.due(a), false],
  ];
  for (const [what, step, want] of steps) t.equal(step(), want, what);
});
