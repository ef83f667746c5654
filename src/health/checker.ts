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
   * `signal`'s controller, when this check alone holds it (a probe worker makes one per check):
   * the probe aborts it at its own deadline rather than make a second controller that listens
   * to this one. Absent, `signal` may be shared (the scheduler's stop) and is only listened to.
   */
  readonly controller?: AbortController;
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
