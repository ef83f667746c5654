// Encoders and decoders of IPVS generic-netlink messages: one small pair per object, kernel
// attribute names beside each field. Decoders reject what they cannot read; they never guess.
import { formatAttribute, formatGenlHeader, formatHeader, parseAttributes, pad } from 'netlink';
import { addressFromBytes, addressToBytes, maskFromPrefix, prefixFromMask } from '../address.js';
import type {
  DestinationKey,
  DestinationSpec,
  DestinationState,
  Family,
  ForwardMethod,
  IpvsInfo,
  Protocol,
  ServiceKey,
  ServiceSpec,
  ServiceState,
  Stats,
  Timeouts,
  TunnelType,
} from '../model.js';
import { isFwmark } from '../model.js';
import * as K from './constants.js';

/** A reply the decoder could not read; the caller turns it into an EPROTO IpvsError. */
export class MalformedReply extends Error {
  override readonly name = 'MalformedReply';
}

type Chunks = Uint8Array[];

// ---------- encoding

const u8 = (v: number): Buffer => Buffer.of(v);
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
function be16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'latin1');

function attr(type: number, data: Uint8Array | Chunks): Chunks {
  return pad(formatAttribute({ type, data }));
}
/** NLA_F_NESTED set, as the kernel's strict validation expects of nested attributes. */
function nest(type: number, children: Chunks[]): Chunks {
  return pad(formatAttribute({ type, nested: true, data: children.flat() }));
}

const AF: Record<Family, number> = { 4: K.AF_INET, 6: K.AF_INET6 };
const PROTO: Record<Protocol, number> = {
  tcp: K.IPPROTO_TCP,
  udp: K.IPPROTO_UDP,
  sctp: K.IPPROTO_SCTP,
};
const FWD: Record<ForwardMethod, number> = {
  masq: K.IP_VS_CONN_F_MASQ,
  local: K.IP_VS_CONN_F_LOCALNODE,
  tunnel: K.IP_VS_CONN_F_TUNNEL,
  route: K.IP_VS_CONN_F_DROUTE,
  bypass: K.IP_VS_CONN_F_BYPASS,
};
const TUN: Record<TunnelType, number> = {
  ipip: K.IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
  gue: K.IP_VS_CONN_F_TUNNEL_TYPE_GUE,
  gre: K.IP_VS_CONN_F_TUNNEL_TYPE_GRE,
};

function serviceKeyAttrs(key: ServiceKey): Chunks[] {
  const attrs = [attr(K.IPVS_SVC_ATTR_AF, u16(AF[key.family]))];
  if (isFwmark(key)) {
    attrs.push(attr(K.IPVS_SVC_ATTR_FWMARK, u32(key.fwmark)));
  } else {
    attrs.push(
      attr(K.IPVS_SVC_ATTR_PROTOCOL, u16(PROTO[key.protocol])),
      attr(K.IPVS_SVC_ATTR_ADDR, addressToBytes(key.family, key.address)),
      attr(K.IPVS_SVC_ATTR_PORT, be16(key.port)),
    );
  }
  return attrs;
}

/** IPVS_CMD_ATTR_SERVICE identifying a service (for delete, get, zero, and destination commands). */
export function encodeServiceKey(key: ServiceKey): Chunks {
  return nest(K.IPVS_CMD_ATTR_SERVICE, serviceKeyAttrs(key));
}

/** IPVS_CMD_ATTR_SERVICE with every setting (for new and set). */
export function encodeService(spec: ServiceSpec): Chunks {
  const flags =
    (spec.persistent ? K.IP_VS_SVC_F_PERSISTENT : 0) |
    (spec.onePacket ? K.IP_VS_SVC_F_ONEPACKET : 0) |
    (spec.schedFlags & 1 ? K.IP_VS_SVC_F_SCHED1 : 0) |
    (spec.schedFlags & 2 ? K.IP_VS_SVC_F_SCHED2 : 0) |
    (spec.schedFlags & 4 ? K.IP_VS_SVC_F_SCHED3 : 0);
  // struct ip_vs_flags { flags, mask }: a full mask replaces every flag.
  const flagsAndMask = Buffer.concat([u32(flags), u32(0xffffffff)]);
  // IPv4: a netmask in network order; IPv6: a prefix length in host order (as ipvsadm sends it).
  const netmask = spec.key.family === 4 ? be32(maskFromPrefix(spec.netmask)) : u32(spec.netmask);
  const attrs = [
    ...serviceKeyAttrs(spec.key),
    attr(K.IPVS_SVC_ATTR_SCHED_NAME, cstring(spec.scheduler)),
    attr(K.IPVS_SVC_ATTR_FLAGS, flagsAndMask),
    attr(K.IPVS_SVC_ATTR_TIMEOUT, u32(spec.timeout)),
    attr(K.IPVS_SVC_ATTR_NETMASK, netmask),
  ];
  if (spec.pe !== '') attrs.push(attr(K.IPVS_SVC_ATTR_PE_NAME, cstring(spec.pe)));
  return nest(K.IPVS_CMD_ATTR_SERVICE, attrs);
}

function destKeyAttrs(key: DestinationKey): Chunks[] {
  return [
    attr(K.IPVS_DEST_ATTR_ADDR, addressToBytes(key.family, key.address)),
    attr(K.IPVS_DEST_ATTR_PORT, be16(key.port)),
    attr(K.IPVS_DEST_ATTR_ADDR_FAMILY, u16(AF[key.family])),
  ];
}

export function encodeDestinationKey(key: DestinationKey): Chunks {
  return nest(K.IPVS_CMD_ATTR_DEST, destKeyAttrs(key));
}

export function encodeDestination(dest: DestinationSpec): Chunks {
  const attrs = [
    ...destKeyAttrs(dest.key),
    attr(K.IPVS_DEST_ATTR_FWD_METHOD, u32(FWD[dest.fwd])),
    attr(K.IPVS_DEST_ATTR_WEIGHT, u32(dest.weight)),
    attr(K.IPVS_DEST_ATTR_U_THRESH, u32(dest.upperThreshold)),
    attr(K.IPVS_DEST_ATTR_L_THRESH, u32(dest.lowerThreshold)),
  ];
  if (dest.tunnel) {
    const tunFlags =
      (dest.tunnel.csum ? K.IP_VS_TUNNEL_ENCAP_FLAG_CSUM : 0) |
      (dest.tunnel.remcsum ? K.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM : 0);
    attrs.push(
      attr(K.IPVS_DEST_ATTR_TUN_TYPE, u8(TUN[dest.tunnel.type])),
      attr(K.IPVS_DEST_ATTR_TUN_PORT, be16(dest.tunnel.port)),
      attr(K.IPVS_DEST_ATTR_TUN_FLAGS, u16(tunFlags)),
    );
  }
  return nest(K.IPVS_CMD_ATTR_DEST, attrs);
}

export function encodeTimeouts(t: Partial<Timeouts>): Chunks {
  return [
    ...attr(K.IPVS_CMD_ATTR_TIMEOUT_TCP, u32(t.tcp ?? 0)),
    ...attr(K.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, u32(t.tcpFin ?? 0)),
    ...attr(K.IPVS_CMD_ATTR_TIMEOUT_UDP, u32(t.udp ?? 0)),
  ];
}

/** One whole netlink message: nlmsghdr, genlmsghdr, attributes. */
export function encodeMessage(
  type: number,
  flags: number,
  seq: number,
  port: number,
  cmd: number,
  version: number,
  attrs: Chunks,
): Buffer {
  const body = [formatGenlHeader({ cmd, version }), ...attrs];
  const length = K.NLMSG_HDRLEN + body.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([formatHeader({ length, type, flags, seq, port }), ...body]);
}

/** CTRL_CMD_GETFAMILY for a family name. */
export function encodeGetFamily(seq: number, port: number, name: string): Buffer {
  return encodeMessage(
    K.GENL_ID_CTRL,
    K.NLM_F_REQUEST | K.NLM_F_ACK,
    seq,
    port,
    K.CTRL_CMD_GETFAMILY,
    1,
    attr(K.CTRL_ATTR_FAMILY_NAME, cstring(name)),
  );
}

// ---------- decoding

type AttrMap = Map<number, Buffer>;

/** Attributes of a payload by type (flags masked off). Throws MalformedReply when they do not parse. */
export function parseAttrs(data: Buffer, where: string): AttrMap {
  const map: AttrMap = new Map();
  try {
    parseAttributes(data, (a) => map.set(a.type, a.data));
  } catch (err) {
    throw new MalformedReply(`${where}: ${(err as Error).message}`);
  }
  return map;
}

function need(map: AttrMap, type: number, name: string, where: string, length?: number): Buffer {
  const v = map.get(type);
  if (v === undefined) throw new MalformedReply(`${where}: missing ${name}`);
  if (length !== undefined && v.length < length) {
    throw new MalformedReply(`${where}: ${name} has ${v.length} bytes, expected ${length}`);
  }
  return v;
}
const getU16 = (m: AttrMap, t: number, n: string, w: string): number =>
  need(m, t, n, w, 2).readUInt16LE(0);
const getU32 = (m: AttrMap, t: number, n: string, w: string): number =>
  need(m, t, n, w, 4).readUInt32LE(0);
const getBe16 = (m: AttrMap, t: number, n: string, w: string): number =>
  need(m, t, n, w, 2).readUInt16BE(0);
function getString(m: AttrMap, t: number, n: string, w: string): string {
  const b = need(m, t, n, w);
  const end = b.indexOf(0);
  return b.toString('latin1', 0, end === -1 ? b.length : end);
}

function family(af: number, where: string): Family {
  if (af === K.AF_INET) return 4;
  if (af === K.AF_INET6) return 6;
  throw new MalformedReply(`${where}: unknown address family ${af}`);
}

/** The genl payload of one message: the command and its top-level attributes. */
export function genlPayload(payload: Buffer, where: string): { cmd: number; attrs: AttrMap } {
  if (payload.length < K.GENL_HDRLEN)
    throw new MalformedReply(`${where}: message shorter than a genl header`);
  return { cmd: payload.readUInt8(0), attrs: parseAttrs(payload.subarray(K.GENL_HDRLEN), where) };
}

const STATS_FIELDS: [number, keyof Stats][] = [
  [K.IPVS_STATS_ATTR_CONNS, 'conns'],
  [K.IPVS_STATS_ATTR_INPKTS, 'inPkts'],
  [K.IPVS_STATS_ATTR_OUTPKTS, 'outPkts'],
  [K.IPVS_STATS_ATTR_INBYTES, 'inBytes'],
  [K.IPVS_STATS_ATTR_OUTBYTES, 'outBytes'],
  [K.IPVS_STATS_ATTR_CPS, 'cps'],
  [K.IPVS_STATS_ATTR_INPPS, 'inPps'],
  [K.IPVS_STATS_ATTR_OUTPPS, 'outPps'],
  [K.IPVS_STATS_ATTR_INBPS, 'inBps'],
  [K.IPVS_STATS_ATTR_OUTBPS, 'outBps'],
];

/** STATS64 (all u64) when the kernel sends it, else the older STATS (u32 and u64 mixed). */
function decodeStats(map: AttrMap, stats64: number, stats32: number, where: string): Stats {
  const nested = map.get(stats64) ?? map.get(stats32);
  if (nested === undefined) throw new MalformedReply(`${where}: missing statistics`);
  const m = parseAttrs(nested, `${where} statistics`);
  const out: Partial<Record<keyof Stats, bigint>> = {};
  for (const [type, name] of STATS_FIELDS) {
    const b = m.get(type);
    if (b === undefined) throw new MalformedReply(`${where}: statistics without ${name}`);
    if (b.length === 8) out[name] = b.readBigUInt64LE(0);
    else if (b.length === 4) out[name] = BigInt(b.readUInt32LE(0));
    else throw new MalformedReply(`${where}: statistic ${name} has ${b.length} bytes`);
  }
  return out as Stats;
}

const PROTO_BY_NUMBER = new Map<number, Protocol>(
  (Object.entries(PROTO) as [Protocol, number][]).map(([name, n]) => [n, name]),
);
const FWD_BY_NUMBER = new Map<number, ForwardMethod>(
  (Object.entries(FWD) as [ForwardMethod, number][]).map(([name, n]) => [n, name]),
);
const TUN_BY_NUMBER = new Map<number, TunnelType>(
  (Object.entries(TUN) as [TunnelType, number][]).map(([name, n]) => [n, name]),
);

/** A service from a NEW_SERVICE message (a dump part or a GET reply). */
export function decodeService(payload: Buffer): ServiceState {
  let where = 'service';
  const { attrs } = genlPayload(payload, where);
  const m = parseAttrs(need(attrs, K.IPVS_CMD_ATTR_SERVICE, 'IPVS_CMD_ATTR_SERVICE', where), where);
  const fam = family(getU16(m, K.IPVS_SVC_ATTR_AF, 'IPVS_SVC_ATTR_AF', where), where);
  let key: ServiceKey;
  if (m.has(K.IPVS_SVC_ATTR_FWMARK)) {
    key = { family: fam, fwmark: getU32(m, K.IPVS_SVC_ATTR_FWMARK, 'IPVS_SVC_ATTR_FWMARK', where) };
    where = `service FWM ${key.fwmark}`;
  } else {
    const protoNumber = getU16(m, K.IPVS_SVC_ATTR_PROTOCOL, 'IPVS_SVC_ATTR_PROTOCOL', where);
    const protocol = PROTO_BY_NUMBER.get(protoNumber);
    if (!protocol) throw new MalformedReply(`${where}: unsupported protocol ${protoNumber}`);
    const addr = need(m, K.IPVS_SVC_ATTR_ADDR, 'IPVS_SVC_ATTR_ADDR', where, fam === 4 ? 4 : 16);
    key = {
      family: fam,
      protocol,
      address: addressFromBytes(fam, addr),
      port: getBe16(m, K.IPVS_SVC_ATTR_PORT, 'IPVS_SVC_ATTR_PORT', where),
    };
    where = `service ${protocol} ${key.address}:${key.port}`;
  }
  const flags = need(m, K.IPVS_SVC_ATTR_FLAGS, 'IPVS_SVC_ATTR_FLAGS', where, 4).readUInt32LE(0);
  const rawMask = need(m, K.IPVS_SVC_ATTR_NETMASK, 'IPVS_SVC_ATTR_NETMASK', where, 4);
  let netmask: number;
  if (fam === 4) {
    const prefix = prefixFromMask(rawMask.readUInt32BE(0));
    if (prefix === null) {
      throw new MalformedReply(
        `${where}: non-contiguous persistence netmask ${[...rawMask].join('.')} is not supported`,
      );
    }
    netmask = prefix;
  } else {
    netmask = rawMask.readUInt32LE(0);
  }
  const schedFlags =
    (flags & K.IP_VS_SVC_F_SCHED1 ? 1 : 0) |
    (flags & K.IP_VS_SVC_F_SCHED2 ? 2 : 0) |
    (flags & K.IP_VS_SVC_F_SCHED3 ? 4 : 0);
  return {
    key,
    scheduler: getString(m, K.IPVS_SVC_ATTR_SCHED_NAME, 'IPVS_SVC_ATTR_SCHED_NAME', where),
    schedFlags,
    persistent: (flags & K.IP_VS_SVC_F_PERSISTENT) !== 0,
    timeout: getU32(m, K.IPVS_SVC_ATTR_TIMEOUT, 'IPVS_SVC_ATTR_TIMEOUT', where),
    netmask,
    onePacket: (flags & K.IP_VS_SVC_F_ONEPACKET) !== 0,
    pe: m.has(K.IPVS_SVC_ATTR_PE_NAME)
      ? getString(m, K.IPVS_SVC_ATTR_PE_NAME, 'IPVS_SVC_ATTR_PE_NAME', where)
      : '',
    stats: decodeStats(m, K.IPVS_SVC_ATTR_STATS64, K.IPVS_SVC_ATTR_STATS, where),
  };
}

/** A destination from a NEW_DEST dump part; old kernels omit the family, meaning the service's. */
export function decodeDestination(payload: Buffer, serviceFamily: Family): DestinationState {
  let where = 'destination';
  const { attrs } = genlPayload(payload, where);
  const m = parseAttrs(need(attrs, K.IPVS_CMD_ATTR_DEST, 'IPVS_CMD_ATTR_DEST', where), where);
  const fam = m.has(K.IPVS_DEST_ATTR_ADDR_FAMILY)
    ? family(getU16(m, K.IPVS_DEST_ATTR_ADDR_FAMILY, 'IPVS_DEST_ATTR_ADDR_FAMILY', where), where)
    : serviceFamily;
  const addr = need(m, K.IPVS_DEST_ATTR_ADDR, 'IPVS_DEST_ATTR_ADDR', where, fam === 4 ? 4 : 16);
  const key: DestinationKey = {
    family: fam,
    address: addressFromBytes(fam, addr),
    port: getBe16(m, K.IPVS_DEST_ATTR_PORT, 'IPVS_DEST_ATTR_PORT', where),
  };
  where = `destination ${key.address}:${key.port}`;
  const fwdNumber =
    getU32(m, K.IPVS_DEST_ATTR_FWD_METHOD, 'IPVS_DEST_ATTR_FWD_METHOD', where) &
    K.IP_VS_CONN_F_FWD_MASK;
  const fwd = FWD_BY_NUMBER.get(fwdNumber);
  if (!fwd) throw new MalformedReply(`${where}: unknown forwarding method ${fwdNumber}`);
  let tunnel: DestinationSpec['tunnel'] = null;
  if (fwd === 'tunnel') {
    const typeNumber =
      m.get(K.IPVS_DEST_ATTR_TUN_TYPE)?.readUInt8(0) ?? K.IP_VS_CONN_F_TUNNEL_TYPE_IPIP;
    const type = TUN_BY_NUMBER.get(typeNumber);
    if (!type) throw new MalformedReply(`${where}: unknown tunnel type ${typeNumber}`);
    const tunFlags = m.get(K.IPVS_DEST_ATTR_TUN_FLAGS)?.readUInt16LE(0) ?? 0;
    tunnel = {
      type,
      port: m.get(K.IPVS_DEST_ATTR_TUN_PORT)?.readUInt16BE(0) ?? 0,
      csum: (tunFlags & K.IP_VS_TUNNEL_ENCAP_FLAG_CSUM) !== 0,
      remcsum: (tunFlags & K.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM) !== 0,
    };
  }
  return {
    key,
    fwd,
    weight: getU32(m, K.IPVS_DEST_ATTR_WEIGHT, 'IPVS_DEST_ATTR_WEIGHT', where),
    upperThreshold: getU32(m, K.IPVS_DEST_ATTR_U_THRESH, 'IPVS_DEST_ATTR_U_THRESH', where),
    lowerThreshold: getU32(m, K.IPVS_DEST_ATTR_L_THRESH, 'IPVS_DEST_ATTR_L_THRESH', where),
    tunnel,
    activeConns: getU32(m, K.IPVS_DEST_ATTR_ACTIVE_CONNS, 'IPVS_DEST_ATTR_ACTIVE_CONNS', where),
    inactiveConns: getU32(m, K.IPVS_DEST_ATTR_INACT_CONNS, 'IPVS_DEST_ATTR_INACT_CONNS', where),
    persistentConns: getU32(
      m,
      K.IPVS_DEST_ATTR_PERSIST_CONNS,
      'IPVS_DEST_ATTR_PERSIST_CONNS',
      where,
    ),
    stats: decodeStats(m, K.IPVS_DEST_ATTR_STATS64, K.IPVS_DEST_ATTR_STATS, where),
  };
}

export function decodeInfo(payload: Buffer): IpvsInfo {
  const where = 'info';
  const { attrs } = genlPayload(payload, where);
  const v = getU32(attrs, K.IPVS_INFO_ATTR_VERSION, 'IPVS_INFO_ATTR_VERSION', where);
  return {
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    connTableSize: getU32(
      attrs,
      K.IPVS_INFO_ATTR_CONN_TAB_SIZE,
      'IPVS_INFO_ATTR_CONN_TAB_SIZE',
      where,
    ),
  };
}

export function decodeTimeouts(payload: Buffer): Timeouts {
  const where = 'config';
  const { attrs } = genlPayload(payload, where);
  return {
    tcp: getU32(attrs, K.IPVS_CMD_ATTR_TIMEOUT_TCP, 'IPVS_CMD_ATTR_TIMEOUT_TCP', where),
    tcpFin: getU32(attrs, K.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, 'IPVS_CMD_ATTR_TIMEOUT_TCP_FIN', where),
    udp: getU32(attrs, K.IPVS_CMD_ATTR_TIMEOUT_UDP, 'IPVS_CMD_ATTR_TIMEOUT_UDP', where),
  };
}

/** The family id and version from a CTRL_CMD_NEWFAMILY reply. */
export function decodeFamily(payload: Buffer): { id: number; version: number } {
  const where = 'generic netlink family';
  const { attrs } = genlPayload(payload, where);
  return {
    id: getU16(attrs, K.CTRL_ATTR_FAMILY_ID, 'CTRL_ATTR_FAMILY_ID', where),
    version: getU32(attrs, K.CTRL_ATTR_VERSION, 'CTRL_ATTR_VERSION', where),
  };
}
