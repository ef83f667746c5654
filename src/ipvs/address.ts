// Address text <-> kernel bytes, and the one canonical text form used for every key comparison.
import ipaddr from 'ipaddr.js';
import type { Family } from './model.js';

/** Canonical text of an address of the given family, or null when it is not one. */
export function canonicalAddress(family: Family, text: string): string | null {
  if (family === 4) {
    if (CANONICAL_V4.test(text)) return text;
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

/** Canonical dotted quad (no leading zeros): the common case, checked without a parser. */
const CANONICAL_V4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** union nf_inet_addr: 16 bytes, an IPv4 address in the first 4, written at `offset` of `out`. */
export function writeAddress(family: Family, text: string, out: Buffer, offset: number): void {
  if (family === 4 && writeDottedQuad(text, out, offset)) return;
  out.fill(0, offset, offset + 16);
  const bytes =
    family === 4 ? ipaddr.IPv4.parse(text).toByteArray() : ipaddr.IPv6.parse(text).toByteArray();
  out.set(bytes, offset);
}

/**
 * A canonical dotted quad (as CANONICAL_V4) read by hand into out[offset..offset+16): a write of
 * 10,000 destinations encodes 20,000 addresses. False, with `out` untouched, for any other text.
 */
function writeDottedQuad(text: string, out: Buffer, offset: number): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  let value = 0;
  let digits = 0;
  let octets = 0;
  let word = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46; // the end closes the last octet as a '.' would
    if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else if (c === 46 && digits > 0 && octets < 4) {
      word = (word << 8) | value;
      octets++;
      value = 0;
      digits = 0;
    } else return false;
  }
  if (octets !== 4) return false;
  out[offset] = word >>> 24;
  out[offset + 1] = (word >>> 16) & 255;
  out[offset + 2] = (word >>> 8) & 255;
  out[offset + 3] = word & 255;
  for (let i = 4; i < 16; i++) out[offset + i] = 0;
  return true;
}

export function addressToBytes(family: Family, text: string): Buffer {
  const out = Buffer.alloc(16);
  writeAddress(family, text, out, 0);
  return out;
}

/** "0.".."255.": a dump formats 10,000 addresses, and a table lookup beats number-to-text. */
const DOTTED = Array.from({ length: 256 }, (_, i) => `${i}.`);
const octet = (b: number | undefined): string => DOTTED[b ?? 0] ?? '';

export function addressFromBytes(family: Family, bytes: Uint8Array, offset = 0): string {
  if (family === 4) {
    return (
      octet(bytes[offset]) +
      octet(bytes[offset + 1]) +
      octet(bytes[offset + 2]) +
      String(bytes[offset + 3] ?? 0)
    );
  }
  return formatV6(Array.from(bytes.subarray(offset, offset + 16)));
}

/** RFC 5952 text, with the dotted tail inet_ntop prints for IPv4-mapped addresses. */
function formatV6(bytes: number[]): string {
  const addr = ipaddr.fromByteArray(bytes) as ipaddr.IPv6;
  if (addr.isIPv4MappedAddress()) return `::ffff:${addr.toIPv4Address().toString()}`;
  return addr.toRFC5952String();
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
