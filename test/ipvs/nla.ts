// Netlink attributes built by hand for the decoder and transport tests: written here, apart
// from the codec's own encoder, so a fault in that encoder cannot hide in what the tests feed.
import * as K from '../../src/ipvs/netlink/constants.js';

/** One attribute: length, type, the data, padded to 4 bytes. */
export function nla(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc((4 + data.length + 3) & ~3);
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

export const u16 = (v: number): Buffer => Buffer.from(new Uint16Array([v]).buffer);
export const u32 = (v: number): Buffer => Buffer.from(new Uint32Array([v]).buffer);

/**
 * A destination's attributes as the kernel dumps them, in its order: 192.0.2.`host`:8080, IPv4,
 * masquerading, no thresholds; its statistics are the caller's to add.
 */
export function destinationAttrs(
  host: number,
  counts: { weight: number; active: number; inactive: number },
): Buffer[] {
  const addr = Buffer.alloc(16);
  addr.set([192, 0, 2, host]);
  return [
    nla(K.IPVS_DEST_ATTR_ADDR, addr),
    nla(K.IPVS_DEST_ATTR_PORT, Buffer.from([0x1f, 0x90])),
    nla(K.IPVS_DEST_ATTR_FWD_METHOD, u32(K.IP_VS_CONN_F_MASQ)),
    nla(K.IPVS_DEST_ATTR_WEIGHT, u32(counts.weight)),
    nla(K.IPVS_DEST_ATTR_U_THRESH, u32(0)),
    nla(K.IPVS_DEST_ATTR_L_THRESH, u32(0)),
    nla(K.IPVS_DEST_ATTR_ACTIVE_CONNS, u32(counts.active)),
    nla(K.IPVS_DEST_ATTR_INACT_CONNS, u32(counts.inactive)),
    nla(K.IPVS_DEST_ATTR_PERSIST_CONNS, u32(0)),
    nla(K.IPVS_DEST_ATTR_ADDR_FAMILY, u16(K.AF_INET)),
  ];
}
