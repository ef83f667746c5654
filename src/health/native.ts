// Probes in C (src/native/probe.c): a TCP check that sends nothing and expects nothing
// connects, resets and closes without a JavaScript handle; a plain HTTP check's socket writes
// its request and reads the reply in C, and its chunks reach the check as a lean handle's do.
// JavaScript hears every outcome of a loop turn in one call. Loaded once per thread; where it was
// not built or does not load, or IPVS_WARDEN_SOCKETS is `lean` or `node`, these checks take the
// lean handle (lean.ts) as the other probes do.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { watchAbort } from './abort.js';
import { uvError, type LeanEvents } from './lean.js';

/** The addon's functions (src/native/probe.c); bench/native.ts drives them directly. */
export interface Addon {
  /** `results` takes (id, status, length) triples; `bytes`, each loop turn's reads. */
  open(onBatch: (count: number) => void, results: Int32Array, bytes: Uint8Array): object;
  /**
   * An fd, or a negative errno; a failed bind is offset by -BIND_FAILED. With `request`, an
   * exchange: the request (Latin-1, then `body`) is written once connected and the reply read.
   */
  connect(
    engine: object,
    id: number,
    family: number,
    address: string,
    port: number,
    localAddress?: string,
    request?: string,
    body?: Buffer,
  ): number;
  /** Ends a socket: a reset if connected, unless `close` (then a FIN). */
  cancel(engine: object, fd: number, close?: boolean): void;
}

/** probe.c's statuses beside 0 (connected) and a negative errno. */
const EV_DATA = 1;
const EV_END = 2;
/** probe.c offsets a failed syscall's errno by these, so that the error names its syscall. */
const BIND_FAILED = 1 << 20;
const WRITE_FAILED = 2 << 20;
const READ_FAILED = 3 << 20;

/** A negative status of probe.c as the error of its syscall. */
function failure(status: number, address: string, port: number): Error {
  const [offset, syscall] =
    status <= -READ_FAILED
      ? [READ_FAILED, 'read']
      : status <= -WRITE_FAILED
        ? [WRITE_FAILED, 'write']
        : status <= -BIND_FAILED
          ? [BIND_FAILED, 'bind']
          : [0, 'connect'];
  return uvError(status + offset, syscall, address, port);
}

/** How a connect probe ends: connected (then reset in C), or failed. */
export interface ConnectEvents {
  readonly connected: () => void;
  readonly failed: (error: Error) => void;
}

/** An exchange's request: a Latin-1 head, then the body's bytes if any. */
export interface NativeRequest {
  readonly text: string;
  readonly body: Buffer | undefined;
}

const addonPath = fileURLToPath(new URL('../native/probe.node', import.meta.url));

/** The addon, or why not: the environment's choice, not built, or not loadable here. */
export function loadAddon(
  env: Readonly<Record<string, string | undefined>> = process.env,
  path: string = addonPath,
): Addon | string {
  const choice = env.IPVS_WARDEN_SOCKETS;
  if (choice === 'node' || choice === 'lean') return `IPVS_WARDEN_SOCKETS=${choice}`;
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<Addon>;
    if (
      typeof addon.open !== 'function' ||
      typeof addon.connect !== 'function' ||
      typeof addon.cancel !== 'function'
    )
      return `${path} is not the connect probe`;
    return addon as Addon;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'MODULE_NOT_FOUND'
      ? 'not built (src/native/build.sh needs cc and Node headers)'
      : `${path}: ${(error as Error).message.split('\n')[0]}`;
  }
}

/**
 * Triples a turn may bring: probe.c reads 256 ready sockets a turn and bounds each at three
 * (connected, data, end). It emits two at most today: an exchange's reply is read on a later
 * turn than its connect.
 */
const TRIPLES = 3 * 256;
/** What one turn's reads may fill; a socket with more to read is read again on the next turn. */
const TURN_BYTES = 256 * 1024;

/** How a connect check the engine timed itself ended (`nativeConnectCheck`). */
export type ConnectOutcome = 'connected' | 'timeout' | 'cancelled' | Error;

/**
 * The connect checks of one timeout that the engine times itself, in the order they started, so
 * by deadline: an id and its use (a deadline left by an earlier use of the id is passed over),
 * and when. Numbers in arrays, not an object or a timer per check.
 */
class Deadlines {
  ids: number[] = [];
  uses: number[] = [];
  at: number[] = [];
  head = 0;
  timer: NodeJS.Timeout | undefined = undefined;

  get size(): number {
    return this.ids.length - this.head;
  }

  push(id: number, use: number, at: number): void {
    this.ids.push(id);
    this.uses.push(use);
    this.at.push(at);
  }

  shift(): void {
    this.head++;
    if (this.head === this.ids.length) {
      this.ids.length = this.uses.length = this.at.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.uses = this.uses.slice(this.head);
      this.at = this.at.slice(this.head);
      this.head = 0;
    }
  }
}

/** Node's longest timer; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a socket does: connect only, or write `request` and read the reply. */
type Job =
  | { readonly request: undefined; readonly events: ConnectEvents }
  | { readonly request: NativeRequest; readonly events: LeanEvents };

/**
 * One thread's engine: the ids of sockets open index `waiting` (and `readers` for an exchange);
 * a finished id goes back to `free`.
 */
class Engine {
  private readonly results = new Int32Array(3 * TRIPLES);
  private readonly bytes = Buffer.allocUnsafeSlow(TURN_BYTES);
  private readonly waiting: (ConnectEvents | undefined)[] = [];
  /** An exchange's events: it is told each read, and its end. */
  private readonly readers: (LeanEvents | undefined)[] = [];
  /** Each socket's address and port, for its error. */
  private readonly addresses: string[] = [];
  private readonly ports: number[] = [];
  private readonly free: number[] = [];
  /** Ids given out so far (free ones included). */
  private size = 0;
  /**
   * A connect check the engine times itself (`check`), by id: told once how it ended. Its socket,
   * the signal that may cancel it, and its id's use count, which its deadline carries.
   */
  private readonly dones: (((outcome: ConnectOutcome) => void) | undefined)[] = [];
  private readonly fds: number[] = [];
  private readonly signals: (AbortSignal | undefined)[] = [];
  private readonly uses: number[] = [];
  private readonly deadlines = new Map<number, Deadlines>();
  /** Signals with a watch of this engine's: one each, however many checks wait on it. */
  private readonly watched = new WeakSet<AbortSignal>();
  private readonly engine: object;

  constructor(private readonly addon: Addon) {
    this.engine = addon.open((count) => this.batch(count), this.results, this.bytes);
  }

  private batch(count: number): void {
    const r = this.results;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const id = r[3 * i] ?? -1;
      const status = r[3 * i + 1] ?? 0;
      if (status === EV_DATA) {
        const length = r[3 * i + 2] ?? 0;
        const at = offset;
        offset += length;
        // A copy: the buffer is the next turn's, and a reply's chunks are kept (its first, the
        // body for a regex).
        this.readers[id]?.data(Buffer.from(this.bytes.subarray(at, at + length)));
        continue;
      }
      const done = this.dones[id];
      if (done !== undefined) {
        // A connect check timed here: the socket is closed in C either way.
        const address = this.addresses[id] ?? '';
        this.settle(id);
        done(status === 0 ? 'connected' : failure(status, address, this.ports[id] ?? 0));
        continue;
      }
      const events = this.waiting[id];
      if (events === undefined) continue;
      const reader = this.readers[id];
      if (status === 0) {
        // A connect-only socket is done (reset in C); an exchange reads on.
        if (!reader) this.release(id);
        events.connected();
      } else if (status === EV_END) {
        this.release(id);
        reader?.ended();
      } else {
        const error = failure(status, this.addresses[id] ?? '', this.ports[id] ?? 0);
        this.release(id);
        events.failed(error);
      }
    }
  }

  private release(id: number): void {
    this.waiting[id] = undefined;
    this.readers[id] = undefined;
    this.addresses[id] = '';
    this.free.push(id);
  }

  /**
   * Starts a socket: a connect, or an exchange (then its events are told its reads). The
   * function returned ends it (reset if connected, unless `close`: a FIN), and it is never told
   * again.
   */
  open(
    family: 4 | 6,
    address: string,
    port: number,
    localAddress: string | undefined,
    job: Job,
  ): (close?: boolean) => void {
    const id = this.free.pop() ?? this.size++;
    const { events } = job;
    const fd =
      job.request === undefined
        ? this.addon.connect(this.engine, id, family, address, port, localAddress)
        : this.addon.connect(
            this.engine,
            id,
            family,
            address,
            port,
            localAddress,
            job.request.text,
            job.request.body,
          );
    if (fd < 0) {
      this.free.push(id);
      const error = failure(fd, address, port);
      // As net.Socket does: the error comes after the caller has its connection in hand.
      let given = false;
      setImmediate(() => {
        if (!given) events.failed(error);
      });
      return () => {
        given = true;
      };
    }
    this.waiting[id] = events;
    if (job.request !== undefined) this.readers[id] = job.events;
    this.addresses[id] = address;
    this.ports[id] = port;
    return (close) => {
      // Only while still open: a finished socket's fd is closed and its number reused.
      if (this.waiting[id] !== events) return;
      this.release(id);
      this.addon.cancel(this.engine, fd, close === true);
    };
  }

  /**
   * A connect check run whole here: the connect, its deadline (`timeoutMs`) and `signal`, with no
   * handle, timer or watch of its own. `done` is told once how it ended, never from this call
   * but for a signal aborted already or a socket that could not be made. A deadline's verdict
   * waits, as ProbeRun's does, until the I/O of its loop turn has been read: on a loop late past
   * the timeout, a connect that was made in time is not failed for the loop's lateness.
   */
  check(
    family: 4 | 6,
    address: string,
    port: number,
    localAddress: string | undefined,
    timeoutMs: number,
    signal: AbortSignal,
    done: (outcome: ConnectOutcome) => void,
  ): void {
    if (signal.aborted) {
      done('cancelled');
      return;
    }
    const id = this.free.pop() ?? this.size++;
    const fd = this.addon.connect(this.engine, id, family, address, port, localAddress);
    if (fd < 0) {
      this.free.push(id);
      done(failure(fd, address, port));
      return;
    }
    const use = (this.uses[id] ?? 0) + 1;
    this.uses[id] = use;
    this.dones[id] = done;
    this.fds[id] = fd;
    this.signals[id] = signal;
    this.addresses[id] = address;
    this.ports[id] = port;
    if (!this.watched.has(signal)) {
      this.watched.add(signal);
      watchAbort(signal, () => this.cancelAll(signal));
    }
    let queue = this.deadlines.get(timeoutMs);
    if (queue === undefined) {
      queue = new Deadlines();
      this.deadlines.set(timeoutMs, queue);
    }
    queue.push(id, use, performance.now() + timeoutMs);
    if (queue.timer === undefined) this.arm(queue);
  }

  /** Forgets a check timed here; its id is free again. */
  private settle(id: number): void {
    this.dones[id] = undefined;
    this.signals[id] = undefined;
    this.addresses[id] = '';
    this.free.push(id);
  }

  /** Ends a check timed here that is still in flight: its socket closed, and it told. */
  private stop(id: number, outcome: 'timeout' | 'cancelled'): void {
    const done = this.dones[id];
    if (done === undefined) return;
    const fd = this.fds[id] ?? -1;
    this.settle(id);
    this.addon.cancel(this.engine, fd);
    done(outcome);
  }

  /** Wakes at the deadline of the oldest check of `queue` still in flight, if any. */
  private arm(queue: Deadlines): void {
    while (queue.size > 0 && !this.live(queue, queue.head)) queue.shift();
    if (queue.size === 0) {
      queue.timer = undefined;
      return;
    }
    const wait = Math.ceil((queue.at[queue.head] ?? 0) - performance.now());
    // Unreferenced: a check in flight keeps the process alive by its socket (probe.c's poll).
    queue.timer = setTimeout(
      () => setImmediate(() => this.expire(queue)),
      Math.min(MAX_TIMER_MS, Math.max(1, wait)),
    ).unref();
  }

  private live(queue: Deadlines, i: number): boolean {
    const id = queue.ids[i] ?? -1;
    return this.dones[id] !== undefined && this.uses[id] === queue.uses[i];
  }

  /** Times out the checks of `queue` whose deadline has passed, then waits for the next. */
  private expire(queue: Deadlines): void {
    const now = performance.now();
    while (queue.size > 0 && (queue.at[queue.head] ?? 0) <= now) {
      const id = queue.ids[queue.head] ?? -1;
      const live = this.live(queue, queue.head);
      queue.shift();
      if (live) this.stop(id, 'timeout');
    }
    this.arm(queue);
  }

  /** `signal` aborted: every check timed here that it could cancel ends. */
  private cancelAll(signal: AbortSignal): void {
    for (let id = 0; id < this.size; id++)
      if (this.signals[id] === signal) this.stop(id, 'cancelled');
  }
}

const addon = loadAddon();
/** This thread's engine once opened; null when it could not be. */
let engine: Engine | null | undefined;

/** Whether connect checks run in C here; if not, why not. */
export const nativeProbes: { readonly on: boolean; readonly why: string } =
  typeof addon === 'string' ? { on: false, why: addon } : { on: true, why: '' };

/** This thread's engine, opened on first use; null where it cannot be. */
function engineHere(): Engine | null {
  if (typeof addon === 'string') return null;
  if (engine === undefined) {
    // An epoll set that cannot be made (out of descriptors, say) leaves this thread's checks on
    // the lean handle rather than failing them: the probe is the same either way.
    try {
      engine = new Engine(addon);
    } catch {
      engine = null;
    }
  }
  return engine;
}

/**
 * A connect-only probe in C, or undefined where the addon is not here. Every outcome comes
 * through `events`, never from this call; the function returned gives the connect up.
 */
export function nativeConnect(
  family: 4 | 6,
  address: string,
  port: number,
  localAddress: string | undefined,
  events: ConnectEvents,
): (() => void) | undefined {
  return engineHere()?.open(family, address, port, localAddress, { request: undefined, events });
}

/**
 * An exchange in C, or undefined where the addon is not here: `request` is written once
 * connected, and `events` is told the connect, each read and the end as a lean handle tells
 * them, never from this call. The function returned ends it: a reset once connected, or given
 * `true`, a FIN.
 */
export function nativeExchange(
  family: 4 | 6,
  address: string,
  port: number,
  localAddress: string | undefined,
  request: NativeRequest,
  events: LeanEvents,
): ((close?: boolean) => void) | undefined {
  return engineHere()?.open(family, address, port, localAddress, { request, events });
}

/**
 * A connect-only check run whole by this thread's engine (`Engine.check`: the socket in C, the
 * deadline and the signal here), or false where the addon is not here (then `done` is never
 * told).
 */
export function nativeConnectCheck(
  family: 4 | 6,
  address: string,
  port: number,
  localAddress: string | undefined,
  timeoutMs: number,
  signal: AbortSignal,
  done: (outcome: ConnectOutcome) => void,
): boolean {
  const here = engineHere();
  if (!here) return false;
  here.check(family, address, port, localAddress, timeoutMs, signal, done);
  return true;
}
