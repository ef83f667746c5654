// Runs checks on time: per-check timers, HAProxy's inter/fastinter/downinter, jitter so checks
// never march in step, one concurrency cap for the process that delays checks rather than
// dropping them, identical checks of one target run once with the result fanned out, and
// lateness (event-loop lag, waiting for the cap) measured on every run.
import { setMaxListeners } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import type { CheckResult, CheckTarget, Checker } from './checker.js';
import { initialState, observe, type HealthPolicy, type HealthState } from './policy.js';
import { hostPort } from './probe.js';

export interface CheckTiming {
  /** Between checks while the state is settled up (HAProxy inter). */
  readonly intervalMs: number;
  /** While the state is changing: some successes towards rise, or failures towards fall (fastinter). */
  readonly fastIntervalMs: number;
  /** While settled down (downinter). */
  readonly downIntervalMs: number;
  readonly timeoutMs: number;
  /** Each wait is spread uniformly by up to this fraction either way (0..1). */
  readonly jitter: number;
}

export const DEFAULT_TIMING: CheckTiming = {
  intervalMs: 2000,
  fastIntervalMs: 1000,
  downIntervalMs: 2000,
  timeoutMs: 1000,
  jitter: 0.1,
};

/** The wait before the next check, from the state the last result left. Pure. */
export function nextInterval(state: HealthState, timing: CheckTiming): number {
  const changing = state.up ? state.failures > 0 : state.successes > 0;
  if (changing) return timing.fastIntervalMs;
  return state.up ? timing.intervalMs : timing.downIntervalMs;
}

/** `ms` spread by up to `jitter` of itself either way; `random` in [0, 1). Pure. */
export function jittered(ms: number, jitter: number, random: number): number {
  return Math.max(0, Math.round(ms * (1 + jitter * (2 * random - 1))));
}

export interface CheckEvent {
  /** The run's id: equal for merged checks, an entry of ServerRecord.runs. */
  readonly id: string;
  /** The subscribers of this check (several when identical checks were merged). */
  readonly subscribers: readonly string[];
  readonly checker: Checker;
  readonly target: CheckTarget;
  readonly result: CheckResult;
  readonly state: HealthState;
  readonly transition: 'up' | 'down' | null;
  /** How late the check started against its plan (timer lag plus waiting for the cap). */
  readonly latenessMs: number;
}

export interface SchedulerOptions {
  /** Checks running at once, process-wide (default 256). */
  readonly concurrency?: number;
  readonly onResult: (event: CheckEvent) => void;
  /** For tests: a source of randomness in [0, 1). */
  readonly random?: () => number;
}

interface Run {
  readonly id: string;
  readonly checker: Checker;
  readonly target: CheckTarget;
  timing: CheckTiming;
  policy: HealthPolicy;
  readonly subscribers: Set<string>;
  state: HealthState;
  timer: NodeJS.Timeout | undefined;
  planned: number;
  running: boolean;
}

export interface SchedulerStats {
  readonly checks: number;
  readonly running: number;
  readonly waiting: number;
}

export class Scheduler {
  private readonly runs = new Map<string, Run>();
  private readonly limit: LimitFunction;
  private readonly random: () => number;
  private readonly stopper = new AbortController();

  constructor(private readonly options: SchedulerOptions) {
    this.limit = pLimit(options.concurrency ?? 256);
    // Every check in flight listens for the stop: thousands of listeners are the design.
    setMaxListeners(0, this.stopper.signal);
    this.random = options.random ?? Math.random;
  }

  /** The identity under which identical checks of one target are merged. */
  static runId(checker: Checker, target: CheckTarget): string {
    return `${checker.key}@${hostPort(target)}`;
  }

  /**
   * Starts checking `target` for `subscriber`. An identical check of the same target already
   * running gains a subscriber instead (the shorter timing wins); its state is shared.
   */
  add(
    subscriber: string,
    checker: Checker,
    target: CheckTarget,
    timing: CheckTiming,
    policy: HealthPolicy,
  ): string {
    const id = Scheduler.runId(checker, target);
    const existing = this.runs.get(id);
    if (existing) {
      existing.subscribers.add(subscriber);
      if (timing.intervalMs < existing.timing.intervalMs) existing.timing = timing;
      return id;
    }
    const run: Run = {
      id,
      checker,
      target,
      timing,
      policy,
      subscribers: new Set([subscriber]),
      state: initialState(policy),
      timer: undefined,
      planned: 0,
      running: false,
    };
    this.runs.set(id, run);
    // The first check lands anywhere in the first interval, so a restart does not fire all at once.
    this.schedule(run, Math.round(this.random() * timing.intervalMs));
    return id;
  }

  /** Stops `subscriber`'s interest; the check stops when nobody is left. */
  remove(subscriber: string, id: string): void {
    const run = this.runs.get(id);
    if (!run) return;
    run.subscribers.delete(subscriber);
    if (run.subscribers.size === 0) {
      clearTimeout(run.timer);
      this.runs.delete(id);
    }
  }

  /** New timing and rise/fall for a running check (a reload); its state is kept. */
  update(id: string, timing: CheckTiming, policy: HealthPolicy): void {
    const run = this.runs.get(id);
    if (!run) return;
    run.timing = timing;
    run.policy = policy;
  }

  state(id: string): HealthState | undefined {
    return this.runs.get(id)?.state;
  }

  stats(): SchedulerStats {
    return {
      checks: this.runs.size,
      running: this.limit.activeCount,
      waiting: this.limit.pendingCount,
    };
  }

  /** Stops every timer and aborts the checks in flight. */
  async stop(): Promise<void> {
    this.stopper.abort();
    for (const run of this.runs.values()) clearTimeout(run.timer);
    const checkers = new Set([...this.runs.values()].map((r) => r.checker));
    this.runs.clear();
    this.limit.clearQueue();
    await Promise.all([...checkers].map((c) => c.close?.() ?? Promise.resolve()));
  }

  private schedule(run: Run, delayMs: number): void {
    run.planned = performance.now() + delayMs;
    run.timer = setTimeout(() => void this.due(run), delayMs);
  }

  private async due(run: Run): Promise<void> {
    if (this.stopper.signal.aborted || this.runs.get(run.id) !== run || run.running) return;
    run.running = true;
    try {
      const event = await this.limit(async () => {
        const latenessMs = Math.max(0, performance.now() - run.planned);
        const result = await run.checker.check(run.target, {
          signal: this.stopper.signal,
          timeoutMs: run.timing.timeoutMs,
        });
        return { result, latenessMs };
      });
      if (this.stopper.signal.aborted || this.runs.get(run.id) !== run) return;
      const next = observe(run.state, event.result.healthy, run.policy);
      run.state = next.state;
      this.options.onResult({
        id: run.id,
        subscribers: [...run.subscribers],
        checker: run.checker,
        target: run.target,
        result: event.result,
        state: next.state,
        transition: next.transition,
        latenessMs: Math.round(event.latenessMs),
      });
    } catch (error) {
      // A probe returns results; one that throws anyway counts as a failure, never stops checking.
      if (this.stopper.signal.aborted || this.runs.get(run.id) !== run) return;
      const next = observe(run.state, false, run.policy);
      run.state = next.state;
      this.options.onResult({
        id: run.id,
        subscribers: [...run.subscribers],
        checker: run.checker,
        target: run.target,
        result: {
          healthy: false,
          durationMs: 0,
          message: `${run.checker.description} -> ${hostPort(run.target)}: check failed: ${String(error)}`,
        },
        state: next.state,
        transition: next.transition,
        latenessMs: 0,
      });
    } finally {
      run.running = false;
      if (!this.stopper.signal.aborted && this.runs.get(run.id) === run) {
        this.schedule(
          run,
          jittered(nextInterval(run.state, run.timing), run.timing.jitter, this.random()),
        );
      }
    }
  }
}
