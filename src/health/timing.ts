// When a check runs: the timing settings and their defaults. A leaf (it imports nothing of the
// project), so the config can fill in defaults without loading the scheduler.

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

/**
 * The timing of a check that several subscribers share: per field the strictest any of them
 * asks for (the shortest waits and timeout, the least jitter), so no subscriber is checked
 * less often or more leniently than it configured. The order does not matter. Pure.
 */
export function strictestTiming(timings: readonly CheckTiming[]): CheckTiming {
  if (timings.length === 0) throw new RangeError('strictestTiming needs at least one timing');
  const least = (field: keyof CheckTiming): number => Math.min(...timings.map((t) => t[field]));
  return {
    intervalMs: least('intervalMs'),
    fastIntervalMs: least('fastIntervalMs'),
    downIntervalMs: least('downIntervalMs'),
    timeoutMs: least('timeoutMs'),
    jitter: least('jitter'),
  };
}
