// Probes on worker threads (daemon.check_workers). One event loop runs out of core at about
// 5,000 HTTP checks a second (bench:probes), and most of each check's CPU is the probe itself:
// connect, TLS, request, parse, close. A probe needs nothing from the daemon but its check's
// options and a target, so the scheduler stays on the main thread (timing, rise and fall, the
// table) and a PooledChecker stands in for the real checker: `check` hands the target to the
// least busy worker, which runs the same probe from checks/ and answers with its result.
// Both ends of the protocol are here: the main thread's side (ProbePool) and the worker's
// (serveProbes). Requests and results travel in batches, at most one message per worker each
// way every BATCH_MS, not one per check.
//
// What stays on the main thread: checks with a cap of their own (exec, ping: their process
// slots are the process's) and data-path targets (their socket mark is set by a native addon).
// A worker that exits, or stops answering, is replaced; the checks it held end as local
// results (this director's problem, never counted towards rise or fall).
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { type AbortWatch, unwatchAbort, watchAbort } from './abort.js';
import {
  cancelCheck,
  type CancelHook,
  type CheckContext,
  type CheckResult,
  type CheckTarget,
  type Checker,
} from './checker.js';
import { checkLine, thrownResult } from './probe.js';

/** What a worker needs to make a check: its kind and its options (structured-cloneable). */
export interface PooledCheck {
  readonly type: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * How long requests (and results) gather before they go, one message a worker each way. A
 * message per event-loop turn cost 0.49 CPU-ms a check at 1,000 HTTP checks a second over two
 * workers (each check its own wake-up of both threads) against 0.24 on the main thread alone;
 * 5 ms batches: 0.36, and at 10,000 a second 94 % on time against 91 % (bench:probes, one run).
 * A check's result reaches the scheduler up to two batches later: 10 ms on its next start.
 */
export const BATCH_MS = 5;

/**
 * CLOCK_MONOTONIC in ms: one clock for every thread (performance.now() counts from each one's
 * start), so a worker can tell how long a check took to reach it.
 */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---- the wire: arrays, not objects, for the per-check parts (one message carries hundreds)

/** [request, checker, family, address, port, timeoutMs, handed (monotonicMs)] */
type RunRequest = [number, number, 4 | 6, string, number, number, number];
interface Define {
  readonly id: number;
  readonly check: PooledCheck;
}
interface ToWorker {
  define: Define[];
  forget: number[];
  run: RunRequest[];
  cancel: number[];
}
/** [request, healthy, durationMs, message, weight (-1: none), local, lateMs (since handed)] */
type Done = [number, boolean, number, string, number, boolean, number];
interface FromWorker {
  /** The worker has loaded the checks and listens: sent once, first. */
  readonly ready?: true;
  readonly done?: readonly Done[];
}

function isDone(x: unknown): x is Done {
  return (
    Array.isArray(x) &&
    x.length === 7 &&
    typeof x[0] === 'number' &&
    typeof x[1] === 'boolean' &&
    typeof x[2] === 'number' &&
    typeof x[3] === 'string' &&
    typeof x[4] === 'number' &&
    typeof x[5] === 'boolean' &&
    typeof x[6] === 'number'
  );
}

function resultOf(d: Done): CheckResult {
  const [, healthy, durationMs, message, weight, local, lateMs] = d;
  return {
    healthy: local ? false : healthy,
    durationMs,
    message,
    lateMs,
    ...(weight >= 0 ? { weight } : {}),
    ...(local ? { local } : {}),
  };
}

// ---- the main thread's side

export interface ProbePoolOptions {
  readonly threads: number;
  /** The worker's module: one that calls serveProbes with the check catalog. */
  readonly worker: URL;
  /**
   * How long past its own timeout a check may go unanswered before its worker is taken for
   * stuck (a probe that never yields) and replaced. Default 5,000 ms.
   */
  readonly graceMs?: number;
  /** The wait before a worker that ended is started again. Default 1,000 ms. */
  readonly restartMs?: number;
  /**
   * How long a worker may take to load the checks and say it is ready (node in an emulated VM
   * takes seconds) before it is ended and started again. Default 60,000 ms.
   */
  readonly startMs?: number;
  /** Told when a worker ends unasked (it is started again after restartMs). */
  readonly onWorkerExit?: (thread: number, reason: string) => void;
}

export interface ProbePoolStats {
  /** Workers running now (one that ended is replaced after restartMs). */
  readonly running: number;
  /** Of those, the ones that have said they are ready (the others are still loading). */
  readonly ready: number;
  /** Checks each worker holds now, by thread. */
  readonly inFlight: readonly number[];
  /** Checks each worker has been handed since the pool started, by thread. */
  readonly handed: readonly number[];
  /** Workers that ended unasked, or were replaced as stuck. */
  readonly restarts: number;
}

interface Pending {
  readonly resolve: (result: CheckResult) => void;
  /** Its wait on the caller's signal. */
  readonly watch: AbortWatch;
  /**
   * performance.now() past which the worker is taken for stuck: from when the check was handed
   * to a ready worker, or from when its worker became ready.
   */
  deadline: number;
  readonly started: number;
  readonly timeoutMs: number;
  readonly checker: PooledChecker;
  readonly target: CheckTarget;
}

/** The start of a result the main thread writes for a check. */
function what(p: Pick<Pending, 'checker' | 'target'>): string {
  return checkLine(p.checker.description, p.target);
}

/** Nothing yet for a worker. */
function emptyOut(): ToWorker {
  return { define: [], forget: [], run: [], cancel: [] };
}

class Thread {
  worker: Worker | null = null;
  /** Checkers this worker has been told of. */
  readonly known = new Set<number>();
  readonly pending = new Map<number, Pending>();
  out = emptyOut();
  flushing: NodeJS.Timeout | null = null;
  handed = 0;
  /** The worker has loaded the checks: until then requests gather here, and it is not stuck. */
  ready = false;
  /** When the worker was started (performance.now()). */
  startedAt = 0;
  /** Why the worker is ending, when we end it (stuck). */
  ending = '';
  restart: NodeJS.Timeout | null = null;
  /** The worker's loop utilization at the last `busyShare` (none yet for this worker). */
  utilization: EventLoopUtilization | null = null;
  constructor(readonly index: number) {}
}

export class ProbePool {
  private readonly threads: Thread[];
  private readonly graceMs: number;
  private readonly restartMs: number;
  private readonly startMs: number;
  private nextRequest = 1;
  private nextChecker = 1;
  private restarts = 0;
  private closed = false;
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: ProbePoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1)
      throw new Error(`a probe pool needs at least one thread, got ${options.threads}`);
    this.graceMs = options.graceMs ?? 5000;
    this.restartMs = options.restartMs ?? 1000;
    this.startMs = options.startMs ?? 60_000;
    this.threads = Array.from({ length: options.threads }, (_, i) => new Thread(i));
    for (const t of this.threads) this.start(t);
    // Stuck workers are found by a sweep, not a timer per check: a few hundred checks in
    // flight (the scheduler's cap) are cheap to walk once a second.
    this.sweep = setInterval(() => this.findStuck(), Math.min(1000, this.graceMs));
    this.sweep.unref();
  }

  /**
   * A checker whose probes run on the workers; `inner`, made from `check` on this thread, gives
   * its kind, description and key, and runs what stays here (see the top of this file).
   */
  wrap(check: PooledCheck, inner: Checker): Checker {
    if (inner.limiter) return inner;
    return new PooledChecker(this, this.nextChecker++, check, inner);
  }

  stats(): ProbePoolStats {
    return {
      running: this.threads.filter((t) => t.worker).length,
      ready: this.threads.filter((t) => t.worker && t.ready).length,
      inFlight: this.threads.map((t) => t.pending.size),
      handed: this.threads.map((t) => t.handed),
      restarts: this.restarts,
    };
  }

  /**
   * The busiest worker's share of time busy since the last call (0 to 1), from each worker's
   * event-loop utilization: the scheduler lets checks waiting on their servers give their slots
   * back only while it is under half (a worker started since counts from its first reading).
   */
  busyShare(): number {
    let most = 0;
    for (const t of this.threads) {
      const perf = t.worker?.performance;
      if (!perf) continue;
      const now = perf.eventLoopUtilization();
      if (t.utilization)
        most = Math.max(most, perf.eventLoopUtilization(now, t.utilization).utilization);
      t.utilization = now;
    }
    return most;
  }

  /** Ends every worker; checks in flight end as cancelled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweep);
    await Promise.all(
      this.threads.map(async (t) => {
        if (t.restart) clearTimeout(t.restart);
        if (t.flushing) clearTimeout(t.flushing);
        this.settleAll(t, (p) => `${what(p)}: cancelled (the probe workers stopped)`, false);
        const w = t.worker;
        t.worker = null;
        await w?.terminate();
      }),
    );
  }

  /** @internal PooledChecker's probe. */
  run(checker: PooledChecker, target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    if (context.signal.aborted || this.closed) {
      const why = this.closed ? 'cancelled (the probe workers stopped)' : 'cancelled';
      const message = `${what({ checker, target })}: ${why}`;
      return Promise.resolve({ healthy: false, durationMs: 0, message });
    }
    const thread = this.pick();
    if (!thread)
      return Promise.resolve({
        healthy: false,
        durationMs: 0,
        message: `${what({ checker, target })}: not run: no probe worker is running (one is being started again)`,
        local: true,
      });
    if (!thread.known.has(checker.id)) {
      thread.known.add(checker.id);
      thread.out.define.push({ id: checker.id, check: checker.spec });
    }
    const request = this.nextRequest++;
    const started = performance.now();
    return new Promise<CheckResult>((resolve) => {
      const onAbort = (): void => {
        if (!thread.pending.has(request)) return;
        this.settle(thread, request, {
          healthy: false,
          durationMs: performance.now() - started,
          message: `${what({ checker, target })}: cancelled`,
        });
        thread.out.cancel.push(request);
        this.flushSoon(thread);
      };
      thread.pending.set(request, {
        resolve,
        watch: watchAbort(context.signal, onAbort),
        deadline: thread.ready ? started + context.timeoutMs + this.graceMs : Infinity,
        started,
        timeoutMs: context.timeoutMs,
        checker,
        target,
      });
      thread.out.run.push([
        request,
        checker.id,
        target.family,
        target.address,
        target.port,
        context.timeoutMs,
        monotonicMs(),
      ]);
      thread.handed++;
      this.flushSoon(thread);
    });
  }

  /** @internal A checker no run uses any more: the workers that know it close theirs. */
  forget(id: number): void {
    for (const t of this.threads) {
      if (!t.known.delete(id)) continue;
      t.out.forget.push(id);
      this.flushSoon(t);
    }
  }

  /**
   * The ready worker with the fewest checks in flight; while none is ready (the start), the
   * starting one with the fewest waiting, whose checks go when it is.
   */
  private pick(): Thread | undefined {
    let best: Thread | undefined;
    for (const t of this.threads) {
      if (!t.worker) continue;
      if (
        !best ||
        (t.ready && !best.ready) ||
        (t.ready === best.ready && t.pending.size < best.pending.size)
      )
        best = t;
    }
    return best;
  }

  private start(t: Thread): void {
    t.restart = null;
    if (this.closed) return;
    const worker = new Worker(this.options.worker, { name: `probe-${t.index}` });
    t.worker = worker;
    t.ready = false;
    t.utilization = null;
    t.startedAt = performance.now();
    t.ending = '';
    let error = '';
    worker.on('message', (m: unknown) => this.receive(t, m));
    worker.on('error', (e) => (error = e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => {
      if (t.worker !== worker) return;
      t.worker = null;
      t.ready = false;
      t.known.clear();
      t.out = emptyOut();
      if (this.closed) return;
      const reason = t.ending || error || `exited with code ${code}`;
      this.restarts++;
      this.settleAll(
        t,
        (p) => `${what(p)}: not finished: its probe worker ${reason}; started again`,
        true,
      );
      this.options.onWorkerExit?.(t.index, reason);
      t.restart = setTimeout(() => this.start(t), this.restartMs);
      t.restart.unref();
    });
  }

  private receive(t: Thread, m: unknown): void {
    const message = m as Partial<FromWorker> | null;
    if (message?.ready === true && !t.ready) {
      t.ready = true;
      // Its checks waited for the start: each one's time to answer runs from now.
      const now = performance.now();
      for (const p of t.pending.values()) p.deadline = now + p.timeoutMs + this.graceMs;
      this.flushSoon(t);
      return;
    }
    const done = message?.done;
    if (!Array.isArray(done)) return;
    for (const d of done as unknown[]) {
      if (!isDone(d)) continue;
      this.settle(t, d[0], resultOf(d));
    }
  }

  private settle(t: Thread, request: number, result: CheckResult): void {
    const p = t.pending.get(request);
    if (!p) return; // cancelled, or its worker was replaced: the result came too late
    t.pending.delete(request);
    unwatchAbort(p.watch);
    p.resolve(result);
  }

  private settleAll(t: Thread, message: (p: Pending) => string, local: boolean): void {
    const now = performance.now();
    for (const [request, p] of t.pending) {
      this.settle(t, request, {
        healthy: false,
        durationMs: now - p.started,
        message: message(p),
        ...(local ? { local } : {}),
      });
    }
  }

  private flushSoon(t: Thread): void {
    // Every check due within BATCH_MS goes in one message; until the worker is ready, they
    // gather (receive() flushes them when it says so).
    if (!t.ready) return;
    t.flushing ??= setTimeout(() => {
      t.flushing = null;
      const out = t.out;
      t.out = emptyOut();
      t.worker?.postMessage(out);
    }, BATCH_MS);
  }

  private findStuck(): void {
    const now = performance.now();
    for (const t of this.threads) {
      if (!t.worker || t.ending) continue;
      if (!t.ready) {
        if (now - t.startedAt > this.startMs) {
          t.ending = `did not start within ${this.startMs} ms, so it was ended`;
          void t.worker.terminate();
        }
        continue;
      }
      for (const p of t.pending.values()) {
        if (p.deadline > now) continue;
        t.ending = `did not answer within ${Math.round(now - p.started)} ms (stuck), so it was ended`;
        void t.worker.terminate();
        break;
      }
    }
  }
}

/** A checker whose `check` runs on the pool's workers. */
class PooledChecker implements Checker {
  readonly kind: string;
  readonly description: string;
  readonly key: string;

  constructor(
    private readonly pool: ProbePool,
    readonly id: number,
    readonly spec: PooledCheck,
    private readonly inner: Checker,
  ) {
    this.kind = inner.kind;
    this.description = inner.description;
    this.key = inner.key;
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    // A data-path probe's socket mark is set by a native addon: it runs here.
    if (target.dataPath) return this.inner.check(target, context);
    return this.pool.run(this, target, context);
  }

  async close(): Promise<void> {
    this.pool.forget(this.id);
    await this.inner.close?.();
  }
}

// ---- the worker's side

/** Where a worker's messages come from and go (worker_threads' parentPort). */
export interface ProbePort {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  postMessage(message: FromWorker): void;
}

/**
 * Runs the probes a pool hands this worker: `create` makes a check from its kind and options
 * (the catalog's declaration, as on the main thread).
 */
export function serveProbes(port: ProbePort, create: (check: PooledCheck) => Checker): void {
  const checkers = new Map<number, Checker | string>();
  const running = new Map<number, CancelHook>();
  // Every check's signal: a worker stops its checks one by one (each one's cancel hook).
  const signal = new AbortController().signal;
  let done: Done[] = [];
  let flushing: NodeJS.Timeout | null = null;
  const answer = (d: Done): void => {
    done.push(d);
    flushing ??= setTimeout(() => {
      flushing = null;
      const out = done;
      done = [];
      port.postMessage({ done: out });
    }, BATCH_MS);
  };
  const probe = async ([request, id, family, address, at, timeoutMs, handed]: RunRequest) => {
    const lateMs = Math.max(0, monotonicMs() - handed);
    const checker = checkers.get(id);
    if (checker === undefined || typeof checker === 'string') {
      const why = checker ?? `check ${id} was never defined here`;
      answer([request, false, 0, `not run in the probe worker: ${why}`, -1, true, lateMs]);
      return;
    }
    const cancel: CancelHook = { stop: undefined };
    running.set(request, cancel);
    try {
      const target: CheckTarget = { family, address, port: at };
      const r = await checker.check(target, { signal, timeoutMs, cancel });
      answer([
        request,
        r.healthy,
        r.durationMs,
        r.message,
        r.weight ?? -1,
        r.local ?? false,
        lateMs,
      ]);
    } catch (error) {
      const r = thrownResult(checker.description, { family, address, port: at }, error);
      answer([request, false, 0, r.message, -1, false, lateMs]);
    } finally {
      running.delete(request);
    }
  };
  port.on('message', (m) => {
    const message = m as ToWorker;
    for (const { id, check } of message.define) {
      try {
        checkers.set(id, create(check));
      } catch (error) {
        checkers.set(id, `could not make the ${check.type} check: ${String(error)}`);
      }
    }
    for (const id of message.forget) {
      const checker = checkers.get(id);
      checkers.delete(id);
      if (typeof checker === 'object')
        void Promise.resolve(checker.close?.()).catch(() => undefined);
    }
    // Runs before cancels: a check cancelled while it waited in the batch starts and stops.
    for (const r of message.run) void probe(r);
    for (const request of message.cancel) {
      const cancel = running.get(request);
      if (cancel) cancelCheck(cancel, new DOMException('This operation was aborted', 'AbortError'));
    }
  });
  port.postMessage({ ready: true });
}
