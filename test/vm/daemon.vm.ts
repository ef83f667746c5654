// The daemon end to end on the real kernel (in the VM, one boot, this one node process plus the
// daemon it starts): real servers in network namespaces behind a NAT VIP, `ipvs-warden run` with
// the netlink backend, and `ipvsadm -Ln` as the judge. Kill and return, quiesce vs remove vs
// drain, fallback, a hand edit repaired, SIGHUP applying only the difference, SIGTERM leaving the
// table, a restart adopting it with zero operations; the detection latency is measured. Then
// daemon.sync: the sync daemon started, repaired after ipvsadm --stop-daemon, stopped by cleanstop.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseIpvsadmList } from '../ipvs/ipvsadm.js';
import { sleep, until } from './wait.js';
import { sh } from './sh.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const work = '/tmp/warden-e2e';

// Timings of the test config: interval 1 s, fast 500 ms, timeout 1 s, rise 2, fall 2, jitter 0.1.
// A refused connection fails at once, so the bound does not depend on the timeout; a long one
// keeps a busy emulated VM from flapping a healthy server.
const INTERVAL = 1000;
const FAST = 500;
const FALL = 2;
const JITTER = 0.1;
/** The daemon's default: a tick may wait this long behind the previous one. */
const MIN_TICK = 250;
/**
 * The README's detection bound for a refused connection: the next check, then fall-1 fast ones,
 * then a tick that may wait behind the previous one.
 */
const DETECTION_BOUND = (INTERVAL + (FALL - 1) * FAST) * (1 + JITTER) + MIN_TICK;

interface RealServer {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  readonly dir: string;
  proc: ChildProcess | null;
}

function startHttpd(rs: RealServer): void {
  rs.proc = spawn(
    'ip',
    ['netns', 'exec', rs.ns, 'busybox', 'httpd', '-f', '-p', `${rs.address}:8080`, '-h', rs.dir],
    {
      stdio: 'ignore',
    },
  );
}
function stopHttpd(rs: RealServer): void {
  rs.proc?.kill('SIGKILL');
  rs.proc = null;
}
/** The health endpoint: present = 200, absent = 404 (the server itself keeps answering). */
function setHealthy(rs: RealServer, healthy: boolean): void {
  if (healthy) writeFileSync(join(rs.dir, 'healthz'), 'ok\n');
  else rmSync(join(rs.dir, 'healthz'), { force: true });
}

/** One namespace per real server, each on its own veth pair and /24 (the VM has no bridge). */
function netns(name: string, subnet: number): { address: string } {
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['link', 'add', `h${name}`, 'type', 'veth', 'peer', 'name', `n${name}`]);
  sh('ip', ['link', 'set', `n${name}`, 'netns', name]);
  sh('ip', ['addr', 'add', `10.0.${subnet}.254/24`, 'dev', `h${name}`]);
  sh('ip', ['link', 'set', `h${name}`, 'up']);
  const inNs = (...args: string[]): string => sh('ip', ['netns', 'exec', name, 'ip', ...args]);
  inNs('link', 'set', 'lo', 'up');
  inNs('addr', 'add', `10.0.${subnet}.2/24`, 'dev', `n${name}`);
  inNs('link', 'set', `n${name}`, 'up');
  inNs('route', 'add', 'default', 'via', `10.0.${subnet}.254`);
  return { address: `10.0.${subnet}.2` };
}

/** `ipvsadm -Ln` for one service: "address:port weight active" per real server. */
function ipvsadm(vip: string): string[] {
  const svc = parseIpvsadmList(sh('ipvsadm', ['-Ln'])).find((s) => s.service === `TCP ${vip}`);
  return (svc?.destinations ?? [])
    .map((d) => `${d.address} w=${d.columns[1]} a=${d.columns[2]}`)
    .sort();
}
const saved = (): string => sh('ipvsadm', ['-Sn']);

function get(path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '10.0.0.1', port: 80, path, agent: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

interface Event {
  readonly event: string;
  readonly [k: string]: unknown;
}

class Daemon {
  readonly events: Event[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(config: string, env: NodeJS.ProcessEnv = {}) {
    this.proc = spawn(process.execPath, [main, 'run', '--config', config], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    const lines = createInterface({ input: this.proc.stdout! });
    lines.on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as Event);
      } catch {
        this.events.push({ event: 'unparsed', line });
      }
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }
  /**
   * Until the first tick is done. Node itself takes 10 to 20 s to load the program in the
   * emulated VM, more when the host is busy: that is no part of what the lane measures, so it
   * gets its own generous wait and the timers under test start from here.
   */
  started(): Promise<boolean> {
    return this.until(() => this.named('daemon.started').length > 0, 180_000);
  }
  named(name: string): Event[] {
    return this.events.filter((e) => e.event === name);
  }
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (cond()) return true;
      await sleep(50);
    }
    return cond();
  }
}

function configText(o: { weight1?: number; resync?: string } = {}): string {
  const rs = (n: number, extra = ''): string =>
    `      - {name: rs${n}, address: 10.0.${n}.2, port: 8080${extra}}\n`;
  return `daemon:
  backend: netlink
  log_format: json
  resync_interval: ${o.resync ?? '2s'}
  min_tick_interval: ${MIN_TICK}ms
  pid_file: ${work}/warden.pid
defaults:
  interval: 1s
  fast_interval: 500ms
  down_interval: 1s
  timeout: 1s
  jitter: ${JITTER}
  rise: 2
  fall: ${FALL}
  checks: [{type: http, path: /healthz}]
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    scheduler: rr
    on_failure: remove
    drain_timeout: 60s
    slow_start: 3s
    fallback: {address: 10.0.9.2, port: 8080}
    real_servers:
${rs(1, `, weight: ${o.weight1 ?? 100}`)}${rs(2, ', weight: 100')}${rs(3, ', weight: 100')}
  - name: quiet
    address: 10.0.0.3
    port: 80
    scheduler: rr
    on_failure: quiesce
    real_servers:
${rs(1)}${rs(2)}${rs(3)}`;
}

// One VM boot, many steps: the emulated kernel is slow, so the whole story gets ten minutes.
t.setTimeout(900_000);
t.test('the daemon on the real kernel', { timeout: 900_000 }, async (t) => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const servers: RealServer[] = [];
  const daemons: Daemon[] = [];
  t.teardown(() => {
    // On a failure, what each daemon said (check results aside) is the first thing to read.
    if (!t.passing())
      for (const d of daemons)
        for (const e of d.events.filter((x) => x.event !== 'check.result').slice(-40))
          t.comment(JSON.stringify(e).slice(0, 400));
    for (const d of daemons) d.proc.kill('SIGKILL');
    for (const s of servers) stopHttpd(s);
    sh('ipvsadm', ['-C']);
  });
  for (const [i, name] of [
    [1, 'rs1'],
    [2, 'rs2'],
    [3, 'rs3'],
    [9, 'sorry'],
  ] as const) {
    const { address } = netns(name, i);
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'index.html'), `${name}\n`);
    const rs: RealServer = { name, ns: name, address, dir, proc: null };
    setHealthy(rs, true);
    startHttpd(rs);
    servers.push(rs);
  }
  const [rs1, rs2, rs3] = servers as [RealServer, RealServer, RealServer];
  // The VIP's subnet rides on rs1's link, as on a one-armed director; the VIP itself is not local.
  sh('ip', ['addr', 'add', '10.0.0.254/24', 'dev', 'hrs1']);
  // A service nobody configured: must be left alone.
  sh('ipvsadm', ['-A', '-t', '10.0.0.7:22', '-s', 'wlc']);
  const config = join(work, 'warden.yaml');
  writeFileSync(config, configText());

  let d = new Daemon(config);
  daemons.push(d);
  t.ok(await d.started(), 'the daemon started');
  const all = ['10.0.1.2:8080 w=100 a=0', '10.0.2.2:8080 w=100 a=0', '10.0.3.2:8080 w=100 a=0'];
  t.ok(
    await until(() => ipvsadm('10.0.0.1:80').join() === all.join(), 30_000),
    'all three in after rise',
  );
  await d.until(() => d.named('table.unowned').length > 0, 5000); // log lines trail the kernel
  t.match(d.named('table.unowned'), [{ services: ['TCP 10.0.0.7:22'] }]);
  const bodies = new Set<string>();
  for (let i = 0; i < 6; i++) bodies.add((await get()).trim());
  t.same([...bodies].sort(), ['rs1', 'rs2', 'rs3'], 'requests through the VIP reach all three');

  await t.test(
    'kill one: it leaves within the detection time, requests keep succeeding',
    async (t) => {
      stopHttpd(rs2);
      const killed = Date.now();
      // Out of the pool: at weight 0 (no new connection goes to it) or gone. The tick for a
      // transition plans against the table as last read, so it sets weight 0, and the next read
      // deletes it once it counts no active connection.
      t.ok(
        await until(
          () =>
            !ipvsadm('10.0.0.1:80').some((l) => l.startsWith('10.0.2.2') && !l.includes(' w=0 ')),
          15_000,
          20,
        ),
      );
      const latency = Date.now() - killed;
      t.comment(
        `detection latency kill -> table: ${latency} ms (bound ${Math.round(DETECTION_BOUND)} ms + tick)`,
      );
      t.ok(
        latency <= DETECTION_BOUND + 1500,
        `${latency} ms within the bound plus 1.5 s for the tick itself in the emulated VM`,
      );
      t.ok(
        await until(() => !ipvsadm('10.0.0.1:80').some((l) => l.startsWith('10.0.2.2')), 5000),
        'then deleted: the next read counts no active connection',
      );
      await d.until(() => d.named('server.down').length > 0, 5000); // log lines trail the kernel
      t.match(d.named('server.down'), [{ server: 'rs2', message: /refused/ }]);
      let ok = 0;
      for (let i = 0; i < 10; i++) if ((await get().catch(() => '')).trim() !== '') ok++;
      t.equal(ok, 10, 'every request after the removal succeeds');
      t.match(
        ipvsadm('10.0.0.3:80'),
        ['10.0.1.2:8080 w=1 a=0', '10.0.2.2:8080 w=0 a=0', '10.0.3.2:8080 w=1 a=0'],
        'the quiesce service keeps it at weight 0',
      );
    },
  );

  await t.test('bring it back: in again after rise, ramping up with slow start', async (t) => {
    startHttpd(rs2);
    const weights = new Set<number>();
    await until(
      () => {
        const line = ipvsadm('10.0.0.1:80').find((l) => l.startsWith('10.0.2.2'));
        if (line) weights.add(Number(/w=(\d+)/.exec(line)?.[1]));
        return weights.has(100);
      },
      20_000,
      50,
    );
    const seen = [...weights].sort((a, b) => a - b);
    t.ok(
      seen.length >= 2 && (seen[0] ?? 100) < 100 && seen.at(-1) === 100,
      `weights on the way up: ${seen.join(' ')}`,
    );
    t.ok(
      await until(() => ipvsadm('10.0.0.3:80').includes('10.0.2.2:8080 w=1 a=0'), 5000),
      'quiesced one back at its weight',
    );
  });

  await t.test(
    'drain: a failing server with an open connection stays at weight 0 until it closes',
    async (t) => {
      // An open connection through the VIP to some server; that server then fails its check.
      const held: Socket = await new Promise((resolve, reject) => {
        const s = connect(80, '10.0.0.1', () => resolve(s));
        s.on('error', reject);
      });
      await sleep(300);
      const line = ipvsadm('10.0.0.1:80').find((l) => l.endsWith('a=1'));
      t.ok(line, 'the open connection is active');
      const target = servers.find((s) => line?.startsWith(s.address));
      if (!target) return;
      setHealthy(target, false);
      t.ok(
        await until(
          () => ipvsadm('10.0.0.1:80').includes(`${target.address}:8080 w=0 a=1`),
          10_000,
        ),
        'weight 0, connection still active',
      );
      // The daemon logs an operation after the kernel took it: wait for the line, too.
      t.ok(
        await d.until(
          () =>
            d
              .named('reconcile.applied')
              .some((e) => e.service === 'web' && /^server down: draining/.test(String(e.reason))),
          5000,
        ),
        'logged as a drain, with its reason',
      );
      held.destroy();
      t.ok(
        await until(
          () => !ipvsadm('10.0.0.1:80').some((l) => l.startsWith(target.address)),
          10_000,
        ),
        'deleted once it closed',
      );
      t.ok(
        ipvsadm('10.0.0.3:80').includes(`${target.address}:8080 w=0 a=0`),
        'the quiesce service keeps it at weight 0',
      );
      setHealthy(target, true);
      t.ok(
        await until(
          () =>
            ipvsadm('10.0.0.1:80').length === 3 &&
            ipvsadm('10.0.0.1:80').every((l) => l.includes('w=100')),
          15_000,
        ),
      );
    },
  );

  await t.test('all down: the fallback comes in; the first recovery takes it out', async (t) => {
    for (const s of [rs1, rs2, rs3]) setHealthy(s, false);
    t.ok(
      await until(() => ipvsadm('10.0.0.1:80').join() === '10.0.9.2:8080 w=1 a=0', 15_000),
      'only the sorry server',
    );
    t.equal((await get()).trim(), 'sorry');
    await d.until(() => d.named('service.fallback_on').length > 0, 5000); // log lines trail the kernel
    t.match(d.named('service.fallback_on'), [{ service: 'web' }]);
    setHealthy(rs1, true);
    t.ok(
      await until(() => ipvsadm('10.0.0.1:80').join().startsWith('10.0.1.2:8080'), 15_000),
      'rs1 in, fallback out',
    );
    t.notOk(
      ipvsadm('10.0.0.1:80').some((l) => l.startsWith('10.0.9.2') && !l.includes(' w=0 ')),
      'the fallback takes no new connection',
    );
    t.ok(
      await until(() => !ipvsadm('10.0.0.1:80').some((l) => l.startsWith('10.0.9.2')), 5000),
      'and is deleted once a read counts no active connection',
    );
    setHealthy(rs2, true);
    t.ok(await until(() => ipvsadm('10.0.0.1:80').length === 2, 15_000));
  });

  await t.test(
    'a hand edit with ipvsadm is repaired at the next resync, and counted',
    async (t) => {
      t.ok(
        await until(() => ipvsadm('10.0.0.1:80').every((l) => l.includes('w=100')), 10_000),
        'the precondition: every server at full weight',
      );
      const driftsBefore = d.named('drift.detected').length;
      sh('ipvsadm', ['-e', '-t', '10.0.0.1:80', '-r', '10.0.1.2:8080', '-m', '-w', '7']);
      sh('ipvsadm', ['-a', '-t', '10.0.0.1:80', '-r', '10.0.3.2:8080', '-m', '-w', '5']);
      t.ok(
        await until(
          () => ipvsadm('10.0.0.1:80').join() === '10.0.1.2:8080 w=100 a=0,10.0.2.2:8080 w=100 a=0',
          10_000,
        ),
        'repaired',
      );
      // The two edits are two ipvsadm runs: a resync read may fall between them, so the drift
      // comes as one event or two. Both changes must be reported, in that order.
      const changes = (): string[] =>
        d
          .named('drift.detected')
          .slice(driftsBefore)
          .flatMap((e) => (e.changes as string[] | undefined) ?? []);
      await d.until(() => changes().length >= 2, 5000); // log lines trail the kernel
      t.match(changes(), [
        /10\.0\.1\.2:8080 was changed: weight 100 -> 7/,
        /10\.0\.3\.2:8080 was added/,
      ]);
    },
  );

  await t.test('SIGHUP applies only the difference; the failed server stays out', async (t) => {
    await sleep(1000); // the repair's log lines arrive after the kernel shows it
    const before = d.named('reconcile.applied').length;
    writeFileSync(config, configText({ weight1: 50 }));
    d.proc.kill('SIGHUP');
    t.ok(await until(() => ipvsadm('10.0.0.1:80').includes('10.0.1.2:8080 w=50 a=0'), 10_000));
    await sleep(1500);
    t.same(
      d
        .named('reconcile.applied')
        .slice(before)
        .map((e) => `${String(e.op)} ${String(e.target)}`),
      ['update-destination TCP 10.0.0.1:80 -> 10.0.1.2:8080'],
    );
    t.notOk(
      ipvsadm('10.0.0.1:80').some((l) => l.startsWith('10.0.3.2')),
      'rs3 (failing) did not pop back in',
    );
    writeFileSync(
      config,
      'virtual_services: [{address: 10.0.0.1, port: 80, real_servers: [{address: 10.0.1.2, weight: -1}]}]\n',
    );
    d.proc.kill('SIGHUP');
    t.ok(await d.until(() => d.named('config.invalid').length === 1, 10_000));
    await d.until(() => d.named('config.invalid').length > 0, 5000); // log lines trail the kernel
    t.match(d.named('config.invalid')[0], {
      problems: [/real_servers\[0\]\.weight: must be a whole number 0\.\.65535, got -1/],
    });
    writeFileSync(config, configText({ weight1: 50 }));
  });

  const table = saved();
  await t.test('SIGTERM leaves the table as it is', async (t) => {
    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0);
    t.equal(saved(), table);
    await d.until(() => d.named('daemon.stopped').length > 0, 5000); // log lines trail the kernel
    t.match(d.named('daemon.stopped'), [{}]);
  });

  await t.test('a restart adopts the table with zero operations', async (t) => {
    // Debug logs show every check result and tick: the precondition is seen, not slept for.
    d = new Daemon(config, { WARDEN_LOG_LEVEL: 'debug' });
    daemons.push(d);
    t.ok(await d.started(), 'the daemon started');
    const results = (target: string): number =>
      d.named('check.result').filter((e) => e.target === target).length;
    t.ok(
      await d.until(
        () =>
          ['10.0.1.2:8080', '10.0.2.2:8080', '10.0.3.2:8080'].every(
            (x) => results(x) >= FALL + 1,
          ) && d.named('reconcile.tick').length >= 3,
        30_000,
      ),
      'every server checked past fall, and resync ticks after the first',
    );
    t.same(d.named('reconcile.applied'), [], 'no operation');
    t.equal(saved(), table, 'the table is unchanged');
    await d.until(() => d.named('table.adopted').length > 0, 5000); // log lines trail the kernel
    t.match(d.named('table.adopted'), [{ services: 2 }]);
    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0);
  });
});

t.test(
  'the connection-sync daemon from daemon.sync: started, repaired, stopped by cleanstop',
  async (t) => {
    const dir = join(work, 'sync');
    mkdirSync(dir, { recursive: true });
    sh('ip', ['link', 'add', 'wsyncE', 'type', 'dummy']);
    sh('ip', ['link', 'set', 'wsyncE', 'up']);
    const daemons = (): string[] =>
      sh('ipvsadm', ['--list', '--daemon'])
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    const config = join(dir, 'warden.yaml');
    writeFileSync(
      config,
      `daemon:
  backend: netlink
  log_format: json
  resync_interval: 1s
  cleanstop: true
  listen: 127.0.0.1:9479
  sync:
    state: master
    interface: wsyncE
    sync_id: 4
    group: 239.0.0.81
virtual_services: []
`,
    );
    const d = new Daemon(config);
    t.teardown(() => {
      d.proc.kill('SIGKILL');
      for (const state of ['master', 'backup']) {
        try {
          sh('ipvsadm', ['--stop-daemon', state]);
        } catch {
          // not running
        }
      }
    });
    t.ok(await d.started(), 'the daemon started');
    const want =
      'master sync daemon (mcast=wsyncE, syncid=4, maxlen=1472, group=239.0.0.81, port=8848, ttl=1)';
    t.ok(
      await until(() => daemons().join() === want, 30_000),
      'ipvsadm lists the master it started',
    );
    await d.until(() => d.named('reconcile.applied').length > 0, 5000);
    t.match(d.named('reconcile.applied'), [{ op: 'start-sync-daemon', reason: 'not running' }]);

    sh('ipvsadm', ['--stop-daemon', 'master']);
    t.ok(await until(() => daemons().join() === want, 15_000), 'stopped by hand, started again');
    await d.until(() => d.named('drift.detected').length > 0, 5000);
    t.match(d.named('drift.detected'), [
      { changes: [{ sync_daemon: 'master', change: 'stopped' }] },
    ]);

    const fetchText = (path: string): Promise<string> =>
      new Promise((resolve, reject) => {
        request({ host: '127.0.0.1', port: 9479, path, agent: false, timeout: 5000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
        })
          .on('error', reject)
          .end();
      });
    const status = JSON.parse(await fetchText('/status')) as { sync: unknown };
    t.match(status.sync, {
      wanted: 'master',
      running: [{ state: 'master', interface: 'wsyncE', syncId: 4, group: '239.0.0.81' }],
    });
    t.match(
      await fetchText('/metrics'),
      /ipvs_warden_sync_daemon_running\{state="master"\} 1\n/,
      'the metric says it runs',
    );

    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0);
    t.same(daemons(), [], 'cleanstop stopped it');
  },
);
