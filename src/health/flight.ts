// How many checks may be in flight at once when the servers' answers queue somewhere they
// share. The cap (admission.ts) reads only this loop's lag; a loop that keeps time while its
// checks wait on their servers lets them run up to the cap, and servers that share something (a
// host, a link, a backend their health pages call, the director's own CPU) then answer each check
// later the more are in flight, until healthy ones pass their timeout and are taken down. In the
// emulated VM at 1,000 HTTP targets served by one process on the director's two CPUs, 256 checks
// in flight made every answer take 0.5 to 0.6 s of its 1 s timeout; when that process got less
// CPU, 170 to 230 checks at a time timed out, each a healthy server taken down (bench:peers, one
// run in two). The answers' own time, against the least it has been lately, says when more checks
// in flight only make each one wait longer: then fewer go.

import { ADMISSION_PERIOD_MS, OWN_TURNS } from './admission.js';

/** A period's answers and the checks in flight, for `nextFlightLimit`. */
export interface FlightSample {
  /** Healthy results that ended in the period (a failure's time says nothing of queueing). */
  readonly answers: number;
  /**
   * Their median duration, ms: a queue they share delays them all, where a few slow servers
   * move a mean but not the median.
   */
  readonly medianMs: number;
  /** Their mean timeout, ms. */
  readonly timeoutMs: number;
  /** The loop's lag lately, ms: a check's end waits a turn of ours for each step. */
  readonly lagMs: number;
  /** The most checks in flight at once in the period (at a check's end). */
  readonly peak: number;
}

export interface FlightSettings {
  /** Never fewer (`check_concurrency_min`). */
  readonly min: number;
  /** Never more (the bound on checks in flight). */
  readonly max: number;
  /** `check_concurrency`: the slow start doubles up to it (the most the cap lets run at once). */
  readonly ramp: number;
}

/** Fewer answers say too little: a period lasts until this many have come, or QUIET_MS. */
export const MIN_ANSWERS = 8;

/**
 * A period with fewer answers ends after this long: checks that hang (black-holed servers, or
 * every server gone at once) show no queue, and a limit they fill grows.
 */
export const QUIET_MS = 1000;

/**
 * The answers' own time (their duration less our loop's part), ms: what the servers and the
 * way to them took. Pure.
 */
export function answerMs(s: FlightSample): number {
  return Math.max(0, s.medianMs - OWN_TURNS * s.lagMs);
}

/**
 * The limit for the next period, from its sample and the least median duration of late
 * (`baselineMs`, `FlightBaseline`: our loop's part included, so it is never below what a quiet
 * moment takes). Cut to three quarters of the most in flight when the answers took twice that
 * least and over a quarter of their timeout: they waited in a queue that more checks lengthen,
 * and a healthy server that answers past its timeout is taken down. Grown by an eighth (at least
 * one) when they took at most half again the least or an eighth of their timeout, and the limit
 * was what held the checks back (as many in flight, within an eighth): a limit far above what
 * was used would let a burst through before any answer shows the queue. Fewer than
 * MIN_ANSWERS (a quiet second): grown as well if the limit held checks back, unless those few
 * answers took as long as a queue would (too few to cut on). Kept otherwise. While `starting`
 * (no cut yet) it grows by doubling up to `ramp`: every check is due within the first interval,
 * and from `check_concurrency_min` an eighth at a time would keep them waiting for seconds where
 * no queue has shown. Pure.
 */
export function nextFlightLimit(
  limit: number,
  s: FlightSample,
  baselineMs: number,
  settings: FlightSettings,
  starting = false,
): number {
  const current = Math.min(settings.max, Math.max(settings.min, limit));
  const eighth = Math.max(1, current >> 3);
  const next =
    starting && current < settings.ramp ? Math.min(2 * current, settings.ramp) : current + eighth;
  const grown = s.peak >= current - eighth ? Math.min(settings.max, next) : current;
  const ms = answerMs(s);
  const queued = ms > 2 * baselineMs && ms > s.timeoutMs / 4;
  // Too few to cut on, but the few that came may show the queue (most timed out in it).
  if (s.answers < MIN_ANSWERS) return queued ? current : grown;
  if (queued) {
    const from = Math.min(current, Math.max(s.peak, settings.min));
    return Math.max(settings.min, Math.floor((from * 3) / 4));
  }
  return ms <= 1.5 * baselineMs || ms <= s.timeoutMs / 8 ? grown : current;
}

/** How long the least duration is remembered: a queue lasting longer becomes the baseline. */
export const BASELINE_MS = 30_000;
const BUCKET_MS = 5_000;

/**
 * The least median duration over the last BASELINE_MS (in buckets of 5 s): what a check takes with
 * no queue in front of it, learnt again as the servers change.
 */
export class FlightBaseline {
  private readonly buckets: { start: number; least: number }[] = [];

  add(now: number, ms: number): void {
    const last = this.buckets.at(-1);
    if (last && now - last.start < BUCKET_MS) last.least = Math.min(last.least, ms);
    else this.buckets.push({ start: now, least: ms });
    while (this.buckets.length > 0 && now - (this.buckets[0]?.start ?? now) >= BASELINE_MS)
      this.buckets.shift();
  }

  /** The least of late; Infinity before any. */
  least(): number {
    let least = Infinity;
    for (const b of this.buckets) least = Math.min(least, b.least);
    return least;
  }
}

/** How often the limit is decided at most: the admission's period. */
export const FLIGHT_PERIOD_MS = ADMISSION_PERIOD_MS;

/**
 * The shell: told each healthy answer's duration and timeout, and at each check's end the checks
 * in flight and the loop's lag, it decides once a period; the scheduler reads `current()`.
 */
export class FlightControl {
  private limit: number;
  /** The durations of the period's healthy answers (ms), kept for their median. */
  private readonly durations: number[] = [];
  private sumTimeoutMs = 0;
  private periodStart: number | undefined;
  private peak = 0;
  /** No cut before this: the checks queued before the last one end slow all the same. */
  private holdUntil = -Infinity;
  private readonly baseline = new FlightBaseline();
  /** Doubling, until the first cut or `ramp`: a slow start, as TCP's. */
  private starting = true;

  // At the minimum, not `check_concurrency`: at start-up every check is due within one
  // interval, and 256 let out before any answer could show a queue took about 200 healthy
  // servers past their timeout in the VM (1,000 HTTP targets); each failed its first check.
  constructor(private readonly settings: FlightSettings) {
    this.limit = settings.min;
  }

  current(): number {
    return this.limit;
  }

  /** A healthy answer that took `ms` of its `timeoutMs`. */
  answered(ms: number, timeoutMs: number): void {
    this.durations.push(ms);
    this.sumTimeoutMs += timeoutMs;
  }

  /**
   * At monotonic `now`, with `inFlight` checks in flight and the loop `lagMs` late. A period
   * lasts FLIGHT_PERIOD_MS and until MIN_ANSWERS answers have come (16 checks in flight on
   * servers that take 500 ms bring 3 in 100 ms), or QUIET_MS.
   */
  observe(now: number, inFlight: number, lagMs: number): void {
    this.peak = Math.max(this.peak, inFlight);
    if (this.periodStart === undefined) this.periodStart = now;
    const d = this.durations;
    const n = d.length;
    const elapsed = now - this.periodStart;
    if (elapsed < FLIGHT_PERIOD_MS || (n < MIN_ANSWERS && elapsed < QUIET_MS)) return;
    d.sort((x, y) => x - y);
    const sample: FlightSample = {
      answers: n,
      medianMs: d[n >> 1] ?? 0,
      timeoutMs: n > 0 ? this.sumTimeoutMs / n : 0,
      lagMs,
      peak: this.peak,
    };
    this.peak = inFlight;
    d.length = 0;
    this.sumTimeoutMs = 0;
    this.periodStart = now;
    const least = this.baseline.least();
    const next = nextFlightLimit(this.limit, sample, least, this.settings, this.starting);
    if (n >= MIN_ANSWERS) this.baseline.add(now, sample.medianMs);
    if (next === this.limit || (next < this.limit && now < this.holdUntil)) return;
    if (next < this.limit) this.holdUntil = now + sample.medianMs;
    if (next < this.limit || next >= this.settings.ramp) this.starting = false;
    this.limit = next;
  }
}
