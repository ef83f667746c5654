// Time as a seam: the scheduler and the loop read the time and set timers only through a Clock,
// so tests drive exact sequences with a manual clock instead of racing the wall clock.

export interface Timer {
  /** Cancels the timer; harmless after it fired. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (wall time: logged, compared with other processes' times). */
  now(): number;
  /** Calls `fn` once, `ms` from now. The timer does not keep the process alive when `unref`. */
  setTimeout(fn: () => void, ms: number, options?: { unref?: boolean }): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, options) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (options?.unref) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
