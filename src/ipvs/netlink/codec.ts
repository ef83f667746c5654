// Encoders and decoders of IPVS generic-netlink messages: one small pair per object, kernel
// attribute names beside each field. Decoders reject what they cannot read; they never guess.
//
// Written against the buffer directly rather than through netlink@0.3.0's attribute helpers:
// those allocate an array and a buffer per attribute, and at 10,000 destinations allocation
// and GC were most of the time (bench/table.ts).
import {
  addressFromBytes,
  addressToBytes,
  maskFromPrefix,
  prefixFromMask,
  writeAddress,
} from '../address.js';
import {
  multicastFamily,
  SYNC_DEFAULT_GROUP,
  SYNC_DEFAULT_PORT,
  SYNC_DEFAULT_TTL,
} from '../sync.js';
import type {
  DestinationKey,
  DestinationLayout,
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
  SyncDaemonRole,
  SyncDaemonSpec,
  SyncDaemonState,
  Timeouts,
  TunnelType,
} from '../model.js';
import { isFwmark } from '../model.js';
import * as K from './constants.js';

/** A reply the decoder could not read; the caller turns it into an EPROTO IpvsError. */
export class MalformedReply extends Error {
  override readonly name = 'MalformedReply';
}

// ---------- encoding

/**
 * Builds one netlink message in place: header, the family's fixed header (genl's, or another
 * family's such as rtnetlink's ifaddrmsg), attributes (4-byte aligned).
 */
export class MessageWriter {
  // From node's shared pool: a table's worth of messages makes no ArrayBuffer each. Every byte
  // up to `off` is written before it is read (the headers below, each attribute and its padding).
  private buf = Buffer.allocUnsafe(256);
  private off = 0;

  /** A generic-netlink message: genlmsghdr { cmd, version }. */
  constructor(type: number, flags: number, cmd: number, version: number);
  /** Another family's message: `header` (a multiple of 4 bytes) after nlmsghdr. */
  constructor(type: number, flags: number, header: Buffer);
  constructor(type: number, flags: number, cmdOrHeader: number | Buffer, version = 0) {
    const fixed = typeof cmdOrHeader === 'number' ? K.GENL_HDRLEN : (cmdOrHeader.length + 3) & ~3;
    this.reserve(K.NLMSG_HDRLEN + fixed);
    // Sequence number and port (the transport's), genl's reserved field, a header's padding.
    this.buf.fill(0, 0, K.NLMSG_HDRLEN + fixed);
    this.buf.writeUInt16LE(type, 4);
    this.buf.writeUInt16LE(flags, 6);
    if (typeof cmdOrHeader === 'number') {
      this.buf.writeUInt8(cmdOrHeader, 16);
      this.buf.writeUInt8(version, 17);
    } else {
      cmdOrHeader.copy(this.buf, K.NLMSG_HDRLEN);
    }
    this.off = K.NLMSG_HDRLEN + fixed;
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  /** An attribute header for `len` payload bytes; returns where the payload goes. */
  private header(type: number, len: number): number {
    const padded = (4 + len + 3) & ~3;
    this.reserve(padded);
    const at = this.off;
    this.buf.writeUInt16LE(4 + len, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.buf.fill(0, at + 4 + len, at + padded);
    this.off += padded;
    return at + 4;
  }

  // Each writer takes the payload's offset before it names this.buf: header() may replace the
  // buffer with a larger one, and `this.buf.write(v, this.header(...))` would write to the old.
  u8(type: number, v: number): this {
    const at = this.header(type, 1);
    this.buf.writeUInt8(v, at);
    return this;
  }
  u16(type: number, v: number): this {
    const at = this.header(type, 2);
    this.buf.writeUInt16LE(v, at);
    return this;
  }
  u32(type: number, v: number): this {
    const at = this.header(type, 4);
    this.buf.writeUInt32LE(v >>> 0, at);
    return this;
  }
  be16(type: number, v: number): this {
    const at = this.header(type, 2);
    this.buf.writeUInt16BE(v, at);
    return this;
  }
  be32(type: number, v: number): this {
    const at = this.header(type, 4);
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }
  /** Two u32s (struct ip_vs_flags). */
  u32pair(type: number, a: number, b: number): this {
    const at = this.header(type, 8);
    this.buf.writeUInt32LE(a >>> 0, at);
    this.buf.writeUInt32LE(b >>> 0, at + 4);
    return this;
  }
  /** NUL-terminated string. */
  string(type: number, s: string): this {
    const at = this.header(type, s.length + 1);
    this.buf.write(s, at, 'latin1');
    this.buf[at + s.length] = 0;
    return this;
  }
  /** Raw bytes (rtnetlink's addresses: 4 or 16 bytes, as long as the family's). */
  bytes(type: number, data: Uint8Array): this {
    const at = this.header(type, data.length);
    this.buf.set(data, at);
    return this;
  }
  address(type: number, family: Family, text: string): this {
    const at = this.header(type, 16);
    writeAddress(family, text, this.buf, at);
    return this;
  }
  /** A nested attribute (with NLA_F_NESTED, as strict kernel validation expects). */
  nest(type: number, body: (w: this) => void): this {
    const at = this.off;
    this.header(type | K.NLA_F_NESTED, 0);
    body(this);
    this.buf.writeUInt16LE(this.off - at, at);
    return this;
  }
  /** The message, its length written; sequence number and port are the transport's to set. */
  finish(): Buffer {
    this.buf.writeUInt32LE(this.off, 0);
    return this.buf.subarray(0, this.off);
  }
}

/** A message for the IPVS family (REQUEST set; ACK or DUMP as asked). */
export function ipvsMessage(familyId: number, cmd: number, dump: boolean): MessageWriter {
  const flags = K.NLM_F_REQUEST | (dump ? K.NLM_F_DUMP : K.NLM_F_ACK);
  return new MessageWriter(familyId, flags, cmd, K.IPVS_GENL_VERSION);
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

function serviceKeyAttrs(w: MessageWriter, key: ServiceKey): void {
  w.u16(K.IPVS_SVC_ATTR_AF, AF[key.family]);
  if (isFwmark(key)) {
    w.u32(K.IPVS_SVC_ATTR_FWMARK, key.fwmark);
  } else {
    w.u16(K.IPVS_SVC_ATTR_PROTOCOL, PROTO[key.protocol])
      .address(K.IPVS_SVC_ATTR_ADDR, key.family, key.address)
      .be16(K.IPVS_SVC_ATTR_PORT, key.port);
  }
}

/** IPVS_CMD_ATTR_SERVICE identifying a service (for delete, get, zero, and destination commands). */
export function writeServiceKey(w: MessageWriter, key: ServiceKey): MessageWriter {
  return w.nest(K.IPVS_CMD_ATTR_SERVICE, () => serviceKeyAttrs(w, key));
}

/** IPVS_CMD_ATTR_SERVICE with every setting (for new and set). */
export function writeService(w: MessageWriter, spec: ServiceSpec): MessageWriter {
  const flags =
    (spec.persistent ? K.IP_VS_SVC_F_PERSISTENT : 0) |
    (spec.onePacket ? K.IP_VS_SVC_F_ONEPACKET : 0) |
    (spec.schedFlags & 1 ? K.IP_VS_SVC_F_SCHED1 : 0) |
    (spec.schedFlags & 2 ? K.IP_VS_SVC_F_SCHED2 : 0) |
    (spec.schedFlags & 4 ? K.IP_VS_SVC_F_SCHED3 : 0);
  return w.nest(K.IPVS_CMD_ATTR_SERVICE, () => {
    serviceKeyAttrs(w, spec.key);
    w.string(K.IPVS_SVC_ATTR_SCHED_NAME, spec.scheduler)
      // struct ip_vs_flags { flags, mask }: a full mask replaces every flag.
      .u32pair(K.IPVS_SVC_ATTR_FLAGS, flags, 0xffffffff)
      .u32(K.IPVS_SVC_ATTR_TIMEOUT, spec.timeout);
    // IPv4: a netmask in network order; IPv6: a prefix length in host order (as ipvsadm sends it).
    if (spec.key.family === 4) w.be32(K.IPVS_SVC_ATTR_NETMASK, maskFromPrefix(spec.netmask));
    else w.u32(K.IPVS_SVC_ATTR_NETMASK, spec.netmask);
    if (spec.pe !== '') w.string(K.IPVS_SVC_ATTR_PE_NAME, spec.pe);
  });
}

function destKeyAttrs(w: MessageWriter, key: DestinationKey): void {
  w.address(K.IPVS_DEST_ATTR_ADDR, key.family, key.address)
    .be16(K.IPVS_DEST_ATTR_PORT, key.port)
    .u16(K.IPVS_DEST_ATTR_ADDR_FAMILY, AF[key.family]);
}

export function writeDestinationKey(w: MessageWriter, key: DestinationKey): MessageWriter {
  return w.nest(K.IPVS_CMD_ATTR_DEST, () => destKeyAttrs(w, key));
}

export function writeDestination(w: MessageWriter, dest: DestinationSpec): MessageWriter {
  return w.nest(K.IPVS_CMD_ATTR_DEST, () => {
    destKeyAttrs(w, dest.key);
    w.u32(K.IPVS_DEST_ATTR_FWD_METHOD, FWD[dest.fwd])
      .u32(K.IPVS_DEST_ATTR_WEIGHT, dest.weight)
      .u32(K.IPVS_DEST_ATTR_U_THRESH, dest.upperThreshold)
      .u32(K.IPVS_DEST_ATTR_L_THRESH, dest.lowerThreshold);
    if (dest.tunnel) {
      const tunFlags =
        (dest.tunnel.csum ? K.IP_VS_TUNNEL_ENCAP_FLAG_CSUM : 0) |
        (dest.tunnel.remcsum ? K.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM : 0);
      w.u8(K.IPVS_DEST_ATTR_TUN_TYPE, TUN[dest.tunnel.type])
        .be16(K.IPVS_DEST_ATTR_TUN_PORT, dest.tunnel.port)
        .u16(K.IPVS_DEST_ATTR_TUN_FLAGS, tunFlags);
    }
  });
}

export function writeTimeouts(w: MessageWriter, t: Partial<Timeouts>): MessageWriter {
  return w
    .u32(K.IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp ?? 0)
    .u32(K.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcpFin ?? 0)
    .u32(K.IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp ?? 0);
}

const SYNC_STATE: Record<SyncDaemonRole, number> = {
  master: K.IP_VS_STATE_MASTER,
  backup: K.IP_VS_STATE_BACKUP,
};

/** IPVS_CMD_ATTR_DAEMON naming only a state (for DEL_DAEMON). */
export function writeDaemonState(w: MessageWriter, state: SyncDaemonRole): MessageWriter {
  return w.nest(K.IPVS_CMD_ATTR_DAEMON, () => w.u32(K.IPVS_DAEMON_ATTR_STATE, SYNC_STATE[state]));
}

/** IPVS_CMD_ATTR_DAEMON with every setting (for NEW_DAEMON); a checked spec. */
export function writeDaemon(w: MessageWriter, s: SyncDaemonSpec): MessageWriter {
  return w.nest(K.IPVS_CMD_ATTR_DAEMON, () => {
    w.u32(K.IPVS_DAEMON_ATTR_STATE, SYNC_STATE[s.state])
      .string(K.IPVS_DAEMON_ATTR_MCAST_IFN, s.interface)
      .u32(K.IPVS_DAEMON_ATTR_SYNC_ID, s.syncId);
    // 0 (absent) lets the kernel take the interface's MTU minus the headers.
    if (s.maxPacketLength > 0) w.u16(K.IPVS_DAEMON_ATTR_SYNC_MAXLEN, s.maxPacketLength);
    // Exactly 4 or 16 bytes: the kernel's policy types these as a u32 and an in6_addr.
    if (multicastFamily(s.group) === 6)
      w.bytes(K.IPVS_DAEMON_ATTR_MCAST_GROUP6, addressToBytes(6, s.group));
    else w.bytes(K.IPVS_DAEMON_ATTR_MCAST_GROUP, addressToBytes(4, s.group).subarray(0, 4));
    // Host order, unlike a service's port: the kernel adds the thread id and then htons()es it
    // (get_mcast_sockaddr), and ipvsadm sends and prints it so.
    w.u16(K.IPVS_DAEMON_ATTR_MCAST_PORT, s.port).u8(K.IPVS_DAEMON_ATTR_MCAST_TTL, s.ttl);
  });
}

/**
 * A daemon from a GET_DAEMON dump part. Kernels before 4.3 send no group, port, TTL or max
 * length: those read as the defaults such a kernel used.
 */
export function decodeDaemon(payload: Buffer, start = 0, end = payload.length): SyncDaemonState {
  const top = topLevel(payload, K.IPVS_CMD_ATTR_DAEMON, 'sync daemon', start, end);
  const m = top.nested(
    OBJECT,
    K.IPVS_CMD_ATTR_DAEMON,
    'IPVS_CMD_ATTR_DAEMON',
    K.IPVS_DAEMON_ATTR_MCAST_TTL,
  );
  const stateNumber = m.u32(K.IPVS_DAEMON_ATTR_STATE, 'IPVS_DAEMON_ATTR_STATE');
  const state =
    stateNumber === K.IP_VS_STATE_MASTER
      ? 'master'
      : stateNumber === K.IP_VS_STATE_BACKUP
        ? 'backup'
        : null;
  if (!state) throw new MalformedReply(`sync daemon: unknown state ${stateNumber}`);
  let group = SYNC_DEFAULT_GROUP;
  if (m.has(K.IPVS_DAEMON_ATTR_MCAST_GROUP6))
    group = addressFromBytes(
      6,
      payload,
      m.at(K.IPVS_DAEMON_ATTR_MCAST_GROUP6, 'IPVS_DAEMON_ATTR_MCAST_GROUP6', 16),
    );
  else if (m.has(K.IPVS_DAEMON_ATTR_MCAST_GROUP))
    group = addressFromBytes(
      4,
      payload,
      m.at(K.IPVS_DAEMON_ATTR_MCAST_GROUP, 'IPVS_DAEMON_ATTR_MCAST_GROUP', 4),
    );
  return {
    state,
    interface: m.string(K.IPVS_DAEMON_ATTR_MCAST_IFN, 'IPVS_DAEMON_ATTR_MCAST_IFN'),
    syncId: m.u32(K.IPVS_DAEMON_ATTR_SYNC_ID, 'IPVS_DAEMON_ATTR_SYNC_ID'),
    group,
    port: m.has(K.IPVS_DAEMON_ATTR_MCAST_PORT)
      ? m.u16(K.IPVS_DAEMON_ATTR_MCAST_PORT, 'IPVS_DAEMON_ATTR_MCAST_PORT')
      : SYNC_DEFAULT_PORT,
    ttl: m.has(K.IPVS_DAEMON_ATTR_MCAST_TTL)
      ? payload.readUInt8(m.at(K.IPVS_DAEMON_ATTR_MCAST_TTL, 'IPVS_DAEMON_ATTR_MCAST_TTL', 1))
      : SYNC_DEFAULT_TTL,
    maxPacketLength: m.has(K.IPVS_DAEMON_ATTR_SYNC_MAXLEN)
      ? m.u16(K.IPVS_DAEMON_ATTR_SYNC_MAXLEN, 'IPVS_DAEMON_ATTR_SYNC_MAXLEN')
      : 0,
  };
}

/** CTRL_CMD_GETFAMILY for a family name. */
export function getFamilyMessage(name: string): Buffer {
  return new MessageWriter(K.GENL_ID_CTRL, K.NLM_F_REQUEST | K.NLM_F_ACK, K.CTRL_CMD_GETFAMILY, 1)
    .string(K.CTRL_ATTR_FAMILY_NAME, name)
    .finish();
}

/**
 * A request every netlink protocol refuses, `length` bytes long, sequence number 0 (the
 * transport numbers from 1): its type, 0xffff, is no generic netlink family (their ids stop
 * at GENL_MAX_ID, 1023) and no rtnetlink type. The kernel's error reply echoes it whole
 * (netlink_ack, unless NETLINK_CAP_ACK is set, which we never set).
 */
export function refusedRequest(length: number): Buffer {
  const message = Buffer.alloc(length);
  message.writeUInt32LE(length, 0);
  message.writeUInt16LE(0xffff, 4);
  message.writeUInt16LE(K.NLM_F_REQUEST, 6);
  return message;
}

/** Whether a datagram is the kernel's refusal of `refusedRequest` (NLMSG_ERROR, sequence 0). */
export function isRefusal(datagram: Buffer): boolean {
  return (
    datagram.length >= K.NLMSG_HDRLEN + 4 &&
    datagram.readUInt16LE(4) === K.NLMSG_ERROR &&
    datagram.readUInt32LE(8) === 0 &&
    datagram.readInt32LE(K.NLMSG_HDRLEN) < 0
  );
}

// ---------- decoding

/**
 * Where each attribute of a stream lies: slot 2t holds the payload offset of type t (or -1),
 * slot 2t+1 its length. Types above `max` are skipped (newer kernels add attributes).
 */
type AttrIndex = number[];

/** Writable slots of an index: a plain array (indexAttrs) or a reader's scratch. */
interface Slots {
  [slot: number]: number;
}

/*
 * Little-endian and network-order integers read byte by byte: Buffer's readUInt16LE and kin
 * validate their offset on each call, and a dump reads a dozen per destination. Every caller's
 * offset lies within `buf` (an attribute the scan found, at least as long as it is read).
 */
const u16At = (buf: Buffer, off: number): number => (buf[off] ?? 0) | ((buf[off + 1] ?? 0) << 8);
const be16At = (buf: Buffer, off: number): number => ((buf[off] ?? 0) << 8) | (buf[off + 1] ?? 0);
const u32At = (buf: Buffer, off: number): number =>
  (u16At(buf, off) | (u16At(buf, off + 2) << 16)) >>> 0;

/** Fills `idx` with the attributes of buf[start, end); `where` is read only for an error. */
function scanAttrs(
  buf: Buffer,
  start: number,
  end: number,
  max: number,
  idx: Slots,
  context: { readonly where: string },
): void {
  let off = start;
  while (off + 4 <= end) {
    const len = u16At(buf, off);
    const type = u16At(buf, off + 2) & K.NLA_TYPE_MASK;
    if (len < 4 || off + len > end) {
      throw new MalformedReply(
        `${context.where}: attribute ${type} has length ${len}, ${end - off} bytes left`,
      );
    }
    if (type <= max) {
      idx[2 * type] = off + 4;
      idx[2 * type + 1] = len - 4;
    }
    off += (len + 3) & ~3;
  }
  if (off < end && end - off >= 4)
    throw new MalformedReply(`${context.where}: trailing bytes after attributes`);
}

export function indexAttrs(
  buf: Buffer,
  start: number,
  end: number,
  max: number,
  where: string,
): AttrIndex {
  // A plain array: V8 allocates small ones much faster than typed arrays.
  const idx: AttrIndex = new Array<number>(2 * (max + 1)).fill(-1);
  scanAttrs(buf, start, end, max, idx, { where });
  return idx;
}

/** Types a reader can index (every IPVS and genl-ctrl attribute set is smaller). */
const READER_TYPES = 32;

/**
 * The attributes of one stream, read where they lie. Decoding is synchronous and never
 * re-entered, so each nesting depth has one reader whose index is reused: a table of 10,000
 * destinations decodes without allocating an index, a reader or an error context per message
 * (at that size allocation and GC were most of the dump's time, bench/table.ts). The text
 * naming the object for an error is built only when an error is thrown.
 */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  private readonly idx = new Int32Array(2 * READER_TYPES);
  private max = -1;
  private label = '';
  private subject: ServiceKey | DestinationKey | null = null;
  private parent: Reader | null = null;

  /** What is being read, for errors: "service tcp 10.0.0.1:80", "destination 10.0.0.2:80". */
  get where(): string {
    if (this.parent) return this.parent.where;
    const s = this.subject;
    if (!s) return this.label;
    if ('fwmark' in s) return `${this.label} FWM ${s.fwmark}`;
    if ('protocol' in s) return `${this.label} ${s.protocol} ${s.address}:${s.port}`;
    return `${this.label} ${s.address}:${s.port}`;
  }

  /** Names what is read from now on (the label alone, or the label and the object's key). */
  about(label: string, subject: ServiceKey | DestinationKey | null = null): this {
    this.label = label;
    this.subject = subject;
    this.parent = null;
    return this;
  }

  /** Indexes buf[start, end) up to type `max`. */
  read(buf: Buffer, start: number, end: number, max: number): this {
    if (max >= READER_TYPES) throw new RangeError(`attribute type ${max} above the reader's`);
    this.buf = buf;
    this.max = max;
    this.idx.fill(-1, 0, 2 * (max + 1));
    scanAttrs(buf, start, end, max, this.idx, this);
    return this;
  }

  private offset(type: number): number {
    return type <= this.max ? (this.idx[2 * type] ?? -1) : -1;
  }
  has(type: number): boolean {
    return this.offset(type) >= 0;
  }
  /** Offset of a required attribute of at least `min` bytes. */
  at(type: number, name: string, min: number): number {
    const off = this.offset(type);
    if (off < 0) throw new MalformedReply(`${this.where}: missing ${name}`);
    const len = this.idx[2 * type + 1] ?? 0;
    if (len < min)
      throw new MalformedReply(`${this.where}: ${name} has ${len} bytes, expected ${min}`);
    return off;
  }
  len(type: number): number {
    return type <= this.max ? (this.idx[2 * type + 1] ?? 0) : 0;
  }
  u16(type: number, name: string): number {
    return u16At(this.buf, this.at(type, name, 2));
  }
  u32(type: number, name: string): number {
    return u32At(this.buf, this.at(type, name, 4));
  }
  be16(type: number, name: string): number {
    return be16At(this.buf, this.at(type, name, 2));
  }
  string(type: number, name: string): string {
    const off = this.at(type, name, 1);
    const len = this.len(type);
    const nul = this.buf.indexOf(0, off);
    return this.buf.toString('latin1', off, nul === -1 || nul > off + len ? off + len : nul);
  }
  /** Reads attribute `type` (a nest) into `into`, which names its errors as this reader does. */
  nested(into: Reader, type: number, name: string, max: number): Reader {
    const off = this.at(type, name, 0);
    into.parent = this;
    return into.read(this.buf, off, off + this.len(type), max);
  }
}

/** One reader per nesting depth: message, object, statistics. */
const TOP = new Reader();
const OBJECT = new Reader();
const STATS = new Reader();

/**
 * The top-level attributes of one genl message payload (after nlmsghdr): buf[start, end), so a
 * dump's parts are read where they lie in their datagram (NetlinkTransport.decoded).
 */
function topLevel(buf: Buffer, max: number, where: string, start = 0, end = buf.length): Reader {
  if (end - start < K.GENL_HDRLEN)
    throw new MalformedReply(`${where}: message shorter than a genl header`);
  return TOP.about(where).read(buf, start + K.GENL_HDRLEN, end, max);
}

function family(af: number, where: string): Family {
  if (af === K.AF_INET) return 4;
  if (af === K.AF_INET6) return 6;
  throw new MalformedReply(`${where}: unknown address family ${af}`);
}

/** 2^21: a u64 whose high word is below it is a safe integer. */
const SAFE_HIGH = 0x200000;
const ZERO = BigInt(0);

/**
 * A statistic, u64 or (in the older STATS) u32. Read as two words rather than with
 * readBigUInt64LE, which builds each value from four BigInts; idle counters (most of a large
 * table's) share one zero.
 */
function stat(s: Reader, type: number, name: string): bigint {
  const off = s.at(type, name, 4);
  const len = s.len(type);
  const lo = u32At(s.buf, off);
  if (len === 4) return lo === 0 ? ZERO : BigInt(lo);
  if (len !== 8) throw new MalformedReply(`${s.where}: ${name} has ${len} bytes`);
  const hi = u32At(s.buf, off + 4);
  if (hi === 0) return lo === 0 ? ZERO : BigInt(lo);
  return hi < SAFE_HIGH ? BigInt(hi * 0x100000000 + lo) : s.buf.readBigUInt64LE(off);
}

/** STATS64 (all u64) when the kernel sends it, else the older STATS (u32 and u64 mixed). */
function decodeStats(r: Reader, stats64: number, stats32: number): Stats {
  const s = r.nested(
    STATS,
    r.has(stats64) ? stats64 : stats32,
    'statistics',
    K.IPVS_STATS_ATTR_PAD,
  );
  return {
    conns: stat(s, K.IPVS_STATS_ATTR_CONNS, 'statistic conns'),
    inPkts: stat(s, K.IPVS_STATS_ATTR_INPKTS, 'statistic inPkts'),
    outPkts: stat(s, K.IPVS_STATS_ATTR_OUTPKTS, 'statistic outPkts'),
    inBytes: stat(s, K.IPVS_STATS_ATTR_INBYTES, 'statistic inBytes'),
    outBytes: stat(s, K.IPVS_STATS_ATTR_OUTBYTES, 'statistic outBytes'),
    cps: stat(s, K.IPVS_STATS_ATTR_CPS, 'statistic cps'),
    inPps: stat(s, K.IPVS_STATS_ATTR_INPPS, 'statistic inPps'),
    outPps: stat(s, K.IPVS_STATS_ATTR_OUTPPS, 'statistic outPps'),
    inBps: stat(s, K.IPVS_STATS_ATTR_INBPS, 'statistic inBps'),
    outBps: stat(s, K.IPVS_STATS_ATTR_OUTBPS, 'statistic outBps'),
  };
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

/** A service from a NEW_SERVICE message (a dump part or a GET reply), payload[start, end). */
export function decodeService(payload: Buffer, start = 0, end = payload.length): ServiceState {
  // Built with its statistics: the object has them, as the type says.
  return service(payload, true, start, end) as ServiceState;
}

/** A service's settings alone (IpvsBackend.layout): its statistics are not decoded. */
export function decodeServiceSpec(payload: Buffer, start = 0, end = payload.length): ServiceSpec {
  return service(payload, false, start, end);
}

function service(
  payload: Buffer,
  withStats: boolean,
  start: number,
  end: number,
): ServiceSpec & { stats?: Stats } {
  const top = topLevel(payload, K.IPVS_CMD_ATTR_TIMEOUT_UDP, 'service', start, end);
  const m = top.nested(
    OBJECT,
    K.IPVS_CMD_ATTR_SERVICE,
    'IPVS_CMD_ATTR_SERVICE',
    K.IPVS_SVC_ATTR_STATS64,
  );
  const fam = family(m.u16(K.IPVS_SVC_ATTR_AF, 'IPVS_SVC_ATTR_AF'), m.where);
  let key: ServiceKey;
  if (m.has(K.IPVS_SVC_ATTR_FWMARK)) {
    key = { family: fam, fwmark: m.u32(K.IPVS_SVC_ATTR_FWMARK, 'IPVS_SVC_ATTR_FWMARK') };
  } else {
    const protoNumber = m.u16(K.IPVS_SVC_ATTR_PROTOCOL, 'IPVS_SVC_ATTR_PROTOCOL');
    const protocol = PROTO_BY_NUMBER.get(protoNumber);
    if (!protocol) throw new MalformedReply(`service: unsupported protocol ${protoNumber}`);
    const addrAt = m.at(K.IPVS_SVC_ATTR_ADDR, 'IPVS_SVC_ATTR_ADDR', fam === 4 ? 4 : 16);
    key = {
      family: fam,
      protocol,
      address: addressFromBytes(fam, payload, addrAt),
      port: m.be16(K.IPVS_SVC_ATTR_PORT, 'IPVS_SVC_ATTR_PORT'),
    };
  }
  const r = m.about('service', key);
  const flags = r.u32(K.IPVS_SVC_ATTR_FLAGS, 'IPVS_SVC_ATTR_FLAGS');
  const maskAt = r.at(K.IPVS_SVC_ATTR_NETMASK, 'IPVS_SVC_ATTR_NETMASK', 4);
  let netmask: number;
  if (fam === 4) {
    const raw = payload.readUInt32BE(maskAt);
    const prefix = prefixFromMask(raw);
    if (prefix === null) {
      throw new MalformedReply(
        `${r.where}: non-contiguous persistence netmask ${[...payload.subarray(maskAt, maskAt + 4)].join('.')} is not supported`,
      );
    }
    netmask = prefix;
  } else {
    netmask = payload.readUInt32LE(maskAt);
  }
  const spec: ServiceSpec & { stats?: Stats } = {
    key,
    scheduler: r.string(K.IPVS_SVC_ATTR_SCHED_NAME, 'IPVS_SVC_ATTR_SCHED_NAME'),
    schedFlags:
      (flags & K.IP_VS_SVC_F_SCHED1 ? 1 : 0) |
      (flags & K.IP_VS_SVC_F_SCHED2 ? 2 : 0) |
      (flags & K.IP_VS_SVC_F_SCHED3 ? 4 : 0),
    persistent: (flags & K.IP_VS_SVC_F_PERSISTENT) !== 0,
    timeout: r.u32(K.IPVS_SVC_ATTR_TIMEOUT, 'IPVS_SVC_ATTR_TIMEOUT'),
    netmask,
    onePacket: (flags & K.IP_VS_SVC_F_ONEPACKET) !== 0,
    pe: r.has(K.IPVS_SVC_ATTR_PE_NAME)
      ? r.string(K.IPVS_SVC_ATTR_PE_NAME, 'IPVS_SVC_ATTR_PE_NAME')
      : '',
  };
  if (withStats) spec.stats = decodeStats(r, K.IPVS_SVC_ATTR_STATS64, K.IPVS_SVC_ATTR_STATS);
  return spec;
}

/**
 * A destination from a NEW_DEST dump part, payload[start, end); old kernels omit the family,
 * meaning the service's.
 */
export function decodeDestination(
  payload: Buffer,
  serviceFamily: Family,
  start = 0,
  end = payload.length,
): DestinationState {
  // Built with its statistics: the object has them, as the type says.
  return destination(payload, serviceFamily, true, start, end) as DestinationState;
}

/** A destination without its statistics (IpvsBackend.layout), which are most of its decoding. */
export function decodeDestinationLayout(
  payload: Buffer,
  serviceFamily: Family,
  start = 0,
  end = payload.length,
): DestinationLayout {
  return destination(payload, serviceFamily, false, start, end);
}

function destination(
  payload: Buffer,
  serviceFamily: Family,
  withStats: boolean,
  start: number,
  end: number,
): DestinationLayout & { stats?: Stats } {
  const top = topLevel(payload, K.IPVS_CMD_ATTR_TIMEOUT_UDP, 'destination', start, end);
  const m = top.nested(
    OBJECT,
    K.IPVS_CMD_ATTR_DEST,
    'IPVS_CMD_ATTR_DEST',
    K.IPVS_DEST_ATTR_TUN_FLAGS,
  );
  const fam = m.has(K.IPVS_DEST_ATTR_ADDR_FAMILY)
    ? family(m.u16(K.IPVS_DEST_ATTR_ADDR_FAMILY, 'IPVS_DEST_ATTR_ADDR_FAMILY'), m.where)
    : serviceFamily;
  const addrAt = m.at(K.IPVS_DEST_ATTR_ADDR, 'IPVS_DEST_ATTR_ADDR', fam === 4 ? 4 : 16);
  const key: DestinationKey = {
    family: fam,
    address: addressFromBytes(fam, payload, addrAt),
    port: m.be16(K.IPVS_DEST_ATTR_PORT, 'IPVS_DEST_ATTR_PORT'),
  };
  const r = m.about('destination', key);
  const fwdNumber =
    r.u32(K.IPVS_DEST_ATTR_FWD_METHOD, 'IPVS_DEST_ATTR_FWD_METHOD') & K.IP_VS_CONN_F_FWD_MASK;
  const fwd = FWD_BY_NUMBER.get(fwdNumber);
  if (!fwd) throw new MalformedReply(`${r.where}: unknown forwarding method ${fwdNumber}`);
  let tunnel: DestinationSpec['tunnel'] = null;
  if (fwd === 'tunnel') {
    const typeNumber = r.has(K.IPVS_DEST_ATTR_TUN_TYPE)
      ? payload.readUInt8(r.at(K.IPVS_DEST_ATTR_TUN_TYPE, 'IPVS_DEST_ATTR_TUN_TYPE', 1))
      : K.IP_VS_CONN_F_TUNNEL_TYPE_IPIP;
    const type = TUN_BY_NUMBER.get(typeNumber);
    if (!type) throw new MalformedReply(`${r.where}: unknown tunnel type ${typeNumber}`);
    const tunFlags = r.has(K.IPVS_DEST_ATTR_TUN_FLAGS)
      ? r.u16(K.IPVS_DEST_ATTR_TUN_FLAGS, 'IPVS_DEST_ATTR_TUN_FLAGS')
      : 0;
    tunnel = {
      type,
      port: r.has(K.IPVS_DEST_ATTR_TUN_PORT)
        ? r.be16(K.IPVS_DEST_ATTR_TUN_PORT, 'IPVS_DEST_ATTR_TUN_PORT')
        : 0,
      csum: (tunFlags & K.IP_VS_TUNNEL_ENCAP_FLAG_CSUM) !== 0,
      remcsum: (tunFlags & K.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM) !== 0,
    };
  }
  const layout: DestinationLayout & { stats?: Stats } = {
    key,
    fwd,
    weight: r.u32(K.IPVS_DEST_ATTR_WEIGHT, 'IPVS_DEST_ATTR_WEIGHT'),
    upperThreshold: r.u32(K.IPVS_DEST_ATTR_U_THRESH, 'IPVS_DEST_ATTR_U_THRESH'),
    lowerThreshold: r.u32(K.IPVS_DEST_ATTR_L_THRESH, 'IPVS_DEST_ATTR_L_THRESH'),
    tunnel,
    activeConns: r.u32(K.IPVS_DEST_ATTR_ACTIVE_CONNS, 'IPVS_DEST_ATTR_ACTIVE_CONNS'),
    inactiveConns: r.u32(K.IPVS_DEST_ATTR_INACT_CONNS, 'IPVS_DEST_ATTR_INACT_CONNS'),
    persistentConns: r.u32(K.IPVS_DEST_ATTR_PERSIST_CONNS, 'IPVS_DEST_ATTR_PERSIST_CONNS'),
  };
  if (withStats) layout.stats = decodeStats(r, K.IPVS_DEST_ATTR_STATS64, K.IPVS_DEST_ATTR_STATS);
  return layout;
}

export function decodeInfo(payload: Buffer): IpvsInfo {
  const r = topLevel(payload, K.IPVS_INFO_ATTR_CONN_TAB_SIZE, 'info');
  const v = r.u32(K.IPVS_INFO_ATTR_VERSION, 'IPVS_INFO_ATTR_VERSION');
  return {
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    connTableSize: r.u32(K.IPVS_INFO_ATTR_CONN_TAB_SIZE, 'IPVS_INFO_ATTR_CONN_TAB_SIZE'),
  };
}

export function decodeTimeouts(payload: Buffer): Timeouts {
  const r = topLevel(payload, K.IPVS_CMD_ATTR_TIMEOUT_UDP, 'config');
  return {
    tcp: r.u32(K.IPVS_CMD_ATTR_TIMEOUT_TCP, 'IPVS_CMD_ATTR_TIMEOUT_TCP'),
    tcpFin: r.u32(K.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, 'IPVS_CMD_ATTR_TIMEOUT_TCP_FIN'),
    udp: r.u32(K.IPVS_CMD_ATTR_TIMEOUT_UDP, 'IPVS_CMD_ATTR_TIMEOUT_UDP'),
  };
}

/** The family id and version from a CTRL_CMD_NEWFAMILY reply. */
export function decodeFamily(payload: Buffer): { id: number; version: number } {
  const r = topLevel(payload, K.CTRL_ATTR_VERSION, 'generic netlink family');
  return {
    id: r.u16(K.CTRL_ATTR_FAMILY_ID, 'CTRL_ATTR_FAMILY_ID'),
    version: r.u32(K.CTRL_ATTR_VERSION, 'CTRL_ATTR_VERSION'),
  };
}
