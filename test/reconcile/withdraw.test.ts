// daemon.announce.withdraw_hold as pure decisions: when a quorum loss withdraws a VIP and leaves
// its service no healthy server, the destinations stay as the kernel has them for the hold (new
// flows the routers still send meet the servers last seen up, not none), then drain as usual.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { VirtualServiceConfig } from '../../src/config/model.js';
import {
  backForHold,
  desiredTable,
  withdrawHold,
  type ServerHealth,
} from '../../src/reconcile/desired.js';

t.test('withdrawHold: started by the loss that withdraws the VIP, over at its time', async (t) => {
  const base = {
    announce: true,
    fallback: false,
    quorumWas: true,
    quorum: false,
    vipKept: false,
    untilWas: undefined,
    holdMs: 3000,
    now: 10_000,
  } as const;
  const cases: [Partial<Parameters<typeof withdrawHold>[0]>, number | null, string][] = [
    [{}, 13_000, 'quorum lost now: held until now + hold'],
    [{ quorumWas: false, untilWas: 13_000, now: 12_999 }, 13_000, 'still within: kept'],
    [{ quorumWas: false, untilWas: 13_000, now: 13_000 }, null, 'at its time: over'],
    [{ quorumWas: false, untilWas: null }, null, 'lost long ago: no hold'],
    [{ quorumWas: undefined }, null, 'never had quorum (a start with every server down)'],
    [{ quorum: true, quorumWas: false, untilWas: 13_000 }, null, 'quorum back: over'],
    [{ quorum: undefined }, null, 'undecided'],
    [{ vipKept: true }, null, 'another service keeps the VIP announced: no withdrawal'],
    [{ announce: false }, null, 'not announced: nothing to wait for'],
    [{ fallback: true }, null, 'a fallback takes the new flows'],
    [{ holdMs: 0 }, null, 'withdraw_hold 0: off'],
  ];
  for (const [o, want, name] of cases) t.equal(withdrawHold({ ...base, ...o }), want, name);
});

/** Each service as the inside of a flow mapping; both servers (a, b) are added to each. */
function services(...specs: string[]): readonly VirtualServiceConfig[] {
  const servers = 'real_servers: [{name: a, address: 10.0.0.1}, {name: b, address: 10.0.0.2}]';
  const list = specs.map((s) => `  - {${s}, ${servers}}\n`).join('');
  return parseConfig(
    `defaults: {checks: [], announce: true}\nvirtual_services:\n${list}`,
    'test',
    {},
  ).virtualServices;
}

function decide(
  vss: readonly VirtualServiceConfig[],
  down: Record<string, string[]>,
  o: {
    was?: boolean;
    until?: number | null;
    now?: number;
    holdMs?: number;
    /** When each down server (by name) went down; absent: not known. */
    downAt?: Record<string, number>;
  } = {},
) {
  const d = desiredTable({
    services: vss,
    retired: [],
    health: (vs, rs): ServerHealth => ({
      status: (down[vs.name] ?? []).includes(rs.name) ? 'down' : 'up',
      upSince: null,
      weight: undefined,
      downSince: o.downAt?.[rs.name] ?? null,
    }),
    maintenance: () => null,
    quorumWas: () => o.was ?? true,
    withdrawHoldMs: o.holdMs ?? 3000,
    withdrawHoldWas: () => o.until,
    now: o.now ?? 1000,
  });
  const wants = (name: string): string =>
    (d.services.find((s) => s.name === name)?.destinations ?? [])
      .map((x) => `${x.destination.key.address}:${x.want.kind}`)
      .join(' ');
  return {
    d,
    wants,
    until: (name: string) => d.services.find((s) => s.name === name)?.withdrawHoldUntil,
  };
}

t.test('the last servers of a withdrawn VIP are kept for the hold, then drained', async (t) => {
  const vss = services('name: web, address: 192.0.2.1, port: 80');
  const lost = decide(vss, { web: ['a', 'b'] });
  t.equal(lost.until('web'), 4000, 'held until now + 3 s');
  t.equal(lost.d.wakeAt, 4000, 'the loop wakes when it ends');
  t.equal(lost.wants('web'), '10.0.0.1:keep 10.0.0.2:keep', 'both kept as the kernel has them');
  t.match(
    lost.d.services[0]?.destinations[0]?.want.reason,
    /^quorum lost, VIP withdrawn: kept as it is for daemon\.announce\.withdraw_hold \(3 s\)/,
  );
  const during = decide(vss, { web: ['a', 'b'] }, { was: false, until: 4000, now: 3999 });
  t.equal(during.wants('web'), '10.0.0.1:keep 10.0.0.2:keep', 'still within the hold');
  const after = decide(vss, { web: ['a', 'b'] }, { was: false, until: 4000, now: 4000 });
  t.equal(after.until('web'), null);
  t.equal(after.wants('web'), '10.0.0.1:out 10.0.0.2:out', 'over: drained as for any failure');
  const back = decide(vss, { web: ['b'] }, { was: false, until: 4000, now: 2000 });
  t.equal(back.until('web'), null, 'quorum back within the hold: over');
  t.equal(back.wants('web'), '10.0.0.1:in 10.0.0.2:out');
  const off = decide(vss, { web: ['a', 'b'] }, { holdMs: 0 });
  t.equal(off.wants('web'), '10.0.0.1:out 10.0.0.2:out', 'withdraw_hold 0: at once');
});

t.test('backForHold: down no longer than the hold before the loss, or since', async (t) => {
  const down = (downSince: number | null | undefined): ServerHealth => ({
    status: 'down',
    upSince: null,
    weight: undefined,
    ...(downSince === undefined ? {} : { downSince }),
  });
  const rows: [ServerHealth, boolean, string][] = [
    [down(10_000), true, 'down in the tick that lost the quorum'],
    [down(7000), true, 'the hold (3 s) before it'],
    [down(6999), false, 'longer before'],
    [down(11_000), true, 'since (within the hold)'],
    [down(null), false, 'not known when (adopted down at a start)'],
    [down(undefined), false, 'nor here'],
    [{ status: 'pending', upSince: null, weight: undefined, downSince: 10_000 }, false, 'pending'],
  ];
  for (const [health, want, why] of rows) t.equal(backForHold(health, 10_000, 3000), want, why);
});

t.test('servers that failed just before the loss are back in for the hold', async (t) => {
  const vss = services('name: web, address: 192.0.2.1, port: 80');
  // a went down 800 ms before b, whose failure lost the quorum: a was drained meanwhile.
  const lost = decide(vss, { web: ['a', 'b'] }, { downAt: { a: 200, b: 1000 } });
  t.equal(lost.until('web'), 4000);
  t.equal(lost.wants('web'), '10.0.0.1:in 10.0.0.2:in', 'both in, at their weights');
  t.match(lost.d.services[0]?.destinations[0]?.want, {
    spec: { weight: 1 },
    reason:
      /^quorum lost, VIP withdrawn: in for daemon\.announce\.withdraw_hold \(3 s\), as it went down within that of the loss/,
  });
  const earlier = decide(vss, { web: ['a', 'b'] }, { downAt: { a: -2001, b: 1000 } });
  t.equal(earlier.wants('web'), '10.0.0.1:keep 10.0.0.2:in', 'down 3,001 ms before: as it is');
  const after = decide(
    vss,
    { web: ['a', 'b'] },
    { was: false, until: 4000, now: 4000, downAt: { a: 200, b: 1000 } },
  );
  t.equal(after.wants('web'), '10.0.0.1:out 10.0.0.2:out', 'the hold over: both drained');
});

t.test('no hold where new flows have somewhere to go, or no VIP leaves', async (t) => {
  const weighted = services('name: web, address: 192.0.2.1, port: 80, quorum: 2');
  const one = decide(weighted, { web: ['b'] });
  t.equal(one.d.services[0]?.quorum, false, 'weight 1 of quorum 2: lost');
  t.equal(one.until('web'), 4000, 'the VIP is withdrawn');
  t.equal(one.wants('web'), '10.0.0.1:in 10.0.0.2:out', 'a healthy server left: b drains at once');
  t.equal(one.d.wakeAt, null, 'nothing held: no wake at the hold end');
  const both = decide(weighted, { web: ['a', 'b'] }, { was: false, until: 4000, now: 2000 });
  t.equal(both.wants('web'), '10.0.0.1:keep 10.0.0.2:keep', 'the last one fails within the hold');
  t.equal(both.d.wakeAt, 4000, 'held from then: the loop wakes at its end');

  const shared = services(
    'name: web, address: 192.0.2.1, port: 80',
    'name: tls, address: 192.0.2.1, port: 443',
  );
  const half = decide(shared, { web: ['a', 'b'] });
  t.equal(half.until('web'), null, 'tls keeps the VIP announced: web is not withdrawing');
  t.equal(half.wants('web'), '10.0.0.1:out 10.0.0.2:out');
  const all = decide(shared, { web: ['a', 'b'], tls: ['a', 'b'] });
  t.same([all.until('web'), all.until('tls')], [4000, 4000], 'both lost in one tick: both held');

  const quiet = services('name: web, address: 192.0.2.1, port: 80, announce: false');
  t.equal(decide(quiet, { web: ['a', 'b'] }).wants('web'), '10.0.0.1:out 10.0.0.2:out');
  const fallback = services(
    'name: web, address: 192.0.2.1, port: 80, fallback: {address: 10.0.0.9}',
  );
  t.equal(
    decide(fallback, { web: ['a', 'b'] }).wants('web'),
    '10.0.0.1:out 10.0.0.2:out 10.0.0.9:in',
    'a fallback takes the new flows',
  );
  const panic = services('name: web, address: 192.0.2.1, port: 80, panic_threshold: 0.5');
  t.equal(
    decide(panic, { web: ['a', 'b'] }).wants('web'),
    '10.0.0.1:in 10.0.0.2:in',
    'panic mode is the stronger rule: every server in',
  );
});
