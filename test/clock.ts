// A manual Clock for tests: time moves only when the test says, timers fire in order, and the
// promise callbacks they start run before the next timer, so a sequence is exact on any machine.
// Wall time can be stepped apart from the monotonic time timers follow, as NTP steps it.
import type { Clock, Timer } from '../src/clock.js';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** Lets promise chains and setImmediate callbacks started by a timer run to their next await. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly timers: Pending[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  /** How far wall time has been stepped from the monotonic time (stepWall). */
  private wallOffset = 0;

  now(): number {
    return this.time + this.wallOffset;
  }

  monotonic(): number {
    return this.time;
  }

  /** Steps wall time only (an NTP correction): timers and monotonic() do not move. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const p: Pending = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(p);
    return { cancel: () => void (p.cancelled = true) };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((p) => !p.cancelled).length;
  }

  /** When the next timer fires (undefined: none). */
  next(): number | undefined {
    const live = this.timers.filter((p) => !p.cancelled);
    return live.length ? Math.min(...live.map((p) => p.at)) : undefined;
  }

  /**
   * Moves time forward by `ms` and fires nothing: the event loop was busy that long. Timers
   * that came due meanwhile fire late, at the next `advance`.
   */
  stall(ms: number): void {
    this.time += ms;
    this.busy += ms;
  }

  /** How long the loop has been busy in all: the sum of the stalls. */
  busy = 0;
  private shareFrom: { time: number; busy: number } | null = null;

  /** The share of the time busy (stalled) since the last call: a scheduler's `busyShare`. */
  busyShare(): number {
    const from = this.shareFrom ?? { time: this.time, busy: this.busy };
    const dt = this.time - from.time;
    const share = dt > 0 ? (this.busy - from.busy) / dt : 0;
    this.shareFrom = { time: this.time, busy: this.busy };
    return share;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const due = this.timers
        .filter((p) => !p.cancelled && p.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.time = Math.max(this.time, due.at);
      due.fn();
      await settle();
    }
    this.time = end;
    for (let i = this.timers.length - 1; i >= 0; i--) {
      if (this.timers[i]?.cancelled) this.timers.splice(i, 1);
    }
  }
}
