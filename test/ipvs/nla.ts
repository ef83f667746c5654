// Netlink attributes built by hand for the decoder and transport tests: written here, apart
// from the codec's own encoder, so a fault in that encoder cannot hide in what the tests feed.

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
