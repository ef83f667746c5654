// `announce` per service and daemon.announce: defaults, inheritance, every mistake at its path.
import t from 'tap';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { configProblems } from './problems.js';

const services = `virtual_services:
  - {name: web, address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.1}]}
  - {name: tls, address: 192.0.2.1, port: 443, announce: false, real_servers: [{address: 10.0.0.1}]}
  - {name: mark, fwmark: 7, checks: [], real_servers: [{address: 10.0.0.1}]}
`;

t.test(
  'defaults: off, table 240, protocol 250, metric 0, hold 3s; inherited from defaults',
  async (t) => {
    const off = parseConfig(services, 'x.yaml', {});
    t.same(
      off.virtualServices.map((v) => v.announce),
      [false, false, false],
    );
    t.same(off.daemon.announce, { table: 240, protocol: 250, metric: 0, withdrawHoldMs: 3000 });
    const on = parseConfig(`defaults:\n  announce: true\n${services}`, 'x.yaml', {});
    t.same(
      on.virtualServices.map((v) => [v.name, v.announce]),
      [
        ['web', true],
        ['tls', false],
        ['mark', false],
      ],
      'a service says no for itself; a fwmark service has no VIP and passes the default by',
    );
    const text = effectiveConfig(on, CATALOG);
    t.match(
      text,
      /announce:\n {4}table: 240\n {4}protocol: 250\n {4}metric: 0\n {4}withdraw_hold: 3s/,
    );
    t.same(
      parseConfig(text, 'again.yaml', {}).virtualServices.map((v) => v.announce),
      [true, false, false],
      "check-config's output reads back the same",
    );
    const env = parseConfig(services, 'x.yaml', { WARDEN_ANNOUNCE_TABLE: '4093' });
    t.equal(env.daemon.announce.table, 4093, 'the environment');
    const hold = parseConfig(
      `daemon:\n  announce: {withdraw_hold: 1500ms}\n${services}`,
      'x.yaml',
      {
        WARDEN_ANNOUNCE_TABLE: '4093',
      },
    );
    t.equal(hold.daemon.announce.withdrawHoldMs, 1500);
    t.equal(
      parseConfig(effectiveConfig(hold, CATALOG), 'again.yaml', {}).daemon.announce.withdrawHoldMs,
      1500,
    );
  },
);

t.test('every mistake at its path, in one pass', async (t) => {
  t.same(
    configProblems(`daemon:
  announce: {table: 254, protocol: 12, metric: -1}
defaults:
  announce: yes please
virtual_services:
  - {name: mark, fwmark: 7, announce: true, checks: [], real_servers: [{address: 10.0.0.1}]}
`),
    [
      'daemon.announce.metric: must be a positive integer: value was -1',
      "daemon.announce.table: must be a table of its own, 1..252 or 256..4294967295 (253 default, 254 main and 255 local carry the director's own routes), got 254",
      "daemon.announce.protocol: 12 is bird's: routes of it are not ours; pick an unnamed number (the default is 250)",
      'defaults.announce: must be true or false, got "yes please"',
      'virtual_services.0.announce: a fwmark service has no VIP of its own to announce: set announce on an address service of the same VIP (protocol, address, port), or remove it here',
    ],
  );
  t.same(configProblems('daemon:\n  announce: {table: 0, protocol: 3}\nvirtual_services: []\n'), [
    "daemon.announce.table: must be a table of its own, 1..252 or 256..4294967295 (253 default, 254 main and 255 local carry the director's own routes), got 0",
    "daemon.announce.protocol: 3 is boot (what `ip route add` writes)'s: routes of it are not ours; pick an unnamed number (the default is 250)",
  ]);
  t.same(configProblems('daemon:\n  announce: {protocol: 300}\nvirtual_services: []\n'), [
    'daemon.announce.protocol: must be 5..255 (a u8), got 300',
  ]);
  t.same(configProblems('daemon:\n  announce: {withdraw_hold: 2m}\nvirtual_services: []\n'), [
    "daemon.announce.withdraw_hold: must be at most 1m (the routers' time to move new flows away), got 2m",
  ]);
  t.match(configProblems('daemon:\n  announce: {withdraw_hold: soon}\nvirtual_services: []\n'), [
    /^daemon\.announce\.withdraw_hold: /,
  ]);
});
