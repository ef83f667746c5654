// The seam between probes and the rest: a Checker probes one target and returns a CheckResult
// on every path. An unhealthy server is a normal result, never an exception.
import type { Family } from '../ipvs/model.js';

/** Where a probe goes: the real server, or the check's own address/port (connect_ip, checkport). */
export interface CheckTarget {
  readonly family: Family;
  readonly address: string;
  readonly port: number;
  /**
   * Through the virtual service's data path (DR, TUN): `address`/`port` are the VIP's, and the
   * probe's packets carry `mark`, which an IPVS fwmark service of this real server alone sends
   * to `server` as the director's traffic goes (src/health/datapath.ts).
   */
  readonly dataPath?: { readonly mark: number; readonly server: string };
}

export interface CheckContext {
  /** Aborted when the check is no longer wanted (shutdown, reload); the probe tears down. */
  readonly signal: AbortSignal;
  /** The whole exchange must end within this: connect, TLS, request, a trickling body. */
  readonly timeoutMs: number;
  /**
   * A way to stop this check alone, when the caller needs one (a probe worker, told to cancel
   * one of the checks it runs): the probe sets `stop`, and calling it ends the check as an
   * abort of `signal` would. `signal` itself is shared by every check (the scheduler's stop,
   * the worker's): an AbortController per check and a listener on its signal were a quarter of
   * the main thread's garbage per check (1.4 of 6.1 KiB, 2026-12-02).
   */
  readonly cancel?: CancelHook;
}

/** Filled in by the probe while it runs; cleared when it has its result. */
export interface CancelHook {
  stop: ((reason: unknown) => void) | undefined;
  /** Why the caller cancelled before the probe had set `stop`: the probe stops as it starts. */
  early?: { readonly reason: unknown };
}

/** Cancels through a hook: at once when the probe is running, as it starts when it is not yet. */
export function cancelCheck(hook: CancelHook, reason: unknown): void {
  if (hook.stop) hook.stop(reason);
  else hook.early = { reason };
}

export interface CheckResult {
  readonly healthy: boolean;
  readonly durationMs: number;
  /** How far the probe got and what went wrong: "HTTP GET /healthz -> 10.0.0.5:8080: connected; status 503, expected 200-299". */
  readonly message: string;
  /** A weight the check reports (exec's dynamic mode), when it does. */
  readonly weight?: number;
  /**
   * The probe could not run for a reason on this director (descriptors, memory, ports,
   * processes): it says nothing about the server. Always with `healthy: false`; the scheduler
   * passes it on but does not count it towards rise or fall.
   */
  readonly local?: boolean;
  /**
   * How long the probe waited to start after `check` was called, when that is not here to see:
   * a probe worker's (the batch, the message, the worker's own event loop). Counted into the
   * check's lateness.
   */
  readonly lateMs?: number;
}

/** A cap a checker applies itself (p-limit's LimitFunction is one). */
export interface CheckLimiter {
  /** Checks holding a slot, and waiting for one. */
  readonly activeCount: number;
  readonly pendingCount: number;
}

export interface Checker {
  /** "tcp", "http", ... */
  readonly kind: string;
  /** What the check does, for messages: "HTTP GET /healthz". */
  readonly description: string;
  /** Equal for checks that do the same thing: identical checks of one target run once. */
  readonly key: string;
  /**
   * Set when `check` waits for a cap of its own (exec: the process-wide process cap). Such a
   * check runs outside the scheduler's general cap: holding a general slot while it waits for
   * its own would let a burst of them starve every other check (nested limits). Its wait
   * stays inside `check`, so it counts against the check's timeout.
   */
  readonly limiter?: CheckLimiter;
  check(target: CheckTarget, context: CheckContext): Promise<CheckResult>;
  /** Releases what the checker keeps between checks (kept-alive connections). */
  close?(): Promise<void>;
}
