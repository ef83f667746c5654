// Benchmark of the netlink backend's table read on the host (`npm run bench:read`), without the
// VM: BENCH_SERVICES x BENCH_DESTS (default 100 x 100 = 10,000 destinations) answered by a
// socket that replies as IPVS does (each service's destinations in datagrams of up to 32 KiB,
// statistics and 64-bit statistics in each, NLMSG_DONE in a datagram of its own), so what is
// timed is the JavaScript of a read: framing, decoding, sorting. layout() (what a reconcile tick
// reads) and table() (what /metrics reads) alternate, BENCH_ROUNDS reads of each (default 200),
// back to back as a busy daemon's would be; prints the median, the 10th percentile and the mean.
// No collection is forced between reads: on this host one before each read made the reads two
// to three times slower and far noisier than the daemon's (13-22 ms against 6.5-6.7 for
// layout(), medians of 200).
// bench:table times the same reads against the VM's kernel beside `ipvsadm -Ln`, where the
// kernel's own work and the VM's noise come with them.
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { ServiceKey } from '../src/ipvs/model.js';
import { NetlinkBackend } from '../src/ipvs/netlink/backend.js';
import { MessageWriter, ipvsMessage, writeServiceKey } from '../src/ipvs/netlink/codec.js';
import * as K from '../src/ipvs/netlink/constants.js';
import type { SocketFactory } from '../src/ipvs/netlink/transport.js';

/** The IPVS family's id as this socket answers it (any id of a generic netlink family). */
const FAMILY = 0x20;
/** The largest datagram the kernel fills for a reader that reads 32 KiB (DUMP_PART_SIZING). */
const PART = 32 << 10;

const u64 = (v: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v, 0);
  return b;
};

/** A statistics nest: ten u64s (STATS64), or the older mix of u32s and u64s (STATS). */
function stats(w: MessageWriter, type: number, wide: boolean, seed: number): void {
  w.nest(type, () => {
    for (let s = K.IPVS_STATS_ATTR_CONNS; s <= K.IPVS_STATS_ATTR_OUTBPS; s++) {
      const value = (seed * 7 + s) % 1000;
      const u64field = s === K.IPVS_STATS_ATTR_INBYTES || s === K.IPVS_STATS_ATTR_OUTBYTES;
      if (wide || u64field) w.bytes(s, u64(value));
      else w.u32(s, value);
    }
  });
}

function serviceMessage(key: ServiceKey & { address: string; port: number }): Buffer {
  const w = new MessageWriter(FAMILY, K.NLM_F_MULTI, K.IPVS_CMD_NEW_SERVICE, K.IPVS_GENL_VERSION);
  w.nest(K.IPVS_CMD_ATTR_SERVICE, () => {
    w.u16(K.IPVS_SVC_ATTR_AF, K.AF_INET)
      .u16(K.IPVS_SVC_ATTR_PROTOCOL, K.IPPROTO_TCP)
      .address(K.IPVS_SVC_ATTR_ADDR, 4, key.address)
      .be16(K.IPVS_SVC_ATTR_PORT, key.port)
      .string(K.IPVS_SVC_ATTR_SCHED_NAME, 'wlc')
      .u32pair(K.IPVS_SVC_ATTR_FLAGS, K.IP_VS_SVC_F_HASHED, 0xffffffff)
      .u32(K.IPVS_SVC_ATTR_TIMEOUT, 0)
      .bytes(K.IPVS_SVC_ATTR_NETMASK, Buffer.from([255, 255, 255, 255]));
    stats(w, K.IPVS_SVC_ATTR_STATS, false, 1);
    stats(w, K.IPVS_SVC_ATTR_STATS64, true, 1);
  });
  return w.finish();
}

/** A destination in the kernel's order of attributes (ip_vs_genl_fill_dest). */
function destinationMessage(address: string, seed: number): Buffer {
  const w = new MessageWriter(FAMILY, K.NLM_F_MULTI, K.IPVS_CMD_NEW_DEST, K.IPVS_GENL_VERSION);
  w.nest(K.IPVS_CMD_ATTR_DEST, () => {
    w.address(K.IPVS_DEST_ATTR_ADDR, 4, address)
      .be16(K.IPVS_DEST_ATTR_PORT, 8080)
      .u32(K.IPVS_DEST_ATTR_FWD_METHOD, K.IP_VS_CONN_F_MASQ)
      .u32(K.IPVS_DEST_ATTR_WEIGHT, 1 + (seed % 100))
      .u32(K.IPVS_DEST_ATTR_U_THRESH, 0)
      .u32(K.IPVS_DEST_ATTR_L_THRESH, 0)
      .u32(K.IPVS_DEST_ATTR_ACTIVE_CONNS, seed % 7)
      .u32(K.IPVS_DEST_ATTR_INACT_CONNS, seed % 5)
      .u32(K.IPVS_DEST_ATTR_PERSIST_CONNS, 0);
    stats(w, K.IPVS_DEST_ATTR_STATS, false, seed);
    w.u16(K.IPVS_DEST_ATTR_ADDR_FAMILY, K.AF_INET);
    stats(w, K.IPVS_DEST_ATTR_STATS64, true, seed);
  });
  return w.finish();
}

/** Messages packed into datagrams of up to PART bytes, then DONE alone, as IPVS's dumps end. */
function datagrams(messages: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let batch: Buffer[] = [];
  let size = 0;
  for (const m of messages) {
    if (size + m.length > PART && batch.length > 0) {
      out.push(Buffer.concat(batch));
      batch = [];
      size = 0;
    }
    batch.push(m);
    size += m.length;
  }
  if (batch.length > 0) out.push(Buffer.concat(batch));
  const done = Buffer.alloc(K.NLMSG_HDRLEN + 4);
  done.writeUInt32LE(done.length, 0);
  done.writeUInt16LE(K.NLMSG_DONE, 4);
  done.writeUInt16LE(K.NLM_F_MULTI, 6);
  out.push(done);
  return out;
}

/** The request's bytes without its sequence number and port, which the transport sets. */
const requestKey = (m: Buffer): string => {
  const c = Buffer.from(m);
  c.fill(0, 8, 16);
  return c.toString('hex');
};

export interface ReadTable {
  readonly factory: SocketFactory;
  /** Bytes of one destination's message, as the kernel would send it. */
  readonly destinationBytes: number;
  readonly datagramsPerRead: number;
}

/** A socket factory whose sockets answer a table read of services x perService destinations. */
export function readTable(services: number, perService: number): ReadTable {
  const replies = new Map<string, Buffer[]>();
  const serviceMessages: Buffer[] = [];
  let destinationBytes = 0;
  let count = 0;
  for (let s = 0; s < services; s++) {
    const key = {
      family: 4 as const,
      protocol: 'tcp' as const,
      address: `10.100.${s >> 8}.${s & 0xff}`,
      port: 80,
    };
    serviceMessages.push(serviceMessage(key));
    const dests: Buffer[] = [];
    for (let d = 0; d < perService; d++) {
      const i = s * perService + d;
      const m = destinationMessage(`10.${128 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`, i);
      destinationBytes = m.length;
      dests.push(m);
    }
    const request = writeServiceKey(ipvsMessage(FAMILY, K.IPVS_CMD_GET_DEST, true), key).finish();
    replies.set(requestKey(request), datagrams(dests));
  }
  replies.set(
    requestKey(ipvsMessage(FAMILY, K.IPVS_CMD_GET_SERVICE, true).finish()),
    datagrams(serviceMessages),
  );
  for (const d of replies.values()) count += d.length;
  const family = new MessageWriter(K.GENL_ID_CTRL, 0, 1, 1)
    .u16(K.CTRL_ATTR_FAMILY_ID, FAMILY)
    .u32(K.CTRL_ATTR_VERSION, K.IPVS_GENL_VERSION)
    .finish();
  const ack = Buffer.alloc(K.NLMSG_HDRLEN + 4 + K.NLMSG_HDRLEN);
  ack.writeUInt32LE(ack.length, 0);
  ack.writeUInt16LE(K.NLMSG_ERROR, 4);
  ack.writeUInt16LE(K.NLM_F_CAPPED, 6);

  let ports = 1;
  const factory: SocketFactory = (handlers) => {
    const port = ports++;
    /** Sets every message of the datagram to answer `seq` on this socket. */
    const answer = (d: Buffer, seq: number): Buffer => {
      for (let o = 0; o + K.NLMSG_HDRLEN <= d.length; o += (d.readUInt32LE(o) + 3) & ~3) {
        d.writeUInt32LE(seq, o + 8);
        d.writeUInt32LE(port, o + 12);
      }
      return d;
    };
    return {
      port,
      recvBufferSize: 1 << 20,
      send: (messages, callback) => {
        const out: Buffer[] = [];
        for (const m of messages) {
          const seq = m.readUInt32LE(8);
          if (m.readUInt16LE(4) === K.GENL_ID_CTRL) {
            out.push(answer(Buffer.concat([Buffer.from(family), Buffer.from(ack)]), seq));
            continue;
          }
          const dump = replies.get(requestKey(m));
          if (!dump) throw new Error('bench:read: a request this socket has no answer for');
          for (const d of dump) out.push(answer(d, seq));
        }
        // The kernel's answer is read in a later turn of the event loop.
        setImmediate(() => {
          callback();
          for (const d of out) handlers.message(d, 0, false);
        });
      },
      close: () => undefined,
    };
  };
  return { factory, destinationBytes, datagramsPerRead: count };
}

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const services = Number(process.env.BENCH_SERVICES ?? 100);
  const perService = Number(process.env.BENCH_DESTS ?? 100);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 200);
  const total = services * perService;
  const table = readTable(services, perService);
  const backend = await NetlinkBackend.open({ socketFactory: table.factory, dumpLanes: 4 });
  const times = { layout: [] as number[], table: [] as number[] };
  const warm = Math.min(20, Math.floor(rounds / 5));
  try {
    for (let r = 0; r < rounds + warm; r++) {
      for (const kind of ['layout', 'table'] as const) {
        const t0 = performance.now();
        const read = await backend[kind]();
        const ms = performance.now() - t0;
        const n = read.reduce((k, e) => k + e.destinations.length, 0);
        if (n !== total) throw new Error(`${kind}() read ${n} destinations, not ${total}`);
        if (r >= warm) times[kind].push(ms);
      }
    }
  } finally {
    await backend.close();
  }
  console.log(
    `# ${services} services x ${perService} destinations = ${total}, ${rounds} reads of each ` +
      `(after ${warm} to warm up), ${table.destinationBytes} bytes a destination, ` +
      `${table.datagramsPerRead} datagrams a read`,
  );
  console.log('| read | median ms | p10 ms | mean ms | µs a destination (median) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const kind of ['layout', 'table'] as const) {
    const xs = times[kind];
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const median = quantile(xs, 0.5);
    console.log(
      `| ${kind}() | ${median.toFixed(2)} | ${quantile(xs, 0.1).toFixed(2)} | ${mean.toFixed(2)} | ${((1000 * median) / total).toFixed(2)} |`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
