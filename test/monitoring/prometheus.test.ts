// Monitoring, tested for real: promtool checks and unit-tests the alert rules; systemd verifies
// the unit and rates its exposure (systemd-analyze security, held to a bound); then a real Prometheus (Debian's), started here on loopback, scrapes a running daemon
// whose services are set up to be down, in fallback, in panic, below quorum and failing an operation, and a
// refused reload. Every PromQL expression of the Grafana dashboard returns data, every rule
// evaluates without error, and the alerts this scenario should raise have data.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { freePort, listen, until, type Listening } from '../checks/servers.js';
import { run } from '../exec.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const rulesFile = join(root, 'deploy/prometheus/ipvs-warden.rules.yml');
const dashboardFile = join(root, 'deploy/grafana/ipvs-warden.json');

interface Rule {
  readonly alert: string;
  readonly expr: string;
}
const rules = (
  parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

interface Panel {
  readonly title: string;
  readonly targets: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
  panels: Panel[];
  templating: { list: { name: string; definition?: string }[] };
};

t.test('promtool: the rules are valid, and their unit tests pass', async (t) => {
  const check = await run('promtool', ['check', 'rules', rulesFile]);
  t.equal(check.code, 0, check.out);
  t.match(check.out, /SUCCESS: 12 rules found/);
  const unit = await run('promtool', [
    'test',
    'rules',
    join(root, 'test/monitoring/rules.test.yml'),
  ]);
  t.equal(unit.code, 0, unit.out);
  t.match(unit.out, /SUCCESS/);
});

/**
 * What `systemd-analyze verify` says about our unit, not about the machine's others: it also
 * reads every installed unit ours refers to and warns about those (ldirectord's KillMode=none
 * on a director migrating from it), which is not ours to judge.
 */
function ourLines(out: string): string[] {
  const otherUnit =
    /^(?:\S*\/)?([\w@.-]+\.(?:service|socket|target|mount|timer|path|slice|scope|swap|automount|device))(?::\d+)?: /;
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => {
      if (l === '') return false;
      const name = otherUnit.exec(l)?.[1];
      return name === undefined || name.startsWith('ipvs-warden');
    });
}

t.test(
  'systemd: the unit verifies, runs unprivileged with CAP_NET_ADMIN only, reloads and restarts',
  async (t) => {
    const unitText = readFileSync(join(root, 'deploy/systemd/ipvs-warden.service'), 'utf8');
    for (const line of [
      'User=ipvs-warden',
      'AmbientCapabilities=CAP_NET_ADMIN',
      'CapabilityBoundingSet=CAP_NET_ADMIN',
      'Restart=on-failure',
      // The verdict, not the effective config: that went to the journal on every start.
      'ExecStartPre=/usr/bin/ipvs-warden check-config --quiet --config /etc/ipvs-warden/ipvs-warden.yaml',
      'ExecReload=/usr/bin/ipvs-warden reload --config /etc/ipvs-warden/ipvs-warden.yaml --pid $MAINPID',
    ]) {
      t.ok(unitText.split('\n').includes(line), line);
    }
    // systemd-analyze wants the binary to exist: point the unit at a stand-in.
    const dir = mkdtempSync(join(tmpdir(), 'warden-unit-'));
    const bin = join(dir, 'ipvs-warden');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    const unit = join(dir, 'ipvs-warden.service');
    writeFileSync(unit, unitText.replaceAll('/usr/bin/ipvs-warden', bin));
    const verify = await run('systemd-analyze', ['verify', unit]);
    t.equal(verify.code, 0, verify.out);
    t.same(ourLines(verify.out), [], 'no warnings about our unit');
    // The filter must still see our own mistakes: the same unit with a deprecated setting.
    const bad = join(dir, 'ipvs-warden-bad.service');
    writeFileSync(
      bad,
      unitText
        .replaceAll('/usr/bin/ipvs-warden', bin)
        .replace('[Service]\n', '[Service]\nKillMode=none\n'),
    );
    const worse = await run('systemd-analyze', ['verify', bad]);
    t.match(ourLines(worse.out).join('\n'), /KillMode=none/, 'a warning about our unit is seen');
  },
);

/** The unit as installed, but pointing at a stand-in binary (systemd-analyze wants one). */
function standInUnit(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-unit-'));
  const bin = join(dir, 'ipvs-warden');
  writeFileSync(bin, '#!/bin/sh\n');
  chmodSync(bin, 0o755);
  const unit = join(dir, 'ipvs-warden.service');
  const text = readFileSync(join(root, 'deploy/systemd/ipvs-warden.service'), 'utf8');
  writeFileSync(unit, text.replaceAll('/usr/bin/ipvs-warden', bin));
  return unit;
}

/** The exposure systemd-analyze security gives the unit; the README says the same number. */
// 1.8 since capset came back from @privileged: exec checks cannot run without it (setpriv).
const MAX_EXPOSURE = 1.8;

t.test(`systemd-analyze security: the unit's exposure is at most ${MAX_EXPOSURE}`, async (t) => {
  const unit = standInUnit();
  const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unit]);
  t.equal(r.code, 0, r.code === 0 ? 'systemd-analyze security runs' : r.out);
  const exposure = /Overall exposure level for ipvs-warden\.service: (\d+\.\d+)/.exec(r.out)?.[1];
  t.ok(
    exposure !== undefined && Number(exposure) <= MAX_EXPOSURE,
    `exposure ${exposure ?? '(not found)'}, at most ${MAX_EXPOSURE}`,
  );
  // Each protection that costs the daemon nothing, named, so a removal says which.
  for (const setting of [
    'ProtectClock',
    'ProtectKernelLogs',
    'ProtectHostname',
    'RestrictSUIDSGID',
    'RestrictRealtime',
    'ProtectProc',
    'UMask',
  ]) {
    const line = r.out.split('\n').find((l) => l.includes(` ${setting}`));
    t.match(line ?? '', /^\S*✓/u, `${setting}: ${line?.trim() ?? 'not listed'}`);
  }
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  t.match(readme, `exposure of at most ${MAX_EXPOSURE}`, 'the README names the bound');
});

/** The exposure with the ping drop-in (deploy/systemd/ipvs-warden.service.d/ping.conf) beside it. */
const MAX_EXPOSURE_WITH_PING = 1.9;

t.test(
  `systemd: the ping drop-in verifies, adds only what iputils ping needs; exposure at most ${MAX_EXPOSURE_WITH_PING}`,
  async (t) => {
    const unit = standInUnit();
    const dropInDir = `${unit}.d`;
    mkdirSync(dropInDir);
    const dropIn = readFileSync(
      join(root, 'deploy/systemd/ipvs-warden.service.d/ping.conf'),
      'utf8',
    );
    writeFileSync(join(dropInDir, 'ping.conf'), dropIn);
    const settings = dropIn
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['));
    // Nothing ambient: the daemon never holds CAP_NET_RAW (ping.test.ts runs ping so).
    t.same(settings, ['CapabilityBoundingSet=CAP_NET_RAW', 'SystemCallFilter=setuid']);
    const verify = await run('systemd-analyze', ['verify', unit]);
    t.equal(verify.code, 0, verify.out);
    t.same(ourLines(verify.out), [], 'no warnings about our unit');
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unit]);
    const exposure = /Overall exposure level for ipvs-warden\.service: (\d+\.\d+)/.exec(r.out)?.[1];
    t.ok(
      exposure !== undefined && Number(exposure) <= MAX_EXPOSURE_WITH_PING,
      `exposure ${exposure ?? '(not found)'}, at most ${MAX_EXPOSURE_WITH_PING}`,
    );
    // The drop-in is read: capset is back, CAP_NET_RAW is in the bounding set.
    t.match(r.out, /✗ SystemCallFilter=~@privileged .*capset is allowed/u);
    t.match(r.out, /✗ CapabilityBoundingSet=~CAP_NET_\(BIND_SERVICE\|BROADCAST\|RAW\)/u);
  },
);

t.test(
  'a real Prometheus scrapes the daemon: every dashboard query and rule has data',
  async (t) => {
    const servers: Listening[] = [];
    // flappy's server answers 200 until its down count has been scraped, then 503: a transition
    // Prometheus sees happen, for the transitions panel (increase() > 0).
    let flappyUp = true;
    const http = async (healthy: boolean | (() => boolean)): Promise<number> => {
      const up = typeof healthy === 'boolean' ? () => healthy : healthy;
      const l = await listen(
        createServer((_q, res) => ((res.statusCode = up() ? 200 : 503), res.end())),
      );
      servers.push(l);
      return l.target.port;
    };
    const procs: ChildProcess[] = [];
    t.teardown(async () => {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.stop()));
    });
    const dir = mkdtempSync(join(tmpdir(), 'warden-prom-'));
    const wardenPort = await freePort();
    const promPort = await freePort();
    const rs = async (healthy: (boolean | (() => boolean))[]): Promise<string> =>
      (await Promise.all(healthy.map(http)))
        .map((port) => `{address: 127.0.0.1, port: ${port}}`)
        .join(', ');
    const configText = `daemon:
  backend: memory
  log_format: json
  listen: 127.0.0.1:${wardenPort}
defaults: {interval: 200ms, fast_interval: 100ms, timeout: 100ms, rise: 1, fall: 1, checks: [{type: http}]}
virtual_services:
  - {name: web, address: 192.0.2.1, port: 80, real_servers: [${await rs([true, false])}]}
  - {name: sorry, address: 192.0.2.2, port: 80, fallback: {address: 192.0.2.200, port: 8080}, real_servers: [${await rs([false])}]}
  - {name: panicky, address: 192.0.2.3, port: 80, panic_threshold: 0.6, real_servers: [${await rs([true, false, false])}]}
  - {name: broken, address: 192.0.2.4, port: 80, scheduler: mh, real_servers: [${await rs([true])}]}
  - {name: quorate, address: 192.0.2.5, port: 80, quorum: 3, real_servers: [${await rs([true, true, false])}]}
  - {name: flappy, address: 192.0.2.6, port: 80, real_servers: [${await rs([true, () => flappyUp])}]}
`;
    const config = join(dir, 'warden.yaml');
    writeFileSync(config, configText);
    // A kernel without ip_vs_mh: the "broken" service's add-service fails (ENOENT) for ever.
    const daemon = spawn(process.execPath, [main, 'run', '--config', config], {
      stdio: 'ignore',
      env: { ...process.env, WARDEN_MEMORY_SCHEDULERS: 'wlc,rr' },
    });
    procs.push(daemon);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [${rulesFile}]
scrape_configs:
  - job_name: ipvs-warden
    static_configs: [{targets: ['127.0.0.1:${wardenPort}'], labels: {}}]
`,
    );
    const prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    procs.push(prom);
    const api = `http://127.0.0.1:${promPort}/api/v1`;
    const query = async (expr: string): Promise<unknown[]> => {
      const res = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as {
        status: string;
        data?: { result: unknown[] };
        error?: string;
      };
      if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? body.status}`);
      return body.data?.result ?? [];
    };
    const has = async (expr: string): Promise<boolean> =>
      (await query(expr).catch(() => [])).length > 0;

    t.ok(
      await until(() => has('ipvs_warden_ready{job="ipvs-warden"} == 1'), 30_000),
      'scraped, and the daemon is ready',
    );
    // Turned down only once Prometheus holds flappy's down count at 0: a down before that
    // sample (a slow machine) would leave increase() nothing to see.
    t.ok(
      await until(
        () => has('ipvs_warden_server_transitions_total{service="flappy",to="down"} == 0'),
        30_000,
      ),
      "flappy's down count scraped at 0",
    );
    flappyUp = false;
    // A refused reload, for the reload alert.
    writeFileSync(
      config,
      configText.replace('port: 80, real_servers', 'port: 80, weight: -1, real_servers'),
    );
    daemon.kill('SIGHUP');
    t.ok(
      await until(() => has('ipvs_warden_config_reloads_total{result="failure"} > 0'), 15_000),
      'the refused reload is counted',
    );
    await new Promise((r) => setTimeout(r, 3000)); // enough samples for rate() and increase()

    const substitute = (expr: string): string =>
      expr
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$instance', '.*')
        .replaceAll('$service', '.*');
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const expr = substitute(target.expr);
        t.ok(await has(expr), `dashboard "${panel.title}": ${expr}`);
      }
    }
    for (const v of dashboard.templating.list) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.definition ?? '');
      if (!m) continue;
      t.ok(
        await has(`count by (${m[2]}) (${substitute(m[1] ?? '')})`),
        `dashboard variable $${v.name}`,
      );
    }

    // Every series a rule reads exists; the rules this scenario should trigger have data.
    for (const rule of rules) {
      for (const selector of rule.expr.match(/\b(?:ipvs_warden_[a-z_]+|up)(?:\{[^}]*\})?/g) ?? []) {
        t.ok(await has(selector), `${rule.alert} reads ${selector}`);
      }
    }
    const firing = [
      'IpvsWardenRealServerDown',
      'IpvsWardenServiceNoHealthyServers',
      'IpvsWardenServiceFallback',
      'IpvsWardenServicePanic',
      'IpvsWardenServiceQuorumLost',
      'IpvsWardenReconcileFailing',
      'IpvsWardenConfigReloadFailed',
    ];
    for (const rule of rules) {
      const data = await has(rule.expr);
      t.equal(
        data,
        firing.includes(rule.alert),
        `${rule.alert}: ${firing.includes(rule.alert) ? 'true here' : 'quiet here'}`,
      );
    }
    const loaded = (await (await fetch(`${api}/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const evaluated = loaded.data.groups.flatMap((g) => g.rules);
    t.equal(evaluated.length, rules.length);
    t.same(
      evaluated
        .filter((r) => r.health !== 'ok')
        .map((r) => `${r.name}: ${r.lastError ?? r.health}`),
      [],
      'every rule evaluates without error',
    );

    // The other endpoints, and `ipvs-warden status` over them.
    const base = `http://127.0.0.1:${wardenPort}`;
    t.equal((await fetch(`${base}/healthz`)).status, 200);
    t.equal((await fetch(`${base}/readyz`)).status, 200);
    t.equal((await fetch(`${base}/status`, { method: 'POST' })).status, 405, 'read-only');
    const status = await run(process.execPath, [main, 'status', '--url', base]);
    t.equal(status.code, 0, status.out);
    t.match(status.out, /^ipvs-warden ready/);
    t.match(status.out, /sorry {2}TCP 192\.0\.2\.2:80 {2}0\/1 healthy {2}\*\* FALLBACK \*\*/);
    t.match(status.out, /panicky {2}TCP 192\.0\.2\.3:80 {2}1\/3 healthy {2}\*\* PANIC \*\*/);
    t.match(
      status.out,
      /quorate {2}TCP 192\.0\.2\.5:80 {2}2\/3 healthy {2}\*\* NO QUORUM \(healthy weight 2\) \*\*/,
    );
    t.match(status.out, /config\.invalid|recent events:/);

    // Last, the daemon goes away: the not-scraped alert's expression has data.
    const notScraped = rules.find((r) => r.alert === 'IpvsWardenNotScraped');
    daemon.kill('SIGKILL');
    t.ok(
      notScraped && (await until(() => has(notScraped.expr), 15_000)),
      'IpvsWardenNotScraped: true once the daemon is gone',
    );
  },
);
