// bench:read's socket answers a table read as IPVS does: every service and destination it was
// built with comes back through the netlink backend, whole, in order, statistics included, over
// dumps of several datagrams each.
import t from 'tap';
import { NetlinkBackend } from '../../src/ipvs/netlink/backend.js';
import { readTable } from '../../bench/read.js';

t.test('a read through the bench socket returns the table it was built with', async (t) => {
  const services = 3;
  const perService = 250; // more than one 32 KiB datagram a service
  const table = readTable(services, perService);
  t.ok(table.datagramsPerRead > 2 * services, `${table.datagramsPerRead} datagrams a read`);
  const backend = await NetlinkBackend.open({ socketFactory: table.factory, dumpLanes: 2 });
  try {
    for (const read of [await backend.layout(), await backend.table()]) {
      t.same(
        read.map((e) => e.service.key),
        [0, 1, 2].map((s) => ({ family: 4, protocol: 'tcp', address: `10.100.0.${s}`, port: 80 })),
      );
      for (const [s, e] of read.entries()) {
        t.equal(e.destinations.length, perService, `service ${s}: every destination`);
        const addresses = e.destinations.map((d) => d.key.address);
        const i = (d: number): number => s * perService + d;
        const expected = Array.from(
          { length: perService },
          (_, d) => `10.128.${(i(d) >> 8) & 0xff}.${i(d) & 0xff}`,
        );
        t.same(addresses, expected, `service ${s}: in order`);
        t.same(
          e.destinations.map((d) => d.weight),
          expected.map((_, d) => 1 + (i(d) % 100)),
        );
      }
    }
    const [first] = await backend.table();
    const stats = first?.destinations[1]?.stats;
    t.same(stats?.conns, BigInt((1 * 7 + 1) % 1000), 'statistics decoded (64-bit ones)');
  } finally {
    await backend.close();
  }
});
