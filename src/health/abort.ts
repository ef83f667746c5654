// Waiting on a signal that many checks share (the scheduler's stop). An EventTarget walks its
// list of listeners on every addEventListener (looking for a duplicate) and on every remove:
// with thousands of checks in flight on one signal, each check paid a walk of the list, a tenth
// of a 10,000-target run's CPU. Here a signal gets one listener of its own, and the callbacks
// waiting on it are kept in a Set: adding and removing one costs the same however many wait.

const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once when `signal` aborts, unless `unwatchAbort` comes first. The caller looks at
 * `signal.aborted` first: a signal aborted already never calls `fn`.
 */
export function watchAbort(signal: AbortSignal, fn: () => void): void {
  let set = waiting.get(signal);
  if (!set) {
    const fresh = new Set<() => void>();
    set = fresh;
    waiting.set(signal, fresh);
    signal.addEventListener('abort', () => fanOut(signal, fresh), { once: true });
  }
  set.add(fn);
}

/** `fn` no longer waits on `signal` (a no-op if it never did, or was called already). */
export function unwatchAbort(signal: AbortSignal, fn: () => void): void {
  waiting.get(signal)?.delete(fn);
}

/** Callbacks waiting on `signal` now (for tests and stats). */
export function watchers(signal: AbortSignal): number {
  return waiting.get(signal)?.size ?? 0;
}

function fanOut(signal: AbortSignal, set: Set<() => void>): void {
  waiting.delete(signal);
  const fns = [...set];
  set.clear();
  // Every callback runs, as every listener would; the first error is raised after them all.
  let failed: { error: unknown } | undefined;
  for (const fn of fns) {
    try {
      fn();
    } catch (error) {
      failed ??= { error };
    }
  }
  if (failed) throw failed.error;
}
