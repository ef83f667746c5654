// keepalived's quorum and hysteresis as pure decisions: when a service has quorum, what losing
// it does to the table (the fallback in, the healthy servers out), and that hysteresis needs the
// last decision to hold a pool at the edge steady.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { Quorum, VirtualServiceConfig } from '../../src/config/model.js';
import {
  desiredTable,
  quorumState,
  type QuorumCount,
  type ServerHealth,
} from '../../src/reconcile/desired.js';

t.test(
  'quorumState: gained at weight + hysteresis, kept down to weight - hysteresis',
  async (t) => {
    const q: Quorum = { weight: 30, hysteresis: 5 };
    const c = (weight: number, pending = false, up = weight > 0 ? 1 : 0): QuorumCount => ({
      up,
      weight,
      pending,
    });
    const cases: [
      Quorum | undefined,
      QuorumCount,
      boolean | undefined,
      boolean | undefined,
      string,
    ][] = [
      [q, c(35), undefined, true, 'first decision: gained at 30 + 5'],
      [q, c(34), undefined, false, 'first decision: below 35 is no quorum'],
      [q, c(34), true, true, 'had it: kept above 30 - 5'],
      [q, c(25), true, true, 'had it: kept at exactly 25'],
      [q, c(24), true, false, 'had it: lost below 25'],
      [q, c(34), false, false, 'lost it: not regained below 35'],
      [q, c(35), false, true, 'lost it: regained at 35'],
      [q, c(24, true), true, true, 'servers still settling: kept as it was'],
      [q, c(24, true), undefined, undefined, 'servers still settling at start: undecided'],
      [q, c(40, true), undefined, true, 'enough weight already: decided though some settle'],
      [
        { weight: 1, hysteresis: 0 },
        c(0, false, 2),
        true,
        false,
        'healthy weight 0 is never quorum',
      ],
      [undefined, c(0, false, 2), true, true, 'no quorum configured: any healthy server'],
      [undefined, c(0, false, 0), true, false, 'no quorum configured: none healthy'],
      [undefined, c(0, true, 0), undefined, undefined, 'no quorum configured: settling'],
    ];
    for (const [quorum, count, was, want, name] of cases)
      t.equal(quorumState(quorum, count, was), want, name);
  },
);

function service(extra: string, weights: number[]): VirtualServiceConfig {
  const rs = weights
    .map((w, i) => `      - {name: s${i + 1}, address: 10.0.0.${i + 1}, weight: ${w}}\n`)
    .join('');
  const config = parseConfig(
    `virtual_services:\n  - name: web\n    address: 192.0.2.1\n    port: 80\n    checks: []\n${extra}    real_servers:\n${rs}`,
    'test',
    {},
  );
  return config.virtualServices[0]!;
}

function decide(
  vs: VirtualServiceConfig,
  status: Record<string, ServerHealth['status']>,
  was: boolean | undefined,
  held = false,
) {
  const d = desiredTable({
    services: [vs],
    retired: [],
    health: (_v, r) => ({
      status: status[r.name] ?? 'up',
      upSince: null,
      weight: undefined,
      ...(held ? { local: true } : {}),
    }),
    maintenance: () => null,
    quorumWas: () => was,
    now: 0,
  });
  const s = d.services[0]!;
  return {
    s,
    wants: Object.fromEntries(
      s.destinations.map((x) => [
        x.role === 'fallback' ? 'fallback' : x.destination.key.address,
        `${x.want.kind}${x.want.kind === 'in' || x.want.kind === 'zero' ? ` w=${x.want.spec.weight}` : ''}`,
      ]),
    ),
  };
}

t.test('lost quorum: the fallback comes in and the healthy servers leave', async (t) => {
  const vs = service(
    '    quorum: {weight: 30, hysteresis: 5}\n    fallback: {address: 192.0.2.99}\n',
    [10, 10, 10, 10],
  );
  const all = decide(vs, {}, undefined);
  t.equal(all.s.healthyWeight, 40);
  t.equal(all.s.quorum, true);
  t.same(all.wants, {
    '10.0.0.1': 'in w=10',
    '10.0.0.2': 'in w=10',
    '10.0.0.3': 'in w=10',
    '10.0.0.4': 'in w=10',
    fallback: 'out',
  });

  const two = decide(vs, { s3: 'down', s4: 'down' }, true);
  t.equal(two.s.quorum, false, 'weight 20 is below 30 - 5');
  t.ok(two.s.fallbackActive);
  t.same(two.wants, {
    '10.0.0.1': 'out',
    '10.0.0.2': 'out',
    '10.0.0.3': 'out',
    '10.0.0.4': 'out',
    fallback: 'in w=1',
  });
  t.match(
    two.s.destinations[0]?.want.reason,
    /quorum lost \(healthy weight 20 of 30 \(hysteresis 5\)\): the fallback serves/,
  );

  const three = decide(vs, { s4: 'down' }, false);
  t.equal(three.s.quorum, false, 'weight 30 is not yet 30 + 5: no flap back');
  t.equal(three.wants.fallback, 'in w=1');
  const back = decide(vs, {}, false);
  t.equal(back.s.quorum, true, 'weight 40 regains it');
  t.equal(back.wants['10.0.0.1'], 'in w=10');

  const quiesce = service(
    '    quorum: 30\n    on_failure: quiesce\n    fallback: {address: 192.0.2.99}\n',
    [10, 10, 10],
  );
  t.same(
    decide(quiesce, { s3: 'down' }, true).wants,
    { '10.0.0.1': 'zero w=0', '10.0.0.2': 'zero w=0', '10.0.0.3': 'zero w=0', fallback: 'in w=1' },
    'quiesce: the healthy servers stay at weight 0 (their connections continue)',
  );
});

t.test('without a fallback, lost quorum changes no server: it is reported', async (t) => {
  const vs = service('    quorum: 30\n', [10, 10, 10]);
  const r = decide(vs, { s3: 'down' }, true);
  t.equal(r.s.quorum, false);
  t.notOk(r.s.fallbackActive);
  t.same(r.wants, { '10.0.0.1': 'in w=10', '10.0.0.2': 'in w=10', '10.0.0.3': 'out' });
});

t.test('held: quorum stays as it was', async (t) => {
  const vs = service('    quorum: 30\n    fallback: {address: 192.0.2.99}\n', [10, 10, 10]);
  const r = decide(vs, { s1: 'down', s2: 'down', s3: 'down' }, true, true);
  t.ok(r.s.held);
  t.equal(r.s.quorum, true);
  t.equal(r.wants.fallback, 'keep');
});

t.test('the config: a number, or weight and hysteresis; mistakes at their path', async (t) => {
  t.same(service('    quorum: 25\n', [10]).quorum, { weight: 25, hysteresis: 0 });
  t.same(service('    quorum: {weight: 25, hysteresis: 3}\n', [10]).quorum, {
    weight: 25,
    hysteresis: 3,
  });
  t.equal(service('', [10]).quorum, undefined);
  const bad = (q: string): string[] => {
    try {
      service(`    quorum: ${q}\n`, [10]);
      return [];
    } catch (e) {
      return (e as Error).message.split('\n').filter((l) => l.includes('quorum'));
    }
  };
  t.match(bad('0'), [
    /virtual_services\[0\]\.quorum: must be a whole number 1\.\.2147483647, got 0/,
  ]);
  t.same(service('    quorum: {weight: 5, hysteresis: 9}\n', [10]).quorum, {
    weight: 5,
    hysteresis: 9,
  });
  t.match(bad('{hysteresis: 1}'), [/quorum\.weight: is required/]);
  t.match(bad('{weight: 5, hyst: 1}'), [/quorum\.hyst/]);
});

t.test(
  'a hysteresis at or above the weight: lost only when no healthy weight is left',
  async (t) => {
    const q: Quorum = { weight: 5, hysteresis: 9 };
    t.equal(quorumState(q, { up: 1, weight: 1, pending: false }, true), true);
    t.equal(quorumState(q, { up: 0, weight: 0, pending: false }, true), false);
    t.equal(quorumState(q, { up: 2, weight: 13, pending: false }, false), false);
    t.equal(quorumState(q, { up: 2, weight: 14, pending: false }, false), true);
  },
);
