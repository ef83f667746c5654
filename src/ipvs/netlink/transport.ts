// Netlink request/response framing over a raw socket: pipelined requests matched by sequence
// number, one dump at a time, errno kept, replies accepted only from the kernel (port 0). A
// request sent but never answered fails with `outcomeUnknown` (the kernel may have applied it);
// a socket that reports an error is replaced.
import { systemClock, type Clock } from '../../clock.js';
import { IpvsError, errnoName } from '../errors.js';
import * as K from './constants.js';

/** The socket as the transport needs it; `kernelSocket` adapts netlink@0.3.0's raw socket. */
export interface RawSocket {
  /** Sends the messages as one datagram (the kernel handles each message of it in turn). */
  send(messages: Buffer[], callback: (error?: NodeJS.ErrnoException) => void): void;
  close(): void;
  /** Our netlink port id (nl_pid). */
  readonly port: number;
  /** SO_RCVBUF as granted, when known: bounds how many acknowledgements may be in flight. */
  readonly recvBufferSize?: number;
}

export interface SocketHandlers {
  message(data: Buffer, fromPort: number, truncated: boolean): void;
  /** The transport closes this socket and asks the factory for another. */
  error(error: NodeJS.ErrnoException): void;
}

/** Called once at the start, and again for each socket that fails. */
export type SocketFactory = (handlers: SocketHandlers) => RawSocket;

export interface TransportOptions {
  /**
   * Requests in flight at once. Acknowledgements beyond what the receive buffer holds are
   * dropped by the kernel, so the default follows the buffer granted (1 KiB per ack, half the
   * buffer left to dumps), at most 256.
   */
  readonly window?: number;
  /** Time a request may wait for its reply before failing with ETIMEDOUT. */
  readonly timeoutMs?: number;
  /**
   * Requests waiting to be sent (besides those in flight); one more fails at once with EAGAIN,
   * so readers cannot pile dumps up without limit. Default 65,536 (`DEFAULT_MAX_QUEUED`).
   */
  readonly maxQueued?: number;
  /**
   * Where deadlines are read: the monotonic clock, so an NTP step of the wall clock neither
   * fails every request in flight at once nor keeps a lost one waiting for hours.
   */
  readonly clock?: Pick<Clock, 'monotonic'>;
}

/** What one request is about, for error messages. */
export interface RequestContext {
  readonly op: string;
  readonly target?: string;
}

/** Reads one reply message's payload, buf[start, end), as its datagram arrives. */
export type PartDecoder<T> = (buf: Buffer, start: number, end: number) => T;

/** The payload itself, as a view of its datagram. */
const payloadOf: PartDecoder<Buffer> = (buf, start, end) => buf.subarray(start, end);

/** A request from the time it is made: queued, then in flight once it has its sequence number. */
interface Pending {
  readonly message: Buffer;
  /** 0 while queued. */
  seq: number;
  readonly dump: boolean;
  /**
   * A write sent without NLM_F_ACK (`write`): the kernel answers it only if it fails, so the
   * answer to a later request on the socket says it was applied. False for one sent last in
   * its datagram, which asks for its acknowledgement.
   */
  quiet: boolean;
  readonly context: RequestContext;
  /** On the monotonic clock, from when it was sent; 0 while queued. */
  deadline: number;
  readonly decode: PartDecoder<unknown>;
  /** What `decode` made of each data reply so far. */
  readonly parts: unknown[];
  interrupted: boolean;
  /** The first part `decode` threw on; the request fails with it once its answer is complete. */
  failure: { readonly error: unknown } | null;
  resolve(parts: unknown[]): void;
  reject(error: unknown): void;
}

export interface TransportCounters {
  /** Messages and datagrams sent (several messages share a datagram under load). */
  sent: number;
  datagrams: number;
  /** Messages received, and the datagrams they came in (a dump packs many to a datagram). */
  received: number;
  receivedDatagrams: number;
  /** Messages from a sender other than the kernel: dropped. */
  foreign: number;
  /** Replies to no request in flight (late, after a timeout): dropped. */
  stray: number;
  /** Requests the kernel left unanswered while answering a later one (`skipped`). */
  skipped: number;
  /** Writes sent without asking for an acknowledgement, known applied by a later answer. */
  silent: number;
}

const BYTES_PER_ACK = 1024;

/**
 * Requests made in one turn all wait in the queue, so the bound must hold one reconcile tick:
 * against a 10,000-server table, at worst a write per server and per service (20,000 if every
 * server had a service of its own) and the table read (a dump per service, 10,000), with a
 * status and a metrics read queued behind (10,000 dumps each): 50,000. 2^16 leaves room, and at
 * a few hundred bytes a request (message, promise) it keeps a runaway queue to tens of MiB.
 */
const DEFAULT_MAX_QUEUED = 65_536;

export class NetlinkTransport {
  private readonly factory: SocketFactory;
  /** None after a socket failed and the factory too: the next request tries again. */
  private socket: RawSocket | undefined;
  /** The socket whose events count: a dropped socket's late events are ignored. */
  private generation = 0;
  private readonly window: number;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;
  private readonly clock: Pick<Clock, 'monotonic'>;
  private readonly inFlight = new Map<number, Pending>();
  /**
   * Requests waiting to be sent, oldest at `head`: taking one moves an index, where shift()
   * would move every request behind it (10,000 of a large write, once each).
   */
  private queue: Pending[] = [];
  private head = 0;
  private dumpInFlight = false;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private pumpScheduled = false;
  /** A sweep's verdict is waiting for the poll phase (sweep). */
  private sweeping = false;
  readonly counters: TransportCounters = {
    sent: 0,
    datagrams: 0,
    received: 0,
    receivedDatagrams: 0,
    foreign: 0,
    stray: 0,
    skipped: 0,
    silent: 0,
  };

  constructor(factory: SocketFactory, options: TransportOptions = {}) {
    this.factory = factory;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.clock = options.clock ?? systemClock;
    this.maxQueued = Math.max(1, options.maxQueued ?? DEFAULT_MAX_QUEUED);
    // If the first socket cannot be opened, the caller hears it (NetlinkBackend.open reports it).
    const socket = this.open();
    this.socket = socket;
    const byBuffer = socket.recvBufferSize
      ? Math.floor(socket.recvBufferSize / 2 / BYTES_PER_ACK)
      : 128;
    this.window = Math.max(1, options.window ?? Math.min(256, byBuffer));
  }

  /**
   * Sends one request (a whole message; its sequence number and port are set here; `dump` when
   * it has NLM_F_DUMP) and resolves with the payloads (after nlmsghdr) of its data replies, once
   * the kernel has acknowledged it or (for a dump) sent NLMSG_DONE. Rejects with the kernel's errno;
   * at once with EAGAIN when `maxQueued` requests are waiting; with `outcomeUnknown` set when it
   * was sent and its answer is lost. Every request must ask for an answer (NLM_F_ACK or
   * NLM_F_DUMP): one that is not answered before a later one is failed (`skipped`).
   */
  request(message: Buffer, context: RequestContext, dump = false): Promise<Buffer[]> {
    return this.decoded(message, context, dump, payloadOf);
  }

  /**
   * A write whose only answer is its acknowledgement, sent without asking for one (NLM_F_ACK
   * cleared) unless it goes last in its datagram. The kernel answers a request without the flag
   * only when it fails (netlink_rcv_skb), and handles a socket's requests in the order sent, so
   * the answer to a later request says that this one was applied. At 10,000 writes that is one
   * answer a datagram where there were 10,000: a datagram read and a callback from native code
   * each, most of the write's time in the VM. Only for requests whose handler never returns
   * EINTR (the kernel then answers nothing, and silence would read as success): the IPVS
   * service and destination commands. A lost error answer cannot pass for success either: the
   * window keeps the answers in flight within the receive buffer, and a socket that overflows
   * reports ENOBUFS, which fails everything in flight. Resolves (with nothing to read) once
   * applied.
   */
  write(message: Buffer, context: RequestContext): Promise<unknown> {
    return this.enqueue(message, context, false, payloadOf, true);
  }

  /**
   * `request`, each data reply read by `decode` as it arrives, where it lies in its datagram: a
   * table read makes no view per destination to decode later (at 10,000 destinations, one
   * Buffer object each). A part `decode` throws on fails the request with that error, but only
   * once the kernel has finished its answer, so that the rest of a dump is not taken for
   * another request's.
   */
  decoded<T>(
    message: Buffer,
    context: RequestContext,
    dump: boolean,
    decode: PartDecoder<T>,
  ): Promise<T[]> {
    return this.enqueue(message, context, dump, decode, false);
  }

  private enqueue<T>(
    message: Buffer,
    context: RequestContext,
    dump: boolean,
    decode: PartDecoder<T>,
    quiet: boolean,
  ): Promise<T[]> {
    if (this.closed) return Promise.reject(new IpvsError('ESHUTDOWN', context));
    if (this.waiting() >= this.maxQueued) {
      return Promise.reject(
        new IpvsError('EAGAIN', {
          ...context,
          detail: `the netlink queue is full (${this.maxQueued} requests waiting)`,
        }),
      );
    }
    return new Promise<T[]>((resolve, reject) => {
      this.queue.push({
        message,
        seq: 0,
        dump,
        quiet,
        context,
        deadline: 0,
        decode,
        parts: [],
        interrupted: false,
        failure: null,
        resolve: resolve as (parts: unknown[]) => void,
        reject,
      });
      this.schedulePump();
    });
  }

  private waiting(): number {
    return this.queue.length - this.head;
  }

  /** Drops the queue's sent part once it is most of the array. */
  private compact(): void {
    if (this.head === this.queue.length) this.queue = [];
    else if (this.head > 1024 && this.head * 2 > this.queue.length)
      this.queue = this.queue.slice(this.head);
    else return;
    this.head = 0;
  }

  /** Every request still waiting, taken out of the queue. */
  private takeQueued(): Pending[] {
    const all = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return all;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll('ESHUTDOWN');
    // Never sent: known not applied.
    for (const q of this.takeQueued()) q.reject(new IpvsError('ESHUTDOWN', q.context));
    if (this.timer) clearInterval(this.timer);
    this.dropSocket();
  }

  /** A socket from the factory whose events reach us until it is dropped. */
  private open(): RawSocket {
    const generation = ++this.generation;
    const current = (): boolean => generation === this.generation;
    return this.factory({
      message: (data, port, truncated) => {
        if (current()) this.receive(data, port, truncated);
      },
      error: (error) => {
        if (current()) this.socketFailed(error);
      },
    });
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.generation++;
    socket?.close();
  }

  /**
   * A socket that reports an error is not used again: netlink@0.3.0 closes it itself after a
   * poll error, and after ENOBUFS its replies are gone. What was in flight may or may not have
   * been applied; what is queued goes out on a new socket.
   */
  private socketFailed(error: NodeJS.ErrnoException): void {
    this.dropSocket();
    this.failAll(errnoName(error.errno ?? 0), error.message);
    this.reopen();
  }

  /**
   * One attempt at a new socket. If the factory fails too, the queued requests fail with its
   * error (they were never sent) and the next request tries again: no retry loop of our own.
   */
  private reopen(): RawSocket | undefined {
    try {
      this.socket = this.open();
      return this.socket;
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).errno;
      const why = err instanceof Error ? err.message : String(err);
      const detail = `the netlink socket could not be reopened: ${why}`;
      for (const q of this.takeQueued()) {
        const options = { ...q.context, detail, cause: err };
        q.reject(
          typeof errno === 'number'
            ? IpvsError.fromErrno(errno, options)
            : new IpvsError('ESHUTDOWN', options),
        );
      }
      return undefined;
    }
  }

  /** Requests made in one turn of the event loop go out together. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Sends queued requests while the window has room, in as few datagrams as possible: a refill
   * starts only once half the window is free, so a large batch goes out in large datagrams
   * rather than one per acknowledgement. A dump goes alone and waits for the previous dump.
   */
  private pump(): void {
    if (this.closed || this.inFlight.size > this.window / 2) return;
    const socket = this.socket ?? (this.waiting() > 0 ? this.reopen() : undefined);
    if (!socket) {
      this.armTimer();
      return;
    }
    let batch: Buffer[] = [];
    let pendings: Pending[] = [];
    const flush = (): void => {
      const last = pendings[pendings.length - 1];
      if (!last) return;
      // Every datagram ends in a request the kernel answers, which answers for the quiet ones.
      if (last.quiet) {
        last.quiet = false;
        const message = batch[batch.length - 1] as Buffer;
        message.writeUInt16LE(message.readUInt16LE(6) | K.NLM_F_ACK, 6);
      }
      const sent = pendings;
      this.counters.datagrams++;
      const notSent = (error: NodeJS.ErrnoException): void => {
        // The datagram did not go out: a known failure, not an unknown outcome.
        for (const { seq } of sent) {
          const p = this.inFlight.get(seq);
          if (p) {
            this.finish(
              seq,
              IpvsError.fromErrno(error.errno ?? 0, {
                ...p.context,
                detail: `send failed${error.message ? `: ${error.message}` : ''}`,
              }),
            );
          }
        }
      };
      try {
        socket.send(batch, (error) => error && notSent(error));
      } catch (e) {
        // netlink@0.3.0 throws at once on a closed socket; this runs in a microtask, where a
        // throw would end the process.
        notSent(e as NodeJS.ErrnoException);
      }
      batch = [];
      pendings = [];
    };
    const deadline = this.clock.monotonic() + this.timeoutMs;
    while (this.inFlight.size < this.window) {
      const next = this.queue[this.head];
      if (!next) break;
      if (next.dump && this.dumpInFlight) break;
      this.head++;
      this.seq = (this.seq % 0x7fffffff) + 1;
      next.seq = this.seq;
      next.deadline = deadline;
      next.message.writeUInt32LE(next.seq, 8);
      next.message.writeUInt32LE(socket.port, 12);
      if (next.quiet) next.message.writeUInt16LE(next.message.readUInt16LE(6) & ~K.NLM_F_ACK, 6);
      this.inFlight.set(next.seq, next);
      this.counters.sent++;
      if (next.dump) {
        flush();
        this.dumpInFlight = true;
      }
      batch.push(next.message);
      pendings.push(next);
      if (next.dump) flush();
    }
    this.compact();
    flush();
    this.armTimer();
  }

  /**
   * The sweep's timer keeps the process alive only while requests are in flight. It is not
   * cleared as each answer comes (a table read of 100 services would make and clear it 100
   * times) but by the first sweep that finds nothing in flight.
   */
  private armTimer(): void {
    if (this.inFlight.size === 0) {
      this.timer?.unref();
      return;
    }
    this.timer ??= setInterval(() => this.sweep(), Math.min(1000, this.timeoutMs));
    this.timer.ref();
  }

  /**
   * Fails the requests past their deadline, but only after this turn's poll phase: timers run
   * before it, so on a loop running late a reply already waiting in the socket would otherwise
   * be counted a timeout (the route list failed so in the VM under overload).
   */
  private sweep(): void {
    if (this.inFlight.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.sweeping) return;
    this.sweeping = true;
    const now = this.clock.monotonic();
    setImmediate(() => {
      this.sweeping = false;
      for (const p of [...this.inFlight.values()]) {
        if (p.deadline <= now) {
          this.finish(p.seq, new IpvsError('ETIMEDOUT', { ...p.context, outcomeUnknown: true }));
        }
      }
    });
  }

  private finish(seq: number, outcome: IpvsError | unknown[]): void {
    const p = this.inFlight.get(seq);
    if (!p) return;
    this.inFlight.delete(seq);
    if (p.dump) this.dumpInFlight = false;
    if (outcome instanceof IpvsError) p.reject(outcome);
    else if (p.failure) p.reject(p.failure.error);
    else p.resolve(outcome);
    if (this.waiting() > 0) this.schedulePump();
    else if (this.inFlight.size === 0) this.armTimer();
  }

  /** Fails every request in flight: each was sent and is unanswered, so may have been applied. */
  private failAll(code: string, detail?: string): void {
    for (const p of [...this.inFlight.values()]) {
      this.finish(
        p.seq,
        new IpvsError(code, { ...p.context, ...(detail ? { detail } : {}), outcomeUnknown: true }),
      );
    }
  }

  /** One datagram from the socket: any number of netlink messages. */
  private receive(data: Buffer, fromPort: number, truncated: boolean): void {
    if (fromPort !== 0) {
      this.counters.foreign++;
      return;
    }
    if (truncated) {
      // The kernel never sends a datagram larger than we read; if it did, we cannot tell whose.
      this.failAll('EPROTO', 'truncated datagram');
      return;
    }
    this.counters.receivedDatagrams++;
    let offset = 0;
    while (offset + K.NLMSG_HDRLEN <= data.length) {
      const length = data.readUInt32LE(offset);
      const type = data.readUInt16LE(offset + 4);
      const flags = data.readUInt16LE(offset + 6);
      const seq = data.readUInt32LE(offset + 8);
      if (length < K.NLMSG_HDRLEN || offset + length > data.length) {
        // Nothing after it can be found or trusted, and any request in flight may be answered
        // there: fail them all now rather than leave them to the timeout.
        this.failAll('EPROTO', `message length ${length} does not fit its datagram`);
        return;
      }
      this.counters.received++;
      this.handle(type, flags, seq, data, offset + K.NLMSG_HDRLEN, offset + length);
      offset += (length + 3) & ~3;
    }
    if (offset < data.length && data.length - offset >= 4) {
      this.failAll('EPROTO', `${data.length - offset} trailing bytes in a datagram`);
    }
  }

  /** One message, data[start, end) its payload (after nlmsghdr). */
  private handle(
    type: number,
    flags: number,
    seq: number,
    data: Buffer,
    start: number,
    end: number,
  ): void {
    const p = this.inFlight.get(seq);
    if (!p) {
      this.counters.stray++;
      return;
    }
    this.skipped(p);
    if (flags & K.NLM_F_DUMP_INTR) p.interrupted = true;
    switch (type) {
      case K.NLMSG_NOOP:
        return;
      case K.NLMSG_ERROR: {
        const payload = data.subarray(start, end);
        if (payload.length < 4) {
          // An answer without its errno: applied or not, we cannot tell.
          this.finish(
            seq,
            new IpvsError('EPROTO', {
              ...p.context,
              detail: 'short NLMSG_ERROR',
              outcomeUnknown: true,
            }),
          );
          return;
        }
        const errno = payload.readInt32LE(0);
        if (errno === 0 && !p.dump) {
          this.finish(seq, p.parts);
        } else if (errno === 0) {
          // An ack to a dump request that the kernel finished without DONE: treat as done.
          this.finishDump(p);
        } else {
          const detail = extackMessage(payload, flags);
          this.finish(
            seq,
            IpvsError.fromErrno(errno, { ...p.context, ...(detail ? { detail } : {}) }),
          );
        }
        return;
      }
      case K.NLMSG_DONE: {
        const payload = data.subarray(start, end);
        // The kernel puts the dump's own error (if any) in DONE's payload.
        const errno = payload.length >= 4 ? payload.readInt32LE(0) : 0;
        if (errno < 0) {
          const detail = extackMessage(payload, flags);
          this.finish(
            seq,
            IpvsError.fromErrno(errno, {
              ...p.context,
              detail: `dump failed${detail ? `: ${detail}` : ''}`,
            }),
          );
        } else {
          this.finishDump(p);
        }
        return;
      }
      case K.NLMSG_OVERRUN:
        // Data was lost, the answer to this request with it perhaps.
        this.finish(
          seq,
          new IpvsError('ENOBUFS', { ...p.context, detail: 'NLMSG_OVERRUN', outcomeUnknown: true }),
        );
        return;
      default:
        if (p.failure) return;
        try {
          p.parts.push(p.decode(data, start, end));
        } catch (error) {
          p.failure = { error };
        }
    }
  }

  /**
   * Settles the requests sent before `answered` that the kernel has not answered: it never will.
   * A quiet write was applied (`write`).
   * It handles a socket's requests in the order sent, within the sender's own sendmsg, and
   * queues each answer as it goes; the one request it leaves unanswered is one whose handler
   * returned EINTR (netlink_rcv_skb skips the acknowledgement then). IPVS does that when a sync
   * daemon is stopped before its thread first ran: kthread_stop returns -EINTR, and the daemon
   * is stopped all the same. Waiting for the timeout instead held such a stop for 30 s. A dump
   * sent earlier is not skipped: its later parts come as they are read.
   */
  private skipped(answered: Pending): void {
    for (const q of this.inFlight.values()) {
      if (q === answered) return;
      if (q.dump) continue;
      if (q.quiet) {
        this.counters.silent++;
        this.finish(q.seq, q.parts);
        continue;
      }
      this.counters.skipped++;
      this.finish(
        q.seq,
        new IpvsError('EINTR', {
          ...q.context,
          detail:
            'the kernel answered a later request and not this one (its handler returned EINTR)',
          outcomeUnknown: true,
        }),
      );
    }
  }

  private finishDump(p: Pending): void {
    if (p.interrupted) {
      this.finish(
        p.seq,
        new IpvsError('EINTR', {
          ...p.context,
          detail: 'NLM_F_DUMP_INTR: the table changed during the dump',
        }),
      );
    } else {
      this.finish(p.seq, p.parts);
    }
  }
}

/** NLMSGERR_ATTR_MSG of an extended ack, when the kernel sent one. */
export function extackMessage(payload: Buffer, flags: number): string | undefined {
  if (!(flags & K.NLM_F_ACK_TLVS) || payload.length < 4 + K.NLMSG_HDRLEN) return undefined;
  // struct nlmsgerr: error, then the request's header (and its payload unless capped).
  const echoed = flags & K.NLM_F_CAPPED ? K.NLMSG_HDRLEN : payload.readUInt32LE(4);
  let offset = 4 + ((echoed + 3) & ~3);
  while (offset + 4 <= payload.length) {
    const len = payload.readUInt16LE(offset);
    const type = payload.readUInt16LE(offset + 2) & K.NLA_TYPE_MASK;
    if (len < 4 || offset + len > payload.length) return undefined;
    if (type === K.NLMSGERR_ATTR_MSG) {
      const s = payload.subarray(offset + 4, offset + len);
      const end = s.indexOf(0);
      return s.toString('utf8', 0, end === -1 ? s.length : end);
    }
    offset += (len + 3) & ~3;
  }
  return undefined;
}
