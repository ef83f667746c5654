// Waiting on a signal that many checks share (the scheduler's stop). An EventTarget walks its
// list of listeners on every addEventListener (looking for a duplicate) and on every remove:
// with thousands of checks in flight on one signal, each check paid a walk of the list, a tenth
// of a 10,000-target run's CPU. Here a signal gets one listener of its own, and the callbacks
// waiting on it are linked in a list through their watches: adding and removing one costs the
// same however many wait.
//
// A linked list, not a Set: a Set's table is copied as checks come and go, and a copy left in
// the old generation still points at the callbacks it held. A scavenge keeps whatever a dead old
// object points at, until the next mark-compact, so each copy kept its checks (the probe, the
// exchange, the connection) for seconds. At 3,000 HTTP checks a second that was 1.9 MiB a
// second of the old generation's growth. A watch taken out points at nothing.

/** One callback waiting on a signal, a link in the signal's list: what `unwatchAbort` takes out. */
export class AbortWatch {
  next: AbortWatch | undefined = undefined;
  prev: AbortWatch | undefined;

  constructor(
    public fn: (() => void) | undefined,
    public list: WatchList | undefined,
  ) {
    this.prev = list?.last;
  }
}

/** A signal's watches, first to last. */
interface WatchList {
  first: AbortWatch | undefined;
  last: AbortWatch | undefined;
  size: number;
}

const waiting = new WeakMap<AbortSignal, WatchList>();

/**
 * Calls `fn` once when `signal` aborts, unless `unwatchAbort` comes first. The caller looks at
 * `signal.aborted` first: a signal aborted already never calls `fn`.
 */
export function watchAbort(signal: AbortSignal, fn: () => void): AbortWatch {
  let list = waiting.get(signal);
  if (!list) {
    const fresh: WatchList = { first: undefined, last: undefined, size: 0 };
    list = fresh;
    waiting.set(signal, fresh);
    signal.addEventListener('abort', () => fanOut(signal, fresh), { once: true });
  }
  const watch = new AbortWatch(fn, list);
  if (list.last) list.last.next = watch;
  else list.first = watch;
  list.last = watch;
  list.size++;
  return watch;
}

/** `watch` no longer waits (a no-op if it was taken out or called already). */
export function unwatchAbort(watch: AbortWatch): void {
  const list = watch.list;
  if (!list) return;
  if (watch.prev) watch.prev.next = watch.next;
  else list.first = watch.next;
  if (watch.next) watch.next.prev = watch.prev;
  else list.last = watch.prev;
  list.size--;
  release(watch);
}

/** Callbacks waiting on `signal` now (for tests and stats). */
export function watchers(signal: AbortSignal): number {
  return waiting.get(signal)?.size ?? 0;
}

function release(watch: AbortWatch): void {
  watch.fn = undefined;
  watch.list = undefined;
  watch.prev = undefined;
  watch.next = undefined;
}

function fanOut(signal: AbortSignal, list: WatchList): void {
  waiting.delete(signal);
  const fns: (() => void)[] = [];
  for (let watch = list.first; watch;) {
    const next = watch.next;
    if (watch.fn) fns.push(watch.fn);
    release(watch);
    watch = next;
  }
  list.first = undefined;
  list.last = undefined;
  list.size = 0;
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
