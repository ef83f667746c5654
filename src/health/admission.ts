// How many checks may run at once when the event loop falls behind. Every check that runs at
// once ends in the same turn of the loop (a connect on loopback completes at once), so a turn
// lasts about (checks in flight x CPU per check). On an overloaded director a turn of 256 checks
// took over a second, and a reconcile tick, which waits on the kernel a turn at a time, took
// 15-45 s: a dead server stayed in the table that long. Lowering the cap while the loop is late
// and checks wait for a slot shortens the turns (the work is the same, the checks wait in the
// queue instead of in the loop) and gives the tick its turns back; the cap grows again as soon
// as the loop keeps time, or nothing waits. A loop with no CPU to spare is let run later before
// the cap halves (`targetLag`): there a smaller cap only makes each check dearer.
import type { EventLoopUtilization } from 'node:perf_hooks';

export interface AdmissionSettings {
  /** The configured cap (`check_concurrency`): never more. */
  readonly max: number;
  /** Never fewer (`check_concurrency_min`); equal to `max` turns the adaptation off. */
  readonly min: number;
  /** A loop later than this, with checks waiting, is behind: the cap halves. */
  readonly targetLagMs: number;
}

/** How often the cap is decided, at most: the loop's lag is the worst seen in the period. */
export const ADMISSION_PERIOD_MS = 100;

/** `check_concurrency_min`'s default: 16 TCP checks in flight kept an emulated 2-CPU VM busy. */
export const DEFAULT_MIN_CONCURRENCY = 16;

/** The loop's lag the cap is kept under: a check later than this is late (p99 target). */
export const TARGET_LAG_MS = 50;

/**
 * The scheduler's cap from the daemon's settings. `check_concurrency` is per event loop that
 * runs probes. With probe workers (`check_workers` > 0) the main thread's turns no longer grow
 * with the checks in flight: results come back in batches (BATCH_MS) whose size the rate sets,
 * and a check is in flight for two batches at least. So the cap is `check_concurrency` for each
 * worker, and fixed: a lowered one made checks late without shortening a turn (10,000 HTTP
 * checks a second over two workers: cap 40, 3,859 checks waiting, a fifth of the checks over
 * 50 ms late).
 */
export function schedulerCap(
  concurrency: number,
  min: number,
  workers: number,
): { readonly max: number; readonly min: number } {
  if (workers <= 0) return { max: concurrency, min: Math.min(concurrency, min) };
  const max = concurrency * workers;
  return { max, min: max };
}

/**
 * The bound on checks in flight (the scheduler's `maxInFlight`) from the cap (`schedulerCap`),
 * the process's open-file limit and `check_in_flight_max` (0: none set). A check that waits on
 * its server holds a socket, not the CPU, so it gives its slot of the cap back and only this
 * bounds it: by default half the open files, leaving the other half to the rest (the listener
 * and its clients, the netlink sockets, exec checks' pipes, hooks, logs). Probe workers share
 * the process's files, so it is one bound for all. Each server's check is in flight once at
 * most, so the pool bounds it too. Pure.
 */
export function inFlightMax(cap: number, openFiles: number, configured = 0): number {
  if (configured > 0) return Math.max(cap, configured);
  if (!(openFiles > 0)) return cap;
  return Math.max(cap, Math.floor(Math.min(openFiles, NR_OPEN) / 2));
}

/** The kernel's default `fs.nr_open`: no process opens more files ("unlimited" included). */
export const NR_OPEN = 1_048_576;

/**
 * The soft limit on open files from /proc/self/limits ("Max open files  SOFT  HARD  files"):
 * Infinity for "unlimited", null when the line is missing or unreadable. Pure.
 */
export function openFilesLimit(limits: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  if (!m?.[1]) return null;
  if (m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/**
 * The cap for the next period, from the worst timer lag of the last and whether checks waited
 * for a slot: halved (not below `min`) when the loop was later than the target while checks
 * waited (more were due than the cap let run: the checks themselves make the turns long);
 * grown by a quarter (at least one, not above `max`) when the loop kept within half the target,
 * or when nothing waited (the cap held nothing back, so a late loop is not its doing: a GC
 * pause, a scrape); kept in between (no flapping around the target).
 */
export function nextLimit(
  limit: number,
  lagMs: number,
  waited: boolean,
  s: AdmissionSettings,
): number {
  const current = Math.min(s.max, Math.max(s.min, limit));
  if (lagMs > s.targetLagMs && waited) return Math.max(s.min, Math.floor(current / 2));
  if (lagMs <= s.targetLagMs / 2 || !waited)
    return Math.min(s.max, current + Math.max(1, current >> 2));
  return current;
}

/**
 * A check's end waits this many turns of our loop (connect; request and reply), a turn lasting
 * about the loop's lag: what flight.ts takes off the answers' time, and (the scheduler's
 * RELEASE_LAGS) how long a check is in flight before it counts as waiting on its server.
 */
export const OWN_TURNS = 3;

/**
 * A loop busy for this share of a period or more is saturated: the checks waiting for the cap
 * would take all of the CPU it gives back.
 */
export const SATURATED_FROM = 0.8;

/**
 * The most lag a saturated loop keeps its cap at: its checks' turns (OWN_TURNS of them) still
 * leave a 1 s timeout more than half, and a reconcile tick, which waits on the kernel a turn at
 * a time, gets a turn every 150 ms.
 */
export const SATURATED_LAG_MS = 150;

/**
 * A healthy answer that took over this share of its timeout was a close call: one turn more of
 * a loop that long behind and a healthy server is taken down.
 */
export const CLOSE_CALL = 0.5;

/**
 * The lag the cap is kept under for a period in which the busiest loop that probes was busy
 * `busyShare` of the time (0 to 1), its shortest check timeout `timeoutMs`, and its slowest
 * healthy answer took `slowest` of its own timeout: `targetLagMs`, or on a saturated loop
 * (SATURATED_FROM) with no close call (CLOSE_CALL) up to SATURATED_LAG_MS, as long as OWN_TURNS
 * turns take at most half that timeout. A smaller cap shortens the turns but costs CPU per
 * check, as each turn's own work (its wait for events, its timers) is shared by fewer checks: a
 * loop that keeps up pays that from CPU it has to spare; a saturated one pays with fewer checks,
 * all later. In the emulated VM at 10,000 HTTP targets (bench:peers, nginx answering), the cap
 * halved to 38 to 58 made 724 to 758 checks a second at 1.05 to 1.22 CPU-ms each; fixed at 256,
 * 1,178 at 0.62. But one run of two that held the cap at up to 150 ms without the close calls
 * took 171 healthy servers out; the likely cause (not proven: the daemon's log stayed in the
 * VM) is the turns a reconcile tick takes (`lagOutside`), which are not in the lag, with more
 * checks in flight to wait through them. Pure.
 */
export function targetLag(
  busyShare: number,
  timeoutMs: number,
  targetLagMs: number,
  slowest = 0,
): number {
  if (!(busyShare >= SATURATED_FROM) || !(slowest <= CLOSE_CALL)) return targetLagMs;
  const turns = Math.floor(timeoutMs / (2 * OWN_TURNS));
  return Math.max(targetLagMs, Math.min(SATURATED_LAG_MS, turns));
}

/** A stretch of the loop's time taken by other work (a reconcile tick): `until` Infinity while it runs. */
export interface BusySpan {
  readonly from: number;
  readonly until: number;
}

/**
 * The part of a check's lag (its timer due at `planned`, fired at `now`) that falls outside
 * `span`: what a tick, which the cap cannot shorten, made late is not the checks' doing. In the
 * VM at 10,000 TCP servers each tick (0.2 to 0.8 s, in chunks of up to 200 ms) halved the cap to
 * its floor of 16, and it took seconds to grow back: with servers going down one after another,
 * 955 results a second on average where the same loop made 2,450 to 3,060 at caps of 72 to 90;
 * 1,187 with this (README "Detection at 10,000 in the VM"). Pure.
 */
export function lagOutside(planned: number, now: number, span: BusySpan): number {
  const lag = Math.max(0, now - planned);
  const overlap = Math.min(now, span.until) - Math.max(planned, span.from);
  return overlap > 0 ? lag - overlap : lag;
}

/**
 * A loop busy for this share of a period or more has no CPU to spare: checks that wait on their
 * servers then keep their slots even at the full cap. Started anyway, they would wait for the
 * CPU, not for their servers: in the emulated VM at 1,000 HTTP targets, the main thread busy
 * 80 to 90 % of the time, letting them go anyway made 0.78 of keepalived's checks a second, and
 * keeping them 0.89 (bench:peers, one run each).
 */
export const SPARE_BELOW = 0.5;

/**
 * Whether the loops that probe had CPU to spare over a period: the busiest busy less than
 * SPARE_BELOW of it (`busyShare`, 0 to 1), and this thread's timers within half the target lag.
 * Pure.
 */
export function spare(busyShare: number, lagMs: number, targetLagMs: number): boolean {
  return busyShare < SPARE_BELOW && lagMs <= targetLagMs / 2;
}

/** An event loop's utilization reading: `performance.eventLoopUtilization`'s, or a worker's. */
export type UtilizationReader = (
  a?: EventLoopUtilization,
  b?: EventLoopUtilization,
) => EventLoopUtilization;

/** The share of the time a loop was busy (0 to 1) since the last call, from its readings. */
export function busyShareOf(read: UtilizationReader): () => number {
  let last = read();
  return () => {
    const now = read();
    const share = read(now, last).utilization;
    last = now;
    return share;
  };
}

/**
 * The shell: fed the lag of each check's own timer (how late it fired, before any wait for the
 * cap) and whether its check must wait for a slot, it decides once a period and hands a new cap to `apply`.
 */
export class AdmissionControl {
  private limit: number;
  private worst = 0;
  /** The worst lag of the last whole period. */
  private lastWorst = 0;
  private waited = false;
  /** The shortest timeout of the checks observed in this period. */
  private timeoutMs = Infinity;
  /** The slowest healthy answer of this period, as a share of its timeout. */
  private slowest = 0;
  private late = false;
  private idle = false;
  private periodStart: number | undefined;

  /**
   * `busyShare`: the share of the time the busiest loop that probes was busy since its last call
   * (`busyShareOf`); default: never busy.
   */
  constructor(
    private readonly settings: AdmissionSettings,
    private readonly apply: (limit: number) => void,
    private readonly busyShare: () => number = () => 0,
  ) {
    this.limit = settings.max;
  }

  /** The loop had CPU to spare over the last period (`spare`); not before one has passed. */
  spare(): boolean {
    return this.idle;
  }

  /** The cap now. */
  current(): number {
    return this.limit;
  }

  /** The cap is below its maximum: the loop has been late with checks waiting. */
  lowered(): boolean {
    return this.limit < this.settings.max;
  }

  /**
   * The loop was later than the target in the last period, whatever the cap did: a fixed cap
   * (min = max) never lowers, and its loop can be as late as an adaptive one at its floor.
   */
  behind(): boolean {
    return this.late;
  }

  /** The loop's lag lately: the worst of the last period and of this one so far. */
  lagMs(): number {
    return Math.max(this.lastWorst, this.worst);
  }

  /** A healthy answer's duration and its timeout (`targetLag`'s close calls). */
  answered(durationMs: number, timeoutMs: number): void {
    this.slowest = Math.max(this.slowest, durationMs / timeoutMs);
  }

  /**
   * One timer's lag at monotonic time `now`, whether its check has to wait for a slot, and its
   * timeout (`targetLag`).
   */
  observe(now: number, lagMs: number, waits: boolean, timeoutMs = Infinity): void {
    this.worst = Math.max(this.worst, lagMs);
    this.waited ||= waits;
    this.timeoutMs = Math.min(this.timeoutMs, timeoutMs);
    if (this.periodStart === undefined) {
      this.periodStart = now;
      this.busyShare(); // the first period starts here
    }
    if (now - this.periodStart < ADMISSION_PERIOD_MS) return;
    const busy = this.busyShare();
    const target = this.settings.targetLagMs;
    // A fixed cap comes out of nextLimit unchanged: the lag is still kept for `behind`.
    const next = nextLimit(this.limit, this.worst, this.waited, {
      ...this.settings,
      targetLagMs: targetLag(busy, this.timeoutMs, target, this.slowest),
    });
    this.late = this.worst > target;
    this.idle = spare(busy, this.worst, target);
    this.lastWorst = this.worst;
    this.worst = 0;
    this.waited = false;
    this.timeoutMs = Infinity;
    this.slowest = 0;
    this.periodStart = now;
    if (next === this.limit) return;
    this.limit = next;
    this.apply(next);
  }
}
