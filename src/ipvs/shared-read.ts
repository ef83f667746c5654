// One table dump shared by the readers that ask within a moment of each other (/metrics,
// /status): a scraper every second plus status readers would otherwise queue full dumps back to
// back on the backend's netlink sockets. Only for readers that show the table; the reconcile loop reads
// the kernel itself on every tick (level-triggered: it must never act on a remembered table),
// and tells this one when it has written (`invalidate`), so a reader never sees the table from
// before a change the daemon has already logged.
import { systemClock, type Clock } from '../clock.js';

export interface SharedReadOptions {
  readonly clock?: Clock;
  /** A completed read serves callers for this long after it completed (default 1000). */
  readonly maxAgeMs?: number;
}

export class SharedRead<T> {
  private readonly clock: Clock;
  private readonly maxAgeMs: number;
  private inFlight: Promise<T> | null = null;
  private last: { readonly value: T; readonly at: number } | null = null;
  /** Bumped by `invalidate`: a read started before it is not kept for later callers. */
  private generation = 0;

  constructor(
    private readonly source: () => Promise<T>,
    options: SharedReadOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxAgeMs = options.maxAgeMs ?? 1000;
  }

  /**
   * The last result while it is fresh, else the read in flight, else a new read. Callers share
   * the value: treat it as read-only. A failed read is not kept; the next caller reads again.
   * Bound, so it can be handed on as a plain function.
   */
  readonly read = (): Promise<T> => {
    if (this.last) {
      const age = this.clock.monotonic() - this.last.at;
      // A clock stepped back (negative age) must not stretch a result's life.
      if (age >= 0 && age < this.maxAgeMs) return Promise.resolve(this.last.value);
    }
    if (this.inFlight) return this.inFlight;
    let source: Promise<T>;
    try {
      source = this.source();
    } catch (e) {
      return Promise.reject(e);
    }
    const generation = this.generation;
    const read = source
      .then((value) => {
        if (generation === this.generation) this.last = { value, at: this.clock.monotonic() };
        return value;
      })
      .finally(() => {
        if (this.inFlight === read) this.inFlight = null;
      });
    this.inFlight = read;
    return read;
  };

  /**
   * The table has changed: the next caller reads it again. Callers already waiting on a read
   * in flight get that read; it is not shared with anyone who asks after this.
   */
  readonly invalidate = (): void => {
    this.generation++;
    this.last = null;
    this.inFlight = null;
  };
}
