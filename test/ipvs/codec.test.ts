// The destination decoder on hand-built messages: statistics of every width (u32, u64 below and
// above 2^53), malformed parts named by the destination they belong to, and the listing order
// of sortDestinations against destinationSortKey's. And the writer: each kind of attribute where
// it makes the message outgrow its buffer.
import t from 'tap';
import {
  MalformedReply,
  MessageWriter,
  decodeDestination,
  decodeDestinationLayout,
  indexAttrs,
} from '../../src/ipvs/netlink/codec.js';
import * as K from '../../src/ipvs/netlink/constants.js';
import type { DestinationKey } from '../../src/ipvs/model.js';
import { destinationSortKey, sortBy, sortDestinations } from '../../src/ipvs/spec.js';
import { destinationAttrs, nla, u32 } from './nla.js';

const nest = (type: number, ...attrs: Buffer[]): Buffer =>
  nla(type | K.NLA_F_NESTED, Buffer.concat(attrs));
function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

const STAT_TYPES = [
  K.IPVS_STATS_ATTR_CONNS,
  K.IPVS_STATS_ATTR_INPKTS,
  K.IPVS_STATS_ATTR_OUTPKTS,
  K.IPVS_STATS_ATTR_INBYTES,
  K.IPVS_STATS_ATTR_OUTBYTES,
  K.IPVS_STATS_ATTR_CPS,
  K.IPVS_STATS_ATTR_INPPS,
  K.IPVS_STATS_ATTR_OUTPPS,
  K.IPVS_STATS_ATTR_INBPS,
  K.IPVS_STATS_ATTR_OUTBPS,
];

/** A NEW_DEST payload (after nlmsghdr) for 192.0.2.7:8080 with these statistics. */
function destPayload(stats: Buffer[], statsType: number = K.IPVS_DEST_ATTR_STATS64): Buffer {
  return Buffer.concat([
    Buffer.from([K.IPVS_CMD_NEW_DEST, 1, 0, 0]),
    nest(
      K.IPVS_CMD_ATTR_DEST,
      ...destinationAttrs(7, { weight: 3, active: 1, inactive: 2 }),
      nest(statsType, ...stats.map((v, i) => nla(STAT_TYPES[i]!, v))),
    ),
  ]);
}

t.test('statistics decode at every width the kernel sends', async (t) => {
  const values = [
    0n,
    1n,
    0xffffffffn,
    0x100000000n,
    2n ** 53n - 1n,
    2n ** 53n + 1n,
    2n ** 64n - 1n,
    12345678901234n,
    0n,
    7n,
  ];
  const d = decodeDestination(destPayload(values.map(u64)), 4);
  t.same(d.key, { family: 4, address: '192.0.2.7', port: 8080 });
  t.equal(d.weight, 3);
  t.equal(d.activeConns, 1);
  t.same(Object.values(d.stats), values, 'u64 values, exact beyond 2^53');

  // The older STATS: u32 counters and rates (the kernel's own mix of widths).
  const old = decodeDestination(
    destPayload([5, 0, 6, 7, 8, 9, 0, 1, 2, 3].map(u32), K.IPVS_DEST_ATTR_STATS),
    4,
  );
  t.same(Object.values(old.stats), [5n, 0n, 6n, 7n, 8n, 9n, 0n, 1n, 2n, 3n]);
});

t.test('a malformed destination is refused, naming the destination and the field', async (t) => {
  const good = Array.from({ length: 10 }, () => u64(0n));
  const odd = [...good];
  odd[3] = Buffer.alloc(6);
  t.throws(() => decodeDestination(destPayload(odd), 4), {
    name: 'MalformedReply',
    message: 'destination 192.0.2.7:8080: statistic inBytes has 6 bytes',
  });
  const missing = good.slice(0, 9);
  t.throws(() => decodeDestination(destPayload(missing), 4), {
    message: 'destination 192.0.2.7:8080: missing statistic outBps',
  });
  const p = destPayload(good);
  // The nest's length made to run past the message: nothing after it can be trusted.
  p.writeUInt16LE(p.length, 4);
  t.throws(() => decodeDestination(p, 4), MalformedReply);
  t.throws(() => decodeDestination(p, 4), {
    message: `destination: attribute ${K.IPVS_CMD_ATTR_DEST} has length ${p.length}, ${p.length - 4} bytes left`,
  });
  // A short genl header.
  t.throws(() => decodeDestination(Buffer.alloc(2), 4), {
    message: 'destination: message shorter than a genl header',
  });
  // One error does not poison the next decode (the readers are reused).
  t.equal(decodeDestination(destPayload(good), 4).key.address, '192.0.2.7');
});

t.test(
  'a layout read is the destination without its statistics, which it never reads',
  async (t) => {
    const good = Array.from({ length: 10 }, (_, i) => u64(BigInt(i)));
    const { stats: _stats, ...settings } = decodeDestination(destPayload(good), 4);
    const layout = decodeDestinationLayout(destPayload(good), 4);
    t.same(layout, settings);
    t.notOk('stats' in layout, 'no statistics property at all');
    const odd = [...good];
    odd[3] = Buffer.alloc(6);
    t.equal(decodeDestinationLayout(destPayload(odd), 4).weight, 3, 'statistics are not checked');
    const p = destPayload(good);
    p.writeUInt16LE(p.length, 4);
    t.throws(() => decodeDestinationLayout(p, 4), MalformedReply, 'the attributes still are');
  },
);

t.test('sortDestinations lists as destinationSortKey orders', async (t) => {
  const v4: DestinationKey[] = [];
  for (let i = 0; i < 300; i++) {
    v4.push({
      family: 4,
      address: `10.${(i * 7) % 3}.${(i * 13) % 256}.${(i * 31) % 256}`,
      port: (i * 97) % 65536,
    });
  }
  const v6: DestinationKey[] = [
    { family: 6, address: '2001:db8::2', port: 80 },
    { family: 6, address: '2001:db8::1', port: 443 },
  ];
  const items = (keys: DestinationKey[]): { key: DestinationKey }[] => keys.map((key) => ({ key }));
  const expected = (xs: { key: DestinationKey }[]): { key: DestinationKey }[] =>
    sortBy(xs, (d) => destinationSortKey(d.key));
  for (const [name, xs] of [
    ['shuffled IPv4', items(v4)],
    ['ascending', expected(items(v4))],
    ['descending (as the kernel lists a table written in order)', expected(items(v4)).reverse()],
    ['mixed families', items([...v6, ...v4])],
    ['one', items(v4.slice(0, 1))],
    ['none', []],
  ] as const) {
    t.same(sortDestinations(xs), expected([...xs]), name);
  }
});

t.test('an attribute that makes a message outgrow its buffer is written whole', async (t) => {
  // Each kind, after fillers of every length that puts its header around the first buffer's
  // end (256 bytes): its bytes must be read back where the message says they are.
  const kinds: [string, (w: MessageWriter) => void, Buffer][] = [
    ['u8', (w) => w.u8(2, 0xab), Buffer.from([0xab])],
    ['u16', (w) => w.u16(2, 0xabcd), Buffer.from([0xcd, 0xab])],
    ['u32', (w) => w.u32(2, 0xdeadbeef), Buffer.from([0xef, 0xbe, 0xad, 0xde])],
    ['be16', (w) => w.be16(2, 0xabcd), Buffer.from([0xab, 0xcd])],
    ['be32', (w) => w.be32(2, 0xdeadbeef), Buffer.from([0xde, 0xad, 0xbe, 0xef])],
    ['u32pair', (w) => w.u32pair(2, 1, 0xffffffff), Buffer.from([1, 0, 0, 0, 255, 255, 255, 255])],
    ['string', (w) => w.string(2, 'wlc'), Buffer.from('wlc\0')],
    ['bytes', (w) => w.bytes(2, Buffer.from([9, 8, 7, 6, 5])), Buffer.from([9, 8, 7, 6, 5])],
    [
      'address',
      (w) => w.address(2, 4, '192.0.2.7'),
      Buffer.from([192, 0, 2, 7, ...new Array<number>(12).fill(0)]),
    ],
  ];
  for (const [kind, write, bytes] of kinds) {
    for (let fill = 200; fill <= 244; fill += 4) {
      const w = new MessageWriter(0x20, 0, 1, 1);
      w.bytes(1, Buffer.alloc(fill, 0x55));
      write(w);
      const m = w.finish();
      const idx = indexAttrs(m, K.NLMSG_HDRLEN + K.GENL_HDRLEN, m.length, 2, 'test');
      const at = idx[4] ?? -1;
      t.same(
        [...m.subarray(at, at + (idx[5] ?? 0))],
        [...bytes],
        `${kind} after ${fill} bytes of filler (a ${m.length}-byte message)`,
      );
    }
  }
});
