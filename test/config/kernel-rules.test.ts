// Every config that check-config accepts must be one the kernel accepts: a walk over the values
// of every key the kernel judges (addresses, families, forwarding, weights, thresholds, tunnels,
// schedulers, persistence), each config either refused with a problem or applied whole to the
// memory table, whose rules are the kernel's (the kernel lane holds it to the kernel).
import t from 'tap';
import { ConfigError } from '../../src/config/load.js';
import { parseConfig } from '../../src/checkers.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import type { Operation } from '../../src/ipvs/model.js';

/** A small seeded generator, so a failure names a case that can be run again. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const V4 = ['10.0.0.1', '0.0.0.0', '255.255.255.255', '224.0.0.1', '169.254.1.1', '127.0.0.2'];
const V6 = ['2001:db8::1', '::', 'ff02::1', 'fe80::1', '::1', '::ffff:10.0.0.1'];
const CHOICES: Record<string, readonly (string | undefined)[]> = {
  fwd: [undefined, 'masq', 'route', 'tunnel'],
  weight: [undefined, '0', '1', '65535'],
  upper_threshold: [undefined, '0', '1', '10', '2147483647'],
  lower_threshold: [undefined, '0', '1', '10', '2147483647'],
  tunnel: [undefined, '{type: ipip}', '{type: gue}', '{type: gue, port: 6080}', '{type: gre}'],
  scheduler: [undefined, 'rr', 'wlc', 'mh', 'sh', 'twos', 'foo', 'none'],
  pe: [undefined, 'sip'],
  netmask: [undefined, '0', '1', '24', '32', '64', '128'],
  persistent: [undefined, 'false', 'true', '1s', '4294967s', '4294968s'],
  sched_flags: [undefined, '[sh-port]', '[flag-1, flag-2, flag-3]'],
};
const SERVICE_LEVEL = ['scheduler', 'pe', 'netmask', 'persistent', 'sched_flags'];

function pick<T>(list: readonly T[], r: () => number): T {
  return list[Math.floor(r() * list.length)] as T;
}

function generate(r: () => number): string {
  const v6 = r() < 0.5;
  const service = [
    `  - address: ${v6 ? '2001:db8::100' : '192.0.2.1'}`,
    `    port: 80`,
    `    protocol: ${pick(['tcp', 'udp'], r)}`,
    `    checks: []`,
  ];
  for (const key of SERVICE_LEVEL) {
    const value = pick(CHOICES[key] ?? [], r);
    if (value !== undefined) service.push(`    ${key}: ${value}`);
  }
  if (r() < 0.3) service.push(`    fallback: {address: ${pick(r() < 0.7 ? V4 : V6, r)}}`);
  service.push('    real_servers:');
  for (let i = 0; i < 2; i++) {
    const family = r() < 0.85 ? (v6 ? V6 : V4) : v6 ? V4 : V6;
    // Mostly ordinary addresses, so that the other keys are judged too.
    const address = (r() < 0.7 ? (family[0] ?? '') : pick(family, r)).replace(/1$/, String(i + 1));
    service.push(`      - address: "${address}"`);
    for (const key of Object.keys(CHOICES)) {
      if (SERVICE_LEVEL.includes(key) || r() < 0.7) continue;
      const value = pick(CHOICES[key] ?? [], r);
      if (value !== undefined) service.push(`        ${key}: ${value}`);
    }
  }
  return `daemon: {backend: memory}\nvirtual_services:\n${service.join('\n')}\n`;
}

t.test('a config that validates is applied whole by the (kernel-equal) memory table', async (t) => {
  const r = random(20261130);
  let accepted = 0;
  const refusedBy = new Map<string, number>();
  const CASES = 3000;
  for (let n = 0; n < CASES; n++) {
    const text = generate(r);
    let config;
    try {
      config = parseConfig(text, `case-${n}.yaml`, {});
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const p of e.problems) {
        const key = String(p.path[p.path.length - 1]);
        refusedBy.set(key, (refusedBy.get(key) ?? 0) + 1);
      }
      continue;
    }
    accepted++;
    const ops: Operation[] = [];
    for (const vs of config.virtualServices) {
      ops.push({ op: 'add-service', service: vs.service });
      for (const rs of vs.realServers) {
        ops.push({ op: 'add-destination', service: vs.service.key, destination: rs.destination });
      }
      if (vs.fallback) {
        ops.push({ op: 'add-destination', service: vs.service.key, destination: vs.fallback });
      }
    }
    const results = await new MemoryBackend().apply(ops);
    const failed = results.filter((x) => x.error);
    if (failed.length > 0) {
      t.fail(`case ${n} passed the config but the kernel refuses it`, {
        config: text,
        errors: failed.map((x) => x.error?.message),
      });
      return;
    }
  }
  // The walk must reach both sides, or it proves nothing.
  t.ok(accepted > CASES / 20, `${accepted} of ${CASES} configs validated and applied`);
  for (const key of ['lower_threshold', 'address', 'tunnel', 'scheduler', 'persistent']) {
    t.ok((refusedBy.get(key) ?? 0) > 0, `some configs were refused at ${key}`);
  }
});

t.test('the rules the config shares with the kernel, by example', async (t) => {
  const refuse = (rs: string, svc = ''): string => {
    try {
      parseConfig(
        `virtual_services:\n  - {address: 192.0.2.1, port: 80${svc}, real_servers: [{address: 10.0.0.1${rs}}]}\n`,
        'x.yaml',
        {},
      );
      return '';
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('\n');
    }
  };
  t.match(
    refuse(', lower_threshold: 5'),
    /real_servers.0.lower_threshold: lower threshold 5 above upper threshold 0: the kernel refuses it \(ERANGE\); give an upper_threshold/,
    'a lower threshold without an upper one (the kernel compares with 0)',
  );
  t.equal(refuse(', lower_threshold: 5, upper_threshold: 5'), '', 'equal thresholds are fine');
  t.match(refuse('', ', scheduler: foo'), /scheduler: scheduler module ip_vs_foo not found/);
  t.match(refuse(', fwd: tunnel, tunnel: {type: gue}'), /tunnel: a GUE tunnel needs a port/);
  t.match(refuse(', interval: 30d'), /interval: must be a duration/);
  t.match(
    refuse(', interval: 3000000'),
    /interval: must be 100ms\.\.1h, got 3000000/,
    'a bare number of seconds past what a timer holds',
  );
  t.match(refuse(', slow_start: 2h'), /slow_start: must be 0ms\.\.1h/);
  t.match(refuse('', ', drain_timeout: 25h'), /drain_timeout: must be 0ms\.\.24h/);
  t.match(refuse('', ', persistent: 4294968s'), /persistent: must be 1s\.\.4294967s/);
  const daemon = (env: NodeJS.ProcessEnv): string => {
    try {
      parseConfig('virtual_services: []\n', 'x.yaml', env);
      return '';
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('\n');
    }
  };
  t.match(daemon({ WARDEN_RESYNC_INTERVAL: '30d' }), /daemon.resync_interval: must be a duration/);
  t.match(daemon({ WARDEN_RETRY_MAX: '7200' }), /daemon.retry_max: must be at most 1h, got 7200/);
  t.match(daemon({ WARDEN_MAINTENANCE_POLL: '2h' }), /daemon.maintenance_poll: must be at most 1h/);
  t.match(
    daemon({ WARDEN_METRICS_LAG_RESOLUTION: '0ms' }),
    /daemon.metrics_lag_resolution: must be at least 1ms, got 0ms/,
  );
  t.match(
    daemon({ WARDEN_METRICS_LAG_RESOLUTION: '2h' }),
    /daemon.metrics_lag_resolution: must be at most 1h/,
  );
  t.equal(daemon({ WARDEN_METRICS_LAG_RESOLUTION: '10ms' }), '', "prom-client's own 10ms is fine");
  t.equal(
    parseConfig('virtual_services: []\n', 'x.yaml', {}).daemon.metricsLagResolutionMs,
    100,
    'by default 100ms',
  );
});
