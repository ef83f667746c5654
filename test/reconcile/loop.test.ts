// The loop against the in-memory table (as strict as the kernel) and real HTTP servers on
// 127.0.0.1: failure and recovery, adoption without a flap, drift repair, reload with health
// carried over, an invalid kernel operation retried without stopping the rest, cleanstop,
// dry-run and maintenance flag files. The same behaviour on the real kernel: test/vm/daemon.vm.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { Config } from '../../src/config/model.js';
import { systemClock, type Timer } from '../../src/clock.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { destinationSpec } from '../../src/ipvs/spec.js';
import type { TableEntry } from '../../src/ipvs/model.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { flippableHttp, listen, until, type Flippable } from '../checks/servers.js';

const FAST = `defaults:
  interval: 100ms
  fast_interval: 100ms
  down_interval: 100ms
  timeout: 100ms
  jitter: 0
  rise: 2
  fall: 2
`;

function config(
  servers: Flippable[],
  extra: { daemon?: string; service?: string; weights?: number[] } = {},
): Config {
  const rs = servers
    .map(
      (s, i) =>
        `      - {name: s${i + 1}, address: 127.0.0.1, port: ${s.target.port}, weight: ${extra.weights?.[i] ?? 10}}\n`,
    )
    .join('');
  const daemon = new Map([
    ['resync_interval', '1s'],
    ['retry_min', '100ms'],
  ]);
  for (const line of (extra.daemon ?? '').split('\n')) {
    const m = /^\s*(\w+): (.*)$/.exec(line);
    if (m) daemon.set(m[1]!, m[2]!);
  }
  const d = [...daemon].map(([k, v]) => `  ${k}: ${v}\n`).join('');
  return parseConfig(
    `daemon:\n${d}${FAST}virtual_services:\n  - name: web\n    address: 192.0.2.1\n    port: 80\n    checks: [{type: http}]\n${extra.service ?? ''}    real_servers:\n${rs}`,
    'test',
    {},
  );
}

/** "10.0.0.1:80=10" per destination of the first service. */
async function weights(b: MemoryBackend): Promise<string[]> {
  const [e] = await b.table();
  return (e?.destinations ?? []).map((d) => `${d.key.port}=${d.weight}`);
}
const w = (s: Flippable, weight: number): string => `${s.target.port}=${weight}`;

async function setup(
  t: Test,
  n: number,
  extra: Parameters<typeof config>[1] = {},
  backend = new MemoryBackend(),
) {
  const servers = await Promise.all(Array.from({ length: n }, () => flippableHttp()));
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const log = new MemoryLog();
  const loop = new ReconcileLoop(config(servers, extra), { backend, log });
  t.teardown(() => loop.stop());
  return { servers, log, loop, backend };
}

t.test(
  'a failed server leaves, a recovered one comes back; every operation has its reason',
  async (t) => {
    const { servers, log, loop, backend } = await setup(t, 3);
    const [a, b, c] = servers as [Flippable, Flippable, Flippable];
    await loop.start();
    t.ok(await until(async () => (await weights(backend)).length === 3), 'all three in after rise');
    b.healthy = false;
    t.ok(await until(async () => (await weights(backend)).length === 2), 'the failed one leaves');
    t.same((await weights(backend)).sort(), [w(a, 10), w(c, 10)].sort());
    t.match(log.named('server.down'), [{ server: 's2', from: 'up', message: /status 503/ }]);
    t.match(log.named('reconcile.applied').at(-1), {
      op: 'delete-destination',
      reason: 'server down (no active connections)',
    });
    b.healthy = true;
    t.ok(await until(async () => (await weights(backend)).length === 3), 'and comes back');
    t.match(log.named('server.up').at(-1), { server: 's2', from: 'down' });
    t.equal(loop.stats.operationsFailed, 0);
  },
);

t.test(
  'start adopts the table as it is: zero operations, no flap, a failed server leaves after fall',
  async (t) => {
    const backend = new MemoryBackend();
    const servers = await Promise.all([flippableHttp(), flippableHttp(), flippableHttp()]);
    // Not FAST's 100 ms timeout: with two busy processes beside it on two cores, a healthy
    // server's check timed out twice and the table changed. The dead one answers 503 at once,
    // so the 2 s timeout costs nothing: it leaves within 2.3 s (its first check, then one more).
    const slow =
      '    interval: 2s\n    fast_interval: 300ms\n    down_interval: 2s\n    timeout: 2s\n';
    // A resync longer than the test: the first read is the start's, so the transition plans
    // against it (weight 0) and the drain's own read counts the connections (the delete). With
    // the usual 1 s, a machine slow enough to put the transition past the resync read the
    // table first and deleted at once (seen in CI).
    const cfg = config(servers, { service: slow, daemon: '  resync_interval: 60s\n' });
    const vs = cfg.virtualServices[0]!;
    await backend.addService(vs.service);
    for (const rs of vs.realServers) await backend.addDestination(vs.service.key, rs.destination);
    const before = await backend.table();
    servers[2].healthy = false;
    const log = new MemoryLog();
    const loop = new ReconcileLoop(cfg, { backend, log });
    t.teardown(async () => {
      await loop.stop();
      await Promise.all(servers.map((s) => s.stop()));
    });
    await loop.start();
    t.same(await backend.table(), before, 'nothing changed at start');
    t.match(log.named('table.adopted'), [{ services: 1, destinations: 3 }]);
    t.ok(
      await until(() => log.named('server.up').length >= 2, 10_000),
      'the two healthy servers were checked',
    );
    t.ok(
      await until(async () => (await weights(backend)).length === 2, 10_000),
      'the dead one leaves after fall failures',
    );
    // Whether the healthy ones come up before the dead one leaves is the machine's pace: so
    // counted at the end, the removal alone (weight 0 on the transition, from the start's read;
    // the delete once the drain's read counts no connections), and the healthy ones as they were.
    t.match(
      log.named('reconcile.applied').map((e) => [e.op, e.reason]),
      [
        ['update-destination', /^server down: draining, its connections counted at the next/],
        ['delete-destination', /^server down \(no active connections\)$/],
      ],
      'the removal alone: weight 0, then the delete',
    );
    t.equal(log.named('reconcile.applied').length, 2);
    t.same(
      (await weights(backend)).sort(),
      [w(servers[0], 10), w(servers[1], 10)].sort(),
      'healthy: untouched',
    );
  },
);

t.test(
  'a hand edit in the owned part is repaired at the next resync and counted; other services are left alone',
  async (t) => {
    const { servers, log, loop, backend } = await setup(t, 2, {
      daemon: '  resync_interval: 300ms\n',
    });
    const [a] = servers as [Flippable, Flippable];
    await backend.apply([
      {
        op: 'add-service',
        service: {
          key: { family: 4, protocol: 'tcp', address: '192.0.2.77', port: 22 },
          scheduler: 'rr',
          schedFlags: 0,
          persistent: false,
          timeout: 0,
          netmask: 32,
          onePacket: false,
          pe: '',
        },
      },
    ]);
    await loop.start();
    t.ok(await until(async () => (await weights(backend)).length === 2));
    await loop.idle();
    await backend.updateDestination(
      config(servers).virtualServices[0]!.service.key,
      destinationSpec({ key: a.target, weight: 99 }),
    );
    t.ok(await until(async () => (await weights(backend)).includes(w(a, 10))), 'repaired');
    t.equal(loop.stats.driftRepairs, 1);
    t.match(log.named('drift.detected'), [
      { changes: [/127\.0\.0\.1:\d+ was changed: weight 10 -> 99/] },
    ]);
    t.match(log.named('table.unowned'), [{ services: ['TCP 192.0.2.77:22'] }]);
    t.equal((await backend.table()).length, 2, 'the unowned service is still there');
  },
);

t.test('reload applies only the difference, and a failed server stays out', async (t) => {
  const { servers, log, loop, backend } = await setup(t, 3);
  const [a, b, c] = servers as [Flippable, Flippable, Flippable];
  await loop.start();
  t.ok(await until(async () => (await weights(backend)).length === 3));
  b.healthy = false;
  t.ok(await until(async () => (await weights(backend)).length === 2));
  const applied = log.named('reconcile.applied').length;
  await loop.reload(config(servers, { weights: [20, 10, 10] }));
  t.same(
    (await weights(backend)).sort(),
    [w(a, 20), w(c, 10)].sort(),
    'the new weight, and s2 still out',
  );
  t.same(
    log
      .named('reconcile.applied')
      .slice(applied)
      .map((f) => f.op),
    ['update-destination'],
    'one operation',
  );
  await loop.reload(config([a, b]));
  t.ok(
    await until(async () => (await weights(backend)).length === 1),
    'a server deleted from the config drains out',
  );
  t.same(await weights(backend), [w(a, 10)]);
});

t.test(
  'a kernel operation that fails is retried with backoff and does not hold up the rest',
  async (t) => {
    const backend = new MemoryBackend({ schedulers: ['wlc'] });
    const servers = await Promise.all([flippableHttp()]);
    const good = config(servers);
    const cfg: Config = {
      ...good,
      virtualServices: [
        ...good.virtualServices,
        {
          ...good.virtualServices[0]!,
          name: 'mh',
          service: {
            ...good.virtualServices[0]!.service,
            key: { family: 4, protocol: 'tcp', address: '192.0.2.2', port: 80 },
            scheduler: 'mh',
          },
        },
      ],
    };
    const log = new MemoryLog();
    const loop = new ReconcileLoop(cfg, { backend, log });
    t.teardown(async () => {
      await loop.stop();
      await servers[0].stop();
    });
    await loop.start();
    t.ok(await until(() => log.named('reconcile.operation_failed').length >= 3, 3000), 'retried');
    const failures = log.named('reconcile.operation_failed');
    t.match(failures[0], {
      op: 'add-service',
      target: 'TCP 192.0.2.2:80',
      errno: 'ENOENT',
      error: /ip_vs_mh/,
    });
    t.ok(
      await until(async () => (await weights(backend)).length === 1),
      'the good service is served',
    );
  },
);

t.test('cleanstop removes the owned services on stop; by default the table is left', async (t) => {
  for (const cleanstop of [false, true]) {
    const { loop, backend } = await setup(t, 1, { daemon: `  cleanstop: ${cleanstop}\n` });
    await backend.addService({
      key: { family: 4, fwmark: 5 },
      scheduler: 'rr',
      schedFlags: 0,
      persistent: false,
      timeout: 0,
      netmask: 32,
      onePacket: false,
      pe: '',
    });
    await loop.start();
    t.ok(await until(async () => (await weights(backend)).length === 1));
    await loop.stop();
    const left: TableEntry[] = await backend.table();
    t.equal(left.length, cleanstop ? 1 : 2, `cleanstop ${cleanstop}`);
  }
});

t.test('dry-run plans and logs, and changes nothing', async (t) => {
  const { log, loop, backend } = await setup(t, 2, { daemon: '  dry_run: true\n' });
  await loop.start();
  t.ok(await until(() => log.named('server.up').length === 2));
  await loop.idle();
  await new Promise((r) => setTimeout(r, 200));
  t.same(await backend.table(), []);
  t.match(log.named('reconcile.planned').at(-1), { op: 'add-destination', dry_run: true });
  t.equal(log.named('reconcile.applied').length, 0);
});

t.test(
  'a flag file in the maintenance directory drains a server; removing it brings it back',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-maint-'));
    const { servers, log, loop, backend } = await setup(t, 2, {
      daemon: `  maintenance_dir: ${dir}\n  maintenance_poll: 100ms\n`,
    });
    const [a, b] = servers as [Flippable, Flippable];
    await loop.start();
    t.ok(await until(async () => (await weights(backend)).length === 2));
    writeFileSync(join(dir, `127.0.0.1:${b.target.port}`), '');
    t.ok(await until(async () => (await weights(backend)).includes(w(b, 0))), 'weight 0');
    t.match(log.named('reconcile.applied').at(-1), {
      reason: /maintenance \(flag file .*127\.0\.0\.1:\d+\)/,
    });
    rmSync(join(dir, `127.0.0.1:${b.target.port}`));
    t.ok(await until(async () => (await weights(backend)).includes(w(b, 10))), 'back');
    t.ok((await weights(backend)).includes(w(a, 10)));
  },
);

t.test('slow start ramps a recovered server up', async (t) => {
  const { servers, loop, backend } = await setup(t, 2, {
    service: '    slow_start: 1s\n',
    weights: [100, 100],
  });
  const [, b] = servers as [Flippable, Flippable];
  await loop.start();
  t.ok(await until(async () => (await weights(backend)).length === 2));
  b.healthy = false;
  t.ok(await until(async () => (await weights(backend)).length === 1));
  b.healthy = true;
  const seen = new Set<number>();
  const full = await until(async () => {
    const d = (await backend.table())[0]?.destinations.find((x) => x.key.port === b.target.port);
    if (d) seen.add(d.weight);
    return seen.has(100);
  }, 4000);
  t.ok(full, 'the ramp reached the full weight');
  const ramp = [...seen].sort((x, y) => x - y);
  t.ok(
    ramp.length >= 3 && ramp[0]! < 50 && ramp.at(-1) === 100,
    `weights seen on the way up: ${ramp.join(' ')}`,
  );
});

t.test(
  'servers with the same check share one checker instance; a different check has its own',
  async (t) => {
    // 200 servers in two services with the same HTTP check, 50 with another path: two instances.
    const servers = (from: number, n: number): string =>
      Array.from(
        { length: n },
        (_, i) => `{address: 10.1.${(from + i) >> 8}.${(from + i) & 255}}`,
      ).join(', ');
    const config = parseConfig(
      `daemon: {backend: memory}
defaults: {interval: 100ms, fast_interval: 100ms, timeout: 100ms}
virtual_services:
  - {address: 10.0.0.1, port: 80, checks: [{type: http, path: /healthz}], real_servers: [${servers(0, 100)}]}
  - {address: 10.0.0.2, port: 80, checks: [{type: http, path: /healthz}], real_servers: [${servers(100, 100)}]}
  - {address: 10.0.0.3, port: 80, checks: [{type: http, path: /other}], real_servers: [${servers(200, 50)}]}
`,
      'x',
      {},
    );
    const used = new Map<object, Set<string>>();
    let made = 0;
    const loop = new ReconcileLoop(config, {
      backend: new MemoryBackend(),
      log: new MemoryLog(),
      createChecker: (check) => {
        made++;
        const instance = {
          kind: check.type,
          description: `fake ${check.type}`,
          key: `${check.type}:${JSON.stringify(check.options)}`,
          check(target: { address: string }) {
            const targets = used.get(instance) ?? new Set<string>();
            targets.add(target.address);
            used.set(instance, targets);
            return Promise.resolve({ healthy: true, durationMs: 0, message: 'ok' });
          },
        };
        return instance;
      },
    });
    t.teardown(() => loop.stop());
    await loop.start();
    t.ok(
      await until(async () => [...used.values()].reduce((n, s) => n + s.size, 0) === 250),
      'every server checked',
    );
    t.equal(used.size, 2, 'two instances in use');
    t.same(
      [...used.values()].map((s) => s.size).sort((a, b) => a - b),
      [50, 200],
      'one serves both services with /healthz, one serves /other',
    );
    t.ok(made <= 3, `instances made: ${made} (one per distinct check config)`);
  },
);

t.test(
  'a tick on a late loop holds new checks back while it waits on the kernel, and lets them go',
  async (t) => {
    /** A table whose reads wait while `gate` is set: a kernel slow to answer. */
    class SlowTable extends MemoryBackend {
      gate: Promise<void> | undefined;
      reads = 0;
      override async table(): Promise<TableEntry[]> {
        this.reads++;
        if (this.gate) await this.gate;
        return super.table();
      }
    }
    /**
     * While `quantum` is set, every timer fires at the next multiple of it: a loop busy for
     * that long at a time, which runs all the timers that came due meanwhile at once.
     */
    const clock = {
      quantum: 0,
      now: () => systemClock.now(),
      monotonic: () => systemClock.monotonic(),
      setTimeout(fn: () => void, ms: number, options?: { unref?: boolean }): Timer {
        const now = systemClock.monotonic();
        const q = clock.quantum;
        const at = q > 0 ? Math.ceil((now + ms) / q) * q : now + ms;
        return systemClock.setTimeout(fn, at - now, options);
      },
    };
    /** Answers after 50 ms (checks that overlap). */
    const slowHttp = async (): Promise<Flippable> => {
      const s = { healthy: true } as Flippable;
      const server = createHttpServer((_q, res) => {
        setTimeout(() => ((res.statusCode = s.healthy ? 200 : 503), res.end()), 50);
      });
      return Object.assign(s, await listen(server));
    };
    const backend = new SlowTable();
    const servers = await Promise.all(Array.from({ length: 3 }, () => slowHttp()));
    t.teardown(() => Promise.all(servers.map((s) => s.stop())));
    const log = new MemoryLog();
    const loop = new ReconcileLoop(
      config(servers, {
        daemon: 'check_concurrency: 2\ncheck_concurrency_min: 1',
        service:
          '    interval: 300ms\n    fast_interval: 300ms\n    down_interval: 300ms\n    timeout: 300ms\n',
      }),
      { backend, log, clock },
    );
    t.teardown(() => loop.stop());
    await loop.start();
    t.ok(await until(async () => (await weights(backend)).length === 3), 'all three in');

    // Timers up to a second late, all three at once, one waiting for a slot: the cap falls to 1.
    // A check is planned 300 ms after it ends (the server answers after 50 ms), so each comes
    // due in the same quantum as the others unless its answer takes over 650 ms. With 400 ms
    // (it was) an answer 50 ms slow under load put a check in the next quantum, the three came
    // due apart, none waited, and the cap never fell.
    clock.quantum = 1000;
    t.ok(await until(() => loop.checkStats().limit === 1, 15_000), 'late: the cap at its floor');
    let open!: () => void;
    backend.gate = new Promise((r) => (open = r));
    const reads = backend.reads;
    servers[1]!.healthy = false;
    t.ok(await until(() => backend.reads > reads, 15_000), 'the server going down starts a tick');
    clock.quantum = 0;
    const before = log.named('check.result').length;
    // The hold lasts up to 2 s: 500 ms leaves a busy machine 1.5 s of margin.
    await new Promise((r) => setTimeout(r, 500));
    const during = log.named('check.result').length - before;
    // Three servers every 300 ms make about five results in 500 ms; held, only the
    // checks already in flight (one or two) end.
    t.ok(during <= 2, `only checks in flight end while the tick waits (${during})`);
    open();
    backend.gate = undefined;
    t.ok(await until(async () => (await weights(backend)).length === 2), 'the tick removes it');
    const after = log.named('check.result').length;
    t.ok(
      await until(() => log.named('check.result').length >= after + 6),
      'checking goes on once the tick is done',
    );
  },
);

t.test(
  'a tick over more than 1,000 destinations gives the event loop a turn before it applies',
  async (t) => {
    const tick = async (n: number): Promise<boolean> => {
      const servers = Array.from(
        { length: n },
        (_, i) => `{address: 10.1.${i >> 8}.${i & 0xff}, port: 80}`,
      ).join(', ');
      const config = parseConfig(
        `defaults: {initial: up, interval: 1h}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [{type: tcp}], real_servers: [${servers}]}
`,
        'x',
        {},
      );
      // A callback queued once the table is read; whether it ran by the time the tick applies.
      const backend = new MemoryBackend();
      let turned = false;
      let turnedBeforeApply: boolean | undefined;
      const layout = backend.layout.bind(backend);
      backend.layout = async () => {
        const table = await layout();
        turned = false;
        setImmediate(() => (turned = true));
        return table;
      };
      const apply = backend.apply.bind(backend);
      backend.apply = (ops) => {
        turnedBeforeApply ??= turned;
        return apply(ops);
      };
      const loop = new ReconcileLoop(config, {
        backend,
        log: new MemoryLog(),
        createChecker: (check) => ({
          kind: check.type,
          description: 'never answers',
          key: check.type,
          check: () => new Promise(() => undefined),
        }),
      });
      await loop.start();
      await loop.stop();
      return turnedBeforeApply ?? false;
    };
    t.equal(await tick(500), false, '500: one go, as before');
    t.equal(await tick(1001), true, '1,001: the loop turned between reading and applying');
  },
);

t.test(
  'the bound on checks in flight: check_in_flight_max, else from the open files',
  async (t) => {
    const make = (daemon: string, openFiles?: number): ReconcileLoop =>
      new ReconcileLoop(config([], { daemon: `check_concurrency: 8\n${daemon}` }), {
        backend: new MemoryBackend(),
        log: new MemoryLog(),
        ...(openFiles === undefined ? {} : { openFiles }),
      });
    // The loop reads the key itself: a config run by anything but the CLI gets it too.
    t.equal(make('check_in_flight_max: 64').maxInFlight, 64, 'as set');
    t.equal(make('check_in_flight_max: 64', 20_000).maxInFlight, 64, 'as set, whatever the files');
    t.equal(make('', 20_000).maxInFlight, 10_000, 'unset: half the open files');
    t.equal(make('').maxInFlight, 8, 'unset, no files known: the cap (a check keeps its slot)');
  },
);
