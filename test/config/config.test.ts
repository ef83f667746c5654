// The config as an operator writes it: the example in deploy/ loads, every mistake is reported
// at its path and line, defaults inherit downward, the environment overrides daemon settings,
// and check-config's output reads back as the same config.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createChecker } from '../../src/checkers.js';
import { CATALOG } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { ConfigError } from '../../src/config/load.js';
import { loadConfigFile, parseConfig } from '../../src/checkers.js';
import { RELOADABLE_KEYS, RESTART_ONLY_KEYS, daemonSchema } from '../../src/config/daemon.js';
import {
  FALLBACK_KEYS,
  RS_KEYS,
  SERVER_KEYS,
  SERVICE_KEYS,
  VS_KEYS,
} from '../../src/config/services.js';
import { readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const example = join(root, 'deploy/ipvs-warden.yaml');
const main = join(root, 'dist/src/main.js');

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', env);
  } catch (e) {
    if (e instanceof ConfigError) {
      return e.problems.map(
        (p) =>
          `${p.line ?? '-'}: ${e.message && p.path.length ? '' : ''}${fmt(p.path)}: ${p.message}`,
      );
    }
    throw e;
  }
  return [];
}
function fmt(path: readonly (string | number)[]): string {
  return path.map((x, i) => (typeof x === 'number' ? `[${x}]` : i ? `.${x}` : x)).join('');
}

t.test('the example in deploy/ is valid and means what its comments say', async (t) => {
  const c = await loadConfigFile(example, {});
  t.equal(c.virtualServices.length, 3);
  const [web, dns, api] = c.virtualServices;
  t.equal(web?.name, 'web');
  t.equal(web?.panicThreshold, 0.5);
  t.equal(web?.drainTimeoutMs, 300_000, 'inherited from defaults');
  t.equal(web?.fallback?.key.address, '192.0.2.200');
  t.same(
    web?.realServers.map((r) => [r.name, r.destination.weight, r.maintenance, r.slowStartMs]),
    [
      ['web1', 100, false, 30_000],
      ['web2', 100, false, 30_000],
      ['web3', 50, true, 30_000],
    ],
  );
  t.equal(web?.realServers[0]?.checks[0]?.type, 'http', 'virtual-service checks reach each server');
  t.equal(dns?.service.key.family, 6);
  t.equal(dns?.service.schedFlags, 2);
  t.equal(dns?.onFailure, 'quiesce');
  t.equal(dns?.realServers[0]?.destination.fwd, 'route');
  t.equal(
    dns?.realServers[0]?.destination.key.port,
    53,
    'a real server port defaults to the service port',
  );
  t.same(api?.service.key, { family: 4, fwmark: 7 });
  t.equal(api?.service.timeout, 300);
  t.equal(api?.service.netmask, 24);
  t.equal(api?.realServers[0]?.destination.tunnel?.type, 'ipip');
  t.equal(api?.realServers[0]?.checks[1]?.port, 443);
  t.equal(api?.realServers[0]?.policy.fall, 3);
  t.equal(api?.realServers[0]?.timing.intervalMs, 2000);
});

t.test('every problem, by path and line, in one pass', async (t) => {
  const text = `daemon:
  resync_interval: fast
  bakend: memory
defaults:
  rise: 0
virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers:
      - address: 10.0.0.2
        weight: -1
      - address: 10.0.0.3
        wieght: 2
        checks:
          - type: http
            expect_status: abc
          - type: exec
            command: check.sh --fast
  - protocol: udp
    address: 10.0.0.1
    port: 53
    real_servers:
      - address: 10.0.0.2
  - address: 10.0.0.1
    port: 80
    real_servers:
      - address: "::1"
`;
  t.same(problems(text), [
    '2: daemon.resync_interval: must be a duration like 500ms, 2s, 5m or a number of seconds: value was "fast"',
    '3: daemon.bakend: unknown key',
    '5: defaults.rise: must be a whole number 1..1000, got 0',
    '11: virtual_services[0].real_servers[0].weight: must be a whole number 0..65535, got -1',
    '13: virtual_services[0].real_servers[1].wieght: unknown key (did you mean "weight"?)',
    '16: virtual_services[0].real_servers[1].checks[0].expect_status: "abc" is not a status or a range like 200-299',
    '18: virtual_services[0].real_servers[1].checks[1].command: must be a list: program and arguments, run without a shell (["/usr/lib/check", "{address}"]); {address}, {port}, {family} are replaced, got "check.sh --fast"',
    '23: virtual_services[1].real_servers[0].checks: a UDP, SCTP or fwmark service has no default check: give checks (dns, exec, ...), or checks: [] for none',
    '24: virtual_services[2]: TCP 10.0.0.1:80 is already virtual_services[0]',
    '27: virtual_services[2].real_servers[0].address: an IPv6 real server in an IPv4 service needs tunnel forwarding: the kernel refuses it (EINVAL)',
  ]);
});

t.test(
  'the issue example, the YAML syntax error, JSON, and values from the environment',
  async (t) => {
    const vs = (rs: string): string =>
      `virtual_services:\n  - {address: 10.0.0.1, port: 80}\n  - {address: 10.0.0.1, port: 81}\n  - address: 10.0.0.1\n    port: 82\n    real_servers:\n${rs}`;
    t.same(problems(vs('      - {address: 10.0.0.9, weight: -1}\n')), [
      '7: virtual_services[2].real_servers[0].weight: must be a whole number 0..65535, got -1',
    ]);
    t.match(problems('virtual_services:\n  - address: [\n'), [
      /^\d+: \(top level\)|: not valid YAML/,
    ]);
    t.same(
      problems(
        '{"virtual_services": [{"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.0.2", "fwd": "nat"}]}]}',
      ),
      ['1: virtual_services[0].real_servers[0].fwd: must be one of masq, route, tunnel, got "nat"'],
    );
    t.same(problems('daemon: {}\nvirtual_services: []\n', { WARDEN_RESYNC_INTERVAL: 'soon' }), [
      '1: daemon.resync_interval: must be a duration like 500ms, 2s, 5m or a number of seconds: value was "soon" (from WARDEN_RESYNC_INTERVAL)',
    ]);
    const c = parseConfig('daemon: {resync_interval: 30s}\nvirtual_services: []\n', 'x', {
      WARDEN_RESYNC_INTERVAL: '5',
      WARDEN_LOG_FORMAT: 'json',
    });
    t.equal(c.daemon.resyncIntervalMs, 5000, 'the environment wins over the file (convict order)');
    t.equal(c.daemon.logFormat, 'json');
    t.equal(problems('virtual_services: []\n').length, 0, 'an empty service list is valid');
    t.same(problems('daemon: {resync_interval: 0, check_concurrency: 0}\nvirtual_services: []\n'), [
      '1: daemon.resync_interval: must be at least 100ms, got 0',
      '1: daemon.check_concurrency: must be at least 1, got 0',
    ]);
    t.same(problems('daemon: {check_workers: 65}\nvirtual_services: []\n'), [
      '1: daemon.check_workers: must be 0..64 (0: probes on the main thread; about one a core is the most that helps), got 65',
    ]);
    t.same(problems('daemon: {check_workers: 64}\nvirtual_services: []\n'), [], '64 is taken');
    t.same(problems('daemon: {check_concurrency_min: 0}\nvirtual_services: []\n'), [
      '1: daemon.check_concurrency_min: must be at least 1, got 0',
    ]);
    t.equal(
      parseConfig('virtual_services: []\n', 'x', {}).daemon.checkConcurrencyMin,
      16,
      'default 16',
    );
    t.equal(
      parseConfig('daemon: {check_concurrency_min: 1000}\nvirtual_services: []\n', 'x', {}).daemon
        .checkConcurrencyMin,
      1000,
      'a floor above the cap is taken as written (a fixed cap): changing the cap alone changes nothing else',
    );
    t.equal(
      parseConfig('virtual_services: []\n', 'x', {}).daemon.checkInFlightMax,
      0,
      'check_in_flight_max: 0 by default (from the open-file limit)',
    );
    t.equal(
      parseConfig('daemon: {check_in_flight_max: 4096}\nvirtual_services: []\n', 'x', {}).daemon
        .checkInFlightMax,
      4096,
    );
    t.match(problems('daemon: {check_in_flight_max: -1}\nvirtual_services: []\n'), [
      /check_in_flight_max/,
    ]);
  },
);

t.test('inheritance: defaults, then the virtual service, then the real server', async (t) => {
  const c = parseConfig(
    `defaults: {weight: 5, rise: 4, interval: 3s, on_failure: quiesce}
virtual_services:
  - address: 10.0.0.1
    port: 80
    weight: 7
    fall: 9
    real_servers:
      - {address: 10.0.0.2}
      - {address: 10.0.0.3, weight: 0, rise: 1, port: 8080, checks: []}
`,
    'x',
    {},
  );
  const [vs] = c.virtualServices;
  const [a, b] = vs?.realServers ?? [];
  t.same(
    [a?.destination.weight, a?.policy.rise, a?.policy.fall, a?.timing.intervalMs],
    [7, 4, 9, 3000],
  );
  t.same(
    [b?.destination.weight, b?.policy.rise, b?.destination.key.port, b?.checks.length],
    [0, 1, 8080, 0],
  );
  t.same(
    a?.checks,
    [{ type: 'tcp', options: {} }],
    'a TCP service checks a TCP connect by default',
  );
  t.equal(vs?.onFailure, 'quiesce');
});

t.test("check-config's output is a config that reads back the same", async (t) => {
  const first = await loadConfigFile(example, {});
  const dir = mkdtempSync(join(tmpdir(), 'warden-cfg-'));
  const again = join(dir, 'effective.yaml');
  // With its secrets, as check-config --show-secrets prints it (test/config/redaction.test.ts
  // reads back one that has some).
  const shown = { showSecrets: true };
  writeFileSync(again, effectiveConfig(first, CATALOG, shown));
  const second = await loadConfigFile(again, {});
  t.equal(
    effectiveConfig(second, CATALOG, shown),
    effectiveConfig(first, CATALOG, shown),
    'the effective config is a fixed point',
  );
  t.same(
    second.virtualServices.map((v) => v.service),
    first.virtualServices.map((v) => v.service),
  );
  t.same(
    second.virtualServices.flatMap((v) =>
      v.realServers.map((r) => [r.destination, r.policy, r.timing]),
    ),
    first.virtualServices.flatMap((v) =>
      v.realServers.map((r) => [r.destination, r.policy, r.timing]),
    ),
  );
  // Every option of every check survives: the checkers built from both are the same checks.
  const execText = `virtual_services:
  - address: 192.0.2.9
    port: 80
    real_servers: [{address: 10.0.0.1}]
    checks: [{type: exec, command: [/bin/true], user: nobody, group: nogroup, env: {A: b}}]
`;
  const keys = (c: ReturnType<typeof parseConfig>): string[] =>
    c.virtualServices.flatMap((v) =>
      v.realServers.flatMap((r) => r.checks.map((x) => createChecker(x).key)),
    );
  for (const c of [first, parseConfig(execText, join(dir, 'exec.yaml'), {})]) {
    const text = effectiveConfig(c, CATALOG, shown);
    t.same(keys(parseConfig(text, join(dir, 'x.yaml'), {})), keys(c), 'the same checks');
  }
});

t.test('every daemon setting has a doc, a default and an environment variable', async (t) => {
  for (const k of daemonSchema()) {
    t.ok(k.doc.length > 10 && k.default !== undefined && /^WARDEN_[A-Z_]+$/.test(k.env), k.key);
  }
});

t.test(
  'check-config from the command line: exit 0 and the config, or 1 and the problems',
  async (t) => {
    const run = (...args: string[]): Promise<{ code: number; out: string; err: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [main, ...args], (error, out, err) =>
          resolve({ code: typeof error?.code === 'number' ? error.code : 0, out, err }),
        );
      });
    const ok = await run('check-config', '--config', example);
    t.equal(ok.code, 0);
    t.match(ok.out, /valid\n[^]*drain_timeout: 300s/);
    const dir = mkdtempSync(join(tmpdir(), 'warden-cfg-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'virtual_services:\n  - address: 10.0.0.300\n    port: 80\n');
    const no = await run('check-config', '--config', bad);
    t.equal(no.code, 1);
    t.equal(
      no.err,
      `${bad}: 1 problem:\n  ${bad}:2: virtual_services[0].address: must be an IPv4 or IPv6 address, got "10.0.0.300"\n`,
    );
    const missing = await run('check-config', '--config', join(dir, 'nope.yaml'));
    t.equal(missing.code, 1);
    t.match(missing.err, /nope\.yaml: \(top level\): cannot read: ENOENT/);
  },
);

t.test(
  'the README documents every key, and every daemon default as the schema has it',
  async (t) => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const k of daemonSchema()) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${k.key}\``)) ?? '';
      const shown = k.default === '' ? '""' : String(k.default);
      t.ok(
        row.includes(`\`${shown}\``) && row.includes(k.env),
        `daemon.${k.key}: default ${shown}, ${k.env}`,
      );
    }
    for (const key of new Set([
      ...SERVER_KEYS,
      ...SERVICE_KEYS,
      ...VS_KEYS,
      ...RS_KEYS,
      ...FALLBACK_KEYS,
    ])) {
      t.ok(readme.includes(`\`${key}\``), key);
    }
  },
);

t.test(
  'every daemon key is either applied on reload or reported as needing a restart',
  async (t) => {
    const keys = daemonSchema()
      .map((k) => k.key)
      .sort();
    const listed: string[] = [...RESTART_ONLY_KEYS, ...RELOADABLE_KEYS];
    t.same([...listed].sort(), keys, 'each schema key in exactly one list');
    t.equal(new Set(listed).size, listed.length, 'none in both');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const reload = /- \*\*Reload\*\*[^]*?\n- \*\*Stop/.exec(readme)?.[0] ?? '';
    for (const key of RESTART_ONLY_KEYS)
      t.match(reload, `\`${key}\``, `README: ${key} needs a restart`);
  },
);

t.test('daemon.metrics_labels must tell every real server apart', async (t) => {
  const twoPorts = `daemon:
  metrics_labels: remote_address
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    checks: []
    real_servers:
      - {address: 10.0.0.2, port: 80}
      - {name: web-alt, address: 10.0.0.2, port: 8080}
`;
  t.same(problems(twoPorts), [
    '2: daemon.metrics_labels: "remote_address" gives real servers 10.0.0.2:80 (virtual_services[0].real_servers[0]) and web-alt (virtual_services[0].real_servers[1]) of "web" one series (gauges would overwrite, counters add up): add remote_port',
  ]);
  t.same(problems(twoPorts.replace('remote_address', 'remote_address,remote_port')), []);
  t.same(
    problems(twoPorts.replace('metrics_labels: remote_address', 'metrics_per_server: false')),
    [],
    'no per-server series, nothing to collide',
  );
  t.same(
    problems(twoPorts.replace('  metrics_labels: remote_address\n', '  {}\n')),
    [],
    'default: all',
  );

  // One name for two virtual services: only the service address tells their servers apart.
  const oneName = `virtual_services:
  - {name: web, address: 10.0.0.1, port: 80, checks: [], real_servers: [{address: 10.0.0.2}]}
  - {name: web, address: 10.0.0.9, port: 80, checks: [], real_servers: [{address: 10.0.0.2}]}
`;
  t.same(problems(oneName, { WARDEN_METRICS_LABELS: 'remote_address,remote_port,proto' }), [
    '1: daemon.metrics_labels: "remote_address,remote_port,proto" gives real servers 10.0.0.2:80 (virtual_services[0].real_servers[0]) and 10.0.0.2:80 (virtual_services[1].real_servers[0]) of "web" one series (gauges would overwrite, counters add up): add local_address (from WARDEN_METRICS_LABELS)',
  ]);
});

t.test('a server without a port: ping and exec need none, a tcp check does', async (t) => {
  const yaml = (check: string): string => `virtual_services:
  - fwmark: 7
    real_servers:
      - {address: 10.0.1.1, checks: [${check}]}
`;
  t.doesNotThrow(() => parseConfig(yaml('{type: ping}'), '/tmp/x.yaml', {}));
  t.doesNotThrow(() => parseConfig(yaml('{type: exec, command: [/bin/true]}'), '/tmp/x.yaml', {}));
  t.throws(
    () => parseConfig(yaml('{type: tcp}'), '/tmp/x.yaml', {}),
    /checks\[0\]\.port: required: the real server has no port/,
  );
  t.doesNotThrow(() => parseConfig(yaml('{type: tcp, port: 22}'), '/tmp/x.yaml', {}));
});
