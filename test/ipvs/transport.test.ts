// Netlink framing against a fake peer: the replies a real kernel cannot be made to send
// (interleaved, truncated, garbage, foreign, interrupted, lost) and what the transport does.
import t from 'tap';
import { IpvsError, isOutcomeUnknown } from '../../src/ipvs/errors.js';
import { NetlinkBackend } from '../../src/ipvs/netlink/backend.js';
import * as K from '../../src/ipvs/netlink/constants.js';
import { formatServiceKey } from '../../src/ipvs/spec.js';
import {
  NetlinkTransport,
  type SocketFactory,
  type SocketHandlers,
} from '../../src/ipvs/netlink/transport.js';
import { destinationAttrs, nla, u16, u32 } from './nla.js';

const FAMILY = 0x20;

function nlmsg(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const len = 16 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  payload.copy(b, 16);
  return b;
}
const genl = (cmd: number, ...attrs: Buffer[]): Buffer =>
  Buffer.concat([Buffer.from([cmd, 1, 0, 0]), ...attrs]);
function ack(seq: number, errno = 0, extack?: string): Buffer {
  const body = [u32(errno >>> 0), nlmsg(FAMILY, 0, seq, Buffer.alloc(0)).subarray(0, 16)];
  let flags = K.NLM_F_CAPPED;
  if (extack) {
    flags |= K.NLM_F_ACK_TLVS;
    body.push(nla(K.NLMSGERR_ATTR_MSG, Buffer.from(`${extack}\0`)));
  }
  return nlmsg(K.NLMSG_ERROR, flags, seq, Buffer.concat(body));
}
const done = (seq: number, errno = 0, flags = K.NLM_F_MULTI): Buffer =>
  nlmsg(K.NLMSG_DONE, flags, seq, u32(errno >>> 0));
const part = (seq: number, payload: Buffer, flags = K.NLM_F_MULTI): Buffer =>
  nlmsg(FAMILY, flags, seq, payload);

/** A service as the kernel dumps it: TCP 10.0.0.1:80 (or `port`) wlc. */
function servicePayload(omitAf = false, port = 80): Buffer {
  const stats = nla(
    K.IPVS_SVC_ATTR_STATS64,
    Buffer.concat(Array.from({ length: 10 }, (_, i) => nla(i + 1, Buffer.alloc(8)))),
  );
  const addr = Buffer.alloc(16);
  addr.set([10, 0, 0, 1]);
  const svc = Buffer.concat([
    omitAf ? Buffer.alloc(0) : nla(K.IPVS_SVC_ATTR_AF, u16(K.AF_INET)),
    nla(K.IPVS_SVC_ATTR_PROTOCOL, u16(K.IPPROTO_TCP)),
    nla(K.IPVS_SVC_ATTR_ADDR, addr),
    nla(K.IPVS_SVC_ATTR_PORT, Buffer.from([port >> 8, port & 0xff])),
    nla(K.IPVS_SVC_ATTR_SCHED_NAME, Buffer.from('wlc\0')),
    nla(K.IPVS_SVC_ATTR_FLAGS, Buffer.concat([u32(K.IP_VS_SVC_F_HASHED), u32(0xffffffff)])),
    nla(K.IPVS_SVC_ATTR_TIMEOUT, u32(0)),
    nla(K.IPVS_SVC_ATTR_NETMASK, Buffer.from([255, 255, 255, 255])),
    stats,
  ]);
  return genl(K.IPVS_CMD_NEW_SERVICE, nla(K.IPVS_CMD_ATTR_SERVICE, svc));
}

/** A destination as the kernel dumps it: 192.0.2.`host`:8080, masquerading, weight 1. */
const destinationPayload = (host: number): Buffer =>
  genl(
    K.IPVS_CMD_NEW_DEST,
    nla(
      K.IPVS_CMD_ATTR_DEST,
      Buffer.concat(destinationAttrs(host, { weight: 1, active: 0, inactive: 0 })),
    ),
  );

interface Peer {
  factory: SocketFactory;
  sent: Buffer[];
  /** The socket (the factory's call, 0 the first) each message of `sent` went on. */
  sentOn: number[];
  /** Messages per datagram sent. */
  datagrams: number[];
  /** Calls of the factory (those that threw included), and sockets closed. */
  opens: number;
  closes: number;
  /** Errnos the next calls of the factory throw, in turn. */
  failOpens: number[];
  /** When set, send() reports this errno: the datagram did not go out. */
  failSends: number | undefined;
  /** When set, send() throws at once (netlink@0.3.0 on a closed socket). */
  throwSends: boolean;
  /** To the newest socket, or to the one the factory made at call `socket`. */
  reply(data: Buffer, port?: number, truncated?: boolean, socket?: number): void;
  /** To the newest socket, or to the one the factory made at call `socket` (0 the first). */
  error(errno: number, socket?: number): void;
  seqOf(i: number): number;
}
function fakePeer(): Peer {
  const handlers: SocketHandlers[] = [];
  const errnoError = (errno: number, message: string): NodeJS.ErrnoException =>
    Object.assign(new Error(message), { errno });
  const peer: Peer = {
    sent: [],
    sentOn: [],
    datagrams: [],
    opens: 0,
    closes: 0,
    failOpens: [],
    failSends: undefined,
    throwSends: false,
    factory: (h) => {
      const n = peer.opens++;
      const errno = peer.failOpens.shift();
      if (errno !== undefined) throw errnoError(errno, 'socket() failed');
      handlers[n] = h;
      return {
        port: 4242 + n,
        send: (messages, cb) => {
          if (peer.throwSends) throw errnoError(9, 'Socket is closed');
          if (peer.failSends !== undefined) return cb(errnoError(peer.failSends, 'sendmsg failed'));
          peer.sent.push(...messages);
          peer.sentOn.push(...messages.map(() => n));
          peer.datagrams.push(messages.length);
          cb();
        },
        close: () => {
          peer.closes++;
        },
      };
    },
    reply: (data, port = 0, truncated = false, socket) =>
      (socket === undefined ? handlers.at(-1) : handlers[socket])?.message(data, port, truncated),
    error: (errno, socket) =>
      (socket === undefined ? handlers.at(-1) : handlers[socket])?.error(
        errnoError(errno, 'recvmsg failed'),
      ),
    seqOf: (i) => peer.sent[i]?.readUInt32LE(8) ?? -1,
  };
  return peer;
}
/** Whether a promise has settled by now (it is observed, so a rejection is not unhandled). */
function settled(p: Promise<unknown>): () => boolean {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return () => done;
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** A request message; the transport sets its sequence number. */
const req = (): Buffer =>
  nlmsg(FAMILY, K.NLM_F_REQUEST | K.NLM_F_ACK, 0, Buffer.from([0, 1, 0, 0]));
const ctx = { op: 'test-op', target: 'TCP 10.0.0.1:80' };

async function openBackend(peer: Peer, dumpLanes?: number): Promise<NetlinkBackend> {
  const opening = NetlinkBackend.open({
    socketFactory: peer.factory,
    ...(dumpLanes === undefined ? {} : { dumpLanes }),
  });
  await tick();
  const seq = peer.seqOf(0);
  peer.reply(
    Buffer.concat([
      nlmsg(
        K.GENL_ID_CTRL,
        0,
        seq,
        genl(1, nla(K.CTRL_ATTR_FAMILY_ID, u16(FAMILY)), nla(K.CTRL_ATTR_VERSION, u32(1))),
      ),
      ack(seq),
    ]),
  );
  return opening;
}

t.test('an ack and a dump interleaved on one socket each reach their own request', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory);
  const dump = tr.request(req(), ctx, true);
  const write = tr.request(req(), ctx);
  await tick();
  const [d, w] = [peer.seqOf(0), peer.seqOf(1)];
  peer.reply(Buffer.concat([part(d, Buffer.from('one')), ack(w), part(d, Buffer.from('two'))]));
  peer.reply(done(d));
  t.same((await dump).map(String), ['one', 'two']);
  t.same(await write, []);
  tr.close();
});

t.test('the kernel errno and its extended ack text are kept', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory);
  const p = tr.request(req(), ctx);
  await tick();
  peer.reply(ack(peer.seqOf(0), -17, 'service already exists'));
  await t.rejects(p, {
    code: 'EEXIST',
    errno: 17,
    message: /^test-op TCP 10\.0\.0\.1:80 failed: EEXIST .*service already exists/,
  });
  tr.close();
});

t.test('an error inside a dump DONE fails the dump', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory);
  const p = tr.request(req(), ctx, true);
  await tick();
  peer.reply(Buffer.concat([part(peer.seqOf(0), Buffer.from('x')), done(peer.seqOf(0), -1)]));
  await t.rejects(p, { code: 'EPERM', message: /dump failed/ });
  tr.close();
});

t.test(
  'a dump marked NLM_F_DUMP_INTR is read again; a table that keeps changing fails with EINTR',
  async (t) => {
    const peer = fakePeer();
    const b = await openBackend(peer);
    const listing = b.services();
    await tick();
    peer.reply(
      Buffer.concat([
        part(peer.seqOf(1), servicePayload(), K.NLM_F_MULTI | K.NLM_F_DUMP_INTR),
        done(peer.seqOf(1)),
      ]),
    );
    await tick();
    peer.reply(Buffer.concat([part(peer.seqOf(2), servicePayload()), done(peer.seqOf(2))]));
    const services = await listing;
    t.equal(peer.sent.length, 3, 'the dump was sent twice');
    t.same(
      services.map((s) => [s.key, s.scheduler, s.persistent]),
      [[{ family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 }, 'wlc', false]],
    );

    const again = b.services();
    for (let i = 3; i < 6; i++) {
      await tick();
      peer.reply(done(peer.seqOf(i), 0, K.NLM_F_MULTI | K.NLM_F_DUMP_INTR));
    }
    await t.rejects(again, { code: 'EINTR', op: 'list-services' });
    await b.close();
  },
);

t.test('replies from anyone but the kernel are dropped', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory);
  const p = tr.request(req(), ctx);
  await tick();
  peer.reply(ack(peer.seqOf(0), -1), 777);
  t.equal(tr.counters.foreign, 1);
  peer.reply(ack(peer.seqOf(0)));
  t.same(await p, [], 'the kernel reply still completes the request');
  tr.close();
});

t.test(
  'truncated and garbage datagrams fail what is in flight with EPROTO, and nothing throws',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory);
    const a = tr.request(req(), ctx);
    await tick();
    peer.reply(ack(peer.seqOf(0)).subarray(0, 20), 0, true);
    await t.rejects(a, { code: 'EPROTO', message: /truncated/ });

    const b = tr.request(req(), ctx);
    await tick();
    const bad = ack(peer.seqOf(1));
    bad.writeUInt32LE(4096, 0); // a length past the end of the datagram
    peer.reply(bad);
    await t.rejects(b, { code: 'EPROTO', message: /does not fit/ });

    const c = tr.request(req(), ctx);
    await tick();
    peer.reply(Buffer.concat([ack(peer.seqOf(2)), Buffer.from([1, 2, 3, 4, 5])]));
    t.same(await c, [], 'a request completed by a good message is not failed by trailing bytes');
    const d = tr.request(req(), ctx);
    await tick();
    peer.reply(ack(peer.seqOf(3)));
    t.same(await d, [], 'the socket is still usable');
    tr.close();
  },
);

t.test('a malformed service in a dump is EPROTO naming what is missing', async (t) => {
  const peer = fakePeer();
  const b = await openBackend(peer);
  const listing = b.services();
  await tick();
  peer.reply(Buffer.concat([part(peer.seqOf(1), servicePayload(true)), done(peer.seqOf(1))]));
  await t.rejects(listing, {
    code: 'EPROTO',
    message: /list-services failed: EPROTO .*missing IPVS_SVC_ATTR_AF/,
  });
  const short = b.services();
  await tick();
  peer.reply(
    Buffer.concat([part(peer.seqOf(2), servicePayload().subarray(0, 30)), done(peer.seqOf(2))]),
  );
  await t.rejects(short, { code: 'EPROTO' });
  await b.close();
});

t.test(
  'a dump part its decoder throws on fails the dump once the kernel has ended it',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory);
    const unreadable = new Error('unreadable part');
    const seen: string[] = [];
    const first = tr.decoded(req(), ctx, true, (buf, start, end) => {
      const text = buf.toString('latin1', start, end);
      seen.push(text);
      if (text === 'two') throw unreadable;
      return text;
    });
    const second = tr.request(req(), ctx, true);
    const firstSettled = settled(first);
    await tick();
    const d = peer.seqOf(0);
    peer.reply(Buffer.concat([part(d, Buffer.from('one')), part(d, Buffer.from('two'))]));
    peer.reply(part(d, Buffer.from('three')));
    await tick();
    t.notOk(firstSettled(), 'not failed while the kernel is still dumping');
    t.equal(peer.sent.length, 1, 'the next dump waits for the end of this one');
    peer.reply(done(d));
    await t.rejects(first, unreadable);
    t.same(seen, ['one', 'two'], 'nothing is decoded after the part that failed');
    t.equal(tr.counters.stray, 0, "the parts after it were taken as the dump's own");
    await tick();
    t.equal(peer.sent.length, 2);
    peer.reply(Buffer.concat([part(peer.seqOf(1), Buffer.from('four')), done(peer.seqOf(1))]));
    t.same((await second).map(String), ['four'], 'each part read where it lies in its datagram');
    tr.close();
  },
);

t.test('requests beyond the window wait; a second dump waits for the first', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory, { window: 2 });
  const ps = [tr.request(req(), ctx), tr.request(req(), ctx), tr.request(req(), ctx)];
  await tick();
  t.equal(peer.sent.length, 2, 'two in flight');
  peer.reply(ack(peer.seqOf(0)));
  await tick();
  t.equal(peer.sent.length, 3, 'the third goes when the first is acknowledged');
  peer.reply(Buffer.concat([ack(peer.seqOf(1)), ack(peer.seqOf(2))]));
  await Promise.all(ps);

  const d1 = tr.request(req(), ctx, true);
  const d2 = tr.request(req(), ctx, true);
  await tick();
  t.equal(peer.sent.length, 4, 'one dump at a time');
  peer.reply(done(peer.seqOf(3)));
  await tick();
  t.equal(peer.sent.length, 5);
  peer.reply(done(peer.seqOf(4)));
  await Promise.all([d1, d2]);
  tr.close();
});

t.test('a table read spreads its per-service dumps over its lanes, in order', async (t) => {
  const peer = fakePeer();
  const b = await openBackend(peer, 3);
  const reading = b.layout();
  await tick();
  const services = peer.sent.length - 1;
  t.equal(peer.sentOn[services], 0, "the services' dump goes on the backend's own socket");
  const seq = peer.seqOf(services);
  peer.reply(
    Buffer.concat([81, 82, 83, 84].map((port) => part(seq, servicePayload(false, port)))),
    0,
    false,
    0,
  );
  peer.reply(done(seq), 0, false, 0);
  await tick();
  await tick();
  const first = peer.sent.length - 3;
  t.equal(first, services + 1, 'three dumps at once, one on each lane');
  t.same(peer.sentOn.slice(first), [0, 1, 2]);
  t.equal(peer.opens, 3, 'two sockets opened for the lanes');
  // The second lane finishes first and takes the fourth service.
  const answer = (i: number, host: number): void => {
    const s = peer.seqOf(i);
    const socket = peer.sentOn[i];
    peer.reply(Buffer.concat([part(s, destinationPayload(host)), done(s)]), 0, false, socket);
  };
  answer(first + 1, 2);
  await tick();
  await tick();
  t.equal(peer.sentOn[first + 3], 1, 'the fourth dump goes on the lane that is free');
  answer(first + 3, 4);
  answer(first + 2, 3);
  answer(first, 1);
  const table = await reading;
  t.same(
    table.map((e) => [formatServiceKey(e.service.key), e.destinations.map((d) => d.key.address)]),
    [
      ['TCP 10.0.0.1:81', ['192.0.2.1']],
      ['TCP 10.0.0.1:82', ['192.0.2.2']],
      ['TCP 10.0.0.1:83', ['192.0.2.3']],
      ['TCP 10.0.0.1:84', ['192.0.2.4']],
    ],
    "each service with its own dump's destinations, in the services' order",
  );
  await b.close();
  t.equal(peer.closes, 3, 'the lanes close with the backend');
});

t.test('requests made together share one datagram', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory, { window: 64 });
  const ps = Array.from({ length: 100 }, () => tr.request(req(), ctx));
  await tick();
  t.same(peer.datagrams, [64], 'a full window in one datagram');
  peer.reply(Buffer.concat(Array.from({ length: 31 }, (_, i) => ack(peer.seqOf(i)))));
  await tick();
  t.same(peer.datagrams, [64], 'no refill while more than half the window is in flight');
  peer.reply(ack(peer.seqOf(31)));
  await tick();
  t.same(peer.datagrams, [64, 32], 'the refill goes as one datagram');
  peer.reply(Buffer.concat(Array.from({ length: 64 }, (_, i) => ack(peer.seqOf(32 + i)))));
  await tick();
  peer.reply(Buffer.concat(Array.from({ length: 4 }, (_, i) => ack(peer.seqOf(96 + i)))));
  t.equal((await Promise.all(ps)).length, 100);
  t.equal(
    new Set(peer.sent.map((m) => m.readUInt32LE(8))).size,
    100,
    'every request has its own sequence number',
  );
  tr.close();
});

t.test('lost replies (ENOBUFS) fail every request in flight; silence times out', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory, { timeoutMs: 50 });
  const a = tr.request(req(), ctx);
  await tick();
  const b = tr.request(req(), ctx);
  await tick();
  await tick();
  peer.error(105);
  await t.rejects(a, { code: 'ENOBUFS', message: /re-read/ });
  await t.rejects(b, { code: 'ENOBUFS' });
  await t.rejects(tr.request(req(), ctx), {
    code: 'ETIMEDOUT',
    message: /test-op TCP 10\.0\.0\.1:80/,
  });
  tr.close();
  await t.rejects(tr.request(req(), ctx), { code: 'ESHUTDOWN' });
});

t.test(
  'the deadline timer keeps the process alive only while a request is in flight',
  async (t) => {
    const timers = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { timeoutMs: 50 });
    for (let i = 0; i < 3; i++) {
      const answered = tr.request(req(), ctx);
      await tick();
      t.equal(timers(), before + 1, `request ${i + 1} in flight: one timer holds the process`);
      peer.reply(ack(peer.seqOf(i)));
      await answered;
      t.equal(timers(), before, `request ${i + 1} answered: no timer holds it`);
    }
    const lost = tr.request(req(), ctx);
    await t.rejects(lost, { code: 'ETIMEDOUT' }, 'and a request still times out after idle ones');
    tr.close();
  },
);

t.test('deadlines follow the monotonic clock, not the wall clock', async (t) => {
  // A wall clock stepped forward would fail every request in flight at once; this one reads
  // only the clock it is given: frozen, nothing times out however long the sweeps run.
  const peer = fakePeer();
  let now = 1_000;
  const tr = new NetlinkTransport(peer.factory, { timeoutMs: 50, clock: { monotonic: () => now } });
  let settled = false;
  const waiting = tr.request(req(), ctx).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 300)); // several sweeps past 50 ms of real time
  t.notOk(settled, 'still waiting while the clock stands');
  now += 49;
  await new Promise((r) => setTimeout(r, 150));
  t.notOk(settled, 'still waiting 1 ms before its deadline');
  now += 1;
  await t.rejects(waiting, { code: 'ETIMEDOUT', outcomeUnknown: true }, 'fails at its deadline');
  tr.close();
});

t.test(
  'a request the kernel skips while answering a later one fails at once: EINTR, outcome unknown',
  async (t) => {
    // netlink_rcv_skb sends nothing for a handler's -EINTR; the kernel answers in the order
    // sent, so a later answer means none is coming. A dump sent earlier is still being read.
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { timeoutMs: 60_000 });
    const dump = tr.request(req(), ctx, true);
    const [a, b, c] = [tr.request(req(), ctx), tr.request(req(), ctx), tr.request(req(), ctx)];
    const [dumpDone, cDone] = [settled(dump), settled(c)];
    await tick();
    peer.reply(ack(peer.seqOf(2)));
    await t.rejects(a, {
      code: 'EINTR',
      outcomeUnknown: true,
      message: /answered a later request and not this one/,
    });
    t.same(await b, [], 'the later one is answered');
    await tick();
    t.notOk(dumpDone(), 'the dump sent before is not failed');
    t.notOk(cDone(), 'nor a request sent after');
    t.equal(tr.counters.skipped, 1);
    peer.reply(Buffer.concat([ack(peer.seqOf(3)), done(peer.seqOf(0))]));
    t.same(await c, []);
    t.same(await dump, []);
    tr.close();
  },
);

const asksAck = (m: Buffer): boolean => (m.readUInt16LE(6) & K.NLM_F_ACK) !== 0;

t.test(
  'writes ask no acknowledgement but the last of each datagram; its answer settles the rest',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { window: 8, timeoutMs: 60_000 });
    const writes = Array.from({ length: 12 }, () => tr.write(req(), ctx));
    const done = writes.map(settled);
    await tick();
    t.same(peer.datagrams, [8], 'a full window in one datagram');
    t.same(
      peer.sent.map(asksAck),
      [false, false, false, false, false, false, false, true],
      'only the last asks for its acknowledgement',
    );
    peer.reply(ack(peer.seqOf(7)));
    await tick();
    t.same(
      done.slice(0, 8).map((d) => d()),
      Array(8).fill(true),
      'the answer settles all 8',
    );
    t.same(await Promise.all(writes.slice(0, 8)), Array(8).fill([]), 'as applied');
    t.equal(tr.counters.silent, 7);
    t.equal(tr.counters.skipped, 0);
    t.same(peer.datagrams, [8, 4], 'the rest go out at once');
    t.same(peer.sent.slice(8).map(asksAck), [false, false, false, true]);
    t.notOk(done[8]?.(), 'unanswered, the next datagram waits');
    peer.reply(ack(peer.seqOf(11)));
    await Promise.all(writes);
    t.equal(tr.counters.silent, 10);
    tr.close();
  },
);

t.test(
  'a write that fails is answered with its errno, a known outcome; the ones around it applied',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { timeoutMs: 60_000 });
    const [a, b, c] = [tr.write(req(), ctx), tr.write(req(), ctx), tr.write(req(), ctx)];
    await tick();
    t.same(peer.sent.map(asksAck), [false, false, true]);
    // What the kernel sends for them: an error answer for the failed one, then the last's ack.
    peer.reply(ack(peer.seqOf(1), -17, 'destination already exists'));
    await t.rejects(b, {
      code: 'EEXIST',
      outcomeUnknown: false,
      message: /destination already exists/,
    });
    t.same(await a, [], 'the one before is applied');
    t.notOk(settled(c)(), 'the one after waits for its own answer');
    peer.reply(ack(peer.seqOf(2)));
    t.same(await c, []);
    tr.close();
  },
);

t.test(
  'a write sent before a request is settled by its answer; one before a dump ends its datagram',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { timeoutMs: 60_000 });
    const w1 = tr.write(req(), ctx);
    const r = tr.request(req(), ctx);
    const w2 = tr.write(req(), ctx);
    const dump = tr.request(req(), ctx, true);
    await tick();
    t.same(peer.datagrams, [3, 1], 'the dump goes alone');
    t.same(peer.sent.slice(0, 3).map(asksAck), [false, true, true], 'the last before it asks');
    peer.reply(ack(peer.seqOf(1)));
    t.same(await w1, [], "settled by the request's answer");
    t.same(await r, []);
    peer.reply(Buffer.concat([ack(peer.seqOf(2)), done(peer.seqOf(3))]));
    t.same(await w2, []);
    t.same(await dump, []);
    t.equal(tr.counters.silent, 1);
    t.equal(tr.counters.skipped, 0);

    const timed = new NetlinkTransport(peer.factory, { timeoutMs: 50 });
    const lost = [timed.write(req(), ctx), timed.write(req(), ctx)];
    for (const w of lost) await t.rejects(w, { code: 'ETIMEDOUT', outcomeUnknown: true });
    timed.close();
    tr.close();
  },
);

t.test('a stop the kernel leaves unanswered is judged by the list sent behind it', async (t) => {
  // What Debian's 6.1 kernel does to a sync daemon stopped before its thread first ran.
  const daemon = (state: number): Buffer =>
    genl(
      K.IPVS_CMD_NEW_DAEMON,
      nla(
        K.IPVS_CMD_ATTR_DAEMON | K.NLA_F_NESTED,
        Buffer.concat([
          nla(K.IPVS_DAEMON_ATTR_STATE, u32(state)),
          nla(K.IPVS_DAEMON_ATTR_MCAST_IFN, Buffer.from('eth0\0')),
          nla(K.IPVS_DAEMON_ATTR_SYNC_ID, u32(0)),
        ]),
      ),
    );
  const peer = fakePeer();
  const b = await openBackend(peer);

  const gone = b.stopSyncDaemon('master');
  await tick();
  t.equal(peer.sent.length, 3, 'the stop, then the list');
  t.equal(peer.sent[2]?.readUInt16LE(6), K.NLM_F_REQUEST | K.NLM_F_DUMP);
  peer.reply(
    Buffer.concat([part(peer.seqOf(2), daemon(K.IP_VS_STATE_BACKUP)), done(peer.seqOf(2))]),
  );
  await t.resolves(gone, 'no answer, and the list has no master: it is stopped');

  const kept = b.stopSyncDaemon('master');
  await tick();
  peer.reply(
    Buffer.concat([part(peer.seqOf(4), daemon(K.IP_VS_STATE_MASTER)), done(peer.seqOf(4))]),
  );
  await t.rejects(kept, {
    code: 'EINTR',
    outcomeUnknown: true,
    message:
      /stop-sync-daemon master failed: EINTR \(the kernel cut the stop short and the daemon is still listed\)/,
  });

  const answered = b.stopSyncDaemon('backup');
  await tick();
  peer.reply(Buffer.concat([ack(peer.seqOf(5), -3)]));
  await t.rejects(answered, { code: 'ESRCH' }, 'an answer is the answer');
  peer.reply(done(peer.seqOf(6), -1));
  await tick();
  await b.close();
});

t.test('nested attributes are sent with NLA_F_NESTED', async (t) => {
  const peer = fakePeer();
  const b = await openBackend(peer);
  const deleting = b.deleteService({ family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 });
  await tick();
  const msg = peer.sent[1];
  t.ok(msg);
  if (!msg) return;
  t.equal(msg.readUInt16LE(16 + 4 + 2), K.IPVS_CMD_ATTR_SERVICE | K.NLA_F_NESTED);
  t.equal(msg.readUInt16LE(6), K.NLM_F_REQUEST | K.NLM_F_ACK);
  peer.reply(ack(peer.seqOf(1), -3));
  await t.rejects(deleting, { code: 'ESRCH', op: 'delete-service' });
  await b.close();
});

t.test(
  'a request sent and not answered has an unknown outcome: the kernel may have applied it',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { timeoutMs: 50 });
    const unknown = { outcomeUnknown: true };
    await t.rejects(tr.request(req(), ctx), { code: 'ETIMEDOUT', ...unknown }, 'timed out');

    const lost = tr.request(req(), ctx);
    await tick();
    peer.error(105);
    await t.rejects(lost, { code: 'ENOBUFS', ...unknown }, 'a socket error');

    const truncated = tr.request(req(), ctx);
    await tick();
    peer.reply(ack(peer.seqOf(2)).subarray(0, 20), 0, true);
    await t.rejects(truncated, { code: 'EPROTO', ...unknown }, 'a truncated datagram');

    const misframed = tr.request(req(), ctx);
    await tick();
    const bad = ack(peer.seqOf(3));
    bad.writeUInt32LE(4096, 0);
    peer.reply(bad);
    await t.rejects(misframed, { code: 'EPROTO', ...unknown }, 'a message that does not fit');

    const [answered, after] = [tr.request(req(), ctx), tr.request(req(), ctx)];
    await tick();
    peer.reply(Buffer.concat([ack(peer.seqOf(4)), Buffer.from([1, 2, 3, 4, 5])]));
    t.same(await answered, []);
    await t.rejects(after, { code: 'EPROTO', ...unknown }, 'trailing bytes');

    const short = tr.request(req(), ctx);
    await tick();
    peer.reply(nlmsg(K.NLMSG_ERROR, 0, peer.seqOf(6), Buffer.alloc(0)));
    await t.rejects(short, { code: 'EPROTO', ...unknown }, 'an NLMSG_ERROR without its errno');

    const overrun = tr.request(req(), ctx);
    await tick();
    peer.reply(nlmsg(K.NLMSG_OVERRUN, 0, peer.seqOf(7), Buffer.alloc(0)));
    await t.rejects(overrun, { code: 'ENOBUFS', ...unknown }, 'NLMSG_OVERRUN');
    tr.close();
  },
);

t.test(
  'a kernel errno, a send that failed and a request never sent have a known outcome',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { window: 1 });
    const known = { outcomeUnknown: false };
    const refused = tr.request(req(), ctx);
    await tick();
    peer.reply(ack(peer.seqOf(0), -17));
    const error = await t.rejects(refused, { code: 'EEXIST', ...known }, 'the kernel said no');
    t.equal(isOutcomeUnknown(error), false);

    peer.failSends = 90;
    await t.rejects(tr.request(req(), ctx), { code: 'EMSGSIZE', ...known }, 'not sent');
    peer.failSends = undefined;
    peer.throwSends = true;
    await t.rejects(
      tr.request(req(), ctx),
      { code: 'EBADF', ...known, message: /Socket is closed/ },
      'a send that throws is a request not sent, not a crash',
    );
    peer.throwSends = false;

    const inFlight = tr.request(req(), ctx);
    const queued = tr.request(req(), ctx);
    await tick();
    t.equal(peer.sent.length, 2, 'one in flight, one queued');
    settled(queued);
    tr.close();
    const closed = await t.rejects(inFlight, { code: 'ESHUTDOWN', outcomeUnknown: true });
    t.equal(isOutcomeUnknown(closed), true, 'closed under a request in flight');
    await t.rejects(queued, { code: 'ESHUTDOWN', ...known }, 'closed before it was sent');
    await t.rejects(tr.request(req(), ctx), { code: 'ESHUTDOWN', ...known }, 'after close');

    t.equal(isOutcomeUnknown(new Error('not from the table')), false);
    t.equal(isOutcomeUnknown({ outcomeUnknown: true }), false, 'only an IpvsError says so');
    t.equal(isOutcomeUnknown(undefined), false);
  },
);

t.test('a message that does not fit its datagram fails everything in flight at once', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory);
  const a = tr.request(req(), ctx);
  const b = tr.request(req(), ctx);
  await tick();
  const bad = ack(peer.seqOf(0));
  bad.writeUInt32LE(4096, 0); // covers b's ack, which can no longer be trusted
  const [aDone, bDone] = [settled(a), settled(b)];
  peer.reply(Buffer.concat([bad, ack(peer.seqOf(1))]));
  await tick();
  t.ok(aDone() && bDone(), 'the next request in that datagram does not wait for its timeout');
  await t.rejects(a, { code: 'EPROTO', message: /does not fit/, outcomeUnknown: true });
  await t.rejects(b, { code: 'EPROTO', message: /does not fit/, outcomeUnknown: true });
  tr.close();
});

t.test(
  'after a socket error the transport opens a new socket and carries on with what was queued',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { window: 1 });
    const a = tr.request(req(), ctx);
    const b = tr.request(req(), ctx);
    await tick();
    t.equal(peer.sent.length, 1, 'a in flight, b queued');
    peer.error(105);
    await t.rejects(a, { code: 'ENOBUFS', outcomeUnknown: true });
    t.equal(peer.opens, 2, 'a new socket from the same factory');
    t.equal(peer.closes, 1, 'the old one closed');
    await tick();
    t.equal(peer.sent.length, 2, 'b went out');
    t.equal(peer.sent[1]?.readUInt32LE(12), 4243, 'on the new socket, with its port');
    peer.error(105, 0);
    peer.reply(ack(peer.seqOf(1)), 0);
    t.equal(peer.opens, 2, 'a late error from the old socket is ignored');
    t.same(await b, []);
    tr.close();
    t.equal(peer.closes, 2);
  },
);

t.test(
  'a factory that keeps failing fails the queued requests clearly, and is tried again only for the next request',
  async (t) => {
    const peer = fakePeer();
    const tr = new NetlinkTransport(peer.factory, { window: 1 });
    const a = tr.request(req(), ctx);
    const b = tr.request(req(), ctx);
    await tick();
    settled(b);
    peer.failOpens = [24, 24];
    peer.error(105);
    await t.rejects(a, { code: 'ENOBUFS', outcomeUnknown: true });
    await t.rejects(b, {
      code: 'EMFILE',
      message:
        /test-op TCP 10\.0\.0\.1:80 failed: EMFILE .*could not be reopened: socket\(\) failed/,
      outcomeUnknown: false,
    });
    for (let i = 0; i < 5; i++) await tick();
    t.equal(peer.opens, 2, 'one attempt, no retry on its own');
    await t.rejects(tr.request(req(), ctx), { code: 'EMFILE', outcomeUnknown: false });
    t.equal(peer.opens, 3, 'tried again for the next request');
    const c = tr.request(req(), ctx);
    await tick();
    t.equal(peer.opens, 4);
    t.equal(peer.sent.length, 2);
    peer.reply(ack(peer.seqOf(1)));
    t.same(await c, [], 'a socket again');
    tr.close();
  },
);

t.test('a request beyond the queue bound fails at once with EAGAIN', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory, { window: 1, maxQueued: 2 });
  const first = tr.request(req(), ctx);
  await tick();
  const waiting = [tr.request(req(), ctx), tr.request(req(), ctx)];
  const refused = tr.request(req(), ctx);
  const refusedDone = settled(refused);
  await tick();
  t.ok(refusedDone(), 'at once');
  await t.rejects(refused, {
    code: 'EAGAIN',
    message:
      /test-op TCP 10\.0\.0\.1:80 failed: EAGAIN .*netlink queue is full \(2 requests waiting\)/,
    outcomeUnknown: false,
  });
  peer.reply(ack(peer.seqOf(0)));
  t.same(await first, []);
  await tick();
  t.equal(peer.sent.length, 2, 'the queue moves on');
  const third = tr.request(req(), ctx);
  await tick();
  peer.reply(ack(peer.seqOf(1)));
  await tick();
  peer.reply(ack(peer.seqOf(2)));
  await tick();
  peer.reply(ack(peer.seqOf(3)));
  t.same(await Promise.all([...waiting, third]), [[], [], []], 'room again, nothing dropped');
  tr.close();
});

t.test('the default queue bound is 65,536 requests waiting', async (t) => {
  const peer = fakePeer();
  const tr = new NetlinkTransport(peer.factory, { window: 1 });
  const message = req();
  const waiting = Array.from({ length: 65_536 }, () =>
    tr.request(message, ctx).catch((e: unknown) => e),
  );
  const refused = tr.request(message, ctx);
  const refusedDone = settled(refused);
  await tick();
  t.ok(refusedDone(), 'the next one is refused at once');
  tr.close();
  await t.rejects(refused, { code: 'EAGAIN' });
  const results = await Promise.all(waiting);
  t.ok(
    results.every((e) => e instanceof IpvsError && e.code === 'ESHUTDOWN'),
    'every one accepted, then failed by close',
  );
});
