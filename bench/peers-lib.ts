// The pure parts of `npm run bench:peers` (bench/peers.ts): reading /proc text, the guard that
// refuses a row whose counts disagree, and the tables. Table-tested in test/bench/peers-lib.test.ts.

/** USER_HZ on Linux: the unit of /proc/PID/stat's times. */
export const USER_HZ = 100;

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly ppid: number;
  /** utime + stime + cutime + cstime, in seconds: the process and its reaped children. */
  readonly cpu: number;
  /** Of `cpu`, the time in the kernel (stime + cstime): the syscalls, loopback's handshakes. */
  readonly system: number;
}

/**
 * One /proc/PID/stat line. The command name may hold spaces and parentheses, so the fields are
 * counted from the last ')'.
 */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/PID/stat line: ${text.slice(0, 60)}`);
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ');
  // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  const sum = (fields: number[]): number => fields.reduce((s, i) => s + Number(f[i]), 0);
  const ticks = sum([11, 12, 13, 14]);
  if (!Number.isFinite(ticks)) throw new Error(`bad times in /proc/PID/stat: ${text.slice(0, 60)}`);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: Number(f[1]),
    cpu: ticks / USER_HZ,
    system: sum([12, 14]) / USER_HZ,
  };
}

/**
 * One counter of /proc/net/snmp or /proc/net/netstat, where each section is a line of names
 * and a line of values, both led by `Section:` (Tcp PassiveOpens, TcpExt ListenDrops).
 */
export function procCounter(text: string, section: string, name: string): number {
  const [names, values] = text
    .split('\n')
    .filter((l) => l.startsWith(`${section}:`))
    .map((l) => l.trim().split(/\s+/));
  const i = names?.indexOf(name) ?? -1;
  const n = i > 0 ? Number(values?.[i]) : NaN;
  if (!Number.isInteger(n))
    throw new Error(`no ${section} ${name} in /proc/net: ${text.slice(0, 60)}`);
  return n;
}

/**
 * Tcp PassiveOpens of /proc/net/snmp: connections the kernel completed for this network
 * namespace's listeners, whether or not the server accepted them (a check that resets its
 * connection at once can go before the server's accept(), and the server never sees it).
 */
export const parsePassiveOpens = (snmp: string): number => procCounter(snmp, 'Tcp', 'PassiveOpens');

/** VmRSS of /proc/PID/status in KiB (0 when absent: a kernel thread or a zombie). */
export function parseRssKiB(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) : 0;
}

/** The pids of `root` and all its descendants among `all`. */
export function tree(all: readonly ProcStat[], root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  const todo = [root];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    if (!all.some((p) => p.pid === pid)) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface Counts {
  /** Checks that landed on the target servers in the window. */
  readonly atTargets: number;
  /** The window as the target server's own clock saw it, in seconds. */
  readonly windowS: number;
  /** The peer's own count of results per second over (about) the same window, when it keeps one. */
  readonly ownRate?: number | undefined;
  /**
   * Of those, the healthy ones: each one landed on a target. A failed one (a connect that timed
   * out on an overloaded machine, a black-holed server) may never have, so the targets' count
   * lies between the two. Without it, every result is taken to have landed.
   */
  readonly ownHealthyRate?: number | undefined;
  /**
   * The targets' rate over the own counter's window (their counts taken at its reads), when
   * known: compared with the own counter in place of the target's own window's rate, so a
   * stretch of slower checks (a scrape of the peer's own counter) falls in both or neither.
   */
  readonly targetsRateOwn?: number | undefined;
  /** Targets and their interval: the schedule's bound. */
  readonly targets: number;
  readonly intervalS: number;
  /** The schedule's jitter (a check may come this fraction early). */
  readonly jitter: number;
}

/** Counts disagreeing by more than this refuse the row. */
export const TOLERANCE = 0.05;
/**
 * At least this share of a peer's own results must be healthy: every target answers (a
 * black-holed row's failures are a tenth), and an overloaded peer's late checks that time out
 * are a part of its figures, not most of them.
 */
export const MOSTLY_HEALTHY = 0.5;

/**
 * Why a row must not be printed, or null. Three guards: the checks counted at the targets per
 * second (the server's own window) against the peer's own counter per second: no more than
 * its results, no fewer than its healthy results, within TOLERANCE; and the rate against what
 * the schedule can produce, N / interval (a check early by at most the jitter): 2,404/s from
 * 1,000 targets at 1 s was the old bench dividing by a window it assumed, not one it measured;
 * and, by the peer's own counter, at least MOSTLY_HEALTHY of its checks healthy.
 */
export function refusal(c: Counts): string | null {
  if (!(c.windowS > 0)) return `REFUSED: counts disagree: no window measured (${c.windowS} s)`;
  const rate = c.atTargets / c.windowS;
  const bound = (c.targets / c.intervalS) * (1 + c.jitter) * (1 + TOLERANCE);
  if (rate > bound)
    return `REFUSED: counts disagree: ${rate.toFixed(0)}/s at the targets, more than the schedule's ${bound.toFixed(0)}/s (${c.targets} targets every ${c.intervalS} s, jitter ${c.jitter}, +${TOLERANCE * 100} %)`;
  if (c.ownRate !== undefined) {
    const healthy = c.ownHealthyRate ?? c.ownRate;
    // A peer whose checks mostly fail (refused, reset, a target it cannot reach) would be
    // measured on failures, which cost another amount than checks that pass.
    if (healthy < c.ownRate * MOSTLY_HEALTHY)
      return `REFUSED: most checks failed: ${healthy.toFixed(1)}/s of ${c.ownRate.toFixed(1)}/s healthy by the peer's own counter (its log says why)`;
    const own =
      c.ownHealthyRate === undefined
        ? `${c.ownRate.toFixed(1)}/s by the peer's own counter`
        : `the peer's own counter (${c.ownRate.toFixed(1)}/s, ${healthy.toFixed(1)}/s healthy)`;
    const theirs = c.targetsRateOwn ?? rate;
    const there = `${theirs.toFixed(1)}/s at the targets${c.targetsRateOwn === undefined ? '' : " over the own counter's window"}`;
    if (theirs > c.ownRate * (1 + TOLERANCE))
      return `REFUSED: counts disagree: ${there}, more than ${own} made (+${TOLERANCE * 100} %)`;
    if (theirs < healthy * (1 - TOLERANCE))
      return `REFUSED: counts disagree: ${there}, fewer than ${c.ownHealthyRate === undefined ? own : `${own} found healthy`} (-${TOLERANCE * 100} %)`;
  }
  return null;
}

/** A count of checks at the targets, at its time (ms). */
export interface Mark {
  readonly n: number;
  readonly at: number;
}

/**
 * The count at `t`, on the line through the first and last marks (undefined without one): the
 * targets counted as a peer's own counter was read, before and after it.
 */
export function countAt(marks: readonly Mark[], t: number): number | undefined {
  const first = marks[0];
  const last = marks.at(-1);
  if (!first || !last) return undefined;
  if (last.at <= first.at) return first.n;
  return first.n + ((last.n - first.n) * (t - first.at)) / (last.at - first.at);
}

/** ipvs-warden's own count of check results, one series a check and outcome. */
export const CHECK_RESULTS = 'ipvs_warden_check_results_total';

/** What the bench reads from ipvs-warden's /metrics: its own count, and why checks wait. */
export interface WardenScrape {
  /** ipvs_warden_check_results_total summed over every series, and over the healthy ones. */
  readonly all: number;
  readonly healthy: number;
  /** ipvs_warden_check_concurrency_limit and ipvs_warden_checks_waiting now (NaN if absent). */
  readonly cap: number;
  readonly waiting: number;
  /** The duration and lateness histograms' sums (s) and counts, over every kind. */
  readonly durationS: number;
  readonly durations: number;
  readonly latenessS: number;
  readonly latenesses: number;
  /** The lateness histogram's cumulative buckets over every kind: upper bound (s) to count. */
  readonly lateBuckets: ReadonlyMap<number, number>;
  /** ipvs_warden_server_transitions_total{to="down"}, summed: servers taken down so far. */
  readonly downs: number;
}

/** A /metrics page (Prometheus text) to the figures above; comments and other series skipped. */
export function parseWardenMetrics(text: string): WardenScrape {
  let all = 0;
  let healthy = 0;
  let cap = NaN;
  let waiting = NaN;
  let downs = 0;
  const sums = new Map<string, number>();
  const lateBuckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('ipvs_warden_')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const name = line.slice(0, line.search(/[{ ]/));
    if (name === CHECK_RESULTS) {
      all += value;
      if (line.includes('outcome="healthy"')) healthy += value;
    } else if (name === 'ipvs_warden_check_concurrency_limit') cap = value;
    else if (name === 'ipvs_warden_checks_waiting') waiting = value;
    else if (name === 'ipvs_warden_server_transitions_total' && line.includes('to="down"'))
      downs += value;
    else if (/^ipvs_warden_check_(duration|lateness)_seconds_(sum|count)$/.test(name))
      sums.set(name, (sums.get(name) ?? 0) + value);
    else if (name === 'ipvs_warden_check_lateness_seconds_bucket') {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      const bound = le === '+Inf' ? Infinity : Number(le);
      if (le !== undefined && !Number.isNaN(bound))
        lateBuckets.set(bound, (lateBuckets.get(bound) ?? 0) + value);
    }
  }
  const sum = (name: string): number => sums.get(`ipvs_warden_check_${name}`) ?? 0;
  return {
    all,
    healthy,
    cap,
    waiting,
    durationS: sum('duration_seconds_sum'),
    durations: sum('duration_seconds_count'),
    latenessS: sum('lateness_seconds_sum'),
    latenesses: sum('lateness_seconds_count'),
    lateBuckets,
    downs,
  };
}

/**
 * The lateness of the checks between two scrapes, from the histogram's buckets: the share that
 * started within `withinS`, and the least bucket bound that holds the share `q` of them
 * (Infinity: only the +Inf bucket does). Undefined when no check started in between or the
 * page had no buckets (a daemon without the histogram).
 */
export function latenessBetween(
  a: WardenScrape,
  b: WardenScrape,
  withinS: number,
  q: number,
): { within: number; bound: number } | undefined {
  const delta = (le: number): number => (b.lateBuckets.get(le) ?? 0) - (a.lateBuckets.get(le) ?? 0);
  const total = delta(Infinity);
  if (!(total > 0)) return undefined;
  const bounds = [...b.lateBuckets.keys()].sort((x, y) => x - y);
  const bound = bounds.find((le) => delta(le) >= q * total) ?? Infinity;
  return { within: delta(withinS) / total, bound };
}

/** "99.5 % within 50 ms, p99 at most 50 ms" between two scrapes ('' without buckets). */
export function latenessText(a: WardenScrape, b: WardenScrape): string {
  const late = latenessBetween(a, b, 0.05, 0.99);
  if (!late) return '';
  const top = Math.max(...[...b.lateBuckets.keys()].filter(Number.isFinite)) * 1000;
  const p99 = late.bound === Infinity ? `over ${top} ms` : `at most ${late.bound * 1000} ms`;
  return `${(late.within * 100).toFixed(1)} % within 50 ms, p99 ${p99}`;
}

/**
 * Why ipvs-warden's checks went as they did over a window (two scrapes): the cap and the
 * checks waiting at its end, the mean duration and lateness of the checks in between, and the
 * servers taken down in it (none answer wrong in the window: any is a healthy server flapped
 * out, by a check that timed out).
 */
export function wardenWindow(a: WardenScrape, b: WardenScrape): string {
  const mean = (s: number, n: number): string =>
    n > 0 ? `${((s / n) * 1000).toFixed(1)} ms` : '-';
  const late = latenessText(a, b);
  const tail = late ? `, ${late}` : '';
  return `cap ${b.cap}, ${b.waiting} waiting; check duration mean ${mean(b.durationS - a.durationS, b.durations - a.durations)}, lateness mean ${mean(b.latenessS - a.latenessS, b.latenesses - a.latenesses)}${tail}; ${b.downs - a.downs} servers taken down`;
}

export const median = (xs: readonly number[]): number =>
  xs.length === 0 ? NaN : ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN);

/** One peer's figures for one (kind, size). */
export interface Figures {
  readonly peer: string;
  readonly kind: 'tcp' | 'http';
  readonly targets: number;
  /** Of `targets`, how many were black-holed (connects hang); 0 or absent: none. */
  readonly blackholed?: number;
  readonly checksPerS: number;
  /** checksPerS over the schedule's rate N / interval. */
  readonly share: number;
  readonly cpuMsPerCheck: number;
  readonly rssMiB: number;
  /** Detection latencies in ms (victims not seen gone are left out, and counted in `missed`). */
  readonly detectMs: readonly number[];
  readonly missed: number;
  /**
   * Healthy servers the peer took out of the table in the window (every target answered then),
   * from its own log (`removedServer`); absent where it keeps no table (the floors).
   */
  readonly takenDown?: number;
  /**
   * Cores that host processes other than the VM used during the window (bench/host-load.sh),
   * when known. Above HOST_BUSY_CORES the row's CPU figure is flagged.
   */
  readonly hostOthers?: number | null;
  /** A refusal or a reason the peer could not run; the figures are then not shown. */
  readonly refused?: string | undefined;
  readonly note?: string;
  /**
   * With BENCH_ROUNDS above 1: the row's figures round by round (this one holds their
   * medians, from `combineRounds`). The same code in the emulated VM swings threefold between
   * runs, so one round cannot judge a change.
   */
  readonly rounds?: readonly Figures[];
}

/**
 * One row from its rounds: the median of each figure over the rounds that were not refused,
 * the detection latencies of all of them; refused only when every round was (with the first
 * round's reason and how many were).
 */
export function combineRounds(rounds: readonly Figures[]): Figures {
  const first = rounds[0];
  if (!first) throw new Error('combineRounds: no rounds');
  if (rounds.length === 1) return first;
  const ok = rounds.filter((f) => !f.refused);
  const refusedN = rounds.length - ok.length;
  if (ok.length === 0)
    return { ...first, refused: `${first.refused ?? ''} (all ${rounds.length} rounds)`, rounds };
  const of = (pick: (f: Figures) => number): number => median(ok.map(pick));
  const others = ok.map((f) => f.hostOthers).filter((x): x is number => typeof x === 'number');
  return {
    ...first,
    checksPerS: of((f) => f.checksPerS),
    share: of((f) => f.share),
    cpuMsPerCheck: of((f) => f.cpuMsPerCheck),
    rssMiB: of((f) => f.rssMiB),
    ...(first.takenDown === undefined ? {} : { takenDown: of((f) => f.takenDown ?? NaN) }),
    detectMs: ok.flatMap((f) => f.detectMs),
    missed: ok.reduce((s, f) => s + f.missed, 0),
    // The busiest window flags the median: it may be the round the median came from.
    hostOthers: others.length > 0 ? Math.max(...others) : null,
    refused: undefined,
    note: `median of ${ok.length} rounds${refusedN > 0 ? ` (${refusedN} refused)` : ''}`,
    rounds,
  };
}

/**
 * Where the victims stand among the `answering` servers of a pool: victim k at position
 * floor(k * answering / victims), so they are spread evenly through the list a peer is given
 * (position -> k); with more victims than servers, every server is one. Pure.
 */
export function victimPositions(answering: number, victims: number): Map<number, number> {
  const at = new Map<number, number>();
  const m = Math.min(victims, answering);
  for (let k = 0; k < m; k++) at.set(Math.floor((k * answering) / m), k);
  return at;
}

/**
 * When each victim stops answering, in ms from the start of detection: victim k at a random
 * moment of slot order[k] of `victims` equal slots of one interval, the order a random
 * permutation. Stopped together, the victims met the peer's checks at one moment, and where a
 * peer's checks fall in the interval then decided its median: ten of keepalived's left the table
 * within 354 ms of each other in one run, and its median at 200 TCP targets was 257 ms there and
 * 1,058 in another. One at a time, the victims meet every part of the interval whatever the
 * peer's phases, so the median over them is about half an interval plus what the peer itself
 * takes. `random` in [0, 1). Pure.
 */
export function victimStops(victims: number, intervalMs: number, random: () => number): number[] {
  const order = Array.from({ length: victims }, (_, k) => k);
  // Fisher-Yates.
  for (let i = victims - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [order[i], order[j]] = [order[j] ?? j, order[i] ?? i];
  }
  const slot = intervalMs / Math.max(1, victims);
  // Short of the slot's end, which rounding could carry into the next slot.
  return order.map((s) => (s + Math.min(Math.max(random(), 0), 0.999)) * slot);
}

/** A removal a peer recorded: which server left the table, and when (wall clock, ms). */
export interface Removal {
  readonly server: string;
  readonly ms: number;
}

/**
 * The removal one log line records, if any: for ipvs-warden (`ours`) its JSON
 * `reconcile.applied` for a server down; for keepalived the shim's "MS SERVER". A torn or
 * foreign line is none. Pure.
 */
export function removalOf(line: string, ours: boolean): Removal | null {
  if (!ours) {
    const [ms, server] = line.split(' ');
    return server && ms && Number.isFinite(Number(ms)) ? { server, ms: Number(ms) } : null;
  }
  if (!line.includes('"reconcile.applied"') || !line.includes('"server down')) return null;
  try {
    const e = JSON.parse(line) as { time?: unknown; target?: unknown };
    const server = /-> (\S+)$/.exec(typeof e.target === 'string' ? e.target : '')?.[1];
    const ms = Date.parse(typeof e.time === 'string' ? e.time : '');
    return server && Number.isFinite(ms) ? { server, ms } : null;
  } catch {
    return null; // a line cut short
  }
}

/**
 * The real server (address:port) a peer's log line says it took out of the table, if any:
 * ipvs-warden's `reconcile.applied` for a server down (`removalOf`), keepalived's "Removing
 * service [A]:tcp:P from VS ...", ldirectord's "Deleted real server: A:P (...)". Pure.
 */
export function removedServer(line: string, peer: string): string | null {
  if (peer === 'ipvs-warden') return removalOf(line, true)?.server ?? null;
  if (peer === 'keepalived') {
    const m = /Removing service \[([^\]]+)\]:(?:tcp|udp):(\d+) from VS/.exec(line);
    return m ? `${m[1]}:${m[2]}` : null;
  }
  if (peer === 'ldirectord') return /Deleted real server: (\S+) /.exec(line)?.[1] ?? null;
  return null;
}

/**
 * The complete lines of `carry + chunk`, and the unfinished end kept for the next read, so a
 * log read as it grows never yields half a line. Pure.
 */
export function splitLines(carry: string, chunk: string): { lines: string[]; carry: string } {
  const lines = (carry + chunk).split('\n');
  return { carry: lines.pop() ?? '', lines };
}

/**
 * Other host processes using more than this many cores during a window make its CPU figure
 * suspect: the emulated guest has no steal time, so it charges whatever process it was running
 * for the time the host gave to others, and a busy peer is charged most.
 */
export const HOST_BUSY_CORES = 0.25;

/** One sample of the host's load: wall ms, busy jiffies of all CPUs, jiffies of the VMs. */
export interface HostSample {
  readonly atMs: number;
  readonly busy: number;
  readonly vm: number;
}

/** The lines bench/host-load.sh writes ("ms busy vm"); a torn or foreign line is skipped. */
export function parseHostLoad(text: string): HostSample[] {
  const out: HostSample[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length !== 3 || !f.every(Number.isFinite)) continue;
    out.push({ atMs: f[0] ?? 0, busy: f[1] ?? 0, vm: f[2] ?? 0 });
  }
  return out;
}

/**
 * Cores the host's other processes (busy minus the VMs) used between two samples (the last one
 * written when a window began, and when it ended: taken so, not by time, because the guest's
 * clock need not agree with the host's); null when either is missing or they are the same.
 */
export function hostOthers(a: HostSample | undefined, b: HostSample | undefined): number | null {
  if (!a || !b || b.atMs <= a.atMs) return null;
  const jiffies = b.busy - a.busy - (b.vm - a.vm);
  return Math.max(0, jiffies / USER_HZ / ((b.atMs - a.atMs) / 1000));
}

const busyHost = (f: Pick<Figures, 'hostOthers'>): boolean =>
  f.hostOthers !== undefined && f.hostOthers !== null && f.hostOthers > HOST_BUSY_CORES;

/** The CPU figure, flagged when other host processes were busy during its window. */
export function cpuCell(f: Pick<Figures, 'cpuMsPerCheck' | 'hostOthers'>): string {
  const busy = busyHost(f) ? ` (host busy: ${fmt(f.hostOthers ?? NaN, 2)} cores)` : '';
  return `${fmt(f.cpuMsPerCheck, 3)}${busy}`;
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** A markdown table from a header and rows (cells padded, so it reads as text too). */
export function markdown(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, 3, ...rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function detectCell(f: Figures): string {
  if (f.detectMs.length === 0) return f.missed > 0 ? `none of ${f.missed} seen` : '-';
  const ms = [...f.detectMs].sort((a, b) => a - b);
  const miss = f.missed > 0 ? ` (${f.missed} not seen)` : '';
  return `${fmt(ms[0] ?? NaN, 0)}/${fmt(median(ms), 0)}/${fmt(ms.at(-1) ?? NaN, 0)}${miss}`;
}

/** "1000", or "1000 (100 black-holed)". */
export const targetsCell = (f: Pick<Figures, 'targets' | 'blackholed'>): string =>
  f.blackholed ? `${f.targets} (${f.blackholed} black-holed)` : String(f.targets);

/** A row of several rounds: each round's figure after the median, " (a, b, c)"; a refused one "x". */
function spread(f: Figures, cell: (r: Figures) => string): string {
  if (!f.rounds || f.rounds.length < 2) return '';
  return ` (${f.rounds.map((r) => (r.refused ? 'x' : cell(r))).join(', ')})`;
}

/** The figures as measured, one line per peer and row (the median when it ran in rounds). */
export function figuresTable(all: readonly Figures[]): string {
  return markdown(
    [
      'kind',
      'targets',
      'peer',
      'checks/s',
      'share',
      'CPU-ms/check',
      'RSS MiB',
      'taken down',
      'detect ms min/med/max',
    ],
    all.map((f) =>
      f.refused
        ? [f.kind, targetsCell(f), f.peer, f.refused, '', '', '', '', '']
        : [
            f.kind,
            targetsCell(f),
            f.peer,
            fmt(f.checksPerS, 0) + spread(f, (r) => fmt(r.checksPerS, 0)),
            `${fmt(f.share * 100, 0)} %`,
            cpuCell(f) + spread(f, (r) => fmt(r.cpuMsPerCheck, 3)),
            fmt(f.rssMiB, 1) + spread(f, (r) => fmt(r.rssMiB, 1)),
            f.takenDown === undefined
              ? '-'
              : fmt(f.takenDown, 0) + spread(f, (r) => fmt(r.takenDown ?? NaN, 0)),
            detectCell(f),
          ],
    ),
  );
}

const ratio = (a: number, b: number, digits = 2): string =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? fmt(a / b, digits) : '-';

/**
 * The ratios, ours / peer, one line per (kind, size, peer). A refused or missing side prints
 * the reason instead of numbers. A row run in rounds gives the median of the rounds' ratios.
 */
export function ratioTable(all: readonly Figures[], ours: string): string {
  const rows: string[][] = [];
  for (const f of all) {
    if (f.peer === ours) continue;
    const o = all.find(
      (x) =>
        x.peer === ours &&
        x.kind === f.kind &&
        x.targets === f.targets &&
        (x.blackholed ?? 0) === (f.blackholed ?? 0),
    );
    const label = [f.kind, targetsCell(f), `${ours} / ${f.peer}`];
    const why = f.refused ?? o?.refused ?? (o ? undefined : `${ours} not run`);
    if (why || !o) {
      rows.push([...label, why ?? '', '', '', '', '']);
      continue;
    }
    // In rounds, each round's ratio is of two peers run one after the other, so the median of
    // those pairs follows the VM's drift less than a ratio of the two medians would.
    const paired = (pick: (x: Figures) => number): number | undefined => {
      const a = o.rounds;
      const b = f.rounds;
      if (!a || !b || a.length !== b.length || a.length < 2) return undefined;
      const rs: number[] = [];
      for (const [i, x] of a.entries()) {
        const y = b[i];
        if (y && !x.refused && !y.refused && pick(y) !== 0) rs.push(pick(x) / pick(y));
      }
      return rs.length > 0 ? median(rs) : undefined;
    };
    const r = (pick: (x: Figures) => number): string => {
      const p = paired(pick);
      return p === undefined ? ratio(pick(o), pick(f)) : fmt(p, 2);
    };
    rows.push([
      ...label,
      r((x) => x.checksPerS),
      r((x) => x.share),
      r((x) => x.cpuMsPerCheck) + (busyHost(o) || busyHost(f) ? ' (host busy)' : ''),
      r((x) => x.rssMiB),
      ratio(median(o.detectMs), median(f.detectMs)),
    ]);
  }
  return markdown(
    ['kind', 'targets', 'ratio', 'checks/s', 'share', 'CPU-ms/check', 'RSS', 'detect (median)'],
    rows,
  );
}
