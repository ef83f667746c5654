// Address text <-> kernel bytes, and the one canonical text form used for every key comparison.
import ipaddr from 'ipaddr.js';
import type { Family } from './model.js';

/** Canonical text of an address of the given family, or null when it is not one. */
export function canonicalAddress(family: Family, text: string): string | null {
  if (family === 4) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
    return ipaddr.IPv4.parse(text).toString();
  }
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!ipaddr.IPv6.isValid(bare) || bare.includes('%')) return null;
  return formatV6(ipaddr.IPv6.parse(bare).toByteArray());
}

/** The family of an address text, or null. */
export function familyOf(text: string): Family | null {
  if (canonicalAddress(4, text) !== null) return 4;
  if (canonicalAddress(6, text) !== null) return 6;
  return null;
}

/** union nf_inet_addr: 16 bytes, an IPv4 address in the first 4. */
export function addressToBytes(family: Family, text: string): Buffer {
  const out = Buffer.alloc(16);
  const bytes =
    family === 4 ? ipaddr.IPv4.parse(text).toByteArray() : ipaddr.IPv6.parse(text).toByteArray();
  out.set(bytes, 0);
  return out;
}

export function addressFromBytes(family: Family, bytes: Uint8Array): string {
  if (family === 4) return ipaddr.fromByteArray(Array.from(bytes.subarray(0, 4))).toString();
  return formatV6(Array.from(bytes.subarray(0, 16)));
}

/** RFC 5952 text, with the dotted tail inet_ntop prints for IPv4-mapped addresses. */
function formatV6(bytes: number[]): string {
  const addr = ipaddr.fromByteArray(bytes) as ipaddr.IPv6;
  if (addr.isIPv4MappedAddress()) return `::ffff:${addr.toIPv4Address().toString()}`;
  return addr.toRFC5952String();
}

/** Byte-wise order of two canonical addresses of one family (for sorted output). */
export function compareAddresses(family: Family, a: string, b: string): number {
  return Buffer.compare(addressToBytes(family, a), addressToBytes(family, b));
}

/** What kind of unicast target an address can be (the kernel refuses the others as destinations). */
export function addressRange(family: Family, text: string): string {
  return family === 4 ? ipaddr.IPv4.parse(text).range() : ipaddr.IPv6.parse(text).range();
}

/** Prefix length of a contiguous IPv4 netmask (255.255.255.0 -> 24), or null if not contiguous. */
export function prefixFromMask(mask: number): number | null {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return null;
  return Math.clz32(inv);
}

export function maskFromPrefix(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}
