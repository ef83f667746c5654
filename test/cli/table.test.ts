// The table command's formatting: the ipvsadm-shaped columns (checked against ipvsadm itself in
// the kernel lane) and what ipvsadm has no equivalent for: counters beside them, exact JSON.
import t from 'tap';
import { formatTable, humanCount, serviceLine, tableJson } from '../../src/cli/table.js';
import { ZERO_STATS, type TableEntry } from '../../src/ipvs/model.js';
import { destinationSpec, serviceSpec } from '../../src/ipvs/spec.js';

const big = 2n ** 63n + 5n;
const entry: TableEntry = {
  service: {
    ...serviceSpec({
      key: { family: 4, protocol: 'udp', address: '10.0.0.1', port: 5060 },
      scheduler: 'sh',
      schedFlags: 3,
      persistent: true,
      pe: 'sip',
      onePacket: true,
      netmask: 24,
    }),
    stats: { ...ZERO_STATS, conns: 123456n, outBytes: big },
  },
  destinations: [
    {
      ...destinationSpec({
        key: { family: 6, address: '2001:db8::1', port: 5060 },
        fwd: 'tunnel',
        weight: 7,
      }),
      activeConns: 3,
      inactiveConns: 4,
      persistentConns: 0,
      stats: { ...ZERO_STATS, conns: 99999n },
    },
  ],
};

t.test('service lines read as ipvsadm prints them', async (t) => {
  t.equal(
    serviceLine(entry.service),
    'UDP  10.0.0.1:5060 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0 pe sip ops',
  );
  t.equal(
    serviceLine(
      serviceSpec({ key: { family: 6, fwmark: 9 }, scheduler: 'rr', schedFlags: 4 }) as never,
    ),
    'FWM  9 IPv6 rr (flag-3)',
  );
});

t.test('counters are shortened like ipvsadm unless exact', async (t) => {
  t.same(
    [0n, 99_999_999n, 123_456_789n, 12_345_678_901n, 1_234_567_890_123n, big].map(humanCount),
    ['0', '99999999', '123456K', '12345M', '1234G', '9223372T'],
  );
  const text = formatTable({ version: '1.2.1', connTableSize: 4096 }, [entry]);
  t.match(text, /^UDP {2}10\.0\.0\.1:5060 .* ops +123456 +0 +0 +0 +9223372T$/m);
  t.match(text, /^ {2}-> \[2001:db8::1\]:5060 +Tunnel +7 +3 +4 +99999 +0 +0 +0 +0$/m);
  t.match(
    formatTable({ version: '1.2.1', connTableSize: 4096 }, [entry], { exact: true }),
    /123456 .* 9223372036854775813$/m,
  );
});

t.test('JSON keeps 64-bit counters exact', async (t) => {
  const json = tableJson({ version: '1.2.1', connTableSize: 4096 }, [entry]);
  t.match(json, /"outBytes": 9223372036854775813/);
  const doc = JSON.parse(json) as { services: { destinations: { weight: number }[] }[] };
  t.equal(doc.services[0]?.destinations[0]?.weight, 7);
});
