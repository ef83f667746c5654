// Runs checks on time: HAProxy's inter/fastinter/downinter, jitter so checks never march in
// step, start times on a grid so checks due together share one wakeup, one concurrency cap for
// the process that delays checks rather than dropping them (a checker with a cap of its own,
// exec, waits for that instead) and lets a failing server's checks go first, identical checks of
// one target (same rise/fall too) run once on the strictest of their subscribers' timings with
// the result fanned out, and lateness (event-loop lag, waiting for the cap) measured on every
// run. A local result (the probe could not run on this director) is handed on but never counted
// towards rise or fall. Timers and time go through a Clock, so tests drive exact sequences.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { flat } from '../flat.js';
import {
  AdmissionControl,
  busyShareOf,
  DEFAULT_MIN_CONCURRENCY,
  lagOutside,
  OWN_TURNS,
  TARGET_LAG_MS,
  type BusySpan,
} from './admission.js';
import { FlightControl } from './flight.js';
import type { CheckLimiter, CheckResult, CheckTarget, Checker } from './checker.js';
import { initialState, observe, type HealthPolicy, type HealthState } from './policy.js';
import { destination, thrownResult } from './probe.js';
import { strictestTiming, type CheckTiming } from './timing.js';

/** The wait before the next check, from the state the last result left. Pure. */
export function nextInterval(state: HealthState, timing: CheckTiming): number {
  const changing = state.up ? state.failures > 0 : state.successes > 0;
  if (changing) return timing.fastIntervalMs;
  return state.up ? timing.intervalMs : timing.downIntervalMs;
}

/**
 * Checks start on a grid, each at the grid point nearest its plan, so the checks planned around
 * one point start together, on one timer. At a few hundred checks a second, waking the process
 * for each costs about as much as the check itself, and a point of 25 checks rather than ten took
 * 15 % of the bookkeeping's CPU per check off at 10,000 a second and 32 % at 1,000
 * (bench:bookkeeping); a grid of 20 ms at 10,000 (200 a point) left the probe workers bursts
 * they could not keep up with. So the grid holds about CHECKS_PER_SLOT checks a
 * point, and is at most SLOT_MS and a SLOT_SHARE-th of the check's shortest interval
 * (bench:probes BENCH_SLOT, bench:peers: README). A check starts at most half a step before or
 * after its jittered plan (2.5 % of its interval, inside the default jitter of 10 %), and the
 * intervals keep their mean.
 */
export const SLOT_MS = 50;
export const CHECKS_PER_SLOT = 25;
export const SLOT_SHARE = 20;

/**
 * The grid for a check whose shortest interval is `shortestMs`, among `rate` checks a second:
 * about CHECKS_PER_SLOT a point, between 1 ms and SLOT_MS, and at most a SLOT_SHARE-th of that
 * interval (whole ms: Node's timers are). Pure.
 */
export function slotFor(rate: number, shortestMs = Infinity): number {
  const byRate = rate > 0 ? Math.round((CHECKS_PER_SLOT * 1000) / rate) : SLOT_MS;
  return Math.max(1, Math.min(SLOT_MS, byRate, Math.floor(shortestMs / SLOT_SHARE)));
}

/**
 * When a check planned for `at` starts: the grid point of `slotMs` nearest `at`, or the first
 * not before `now` (0: `at`, or now if that has passed). Pure.
 */
export function slotted(at: number, now: number, slotMs: number): number {
  if (slotMs <= 0) return Math.max(at, now);
  const nearest = Math.round(at / slotMs) * slotMs;
  return nearest >= now ? nearest : Math.ceil(now / slotMs) * slotMs;
}

/** `ms` spread by up to `jitter` of itself either way; `random` in [0, 1). Pure. */
export function jittered(ms: number, jitter: number, random: number): number {
  return Math.max(0, Math.round(ms * (1 + jitter * (2 * random - 1))));
}

/**
 * The wait from the end of one check (or the start) to the next; `random` in [0, 1). The first
 * check lands anywhere in the first interval, so a restart does not fire every check at once.
 * Pure.
 */
export function nextWait(state: HealthState, timing: CheckTiming, random: number): number {
  if (!state.checked) return Math.round(random * timing.intervalMs);
  return jittered(nextInterval(state, timing), timing.jitter, random);
}

/**
 * A check in flight this long holds no slot of the cap: it waits on its server (a black-holed
 * one hangs until the timeout, a slow one answers late), not on this loop. The cap bounds the
 * loop's turns, and such a check adds nothing to them until it ends; holding a slot for its
 * whole timeout, 100 black-holed servers of 1,000 kept a lowered cap of 20 to 40 full and the
 * other checks 560 ms late (bench:peers, VM). It still counts against `maxInFlight`, the bound
 * on checks in flight. Not while the loop is itself as late as that: then the check may be
 * waiting for a turn of ours.
 */
export const RELEASE_MIN_MS = 50;
/**
 * ... and this many times the loop's recent lag, when that is longer: a check's end waits a turn
 * of the loop for each step (connect; request and reply), and a turn lasts about the lag.
 */
export const RELEASE_LAGS = OWN_TURNS;

/** Whether a check in flight for `inFlightMs` waits on its server rather than on this loop. Pure. */
export function waitsOnServer(inFlightMs: number, loopLagMs: number): boolean {
  return inFlightMs >= Math.max(RELEASE_MIN_MS, RELEASE_LAGS * loopLagMs);
}

/**
 * Whether a server still up has failed its last checks: its next check may take it out. Such a
 * check goes ahead of the others waiting for the cap, and past a tick's hold: on a director that
 * is behind, each of the `fall` checks waited its turn behind every routine one, and a dead server
 * stayed in the table `fall` times that wait. Recovery is not hurried: a server coming back is
 * not sending clients to a dead one. Pure.
 */
export function failing(state: HealthState): boolean {
  return state.up && state.failures > 0;
}

/** First in, first out; taken entries are cleared, and the array compacted now and then. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Each checker's key digested for run ids (a checker's key never changes). */
const digests = new WeakMap<Checker, string>();

/** Checks a second of a run settled up on `timing`. */
const perSecond = (timing: CheckTiming): number => 1000 / Math.max(1, timing.intervalMs);

function sameTiming(a: CheckTiming, b: CheckTiming): boolean {
  return (
    a.intervalMs === b.intervalMs &&
    a.fastIntervalMs === b.fastIntervalMs &&
    a.downIntervalMs === b.downIntervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.jitter === b.jitter
  );
}

export interface CheckEvent<T = unknown> {
  /** The run's id: equal for merged checks, an entry of ServerRecord.runs. */
  readonly id: string;
  /** The subscribers of this check (several when identical checks were merged). */
  readonly subscribers: readonly string[];
  /** Each subscriber's tag as `add` last gave it, in the order of `subscribers`. */
  readonly tags: readonly (T | undefined)[];
  readonly checker: Checker;
  readonly target: CheckTarget;
  readonly result: CheckResult;
  /** The state after the result: unchanged by a local one (`result.local`). */
  readonly state: HealthState;
  readonly transition: 'up' | 'down' | null;
  /**
   * How late the check started against its plan: timer lag plus waiting for the general cap
   * (a checker with a limiter of its own waits for it inside the check, in its duration), plus
   * what the checker reports (`CheckResult.lateMs`: the way to a probe worker).
   */
  readonly latenessMs: number;
}

export interface SchedulerOptions<T = unknown> {
  /** Checks running at once, process-wide (default 256; the daemon's is `schedulerCap`). */
  readonly concurrency?: number;
  /**
   * Checks in flight at once, those that gave their slot back included; never below
   * `concurrency`, its default. Above it, a check that waits on its server (`waitsOnServer`)
   * gives its slot back at the full cap too while the loop has CPU to spare (`spare`), so
   * servers that answer slowly do not hold back the others' checks on an idle director (the
   * daemon's is `inFlightMax`). Otherwise `concurrency` bounds the checks in flight.
   */
  readonly maxInFlight?: number;
  /**
   * The share of the time the busiest loop that probes was busy since the last call (this
   * thread's, or with probe workers theirs too; tests drive it with the clock); default: this
   * thread's, from `performance.eventLoopUtilization`.
   */
  readonly busyShare?: () => number;
  /**
   * The fewest the cap is lowered to while the event loop is late and checks wait
   * (`AdmissionControl`); default 16, or `concurrency` if lower. At or above `concurrency`: a
   * fixed cap.
   */
  readonly minConcurrency?: number;
  readonly onResult: (event: CheckEvent<T>) => void;
  /**
   * Told when `onResult` throws. The health state stays as the probe's result made it and
   * checking goes on: an observer's bug is not the server's failure. Default: one line on
   * stderr.
   */
  readonly onObserverError?: (error: unknown, event: CheckEvent<T>) => void;
  /** For tests: a source of randomness in [0, 1). */
  readonly random?: () => number;
  /** Timers and the time lateness is measured against (default: the system clock). */
  readonly clock?: Clock;
  /**
   * The grid checks start on, in ms, fixed (0: each at its own time); default: `slotFor` the
   * rate the runs' intervals add up to and each check's shortest interval.
   */
  readonly slotMs?: number;
}

/** The runs planned for one slot, and its timer. */
interface Slot<T> {
  readonly runs: Run<T>[];
  readonly timer: Timer;
}

interface Run<T> {
  readonly id: string;
  readonly checker: Checker;
  readonly target: CheckTarget;
  /** Rise and fall are part of the id; `initial` was the first subscriber's. */
  readonly policy: HealthPolicy;
  /** Each subscriber's own timing and tag (adding it again replaces them). */
  readonly subscribers: Map<string, { readonly timing: CheckTiming; readonly tag: T | undefined }>;
  /** The subscribers' keys and tags, made again when they change: each result hands them on. */
  subscriberIds: readonly string[];
  subscriberTags: readonly (T | undefined)[];
  /** What the run follows: the strictest of the subscribers' timings. */
  timing: CheckTiming;
  state: HealthState;
  /** Waiting in the slot of `planned` (not running, not yet due). */
  waiting: boolean;
  /** When the current wait began, and when the next check should start, on the clock. */
  waitFrom: number;
  planned: number;
  running: boolean;
  /**
   * Its check's place under the general cap: a slot of the cap, or only a place under
   * `maxInFlight` once it waits on its server (`waitsOnServer`); `slotSince` is when it started.
   */
  slot: 'none' | 'held' | 'released';
  slotSince: number;
  /** A check has run (its result may have been local, leaving the initial state). */
  probed: boolean;
  /**
   * Still the scheduler's: false once removed (after a stop, `stopped` says it). Asked at every
   * step of every check, where looking the id up in `runs` (a map of 10,000 strings at 10,000
   * servers) was about 7 % of the main thread's bookkeeping per check in a perf profile.
   */
  live: boolean;
}

export interface SchedulerStats {
  readonly checks: number;
  /** Holding a slot and waiting for one: the general cap plus the checkers' own caps. */
  readonly running: number;
  readonly waiting: number;
  /** The general cap now: `concurrency`, or lower while the event loop is late. */
  readonly limit: number;
  /**
   * The bound on checks in flight now: `maxInFlight`, or lower while the servers' answers queue
   * (`FlightControl`).
   */
  readonly inFlightLimit: number;
}

export class Scheduler<T = unknown> {
  private readonly runs = new Map<string, Run<T>>();
  /** Live runs per checker instance: one instance may serve several targets. */
  private readonly users = new Map<Checker, number>();
  /**
   * The general cap, kept here rather than by p-limit: the runs that wait are queued as they
   * are (first come, first served; a failing server's first), where p-limit made two promises,
   * a closure, a queue item and three microtask hops per check, 1.3 KiB of the main thread's
   * 6 KiB of garbage per check at 10,000 HTTP checks a second with probe workers.
   */
  private cap: number;
  /** `maxInFlight`: checks in flight, released ones included, never more. */
  private readonly max: number;
  /** `concurrency`: the cap's maximum, and the bound on checks in flight but on a spare loop. */
  private readonly concurrency: number;
  private active = 0;
  /** Checks in flight that gave their slot back (`waitsOnServer`). */
  private released = 0;
  /** Waiting for the cap: the runs of `failing` servers first, then the others. */
  private readonly urgent = new Fifo<Run<T>>();
  private readonly queue = new Fifo<Run<T>>();
  /**
   * The runs whose checks took a slot they may give back (`mayRelease` when they started), in
   * the order they started, with when (stale ones skipped). A check that started otherwise is
   * not here: it keeps its slot.
   */
  private readonly holders = new Fifo<Run<T>>();
  private readonly holderSince = new Fifo<number>();
  /** Set while checks wait and one holding a slot may give it back (`armRelease`). */
  private releaseTimer: Timer | undefined;
  /** Sets `cap`: the configured one, lower while the event loop is late. */
  private readonly admission: AdmissionControl;
  /** The bound on checks in flight while the servers' answers queue (`FlightControl`). */
  private readonly flight: FlightControl | undefined;
  private readonly random: () => number;
  private readonly clock: Clock;
  /** Checks a second the runs' settled intervals add up to (what the grid follows). */
  private rate = 0;
  /** The slots with runs planned, by their time on the monotonic clock. */
  private readonly slots = new Map<number, Slot<T>>();
  /**
   * Every check's signal: aborted at the stop. A controller per check was a fifth of the main
   * thread's garbage per check; the probes wait on this one through `watchAbort`, which keeps
   * one listener on it however many checks are in flight.
   */
  private readonly stopper = new AbortController();
  /** `stopper` aborted: a field, read at every check's steps, where the signal is two getters. */
  private stopped = false;
  /** While set, checks wait here before they start (`hold`). */
  private gate: { opened: Promise<void>; open: () => void } | undefined;
  /** When the last hold ended and how long it was, on the monotonic clock. */
  private lastHold = { end: -Infinity, length: 0 };
  /** The last reconcile tick (`ticking`): lag within it does not lower the cap. */
  private tickSpan: BusySpan = { from: Infinity, until: Infinity };

  constructor(private readonly options: SchedulerOptions<T>) {
    const max = options.concurrency ?? 256;
    this.cap = max;
    this.concurrency = max;
    this.max = Math.max(max, options.maxInFlight ?? max);
    const min = Math.min(max, options.minConcurrency ?? DEFAULT_MIN_CONCURRENCY);
    // A fixed cap (min = max: configured so, or probe workers) adapts to nothing, this neither.
    this.flight = min < max ? new FlightControl({ min, max: this.max, ramp: max }) : undefined;
    this.admission = new AdmissionControl(
      {
        max,
        min,
        targetLagMs: TARGET_LAG_MS,
      },
      (limit) => {
        this.cap = limit;
        this.pump();
      },
      options.busyShare ?? busyShareOf(performance.eventLoopUtilization),
    );
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The identity under which identical checks of one target are merged: the check, the target,
   * and rise/fall (a run keeps one health state, which subscribers that count results
   * differently cannot share).
   */
  static runId(
    checker: Checker,
    target: CheckTarget,
    policy: Pick<HealthPolicy, 'rise' | 'fall'>,
  ): string {
    // A digest of the key: it holds every option, a TLS client key included, and a run id is
    // kept per server, compared, and digested again into a metric label. Once per checker:
    // the servers of a service share theirs.
    let digest = digests.get(checker);
    if (digest === undefined) {
      digest = createHash('sha256').update(checker.key).digest('hex').slice(0, 24);
      digests.set(checker, digest);
    }
    return flat(
      `${checker.kind}:${digest}@${destination(target)} rise=${policy.rise} fall=${policy.fall}`,
    );
  }

  /**
   * Starts checking `target` for `subscriber`. An identical check of the same target with the
   * same rise/fall gains a subscriber instead, and shares its state; a subscriber added again
   * has its timing and tag replaced (a reload). The run follows `strictestTiming` of its
   * subscribers. The tag comes back with each result (`CheckEvent.tags`): what the subscriber
   * stands for, found without a lookup by its key at every result.
   */
  add(
    subscriber: string,
    checker: Checker,
    target: CheckTarget,
    timing: CheckTiming,
    policy: HealthPolicy,
    tag?: T,
  ): string {
    const id = Scheduler.runId(checker, target, policy);
    const existing = this.runs.get(id);
    if (existing) {
      existing.subscribers.set(subscriber, { timing, tag });
      this.retime(existing);
      return id;
    }
    const run: Run<T> = {
      id,
      checker,
      target,
      policy,
      subscribers: new Map([[subscriber, { timing, tag }]]),
      subscriberIds: [subscriber],
      subscriberTags: [tag],
      timing,
      state: initialState(policy),
      waiting: false,
      waitFrom: 0,
      planned: 0,
      running: false,
      slot: 'none',
      slotSince: 0,
      probed: false,
      live: true,
    };
    this.runs.set(id, run);
    this.rate += perSecond(timing);
    this.users.set(checker, (this.users.get(checker) ?? 0) + 1);
    this.wait(run);
    return id;
  }

  /**
   * Stops `subscriber`'s interest; the check stops when nobody is left, and its checker is
   * closed (kept-alive connections) unless another live run uses the same instance.
   */
  remove(subscriber: string, id: string): void {
    const run = this.runs.get(id);
    if (!run || !run.subscribers.delete(subscriber)) return;
    if (run.subscribers.size > 0) {
      this.retime(run);
      return;
    }
    this.unplan(run);
    run.live = false;
    this.runs.delete(id);
    this.rate = Math.max(0, this.rate - perSecond(run.timing));
    const users = (this.users.get(run.checker) ?? 1) - 1;
    if (users > 0) {
      this.users.set(run.checker, users);
      return;
    }
    this.users.delete(run.checker);
    // A check still in flight fails with it; its result is dropped (the run is gone). Closing
    // releases what is cached; one that fails (even at once) has nothing left to hand back.
    const checker = run.checker;
    void Promise.resolve()
      .then(() => checker.close?.())
      .catch(() => undefined);
  }

  /** The timing a run follows now (the strictest of its subscribers'). */
  timing(id: string): CheckTiming | undefined {
    return this.runs.get(id)?.timing;
  }

  /** The runs checking now: one per distinct check of a target. */
  ids(): string[] {
    return [...this.runs.keys()];
  }

  state(id: string): HealthState | undefined {
    return this.runs.get(id)?.state;
  }

  stats(): SchedulerStats {
    const caps = new Set<CheckLimiter>();
    for (const run of this.runs.values()) if (run.checker.limiter) caps.add(run.checker.limiter);
    let running = this.active + this.released;
    let waiting = this.queued();
    for (const cap of caps) {
      running += cap.activeCount;
      waiting += cap.pendingCount;
    }
    const inFlightLimit = Math.min(this.max, this.flight?.current() ?? Infinity);
    return { checks: this.runs.size, running, waiting, limit: this.cap, inFlightLimit };
  }

  /**
   * Whether checks that are due wait for a slot of the general cap: the director is behind. Not
   * those waiting for a checker's own cap (exec_concurrency), and not `stats()`, which walks every
   * run: this is asked on each tick request, once per transition.
   */
  checksWaiting(): boolean {
    return this.queued() > 0;
  }

  /**
   * Marks a reconcile tick from now until the returned function is called: the lag of checks
   * due meanwhile counts only outside it (`lagOutside`), for the cap can shorten the turns its
   * checks make but not the tick's own.
   */
  ticking(): () => void {
    const span = { from: this.clock.monotonic(), until: Infinity };
    this.tickSpan = span;
    return () => {
      if (this.tickSpan === span)
        this.tickSpan = { from: span.from, until: this.clock.monotonic() };
    };
  }

  /**
   * Holds new checks back while the reconcile loop talks to the kernel, if the event loop is
   * late (in the last period, or lately enough that the cap is still below its maximum; a
   * fixed cap, min = max, is never lowered, and held nothing before): each request to the
   * kernel waits a turn of the loop, and on a loaded director a turn full of check starts and results lasts up to a second, so a
   * tick of a dozen requests took 15-45 s and a dead server stayed in the table that long. On a
   * loop that keeps time the turns are short anyway, and holding would only make checks late.
   * Checks in flight go on; the ones due wait (late by the hold) until `release` or `maxMs`,
   * whichever is first, except those of `failing` servers, whose results the next tick needs.
   * So that ticks back to back cannot starve checking, a hold is refused (a no-op) until as
   * long as the last one has passed.
   */
  hold(maxMs: number): () => void {
    const now = this.clock.monotonic();
    const late = this.admission.behind() || this.admission.lowered();
    if (!late || this.gate || now - this.lastHold.end < this.lastHold.length)
      return () => undefined;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const gate = { opened, open };
    this.gate = gate;
    const release = (): void => {
      if (this.gate !== gate) return;
      timer.cancel();
      this.gate = undefined;
      const end = this.clock.monotonic();
      this.lastHold = { end, length: end - now };
      open();
    };
    const timer = this.clock.setTimeout(release, maxMs, { unref: true });
    return release;
  }

  /** Stops every timer and aborts the checks in flight. */
  async stop(): Promise<void> {
    this.urgent.clear();
    this.queue.clear();
    this.holders.clear();
    this.holderSince.clear();
    this.releaseTimer?.cancel();
    this.releaseTimer = undefined;
    this.stopped = true;
    this.stopper.abort();
    this.gate?.open();
    this.gate = undefined;
    for (const slot of this.slots.values()) slot.timer.cancel();
    this.slots.clear();
    const checkers = [...this.users.keys()];
    this.runs.clear();
    this.rate = 0;
    this.users.clear();
    await Promise.all(checkers.map((c) => c.close?.() ?? Promise.resolve()));
  }

  /** Plans the next check from now, on the run's state and timing. */
  private wait(run: Run<T>): void {
    const now = this.clock.monotonic();
    this.plan(run, now, now + this.waitOf(run, run.timing));
  }

  /**
   * nextWait, except that a run whose checks have so far all been local (its state still the
   * initial one) waits the interval that state calls for: the first-check spread again could
   * come round at once, over and over, while the director is short of descriptors.
   */
  private waitOf(run: Run<T>, timing: CheckTiming): number {
    if (run.probed && !run.state.checked)
      return jittered(nextInterval(run.state, timing), timing.jitter, this.random());
    return nextWait(run.state, timing, this.random());
  }

  private plan(run: Run<T>, from: number, at: number): void {
    this.unplan(run);
    const now = this.clock.monotonic();
    run.waitFrom = from;
    // A check moved to a time already past runs in the next slot, and is not late for it.
    const t = run.timing;
    const shortest = Math.min(t.intervalMs, t.fastIntervalMs, t.downIntervalMs);
    const planned = slotted(at, now, this.options.slotMs ?? slotFor(this.rate, shortest));
    run.planned = planned;
    run.waiting = true;
    const slot = this.slots.get(planned);
    if (slot) slot.runs.push(run);
    else {
      const timer = this.clock.setTimeout(() => this.slotDue(planned), planned - now);
      this.slots.set(planned, { runs: [run], timer });
    }
  }

  /** Takes `run` out of its slot, if it waits in one. */
  private unplan(run: Run<T>): void {
    if (!run.waiting) return;
    run.waiting = false;
    const slot = this.slots.get(run.planned);
    const i = slot?.runs.indexOf(run) ?? -1;
    if (!slot || i < 0) return;
    slot.runs.splice(i, 1);
    if (slot.runs.length > 0) return;
    slot.timer.cancel();
    this.slots.delete(run.planned);
  }

  private slotDue(at: number): void {
    const slot = this.slots.get(at);
    this.slots.delete(at);
    for (const run of slot?.runs ?? []) {
      // Moved or taken out since the slot was filled: not this slot's any more.
      if (!run.waiting || run.planned !== at) continue;
      run.waiting = false;
      this.due(run);
    }
  }

  /**
   * Follows a change of subscribers: the strictest timing of those left. A planned check that
   * the new timing wants sooner moves; one it wants later stays (the next wait uses the new
   * timing), and a check in flight picks it up when it ends.
   */
  private retime(run: Run<T>): void {
    run.subscriberIds = [...run.subscribers.keys()];
    const subscribed = [...run.subscribers.values()];
    run.subscriberTags = subscribed.map((s) => s.tag);
    const timing = strictestTiming(subscribed.map((s) => s.timing));
    if (sameTiming(timing, run.timing)) return;
    this.rate += perSecond(timing) - perSecond(run.timing);
    run.timing = timing;
    if (run.running || !run.waiting) return;
    const at = run.waitFrom + this.waitOf(run, timing);
    if (at < run.planned) this.plan(run, run.waitFrom, at);
  }

  private due(run: Run<T>): void {
    if (this.stopped || !run.live || run.running) return;
    run.running = true;
    const now = this.clock.monotonic();
    this.admission.observe(
      now,
      lagOutside(run.planned, now, this.tickSpan),
      this.active + this.queued() >= this.cap,
      run.timing.timeoutMs,
    );
    // A checker with a cap of its own waits for that inside `check`, holding nothing of ours.
    if (run.checker.limiter) void this.execute(run, false);
    else {
      if (this.active >= this.cap) this.releaseStalled();
      if (this.room() && this.queued() === 0) {
        this.active++;
        run.slot = 'held';
        void this.execute(run, true);
        return;
      }
      if (failing(run.state)) this.urgent.push(run);
      else this.queue.push(run);
      // A slot given back just now goes to the first in line; else one may be given back later.
      if (this.room()) this.pump();
      else this.armRelease();
    }
  }

  /**
   * While checks wait for a slot, wakes when the oldest check holding one will count as waiting
   * on its server, to give its slot to the first in line. Without it a slot is given back only
   * when some check is due or ends, and with a few slow servers that can be seconds.
   */
  private armRelease(): void {
    if (this.releaseTimer || this.queued() === 0 || this.stopped) return;
    if (!this.mayRelease()) return;
    const since = this.holderSince.peek();
    if (since === undefined) return;
    const at = since + Math.max(RELEASE_MIN_MS, RELEASE_LAGS * this.admission.lagMs());
    this.releaseTimer = this.clock.setTimeout(
      () => {
        this.releaseTimer = undefined;
        this.pump();
      },
      Math.max(1, at - this.clock.monotonic()),
      { unref: true },
    );
  }

  /** A slot of the cap is free, and a place under the bound on checks in flight (`inFlight`). */
  private room(): boolean {
    const bound = Math.min(this.inFlight(), this.flight?.current() ?? Infinity);
    return this.active < this.cap && this.active + this.released < bound;
  }

  /**
   * Whether the full cap lets checks that wait on their servers give their slots back: with
   * `maxInFlight` above `concurrency`, while the loop has CPU to spare.
   */
  private spareLoop(): boolean {
    return this.max > this.concurrency && this.cap >= this.concurrency && this.admission.spare();
  }

  /** The bound on checks in flight now: `maxInFlight` on a spare loop, else `concurrency`. */
  private inFlight(): number {
    return this.spareLoop() ? this.max : this.concurrency;
  }

  /** A check holding a slot may give it back: the cap is lowered, or the loop spare. */
  private mayRelease(): boolean {
    return this.cap < this.concurrency || this.spareLoop();
  }

  /** Gives back the slots of the checks that wait on their servers (`waitsOnServer`). */
  private releaseStalled(): void {
    if (this.holders.size === 0) return;
    const now = this.clock.monotonic();
    const lag = this.admission.lagMs();
    const may = this.mayRelease();
    for (let run = this.holders.peek(); run; run = this.holders.peek()) {
      const since = this.holderSince.peek() ?? now;
      if (run.slot === 'held' && run.slotSince === since) {
        if (!may || !waitsOnServer(now - since, lag)) break;
        run.slot = 'released';
        this.active--;
        this.released++;
      }
      this.holders.shift();
      this.holderSince.shift();
    }
  }

  private queued(): number {
    return this.urgent.size + this.queue.size;
  }

  /**
   * Starts the runs that wait while the general cap has room: the urgent ones first, each queue
   * first come first served.
   */
  private pump(): void {
    if (this.stopped) return;
    // At every check's end: it also drops the entries of checks that ended.
    this.releaseStalled();
    while (this.room()) {
      const run = this.urgent.shift() ?? this.queue.shift();
      if (!run) break;
      // Removed while it waited: no check for a run nobody follows.
      if (!run.live) {
        run.running = false;
        continue;
      }
      this.active++;
      run.slot = 'held';
      void this.execute(run, true);
    }
    this.armRelease();
  }

  /**
   * One check of `run`, holding a slot of the general cap when `general`; one that throws is a
   * failed result, and checking goes on. Then its result is counted and handed on, and the next
   * check is planned.
   */
  private async execute(run: Run<T>, general: boolean): Promise<void> {
    let result: CheckResult | undefined;
    let latenessMs = 0;
    let started = NaN;
    try {
      if (this.gate && !failing(run.state)) await this.gate.opened;
      started = this.clock.monotonic();
      latenessMs = Math.max(0, started - run.planned);
      // Only while it may give its slot back (`mayRelease`): at the full cap, a loop with no
      // CPU to spare (or `maxInFlight` at `concurrency`) pays nothing per check.
      if (general && this.mayRelease()) {
        run.slotSince = started;
        this.holders.push(run);
        this.holderSince.push(started);
      }
      result = await run.checker.check(run.target, {
        signal: this.stopper.signal,
        timeoutMs: run.timing.timeoutMs,
      });
      if (result.lateMs !== undefined) latenessMs += result.lateMs;
    } catch (error) {
      result = thrownResult(run.checker.description, run.target, error);
    } finally {
      if (general) {
        if (run.slot === 'released') this.released--;
        else this.active--;
        run.slot = 'none';
        if (this.flight) {
          const now = this.clock.monotonic();
          if (result?.healthy && !result.local) {
            this.flight.answered(now - started, run.timing.timeoutMs);
            this.admission.answered(now - started, run.timing.timeoutMs);
          }
          // A limit grown here lets the pump below start more.
          this.flight.observe(now, this.active + this.released, this.admission.lagMs());
        }
        this.pump();
      }
    }
    try {
      if (this.stopped || !run.live) return;
      run.probed = true;
      // A local result says nothing about the server: no count, no reset, no transition. It is
      // still handed on, so the loop and the metrics see that checking is blind.
      const next = result.local
        ? { state: run.state, transition: null }
        : observe(run.state, result.healthy, run.policy);
      run.state = next.state;
      this.notify({
        id: run.id,
        subscribers: run.subscriberIds,
        tags: run.subscriberTags,
        checker: run.checker,
        target: run.target,
        result,
        state: next.state,
        transition: next.transition,
        latenessMs,
      });
    } finally {
      run.running = false;
      if (!this.stopped && run.live) this.wait(run);
    }
  }

  /** Hands a result on; what the observer throws is reported apart, never counted as a failure. */
  private notify(event: CheckEvent<T>): void {
    try {
      this.options.onResult(event);
    } catch (error) {
      try {
        (this.options.onObserverError ?? writeObserverError)(error, event);
      } catch {
        // A reporter that throws too must not end checking (nor the process, from a timer).
        writeObserverError(error, event);
      }
    }
  }
}

function writeObserverError(error: unknown, event: CheckEvent): void {
  const text = String(error).replace(/\s*\n\s*/g, ' ');
  process.stderr.write(`ipvs-warden: the check result observer threw for ${event.id}: ${text}\n`);
}
