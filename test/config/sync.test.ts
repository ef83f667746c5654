// daemon.sync in the config: the defaults, every mistake at its path in one pass, the
// environment, and check-config's printed config reading back the same.
import t from 'tap';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import { ConfigError } from '../../src/config/load.js';
import { effectiveConfig } from '../../src/config/effective.js';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'x.yaml', env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
  }
  return [];
}
const doc = (sync: string): string => `daemon:\n  sync:\n${sync}\nvirtual_services: []\n`;

t.test('defaults: state none, the kernel group and port', async (t) => {
  const c = parseConfig('virtual_services: []\n', 'x.yaml', {});
  t.same(c.daemon.sync, {
    state: 'none',
    interface: '',
    syncId: 0,
    group: '224.0.0.81',
    port: 8848,
    ttl: 1,
    maxPacketLength: 0,
  });
  t.notMatch(effectiveConfig(c, CATALOG), /sync:/, 'check-config shows no sync section for none');
});

t.test('every mistake at its path, in one pass', async (t) => {
  t.same(
    problems(
      doc(`    state: primary
    interface: a-name-much-too-long
    sync_id: 256
    group: 10.0.0.1
    port: 70000
    ttl: 0
    max_packet_length: 100
    colour: blue`),
    ).sort(),
    [
      'daemon.sync.colour: unknown key',
      'daemon.sync.group: must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address, got "10.0.0.1"',
      'daemon.sync.interface: must be an interface name of at most 15 characters, got "a-name-much-too-long"',
      'daemon.sync.max_packet_length: must be 0 (from the MTU) or 1024..65507 for an IPv4 group, got 100',
      'daemon.sync.port: ports must be within range 0 - 65535: value was 70000',
      'daemon.sync.state: must be one of the possible values: ["none","master","backup","both","follow-role"]: value was "primary"',
      'daemon.sync.sync_id: must be 0..255, got 256',
      'daemon.sync.ttl: must be 1..255, got 0',
    ].sort(),
  );
  t.same(problems(doc('    state: master')), [
    'daemon.sync.interface: is needed when state is master (e.g. interface: eth0)',
  ]);
  t.same(
    problems(
      doc(
        '    state: backup\n    interface: eth0\n    group: ff02::81\n    max_packet_length: 1300',
      ),
    ),
    [],
    'an IPv6 group takes 1300',
  );
  t.same(
    problems(
      doc(
        '    state: backup\n    interface: eth0\n    group: ff02::81\n    max_packet_length: 1000',
      ),
    ),
    [
      'daemon.sync.max_packet_length: must be 0 (from the MTU) or 1024..65487 for an IPv6 group, got 1000',
    ],
    'but not 1000, which the kernel raises for a backup',
  );
  t.same(
    problems(doc('    state: master\n    interface: eth0'), { WARDEN_SYNC_TTL: '300' }),
    ['daemon.sync.ttl: must be 1..255, got 300'],
    'from the environment too',
  );
});

t.test('a full section reads, and check-config prints what reads back the same', async (t) => {
  const c = parseConfig(
    doc(`    state: both
    interface: eth1
    sync_id: 9
    group: FF02:0::81
    port: 9000
    ttl: 2
    max_packet_length: 1400`),
    'x.yaml',
    {},
  );
  t.same(c.daemon.sync, {
    state: 'both',
    interface: 'eth1',
    syncId: 9,
    group: 'ff02::81',
    port: 9000,
    ttl: 2,
    maxPacketLength: 1400,
  });
  const text = effectiveConfig(c, CATALOG);
  t.match(text, /sync:\n\s+state: both\n\s+interface: eth1/);
  t.same(parseConfig(text, 'y.yaml', {}).daemon.sync, c.daemon.sync, 'round trip');
});
