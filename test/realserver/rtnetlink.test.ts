// The rtnetlink messages byte by byte, and the decoders on what the encoders write (the kernel's
// dump replies have the same layout: ifaddrmsg or ifinfomsg, then attributes).
import t from 'tap';
import * as K from '../../src/ipvs/netlink/constants.js';
import {
  IFA_F_NODAD,
  IFF_UP,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RTM_NEWADDR,
  RTM_NEWLINK,
  decodeAddress,
  decodeLink,
  linkUpMessage,
  newAddressMessage,
} from '../../src/realserver/rtnetlink.js';

t.test('RTM_NEWADDR: header, flags, and what decodeAddress reads back', async (t) => {
  const m = newAddressMessage({
    index: 7,
    family: 4,
    address: '10.0.0.100',
    prefix: 32,
    nodad: false,
  });
  t.equal(m.readUInt32LE(0), m.length, 'nlmsg_len');
  t.equal(m.readUInt16LE(4), RTM_NEWADDR);
  t.equal(m.readUInt16LE(6), K.NLM_F_REQUEST | K.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  // ifaddrmsg: family, prefixlen, flags, scope, index; then IFA_LOCAL, IFA_ADDRESS (4 bytes each), IFA_FLAGS.
  t.same([...m.subarray(16, 20)], [K.AF_INET, 32, 0, 0]);
  t.equal(m.readUInt32LE(20), 7);
  t.equal(m.length, 16 + 8 + 8 + 8 + 8);
  t.same(decodeAddress(m.subarray(16)), {
    index: 7,
    family: 4,
    address: '10.0.0.100',
    prefix: 32,
    flags: 0,
  });
  const m6 = newAddressMessage({
    index: 1,
    family: 6,
    address: '2001:db8::100',
    prefix: 128,
    nodad: true,
  });
  t.equal(m6.readUInt8(16 + 2), IFA_F_NODAD);
  t.same(decodeAddress(m6.subarray(16)), {
    index: 1,
    family: 6,
    address: '2001:db8::100',
    prefix: 128,
    flags: IFA_F_NODAD,
  });
});

t.test('RTM_NEWLINK sets IFF_UP alone; decodeLink reads name and state', async (t) => {
  const m = linkUpMessage(3);
  t.equal(m.readUInt16LE(4), RTM_NEWLINK);
  t.equal(m.readInt32LE(16 + 4), 3, 'ifi_index');
  t.equal(m.readUInt32LE(16 + 8), IFF_UP, 'ifi_flags');
  t.equal(m.readUInt32LE(16 + 12), IFF_UP, 'ifi_change: no other flag touched');
  const name = Buffer.from('tunl0\0');
  const attr = Buffer.alloc(4 + 8);
  attr.writeUInt16LE(4 + name.length, 0);
  attr.writeUInt16LE(3, 2); // IFLA_IFNAME
  name.copy(attr, 4);
  const payload = Buffer.concat([m.subarray(16, 32), attr]);
  t.same(decodeLink(payload), { index: 3, name: 'tunl0', up: true });
  t.throws(() => decodeLink(m.subarray(16, 32)), /missing IFLA_IFNAME/);
  t.throws(() => decodeLink(Buffer.alloc(8)), /shorter than ifinfomsg/);
});

t.test(
  'decodeAddress skips families other than IPv4 and IPv6, rejects a short address',
  async (t) => {
    const other = Buffer.alloc(8);
    other.writeUInt8(17, 0); // AF_PACKET
    t.equal(decodeAddress(other), null);
    const short = Buffer.alloc(8 + 8);
    short.writeUInt8(K.AF_INET6, 0);
    short.writeUInt16LE(8, 8);
    short.writeUInt16LE(1, 10); // IFA_ADDRESS with 4 bytes for IPv6
    t.throws(() => decodeAddress(short), /missing or short IFA_ADDRESS/);
  },
);
