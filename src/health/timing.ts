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
