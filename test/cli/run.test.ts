// `ipvs-warden run` as a process: the embedded demo (what `npm start` runs), a config on the
// memory backend reloaded with `ipvs-warden reload` (SIGHUP via the pid file), an invalid reload
// that leaves the running config in force, a bad config at start (exit 1, nothing started), and
// SIGTERM ending the process with status 0.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { inFlightMax, openFilesLimit } from '../../src/health/admission.js';
import { freePort, listen, until } from '../checks/servers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

interface Running {
  readonly proc: ChildProcess;
  readonly events: Record<string, unknown>[];
  readonly text: string[];
  readonly exited: Promise<number | null>;
}

function start(args: string[]): Running {
  const proc = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  const text: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    text.push(line);
    if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
  });
  proc.stderr.on('data', (c: Buffer) => text.push(c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return { proc, events, text, exited };
}
const named = (r: Running, event: string): Record<string, unknown>[] =>
  r.events.filter((e) => e.event === event);

function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], (error, out, err) =>
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, out, err }),
    );
  });
}

t.test(
  'the embedded demo: a server goes down and comes back, the table changes, Ctrl-C stops',
  async (t) => {
    const r = start(['run', '--demo']);
    t.teardown(() => r.proc.kill('SIGKILL'));
    t.ok(await until(() => named(r, 'server.down').length > 0, 15_000), 'web2 goes down');
    t.match(named(r, 'server.down')[0], { server: 'web2', message: /status 503/ });
    t.ok(
      await until(() => named(r, 'server.up').some((e) => e.from === 'down'), 15_000),
      'and comes back',
    );
    t.ok(
      named(r, 'reconcile.applied').some((e) => e.op === 'delete-destination'),
      'its removal was applied',
    );
    t.ok(
      r.text.some((l) => /^TCP {2}192\.0\.2\.10:80 wlc/.test(l)),
      'the table is shown',
    );
    t.match(named(r, 'table.unowned'), [{ services: ['UDP [2001:db8::53]:53'] }]);
    r.proc.kill('SIGINT');
    t.equal(await r.exited, 0);
    t.match(named(r, 'daemon.stopped'), [{}]);
  },
);

t.test(
  'a config on the memory backend: reload via the pid file, an invalid reload, SIGTERM',
  async (t) => {
    const srv = await listen(createServer((_q, res) => res.end('ok')));
    t.teardown(() => srv.stop());
    const dir = mkdtempSync(join(tmpdir(), 'warden-run-'));
    const config = join(dir, 'warden.yaml');
    const pidFile = join(dir, 'warden.pid');
    const text = (
      weight: number | string,
      daemon = `pid_file: ${pidFile}`,
      more = '',
    ): string => `daemon:
  backend: memory
  log_format: json
  metrics_labels: remote_address
  ${daemon}
defaults: {interval: 200ms, fast_interval: 100ms, timeout: 100ms, rise: 1}
virtual_services:
  - address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    real_servers: [{address: 127.0.0.1, port: ${srv.target.port}, weight: ${weight}}${more}]
`;
    writeFileSync(config, text(3));
    const r = start(['run', '--config', config]);
    t.teardown(() => r.proc.kill('SIGKILL'));
    t.ok(
      await until(() => named(r, 'reconcile.applied').length === 2, 10_000),
      'service and server added',
    );
    t.ok(existsSync(pidFile), 'pid file written');

    writeFileSync(config, text(5));
    const reload = await cli('reload', '--config', config);
    t.equal(reload.code, 0);
    t.match(reload.out, /asked process \d+ to reload/);
    t.ok(await until(() => named(r, 'reconcile.applied').length === 3, 10_000));
    t.match(named(r, 'reconcile.applied')[2], { op: 'update-destination', weight: 5 });

    writeFileSync(config, text('heavy'));
    const refused = await cli('reload', '--config', config);
    t.equal(refused.code, 1, 'reload validates first and does not signal');
    t.match(refused.err, /weight: must be a whole number 0\.\.65535, got "heavy"/);
    r.proc.kill('SIGHUP');
    t.ok(
      await until(() => named(r, 'config.invalid').length === 1, 10_000),
      'a SIGHUP with a bad file is refused',
    );
    t.match(named(r, 'config.invalid')[0], { note: 'the running config stays in force' });

    // Keys read only at start: each change is reported, and the pid file is the one written.
    const otherPid = join(dir, 'other.pid');
    writeFileSync(config, text(5, `pid_file: ${otherPid}\n  check_concurrency: 10`));
    r.proc.kill('SIGHUP');
    t.ok(await until(() => named(r, 'config.restart_needed').length === 2, 10_000));
    t.same(
      named(r, 'config.restart_needed')
        .map((e) => e.key)
        .sort(),
      ['daemon.check_concurrency', 'daemon.pid_file'],
    );
    t.ok(await until(() => named(r, 'config.reloaded').length === 2, 10_000), 'reloaded');

    // The running metrics labels (remote_address) stay until a restart: a second port of the
    // same address would share its series, even if the file now names remote_port too.
    writeFileSync(
      config,
      text(
        5,
        `pid_file: ${otherPid}\n  metrics_labels: remote_address,remote_port`,
        ', {address: 127.0.0.1, port: 1}',
      ).replace('  metrics_labels: remote_address\n', ''),
    );
    r.proc.kill('SIGHUP');
    t.ok(await until(() => named(r, 'config.invalid').length === 2, 10_000), 'refused');
    t.match(named(r, 'config.invalid')[1], {
      problems: [
        /daemon\.metrics_labels \(in force until a restart\): "remote_address" gives real servers/,
      ],
    });

    r.proc.kill('SIGTERM');
    t.equal(await r.exited, 0);
    t.notOk(existsSync(pidFile), 'the pid file written at start is removed');
    t.notOk(existsSync(otherPid), 'the one named on reload was never written');
  },
);

t.test('check_workers: the probes run on worker threads; down, up, and a clean stop', async (t) => {
  let status = 200;
  const srv = await listen(createServer((_q, res) => ((res.statusCode = status), res.end())));
  t.teardown(() => srv.stop());
  const dir = mkdtempSync(join(tmpdir(), 'warden-run-'));
  const config = join(dir, 'warden.yaml');
  const port = await freePort();
  writeFileSync(
    config,
    `daemon: {backend: memory, log_format: json, check_workers: 2, listen: "127.0.0.1:${port}"}
defaults: {interval: 1s, fast_interval: 200ms, timeout: 1s, rise: 1, fall: 2}
virtual_services:
  - address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    real_servers: [{address: 127.0.0.1, port: ${srv.target.port}}]
`,
  );
  const r = start(['run', '--config', config]);
  t.teardown(() => r.proc.kill('SIGKILL'));
  t.ok(await until(() => named(r, 'server.up').length === 1, 15_000), 'up');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^ipvs_warden_check_workers_running 2$/m);
  const handed = [
    ...metrics.matchAll(/^ipvs_warden_check_worker_checks_total\{worker="\d"\} (\d+)$/gm),
  ];
  t.equal(handed.length, 2, 'a series per worker');
  t.ok(handed.reduce((n, m) => n + Number(m[1]), 0) > 0, 'the checks went to the workers');
  t.match(metrics, /^ipvs_warden_check_worker_restarts_total 0$/m);
  // With workers the cap is check_concurrency (256) for each, and fixed: however busy the machine.
  t.match(metrics, /^ipvs_warden_check_concurrency_limit 512$/m, 'the check cap: 256 a worker');
  t.match(metrics, /^ipvs_warden_checks_waiting \d+$/m);
  status = 503;
  t.ok(await until(() => named(r, 'server.down').length === 1, 15_000), 'down');
  t.match(named(r, 'server.down')[0], { message: /status 503/ });
  status = 200;
  t.ok(await until(() => named(r, 'server.up').length === 2, 15_000), 'up again');
  r.proc.kill('SIGTERM');
  t.equal(await r.exited, 0, 'the workers do not hold the process');
  t.match(named(r, 'daemon.stopped'), [{}]);
  t.same(named(r, 'check_worker.exited'), []);
});

for (const workers of [0, 1])
  t.test(
    `servers that answer slowly do not hold back the others at the full cap (check_workers: ${workers})`,
    async (t) => {
      // Six servers answering in 1.5 s and one at once, under a fixed cap of one check at a time.
      // Holding the slot for their whole answer, the slow ones let through 0.67 checks a second of
      // the 1.7 due, and the quick server waited behind them, checked about once in 9 s; giving it
      // back after 50 ms, the quick one is checked every 0.5 s (its interval, jitter 10 %).
      let quick = 0;
      const fast = await listen(createServer((_q, res) => (quick++, res.end())));
      const slow = await Promise.all(
        Array.from({ length: 6 }, () =>
          listen(createServer((_q, res) => void setTimeout(() => res.end(), 1500))),
        ),
      );
      t.teardown(() => Promise.all([fast, ...slow].map((s) => s.stop())));
      const dir = mkdtempSync(join(tmpdir(), 'warden-run-'));
      const config = join(dir, 'warden.yaml');
      const port = await freePort();
      writeFileSync(
        config,
        `daemon: {backend: memory, log_format: json, check_concurrency: 1, check_concurrency_min: 1, check_workers: ${workers}, listen: "127.0.0.1:${port}"}
defaults: {interval: 2s, timeout: 2s, rise: 1, fall: 1}
virtual_services:
  - address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    real_servers:
      - {address: 127.0.0.1, port: ${fast.target.port}, interval: 500ms, timeout: 500ms}
${slow.map((s) => `      - {address: 127.0.0.1, port: ${s.target.port}}`).join('\n')}
`,
      );
      const r = start(['run', '--config', config]);
      t.teardown(() => r.proc.kill('SIGKILL'));
      t.ok(await until(() => named(r, 'server.up').length === 7, 15_000), 'all up');
      // The bound on checks in flight: half the open files (node raises the soft limit to the hard
      // one, as this process's own already is).
      const soft = openFilesLimit(readFileSync('/proc/self/limits', 'utf8')) ?? 0;
      t.match(named(r, 'daemon.starting'), [{ checks_in_flight_max: inFlightMax(1, soft) }]);
      const before = quick;
      // Each slow server's check is in flight 1.5 s of its 3.5 s round: 2.6 of them on average,
      // where the cap alone would allow 1. The most seen over the window, read every 250 ms.
      let most = 0;
      for (const end = Date.now() + 3000; Date.now() < end;) {
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        most = Math.max(most, Number(/^ipvs_warden_checks_in_flight (\d+)$/m.exec(metrics)?.[1]));
        await new Promise((res) => setTimeout(res, 250));
      }
      t.ok(most >= 2 && most <= 7, `checks in flight beyond the cap of 1, at most: ${most}`);
      // Due every 0.55 s at most: 5 in 3 s. At least 3 leaves a busy machine its margin; holding
      // the slot allows 1.
      t.ok(quick - before >= 3, `the quick server checked ${quick - before} times in 3 s`);
      r.proc.kill('SIGTERM');
      t.equal(await r.exited, 0);
    },
  );

t.test('/status shows a change to the table as soon as the daemon has logged it', async (t) => {
  let status = 200;
  const down = await listen(createServer((_q, res) => ((res.statusCode = status), res.end())));
  const steady = await listen(createServer((_q, res) => res.end()));
  t.teardown(() => Promise.all([down.stop(), steady.stop()]));
  const dir = mkdtempSync(join(tmpdir(), 'warden-run-'));
  const config = join(dir, 'warden.yaml');
  const port = await freePort();
  writeFileSync(
    config,
    `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:${port}"}
defaults: {interval: 300ms, timeout: 300ms, rise: 1, fall: 1}
virtual_services:
  - address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    real_servers:
      - {name: down, address: 127.0.0.1, port: ${down.target.port}}
      - {name: steady, address: 127.0.0.1, port: ${steady.target.port}}
`,
  );
  const r = start(['run', '--config', config]);
  t.teardown(() => r.proc.kill('SIGKILL'));
  t.ok(await until(() => named(r, 'server.up').length === 2, 15_000), 'both up');
  type Doc = { services: { real_servers: { name: string; kernel_weight: number | null }[] }[] };
  const weightOf = async (): Promise<number | null | undefined> => {
    const doc = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as Doc;
    return doc.services[0]?.real_servers.find((s) => s.name === 'down')?.kernel_weight;
  };
  t.ok(await until(async () => (await weightOf()) === 1, 15_000), 'in the table');
  // A reader polling all along keeps the shared read fresh: the case where it could be stale.
  let polling = true;
  const poller = (async (): Promise<void> => {
    while (polling) await weightOf();
  })();
  status = 503;
  const removed = (): boolean =>
    named(r, 'reconcile.applied').some((e) => e.op === 'delete-destination');
  t.ok(await until(removed, 15_000), 'the removal is logged');
  polling = false;
  await poller;
  t.equal(await weightOf(), null, 'the next read of /status no longer has it');
});

t.test('a bad config at start: exit 1, every problem, nothing started', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-run-'));
  const config = join(dir, 'bad.yaml');
  writeFileSync(
    config,
    'daemon: {backend: memory}\nvirtual_services:\n  - {address: 192.0.2.1, port: 80, scheduler: "round robin"}\n',
  );
  const r = await cli('run', '--config', config);
  t.equal(r.code, 1);
  t.match(
    r.err,
    /the config is not valid, nothing was changed\n.*bad\.yaml: 1 problem:\n.*bad\.yaml:3: virtual_services\[0\]\.scheduler: scheduler module ip_vs_round robin not found: the kernel refuses it \(ENOENT\); use one of rr, wrr/,
  );
  const usage = await cli('run');
  t.equal(usage.code, 2);
  t.match(usage.err, /run needs --config FILE/);
});
