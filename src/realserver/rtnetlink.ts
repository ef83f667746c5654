// rtnetlink, as much as a real server's setup needs: list links and addresses, add an address,
// set a link up. The framing is the IPVS code's own (NetlinkTransport, MessageWriter,
// indexAttrs) on a NETLINK_ROUTE socket; numbers under their kernel names (linux/rtnetlink.h,
// linux/if_addr.h, linux/if_link.h, linux/if.h).
import { addressFromBytes, addressToBytes } from '../ipvs/address.js';
import { IpvsError } from '../ipvs/errors.js';
import type { Family } from '../ipvs/model.js';
import { kernelSocketFor } from '../ipvs/netlink/backend.js';
import { MalformedReply, MessageWriter, indexAttrs } from '../ipvs/netlink/codec.js';
import * as K from '../ipvs/netlink/constants.js';
import {
  NetlinkTransport,
  type RequestContext,
  type SocketFactory,
} from '../ipvs/netlink/transport.js';

export const NETLINK_ROUTE = 0;
// nlmsghdr.nlmsg_type
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
// nlmsghdr.nlmsg_flags of a NEW request
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// struct ifinfomsg and its attributes
export const IFINFOMSG_LEN = 16;
export const IFLA_IFNAME = 3;
export const IFF_UP = 0x1;
// struct ifaddrmsg and its attributes
export const IFADDRMSG_LEN = 8;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;
export const IFA_F_PERMANENT = 0x80;
export const AF_UNSPEC = 0;
export const RT_SCOPE_UNIVERSE = 0;

export interface Link {
  readonly index: number;
  readonly name: string;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
}

export interface InterfaceAddress {
  readonly index: number;
  readonly family: Family;
  readonly address: string;
  readonly prefix: number;
  /** IFA_F_* (IFA_FLAGS when the kernel sends it: the u8 in ifaddrmsg holds only the low 8). */
  readonly flags: number;
}

export interface NewAddress {
  readonly index: number;
  readonly family: Family;
  readonly address: string;
  readonly prefix: number;
  readonly nodad: boolean;
}

const AF: Record<Family, number> = { 4: K.AF_INET, 6: K.AF_INET6 };

/** RTM_NEWADDR for one address, failing with EEXIST when it is there already (NLM_F_EXCL). */
export function newAddressMessage(a: NewAddress): Buffer {
  const header = Buffer.alloc(IFADDRMSG_LEN);
  header.writeUInt8(AF[a.family], 0); // ifa_family
  header.writeUInt8(a.prefix, 1); // ifa_prefixlen
  header.writeUInt8(a.nodad ? IFA_F_NODAD : 0, 2); // ifa_flags
  header.writeUInt8(RT_SCOPE_UNIVERSE, 3); // ifa_scope: global, as `ip addr add` gives a VIP
  header.writeUInt32LE(a.index, 4); // ifa_index
  const bytes = addressToBytes(a.family, a.address).subarray(0, a.family === 4 ? 4 : 16);
  const flags = K.NLM_F_REQUEST | K.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  // IFA_LOCAL is the address itself; IFA_ADDRESS the peer on a point-to-point link, the same
  // address elsewhere (both sent, as iproute2 does).
  return new MessageWriter(RTM_NEWADDR, flags, header)
    .bytes(IFA_LOCAL, bytes)
    .bytes(IFA_ADDRESS, bytes)
    .u32(IFA_FLAGS, a.nodad ? IFA_F_NODAD : 0)
    .finish();
}

/** RTM_NEWLINK that sets IFF_UP and changes nothing else (ifi_change masks the flags). */
export function linkUpMessage(index: number): Buffer {
  const header = Buffer.alloc(IFINFOMSG_LEN);
  header.writeUInt8(AF_UNSPEC, 0); // ifi_family
  header.writeInt32LE(index, 4); // ifi_index
  header.writeUInt32LE(IFF_UP, 8); // ifi_flags
  header.writeUInt32LE(IFF_UP, 12); // ifi_change
  return new MessageWriter(RTM_NEWLINK, K.NLM_F_REQUEST | K.NLM_F_ACK, header).finish();
}

function dumpMessage(type: number, headerLength: number): Buffer {
  return new MessageWriter(
    type,
    K.NLM_F_REQUEST | K.NLM_F_DUMP,
    Buffer.alloc(headerLength),
  ).finish();
}

/** A link from an RTM_NEWLINK dump part (the payload after nlmsghdr). */
export function decodeLink(payload: Buffer): Link {
  if (payload.length < IFINFOMSG_LEN) throw new MalformedReply('link: shorter than ifinfomsg');
  const index = payload.readInt32LE(4);
  const where = `link ${index}`;
  const idx = indexAttrs(payload, IFINFOMSG_LEN, payload.length, IFLA_IFNAME, where);
  const at = idx[2 * IFLA_IFNAME] ?? -1;
  if (at < 0) throw new MalformedReply(`${where}: missing IFLA_IFNAME`);
  const len = idx[2 * IFLA_IFNAME + 1] ?? 0;
  const nul = payload.indexOf(0, at);
  const end = nul === -1 || nul > at + len ? at + len : nul;
  return {
    index,
    name: payload.toString('latin1', at, end),
    up: (payload.readUInt32LE(8) & IFF_UP) !== 0,
  };
}

/** An address from an RTM_NEWADDR dump part; null for a family other than IPv4 and IPv6. */
export function decodeAddress(payload: Buffer): InterfaceAddress | null {
  if (payload.length < IFADDRMSG_LEN) throw new MalformedReply('address: shorter than ifaddrmsg');
  const af = payload.readUInt8(0);
  const family: Family | null = af === K.AF_INET ? 4 : af === K.AF_INET6 ? 6 : null;
  if (family === null) return null;
  const index = payload.readUInt32LE(4);
  const where = `address on link ${index}`;
  const idx = indexAttrs(payload, IFADDRMSG_LEN, payload.length, IFA_FLAGS, where);
  // IFA_LOCAL, when present, is the local end; IFA_ADDRESS the peer (or the address itself).
  const type = (idx[2 * IFA_LOCAL] ?? -1) >= 0 ? IFA_LOCAL : IFA_ADDRESS;
  const at = idx[2 * type] ?? -1;
  const size = family === 4 ? 4 : 16;
  if (at < 0 || (idx[2 * type + 1] ?? 0) < size) {
    throw new MalformedReply(`${where}: missing or short IFA_ADDRESS`);
  }
  const flagsAt = idx[2 * IFA_FLAGS] ?? -1;
  return {
    index,
    family,
    address: addressFromBytes(family, payload, at),
    prefix: payload.readUInt8(1),
    flags:
      flagsAt >= 0 && (idx[2 * IFA_FLAGS + 1] ?? 0) >= 4
        ? payload.readUInt32LE(flagsAt)
        : payload.readUInt8(2),
  };
}

function wrap(err: unknown, context: RequestContext): unknown {
  if (err instanceof MalformedReply) {
    return new IpvsError('EPROTO', { ...context, detail: err.message, cause: err });
  }
  return err;
}

export interface RouteNetlinkOptions {
  /** For tests: a socket other than the kernel's. */
  readonly socketFactory?: SocketFactory;
  readonly timeoutMs?: number;
}

/** A NETLINK_ROUTE socket with the few requests a real server's setup makes. */
export class RouteNetlink {
  private constructor(private readonly transport: NetlinkTransport) {}

  static open(options: RouteNetlinkOptions = {}): RouteNetlink {
    try {
      return new RouteNetlink(
        new NetlinkTransport(options.socketFactory ?? kernelSocketFor(NETLINK_ROUTE), {
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        }),
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw IpvsError.fromErrno(typeof e.errno === 'number' ? e.errno : 0, {
        op: 'open-rtnetlink-socket',
        detail: e.message,
        cause: err,
      });
    }
  }

  private async dump<T>(message: Buffer, op: string, decode: (p: Buffer) => T): Promise<T[]> {
    try {
      return (await this.transport.request(message, { op }, true)).map(decode);
    } catch (err) {
      throw wrap(err, { op });
    }
  }

  links(): Promise<Link[]> {
    return this.dump(dumpMessage(RTM_GETLINK, IFINFOMSG_LEN), 'list-links', decodeLink);
  }

  async addresses(): Promise<InterfaceAddress[]> {
    const all = await this.dump(
      dumpMessage(RTM_GETADDR, IFADDRMSG_LEN),
      'list-addresses',
      decodeAddress,
    );
    return all.filter((a): a is InterfaceAddress => a !== null);
  }

  /** Adds an address; rejects with EEXIST when it is there already. */
  async addAddress(a: NewAddress, target: string): Promise<void> {
    await this.transport.request(newAddressMessage(a), { op: 'add-address', target });
  }

  async setUp(index: number, target: string): Promise<void> {
    await this.transport.request(linkUpMessage(index), { op: 'set-link-up', target });
  }

  close(): void {
    this.transport.close();
  }
}
