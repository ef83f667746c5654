// Which VIPs a director announces and the route operations that get the table there: pure
// decisions, one table each.
import t from 'tap';
import {
  decideVips,
  planRoutes,
  vipRoute,
  type AnnouncingService,
  type VipDecision,
} from '../../src/announce/plan.js';
import { RTN_BLACKHOLE, RTN_UNICAST, type Route } from '../../src/realserver/rtnetlink.js';

const svc = (name: string, address: string, quorum: boolean | undefined): AnnouncingService => ({
  name,
  family: address.includes(':') ? 6 : 4,
  address,
  quorum,
});

t.test('decideVips: any announcing service with quorum; drain and stop win', async (t) => {
  const cases: [
    string,
    AnnouncingService[],
    string | null,
    boolean,
    [string, boolean, string][],
  ][] = [
    [
      'one service with quorum',
      [svc('web', '10.0.0.1', true)],
      null,
      false,
      [['10.0.0.1', true, 'quorum: web']],
    ],
    [
      'quorum lost',
      [svc('web', '10.0.0.1', false)],
      null,
      false,
      [['10.0.0.1', false, 'no quorum: web']],
    ],
    [
      'not decided yet (start): not announced',
      [svc('web', '10.0.0.1', undefined)],
      null,
      false,
      [['10.0.0.1', false, 'quorum not decided yet: web']],
    ],
    [
      'two ports on one VIP, one lost: still announced (any)',
      [svc('http', '10.0.0.1', false), svc('https', '10.0.0.1', true)],
      null,
      false,
      [['10.0.0.1', true, 'quorum: https']],
    ],
    [
      'two ports, both lost',
      [svc('http', '10.0.0.1', false), svc('https', '10.0.0.1', undefined)],
      null,
      false,
      [['10.0.0.1', false, 'no quorum: http; quorum not decided yet: https']],
    ],
    [
      'drained: every VIP withdrawn, quorum or not',
      [svc('web', '10.0.0.1', true), svc('dns', '2001:db8::53', true)],
      'director drained (flag file /run/ipvs-warden/drained)',
      false,
      [
        ['10.0.0.1', false, 'director drained (flag file /run/ipvs-warden/drained)'],
        ['2001:db8::53', false, 'director drained (flag file /run/ipvs-warden/drained)'],
      ],
    ],
    [
      'stopping wins over everything',
      [svc('web', '10.0.0.1', true)],
      'director drained',
      true,
      [['10.0.0.1', false, 'daemon stopping']],
    ],
    [
      'VIPs apart: each its own verdict',
      [svc('a', '10.0.0.1', true), svc('b', '10.0.0.2', false)],
      null,
      false,
      [
        ['10.0.0.1', true, 'quorum: a'],
        ['10.0.0.2', false, 'no quorum: b'],
      ],
    ],
  ];
  for (const [name, services, drained, stopping, want] of cases)
    t.same(
      decideVips({ services, drained, stopping }).map((d) => [d.address, d.announced, d.reason]),
      want,
      name,
    );
  t.same(
    decideVips({
      services: [svc('http', '10.0.0.1', true), svc('https', '10.0.0.1', true)],
      drained: null,
      stopping: false,
    })[0]?.services,
    ['http', 'https'],
  );
});

t.test('planRoutes: wanted vs the routes of our protocol in our table', async (t) => {
  const settings = { table: 240, protocol: 250, metric: 0 };
  const d = (
    address: string,
    announced: boolean,
    reason = announced ? 'quorum: x' : 'no quorum: x',
  ): VipDecision => ({
    family: address.includes(':') ? 6 : 4,
    address,
    announced,
    reason,
    services: ['x'],
  });
  const ours = (address: string, extra: Partial<Route> = {}): Route => ({
    ...vipRoute(settings, address.includes(':') ? 6 : 4, address, RTN_BLACKHOLE),
    ...extra,
  });
  const fmt = (r: Route): string =>
    `${r.address}/${r.prefix} t${r.table} p${r.protocol} m${r.metric} ${r.type === RTN_BLACKHOLE ? 'blackhole' : `type ${r.type}`}`;
  const cases: [string, VipDecision[], Route[], string[]][] = [
    [
      'announce a VIP',
      [d('10.0.0.1', true)],
      [],
      ['add 10.0.0.1/32 t240 p250 m0 blackhole: quorum: x'],
    ],
    [
      'IPv6: a /128',
      [d('2001:db8::1', true)],
      [],
      ['add 2001:db8::1/128 t240 p250 m1024 blackhole: quorum: x'],
    ],
    [
      'IPv6 as the kernel keeps it (metric 0 stored as 1024): nothing',
      [d('2001:db8::1', true)],
      [ours('2001:db8::1')],
      [],
    ],
    ['already there: nothing', [d('10.0.0.1', true)], [ours('10.0.0.1')], []],
    [
      'withdraw',
      [d('10.0.0.1', false)],
      [ours('10.0.0.1')],
      ['delete 10.0.0.1/32 t240 p250 m0 blackhole: no quorum: x'],
    ],
    ['withdrawn and absent: nothing', [d('10.0.0.1', false)], [], []],
    [
      'a route of ours for a VIP no longer configured',
      [],
      [ours('10.0.0.9')],
      ['delete 10.0.0.9/32 t240 p250 m0 blackhole: not a VIP this config announces'],
    ],
    [
      'another protocol in our table is left alone, even on our VIP',
      [d('10.0.0.1', false)],
      [ours('10.0.0.1', { protocol: 4 }), ours('10.0.0.7', { protocol: 12 })],
      [],
    ],
    [
      'another table is not looked at',
      [d('10.0.0.1', false)],
      [ours('10.0.0.1', { table: 254 })],
      [],
    ],
    [
      'metric changed: the new one added before the old one goes (no gap)',
      [d('10.0.0.1', true)],
      [ours('10.0.0.1', { metric: 5 })],
      [
        'add 10.0.0.1/32 t240 p250 m0 blackhole: quorum: x',
        'delete 10.0.0.1/32 t240 p250 m5 blackhole: replaced: metric 5 type 6, wanted metric 0 type 6',
      ],
    ],
    [
      'same key, another type (a hand-made unicast of our protocol): deleted, then added',
      [d('10.0.0.1', true)],
      [ours('10.0.0.1', { type: RTN_UNICAST })],
      [
        'delete 10.0.0.1/32 t240 p250 m0 type 1: replaced: metric 0 type 1, wanted metric 0 type 6',
        'add 10.0.0.1/32 t240 p250 m0 blackhole: quorum: x',
      ],
    ],
    [
      'a wider prefix of ours: not a host route, deleted by its prefix',
      [],
      [ours('10.0.0.0', { prefix: 24 })],
      ['delete 10.0.0.0/24 t240 p250 m0 blackhole: not a VIP this config announces'],
    ],
  ];
  for (const [name, decisions, present, want] of cases)
    t.same(
      planRoutes({ settings, type: RTN_BLACKHOLE, decisions, present }).map(
        (o) => `${o.op} ${fmt(o.route)}: ${o.reason}`,
      ),
      want,
      name,
    );
});
