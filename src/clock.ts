// Time as a seam: the scheduler and the loop read the time and set timers only through a Clock,
// so tests drive exact sequences with a manual clock instead of racing the wall clock.

export interface Timer {
  /** Cancels the timer; harmless after it fired. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (wall time: logged, compared with other processes' times). */
  now(): number;
  /**
   * Milliseconds on a clock that never steps (an NTP correction moves `now()`, not this): for
   * every duration the daemon measures or waits out. Its origin means nothing.
   */
  monotonic(): number;
  /** Calls `fn` once, `ms` from now. The timer does not keep the process alive when `unref`. */
  setTimeout(fn: () => void, ms: number, options?: { unref?: boolean }): Timer;
}

/** Node keeps a delay in a signed 32-bit count of ms: a longer one would fire after 1 ms. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms, options) {
    // Clamped, not wrapped: a timer past the limit fires late (after 24.8 days), never at once.
    const t = setTimeout(fn, Math.min(TIMER_MAX_MS, Math.max(0, ms)));
    if (options?.unref) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
