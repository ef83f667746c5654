// The decisions, as pure functions: config + health -> desired table; desired + observed ->
// operations with reasons; and drift. Every failure policy of the issue has a case here.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { VirtualServiceConfig } from '../../src/config/model.js';
import type {
  DestinationSpec,
  DestinationState,
  LayoutEntry,
  Operation,
  ServiceKey,
  TableEntry,
} from '../../src/ipvs/model.js';
import { ZERO_STATS } from '../../src/ipvs/model.js';
import { operationTarget } from '../../src/ipvs/backend.js';
import { desiredTable, slowStartWeight, type ServerHealth } from '../../src/reconcile/desired.js';
import { afterOperations, drift, layoutAfter, snapshot } from '../../src/reconcile/drift.js';
import { destinationDiff, plan } from '../../src/reconcile/plan.js';
import { destinationId, serviceId, targetId } from '../../src/ipvs/spec.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';

function services(extra = '', servers = 4, protocol = 'tcp'): VirtualServiceConfig[] {
  const rs = Array.from(
    { length: servers },
    (_, i) => `      - {name: s${i + 1}, address: 10.0.0.${i + 1}}\n`,
  ).join('');
  return [
    ...parseConfig(
      `virtual_services:\n  - name: web\n    protocol: ${protocol}\n    address: 192.0.2.1\n    port: 80\n    checks: []\n${extra}    real_servers:\n${rs}`,
      'test',
      {},
    ).virtualServices,
  ];
}

type Status = ServerHealth['status'];
const H = (status: Status, extra: Partial<ServerHealth> = {}): ServerHealth => ({
  status,
  upSince: null,
  weight: undefined,
  ...extra,
});

/** The table as the config says it, every server in with its weight (an earlier tick's result). */
function observedFrom(
  vs: VirtualServiceConfig[],
  conns: Record<string, number> = {},
  weights: Record<string, number> = {},
): TableEntry[] {
  return vs.map((v) => ({
    service: { ...v.service, stats: ZERO_STATS },
    destinations: v.realServers.map((r): DestinationState => ({
      ...r.destination,
      weight: weights[r.name] ?? r.destination.weight,
      activeConns: conns[r.name] ?? 0,
      inactiveConns: 0,
      persistentConns: 0,
      stats: ZERO_STATS,
    })),
  }));
}

function run(
  vs: VirtualServiceConfig[],
  health: Record<string, Status | ServerHealth>,
  observed: TableEntry[],
  opts: {
    now?: number;
    drains?: Map<string, number>;
    maintenance?: string[];
    connections?: 'read' | 'stale';
  } = {},
) {
  const desired = desiredTable({
    services: vs,
    retired: [],
    health: (_v, r) => {
      const h = health[r.name] ?? 'up';
      return typeof h === 'string' ? H(h) : h;
    },
    maintenance: (_v, r) => (opts.maintenance?.includes(r.name) ? `flag ${r.name}` : null),
    now: opts.now ?? 0,
  });
  const p = plan(desired, observed, opts.drains ?? new Map(), opts.now ?? 0, opts.connections);
  return {
    desired,
    plan: p,
    ops: p.operations.map((o) => {
      const w =
        'destination' in o.operation && 'weight' in o.operation.destination
          ? ` w=${o.operation.destination.weight}`
          : '';
      return `${o.operation.op} ${operationTarget(o.operation)}${w}: ${o.reason}`;
    }),
  };
}

t.test(
  'an empty table: the service and its healthy servers are added, pending ones are not',
  async (t) => {
    const vs = services();
    const r = run(vs, { s1: 'up', s2: 'pending', s3: 'down', s4: 'up' }, []);
    t.same(r.ops, [
      'add-service TCP 192.0.2.1:80: configured, not in the table',
      'add-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=1: server healthy',
      'add-destination TCP 192.0.2.1:80 -> 10.0.0.4:80 w=1: server healthy',
    ]);
  },
);

t.test('the table as desired: no operations at all', async (t) => {
  const vs = services();
  t.same(run(vs, {}, observedFrom(vs)).ops, []);
});

t.test(
  'remove drains: weight 0 while connections last, deleted at zero or at the timeout',
  async (t) => {
    const vs = services('    drain_timeout: 30s\n');
    const busy = observedFrom(vs, { s2: 5 });
    const first = run(vs, { s2: 'down' }, busy, { now: 1000 });
    t.same(first.ops, [
      'update-destination TCP 192.0.2.1:80 -> 10.0.0.2:80 w=0: server down: draining 5 active connections (up to 30 s)',
    ]);
    t.equal(first.plan.wakeAt, 2000, 'looks at the counts again in a second');
    const drains = new Map(first.plan.drains);
    const draining = observedFrom(vs, { s2: 3 }, { s2: 0 });
    t.same(
      run(vs, { s2: 'down' }, draining, { now: 5000, drains }).ops,
      [],
      'still draining, nothing to do',
    );
    t.same(run(vs, { s2: 'down' }, draining, { now: 31_000, drains }).ops, [
      'delete-destination TCP 192.0.2.1:80 -> 10.0.0.2:80: server down (drain timeout 30 s passed with 3 active connections)',
    ]);
    const idle = observedFrom(vs, { s2: 0 }, { s2: 0 });
    t.same(run(vs, { s2: 'down' }, idle, { now: 6000, drains }).ops, [
      'delete-destination TCP 192.0.2.1:80 -> 10.0.0.2:80: server down (no active connections)',
    ]);
    t.same(
      run(vs, { s2: 'down' }, observedFrom(vs)).ops,
      ['delete-destination TCP 192.0.2.1:80 -> 10.0.0.2:80: server down (no active connections)'],
      'nothing to drain: deleted at once',
    );
    const back = run(vs, { s2: 'up' }, draining, { now: 7000, drains });
    t.same(back.ops, [
      'update-destination TCP 192.0.2.1:80 -> 10.0.0.2:80 w=1: server healthy: weight 0 -> 1',
    ]);
    t.equal(back.plan.drains.size, 0, 'a server back during its drain stops draining');
  },
);

t.test(
  'stale connection counts (a tick that did not read the table): a drain never ends on the count',
  async (t) => {
    const S = 'stale' as const;
    const target = 'TCP 192.0.2.1:80 -> 10.0.0.2:80';
    // [case, on_failure settings, connections as last read, weight as last read, drain began,
    //  now, what the stale tick plans]
    const cases: [
      string,
      string,
      number,
      number | undefined,
      number | undefined,
      number,
      string[],
    ][] = [
      [
        'a count of zero may be stale: weight 0, not deleted',
        '    drain_timeout: 30s\n',
        0,
        undefined,
        undefined,
        1000,
        [
          `update-destination ${target} w=0: server down: draining, its connections counted at the next table read (up to 30 s)`,
        ],
      ],
      [
        'a count above zero: the same',
        '    drain_timeout: 30s\n',
        5,
        undefined,
        undefined,
        1000,
        [
          `update-destination ${target} w=0: server down: draining, its connections counted at the next table read (up to 30 s)`,
        ],
      ],
      [
        'already at weight 0 and draining: nothing',
        '    drain_timeout: 30s\n',
        0,
        0,
        1000,
        5000,
        [],
      ],
      [
        'the drain timeout passed: deleted, whatever the count',
        '    drain_timeout: 30s\n',
        3,
        0,
        1000,
        31_000,
        [`delete-destination ${target}: server down (drain timeout 30 s passed)`],
      ],
      [
        'no drain (drain_timeout 0s): deleted at once, no count needed',
        '    drain_timeout: 0s\n',
        4,
        undefined,
        undefined,
        1000,
        [`delete-destination ${target}: server down (no drain)`],
      ],
    ];
    for (const [name, extra, conns, weight, began, now, want] of cases) {
      const vs = services(extra);
      const s2 = vs[0]?.realServers[1];
      if (!vs[0] || !s2) throw new Error('s2 not configured');
      const id = targetId(vs[0].service.key, s2.destination.key);
      const drains = new Map(began === undefined ? [] : [[id, began]]);
      const observed = observedFrom(vs, { s2: conns }, weight === undefined ? {} : { s2: weight });
      const stale = run(vs, { s2: 'down' }, observed, { now, drains, connections: S });
      t.same(stale.ops, want, name);
      if (want.length === 0 || want[0]?.startsWith('update'))
        t.equal(stale.plan.drains.size, 1, `${name}: the drain goes on`);
    }
    // The same table read just now: a count of zero ends the drain at once.
    const vs = services('    drain_timeout: 30s\n');
    t.same(run(vs, { s2: 'down' }, observedFrom(vs, { s2: 0 }), { now: 1000 }).ops, [
      `delete-destination ${target}: server down (no active connections)`,
    ]);
  },
);

t.test('UDP is not drained: deleted at once', async (t) => {
  const vs = services('', 2, 'udp');
  t.same(run(vs, { s1: 'down' }, observedFrom(vs, { s1: 9 })).ops, [
    'delete-destination UDP 192.0.2.1:80 -> 10.0.0.1:80: server down (UDP, at once)',
  ]);
});

t.test('quiesce: weight 0, never deleted, never added while down', async (t) => {
  const vs = services('    on_failure: quiesce\n');
  t.same(run(vs, { s1: 'down' }, observedFrom(vs, { s1: 4 })).ops, [
    'update-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=0: server down: quiesced: weight 1 -> 0',
  ]);
  t.same(run(vs, { s1: 'down' }, observedFrom(vs, {}, { s1: 0 }), { now: 10_000_000 }).ops, []);
  t.same(
    run(vs, { s1: 'down' }, []).ops.filter((o) => o.includes('10.0.0.1')),
    [],
  );
});

t.test('servers removed from the config, or added by hand, drain out', async (t) => {
  const vs = services('', 4);
  const observed = observedFrom(services('', 5), { s5: 2 });
  t.same(run(vs, {}, observed).ops, [
    'update-destination TCP 192.0.2.1:80 -> 10.0.0.5:80 w=0: 10.0.0.5:80 not in the config: draining 2 active connections (up to 300 s)',
  ]);
});

t.test('pending servers keep what the kernel has: no flap at start', async (t) => {
  const vs = services();
  t.same(
    run(
      vs,
      { s1: 'pending', s2: 'pending', s3: 'pending', s4: 'pending' },
      observedFrom(vs, {}, { s2: 0 }),
    ).ops,
    [],
  );
});

t.test(
  'fallback: in while no server is up, out at the first recovery, kept while results are pending',
  async (t) => {
    const vs = services('    fallback: {address: 192.0.2.99, port: 8080}\n', 2);
    const all = run(vs, { s1: 'down', s2: 'down' }, observedFrom(vs));
    t.same(all.ops, [
      'add-destination TCP 192.0.2.1:80 -> 192.0.2.99:8080 w=1: fallback fallback: 0 of 2 healthy',
      'delete-destination TCP 192.0.2.1:80 -> 10.0.0.1:80: server down (no active connections)',
      'delete-destination TCP 192.0.2.1:80 -> 10.0.0.2:80: server down (no active connections)',
    ]);
    t.ok(all.desired.services[0]?.fallbackActive);
    const withFallback: TableEntry[] = [
      {
        service: { ...vs[0]!.service, stats: ZERO_STATS },
        destinations: [
          {
            ...vs[0]!.fallback!,
            activeConns: 0,
            inactiveConns: 0,
            persistentConns: 0,
            stats: ZERO_STATS,
          },
        ],
      },
    ];
    t.same(run(vs, { s1: 'up', s2: 'down' }, withFallback).ops, [
      'add-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=1: server healthy',
      'delete-destination TCP 192.0.2.1:80 -> 192.0.2.99:8080: fallback fallback not needed: 1 of 2 healthy (no active connections)',
    ]);
    t.same(
      run(vs, { s1: 'pending', s2: 'down' }, withFallback).ops,
      [],
      'a restart keeps the fallback until results settle',
    );
  },
);

t.test('panic: below the threshold every server stays in, at its weight', async (t) => {
  const vs = services('    panic_threshold: 0.5\n', 4);
  const r = run(vs, { s1: 'up', s2: 'down', s3: 'down', s4: 'down' }, observedFrom(vs));
  t.same(r.ops, []);
  t.ok(r.desired.services[0]?.panic);
  t.match(r.desired.services[0]?.destinations[1]?.want, {
    kind: 'in',
    reason: /panic: 1 of 4 healthy, below 50%/,
  });
  const calm = run(vs, { s1: 'up', s2: 'up', s3: 'down', s4: 'down' }, observedFrom(vs));
  t.notOk(calm.desired.services[0]?.panic, 'at the threshold: no panic');
  t.equal(calm.ops.length, 2);
  const off = run(
    services('', 4),
    { s1: 'up', s2: 'down', s3: 'down', s4: 'down' },
    observedFrom(vs),
  );
  t.equal(off.ops.length, 3, 'off by default: the failed servers leave');
});

t.test('hold: when this director cannot check most servers, the table is kept', async (t) => {
  const vs = services('    fallback: {address: 10.0.9.9}\n', 4);
  const local = H('up', { local: true });
  const deadLocal = H('down', { local: true });
  // Three of four cannot be checked here (EMFILE...), and the fourth is down for real.
  const r = run(vs, { s1: local, s2: local, s3: deadLocal, s4: 'down' }, observedFrom(vs));
  t.same(r.ops, [], 'nothing drained, no fallback');
  t.ok(r.desired.services[0]?.held);
  t.match(r.desired.services[0]?.destinations[3]?.want, {
    kind: 'keep',
    reason: /hold: 3 of 4 servers cannot be checked from this director/,
  });
  t.match(r.desired.services[0]?.destinations[4], { role: 'fallback', want: { kind: 'keep' } });
  const maint = run(vs, { s1: local, s2: local, s3: local, s4: 'up' }, observedFrom(vs), {
    maintenance: ['s4'],
  });
  t.same(
    maint.ops.map((o) => o.split(':')[0]),
    ['update-destination TCP 192.0.2.1'],
    'maintenance, the operator’s own act, still applies',
  );
  const half = run(vs, { s1: local, s2: local, s3: 'up', s4: 'down' }, observedFrom(vs));
  t.notOk(half.desired.services[0]?.held, 'at the threshold (0.5 by default): no hold');
  t.equal(half.ops.length, 1, 'the dead server leaves');
  const off = run(
    services('    hold_threshold: 0\n', 4),
    { s1: local, s2: local, s3: deadLocal, s4: 'down' },
    observedFrom(vs),
  );
  t.notOk(off.desired.services[0]?.held, 'hold_threshold: 0 turns it off');
  t.equal(off.ops.length, 2);
});

t.test('slow start ramps the weight and asks to be woken for the next step', async (t) => {
  t.same(
    [0, 1, 2500, 5000, 9999, 10_000].map((e) => slowStartWeight(100, e, 10_000)),
    [1, 1, 25, 50, 100, 100],
  );
  t.equal(slowStartWeight(0, 10, 1000), 0);
  const vs = services('    weight: 100\n    slow_start: 10s\n', 1);
  const r = run(vs, { s1: H('up', { upSince: 1000 }) }, [], { now: 3500 });
  t.same(r.ops.slice(1), [
    'add-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=25: server slow start: 25% of 10 s',
  ]);
  t.equal(r.desired.wakeAt, 4000);
  const done = run(vs, { s1: H('up', { upSince: 1000 }) }, [], { now: 11_000 });
  t.equal(done.desired.wakeAt, null);
  t.match(done.ops[1], /w=100: server healthy$/);
  t.match(
    run(vs, { s1: H('up') }, []).ops[1],
    /w=100/,
    'no slow start for a server up since the start',
  );
});

t.test('maintenance: weight 0 from the config or from a flag file', async (t) => {
  const vs = parseConfig(
    'virtual_services:\n  - {address: 192.0.2.1, port: 80, checks: [], real_servers: [{name: a, address: 10.0.0.1, state: maintenance}, {name: b, address: 10.0.0.2}]}\n',
    'x',
    {},
  ).virtualServices;
  t.same(run([...vs], {}, observedFrom([...vs], {}, { a: 1 }), { maintenance: ['b'] }).ops, [
    'update-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=0: server maintenance (state in the config): weight 1 -> 0',
    'update-destination TCP 192.0.2.1:80 -> 10.0.0.2:80 w=0: server flag b: weight 1 -> 0',
  ]);
});

t.test('dynamic weight from a check replaces the configured one', async (t) => {
  const vs = services('', 1);
  t.same(run(vs, { s1: H('up', { weight: 7 }) }, observedFrom(vs)).ops, [
    'update-destination TCP 192.0.2.1:80 -> 10.0.0.1:80 w=7: server healthy, weight 7 from the check: weight 1 -> 7',
  ]);
});

t.test(
  'service settings that differ are updated; a retired service drains, then goes',
  async (t) => {
    const vs = services('    scheduler: rr\n', 1);
    const observed = observedFrom(services('', 1));
    t.same(run(vs, {}, observed).ops, [
      'update-service TCP 192.0.2.1:80: settings differ: scheduler wlc -> rr',
    ]);
    const retired = desiredTable({
      services: [],
      retired: [{ name: 'web', spec: vs[0]!.service, drainTimeoutMs: 60_000 }],
      health: () => H('up'),
      maintenance: () => null,
      now: 0,
    });
    const busy = plan(retired, observedFrom(vs, { s1: 3 }), new Map(), 0);
    t.same(
      busy.operations.map((o) => o.operation.op),
      ['update-destination'],
    );
    const idle = plan(retired, observedFrom(vs), new Map(), 0);
    t.same(
      idle.operations.map((o) => o.operation.op),
      ['delete-destination', 'delete-service'],
    );
  },
);

t.test('operations come in a safe order: services, then adds/updates, then deletes', async (t) => {
  const vs = services('', 3);
  const r = run(
    vs,
    { s1: 'down', s2: 'up', s3: 'up' },
    observedFrom(vs, {}, { s3: 5 }).map((e) => ({
      ...e,
      destinations: e.destinations.filter((d) => d.key.address !== '10.0.0.2'),
    })),
  );
  t.same(
    r.plan.operations.map((o) => o.operation.op),
    ['add-destination', 'update-destination', 'delete-destination'],
  );
});

t.test('drift: what someone else changed in the owned part of the table', async (t) => {
  const vs = services('', 2);
  const owned = new Set([serviceId(vs[0]!.service.key)]);
  const table = observedFrom(vs);
  const expected = snapshot(table, owned);
  t.same(drift(expected, snapshot(table, owned)), []);
  const edited = observedFrom(vs, {}, { s1: 9 }).map((e) => ({
    ...e,
    destinations: e.destinations.slice(0, 1),
  }));
  t.same(drift(expected, snapshot(edited, owned)), [
    'TCP 192.0.2.1:80 -> 10.0.0.1:80 was changed: weight 1 -> 9',
    'TCP 192.0.2.1:80 -> 10.0.0.2:80 was deleted',
  ]);
  const after = afterOperations(expected, [
    {
      op: 'delete-destination',
      service: vs[0]!.service.key,
      destination: vs[0]!.realServers[1]!.destination.key,
    },
  ]);
  t.same(drift(after, snapshot(table, owned)), ['TCP 192.0.2.1:80 -> 10.0.0.2:80 was added']);
  t.same(
    drift(
      expected,
      snapshot(
        [
          ...table,
          ...observedFrom(
            services('', 1).map((v) => ({
              ...v,
              service: { ...v.service, key: { ...v.service.key, port: 81 } },
            })),
          ),
        ],
        owned,
      ),
    ),
    [],
    'unowned services are not drift',
  );
});

t.test('layoutAfter: the table after our operations, as the kernel holds it', async (t) => {
  const [web, mail] = [
    ...services('', 3),
    ...services('', 2).map((v) => ({
      ...v,
      service: { ...v.service, key: { ...v.service.key, port: 25 } },
    })),
  ];
  if (!web || !mail) throw new Error('two services');
  const backend = new MemoryBackend();
  const load: Operation[] = [web, mail].flatMap((v) => [
    { op: 'add-service', service: v.service },
    ...v.realServers.map((r): Operation => ({
      op: 'add-destination',
      service: v.service.key,
      destination: r.destination,
    })),
  ]);
  for (const r of await backend.apply(load)) if (r.error) throw r.error;
  const [d1, d2, d3] = web.realServers.map((r) => r.destination);
  if (!d1 || !d2 || !d3) throw new Error('three servers');
  // The counts as a read found them: s1 busy, the rest idle.
  const before = (await backend.layout()).map((e) => ({
    ...e,
    destinations: e.destinations.map((d) => ({
      ...d,
      activeConns: d.key.address === d1.key.address ? 7 : 0,
    })),
  }));
  const added = { ...d3, key: { ...d3.key, address: '10.0.0.9' }, weight: 4 };
  const other = { ...web.service, key: { ...web.service.key, port: 443 } };
  const ops: Operation[] = [
    { op: 'update-destination', service: web.service.key, destination: { ...d1, weight: 0 } },
    { op: 'delete-destination', service: web.service.key, destination: d2.key },
    { op: 'add-destination', service: web.service.key, destination: added },
    { op: 'add-service', service: other },
    { op: 'add-destination', service: other.key, destination: d1 },
    { op: 'update-service', service: { ...web.service, scheduler: 'wlc' } },
  ];
  for (const r of await backend.apply(ops)) if (r.error) throw r.error;
  const after = layoutAfter(before, ops);
  // What the backend (as strict as the kernel) holds, in any order, counts and statistics aside.
  const withoutStats = <T extends object>(x: T): Omit<T, 'stats'> => {
    const { stats: _stats, ...rest } = x as T & { stats?: unknown };
    return rest;
  };
  const shape = (table: readonly LayoutEntry[]) =>
    table
      .map((e) => ({
        service: withoutStats(e.service),
        destinations: e.destinations
          .map((d) => ({
            ...withoutStats(d),
            activeConns: 0,
            inactiveConns: 0,
            persistentConns: 0,
          }))
          .sort((a, b) => destinationId(a.key).localeCompare(destinationId(b.key))),
      }))
      .sort((a, b) => serviceId(a.service.key).localeCompare(serviceId(b.service.key)));
  t.same(shape(after), shape(await backend.layout()), 'the same services and destinations');
  const entry = (table: readonly LayoutEntry[], key: ServiceKey) =>
    table.find((e) => serviceId(e.service.key) === serviceId(key));
  const webAfter = entry(after, web.service.key);
  t.equal(
    webAfter?.destinations.find((d) => d.key.address === d1.key.address)?.activeConns,
    7,
    'an updated destination keeps the count last read',
  );
  t.equal(
    webAfter?.destinations.find((d) => d.key.address === '10.0.0.9')?.activeConns,
    0,
    'an added one has none',
  );
  t.equal(webAfter?.service.scheduler, 'wlc', 'an updated service has its new settings');
  t.equal(
    entry(after, mail.service.key),
    entry(before, mail.service.key),
    'an entry no operation touched is shared',
  );
  t.same(
    shape(layoutAfter(after, [{ op: 'delete-service', service: other.key }])),
    shape(after.filter((e) => e !== entry(after, other.key))),
    'a deleted service goes with its destinations',
  );
  t.not(layoutAfter(before, []), before, 'nothing done: a copy of the list');
  t.same(layoutAfter(before, []), before);
});

t.test('destinationDiff: each setting that differs, and nothing for equal ones', async (t) => {
  const base = services()[0]!.realServers[0]!.destination;
  const ipip = { type: 'ipip', port: 0, csum: false, remcsum: false } as const;
  const tunnel = { ...base, fwd: 'tunnel', tunnel: ipip } as const;
  const cases: [string, DestinationSpec, DestinationSpec, string[]][] = [
    ['equal', base, { ...base }, []],
    ['weight', { ...base, weight: 0 }, base, ['weight 1 -> 0']],
    [
      'thresholds',
      { ...base, upperThreshold: 10, lowerThreshold: 5 },
      base,
      ['upperThreshold 0 -> 10', 'lowerThreshold 0 -> 5'],
    ],
    [
      'method and tunnel',
      tunnel,
      base,
      ['fwd masq -> tunnel', `tunnel null -> ${JSON.stringify(ipip)}`],
    ],
    [
      'a tunnel setting',
      tunnel,
      { ...tunnel, tunnel: { ...ipip, csum: true } },
      [`tunnel ${JSON.stringify({ ...ipip, csum: true })} -> ${JSON.stringify(ipip)}`],
    ],
    // The kernel's reply and the config may build the same tunnel in another key order.
    [
      'the same tunnel, keys in another order',
      tunnel,
      { ...tunnel, tunnel: { remcsum: false, csum: false, port: 0, type: 'ipip' } },
      [],
    ],
  ];
  for (const [name, want, have, expected] of cases)
    t.same(destinationDiff(want, have), expected, name);
});
