// rtnetlink, as much as a real server's setup and a director's VIP announcement need: list links
// and addresses, add an address, set a link up; list, add and delete host routes in one table. The framing is the IPVS code's own (NetlinkTransport, MessageWriter,
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
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
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
// struct rtmsg (linux/rtnetlink.h) and its attributes
export const RTMSG_LEN = 12;
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_PRIORITY = 6;
export const RTA_TABLE = 15;
/** rtm_table when the table id is in RTA_TABLE only (ids above 255). */
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
// rtm_type
export const RTN_UNICAST = 1;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
// rtm_protocol: who installed a route (RTPROT_STATIC is what `ip route add` uses by default)
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

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

/** The route types an announcement may use: no next hop, so nothing to keep in step. */
export type RouteType = 'blackhole' | 'unreachable' | 'prohibit';
export const ROUTE_TYPES: Record<RouteType, number> = {
  blackhole: RTN_BLACKHOLE,
  unreachable: RTN_UNREACHABLE,
  prohibit: RTN_PROHIBIT,
};

/**
 * A route as the announcement sees it: the destination prefix in one table, under one protocol
 * number. Its identity in the kernel is (family, table, destination, prefix, metric); type and
 * protocol are attributes (a second route of the same key is EEXIST, whoever installed it).
 */
export interface Route {
  readonly family: Family;
  readonly table: number;
  readonly address: string;
  readonly prefix: number;
  readonly metric: number;
  readonly protocol: number;
  /** rtm_type (RTN_*), as a number so any route in the table can be read. */
  readonly type: number;
}

function routeHeader(r: Route, type: number): Buffer {
  const header = Buffer.alloc(RTMSG_LEN);
  header.writeUInt8(AF[r.family], 0); // rtm_family
  header.writeUInt8(r.prefix, 1); // rtm_dst_len
  header.writeUInt8(r.table < 256 ? r.table : RT_TABLE_UNSPEC, 4); // rtm_table
  header.writeUInt8(r.protocol, 5); // rtm_protocol
  header.writeUInt8(RT_SCOPE_UNIVERSE, 6); // rtm_scope: a route with no next hop is global
  header.writeUInt8(type, 7); // rtm_type
  return header;
}

function routeMessage(type: number, flags: number, r: Route, rtmType: number): Buffer {
  const bytes = addressToBytes(r.family, r.address).subarray(0, r.family === 4 ? 4 : 16);
  // RTA_TABLE always (iproute2 sends it only above 255; the kernel takes it over rtm_table).
  return new MessageWriter(type, flags, routeHeader(r, rtmType))
    .bytes(RTA_DST, bytes)
    .u32(RTA_TABLE, r.table)
    .u32(RTA_PRIORITY, r.metric)
    .finish();
}

/** RTM_NEWROUTE for one route, failing with EEXIST when its key is taken (NLM_F_EXCL). */
export function newRouteMessage(r: Route): Buffer {
  const flags = K.NLM_F_REQUEST | K.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  return routeMessage(RTM_NEWROUTE, flags, r, r.type);
}

/**
 * RTM_DELROUTE for one route, matching its protocol and type too (the kernel compares the
 * ones that are not 0), so a route of the same key someone else installed is not ours to delete.
 */
export function delRouteMessage(r: Route): Buffer {
  return routeMessage(RTM_DELROUTE, K.NLM_F_REQUEST | K.NLM_F_ACK, r, r.type);
}

/** A route from an RTM_NEWROUTE dump part; null for a family other than IPv4 and IPv6. */
export function decodeRoute(payload: Buffer): Route | null {
  if (payload.length < RTMSG_LEN) throw new MalformedReply('route: shorter than rtmsg');
  const af = payload.readUInt8(0);
  const family: Family | null = af === K.AF_INET ? 4 : af === K.AF_INET6 ? 6 : null;
  if (family === null) return null;
  const prefix = payload.readUInt8(1);
  const where = `route (family ${af}, /${prefix})`;
  const idx = indexAttrs(payload, RTMSG_LEN, payload.length, RTA_TABLE, where);
  const size = family === 4 ? 4 : 16;
  const dstAt = idx[2 * RTA_DST] ?? -1;
  if (dstAt >= 0 && (idx[2 * RTA_DST + 1] ?? 0) < size)
    throw new MalformedReply(`${where}: short RTA_DST`);
  const u32 = (type: number): number | null => {
    const at = idx[2 * type] ?? -1;
    return at >= 0 && (idx[2 * type + 1] ?? 0) >= 4 ? payload.readUInt32LE(at) : null;
  };
  return {
    family,
    table: u32(RTA_TABLE) ?? payload.readUInt8(4),
    // No RTA_DST: the default route (0.0.0.0/0, ::/0).
    address:
      dstAt >= 0 ? addressFromBytes(family, payload, dstAt) : family === 4 ? '0.0.0.0' : '::',
    prefix,
    metric: u32(RTA_PRIORITY) ?? 0,
    protocol: payload.readUInt8(5),
    type: payload.readUInt8(7),
  };
}

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

  /**
   * The routes of one family in every table (without NETLINK_GET_STRICT_CHK the kernel filters
   * a dump by family only): the caller picks its table.
   */
  async routes(family: Family): Promise<Route[]> {
    const header = Buffer.alloc(RTMSG_LEN);
    header.writeUInt8(AF[family], 0);
    const message = new MessageWriter(
      RTM_GETROUTE,
      K.NLM_F_REQUEST | K.NLM_F_DUMP,
      header,
    ).finish();
    const all = await this.dump(message, 'list-routes', decodeRoute);
    return all.filter((r): r is Route => r !== null);
  }

  /** Adds a route; rejects with EEXIST when a route of its key is there (anyone's). */
  async addRoute(r: Route, target: string): Promise<void> {
    await this.transport.request(newRouteMessage(r), { op: 'add-route', target });
  }

  /** Deletes a route of this protocol and type; ESRCH when there is none. */
  async deleteRoute(r: Route, target: string): Promise<void> {
    await this.transport.request(delRouteMessage(r), { op: 'delete-route', target });
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
