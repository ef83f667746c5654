// Benchmark of the probe scheduler: 1,000 and 10,000 targets checked every second, TCP and
// HTTP, against one server process on loopback (each target its own 127.x.y.z address, one
// listening socket). Reports checks/s sustained, CPU-ms per check, event-loop lag, lateness and
// memory. `npm run bench:probes` (host; no VM needed). BENCH_SECONDS, BENCH_SIZES, BENCH_KINDS
// (tcp,http) to change; BENCH_TARGET=nginx answers from nginx (Debian's) instead of a
// node server, which itself takes about a core at 10,000 requests a second on two.
// BENCH_WORKERS=0,2 runs each scheduler row once per count of probe worker threads
// (daemon.check_workers; 0: on the main thread), side by side; CPU is the whole process's.
// BENCH_ROUNDS=3 runs the whole table three times over. BENCH_MIN=16,1024 runs each row per floor
// of the adaptive cap (daemon.check_concurrency_min; 1024, the cap itself: fixed).
// BENCH_SLOT=0,20,auto runs each per grid the checks start on (the scheduler's slotMs, in ms;
// 0: each at its own time; auto: the default, from the rate).
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { HttpChecker } from '../checks/http.js';
import { TcpChecker } from '../checks/tcp.js';
import { CATALOG } from '../checks/index.js';
import type { Checker } from '../src/health/checker.js';
import { DEFAULT_MIN_CONCURRENCY } from '../src/health/admission.js';
import { ProbePool } from '../src/health/pool.js';
import { normalOptions } from '../src/health/schema.js';
import { Scheduler } from '../src/health/scheduler.js';
import type { CheckTiming } from '../src/health/timing.js';
import { heapModes, setV8Flags } from '../src/v8-flags.js';
import { parseStat } from './peers-lib.js';
import { procReader } from './procfile.js';
import { address, startTarget, type Target } from './targets.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
/** BENCH_FLOOR=0 leaves out the bare-loop rows. */
const FLOOR = process.env.BENCH_FLOOR !== '0';
type Kind = 'tcp' | 'http';
const KINDS = (process.env.BENCH_KINDS ?? 'tcp,http').split(',') as Kind[];
const TARGET = process.env.BENCH_TARGET === 'nginx' ? 'nginx' : 'node';
const WORKERS = (process.env.BENCH_WORKERS ?? '0').split(',').map(Number);
/** The whole table this many times over: on a shared host, compare rows of one round. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
/** The general cap (the daemon's default is 256), and BENCH_MIN=16,1024: rows per adaptive floor. */
const CONCURRENCY = 1024;
const MINS = (process.env.BENCH_MIN ?? String(DEFAULT_MIN_CONCURRENCY)).split(',').map(Number);
/** The scheduler's grid per row: ms, or `auto` (its default, `slotFor` the rate). */
const SLOTS = (process.env.BENCH_SLOT ?? 'auto')
  .split(',')
  .map((x) => (x === 'auto' ? undefined : Number(x)));
const timing: CheckTiming = {
  intervalMs: 1000,
  fastIntervalMs: 1000,
  downIntervalMs: 1000,
  timeoutMs: 1000,
  jitter: 0.1,
};

function checker(kind: Kind): Checker {
  if (kind === 'tcp') return new TcpChecker();
  return new HttpChecker({ path: '/healthz' });
}

/** The same check with its probes on `pool`'s workers, made there from the catalog as configured. */
function pooled(kind: Kind, pool: ProbePool): Checker {
  const declaration = CATALOG.get(kind);
  if (!declaration) throw new Error(kind);
  const given = kind === 'tcp' ? {} : { path: '/healthz' };
  return pool.wrap(
    { type: kind, options: normalOptions(declaration.options, given as never) },
    checker(kind),
  );
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const POLICY = { rise: 2, fall: 3, initial: 'up' as const };
const KILLED = 100;
/** The formula in the README: interval + (fall - 1) x fast interval, stretched by jitter, + fall checks. */
const FORMULA_MS =
  (timing.intervalMs + (POLICY.fall - 1) * timing.fastIntervalMs) * (1 + timing.jitter);

async function measure(
  kind: Kind,
  n: number,
  server: Target,
  workers: number,
  min: number,
  slotMs: number | undefined,
): Promise<string> {
  const port = server.port;
  const pool =
    workers > 0
      ? new ProbePool({
          threads: workers,
          worker: new URL('../src/probe-worker.js', import.meta.url),
        })
      : null;
  const check = pool ? pooled(kind, pool) : checker(kind);
  let checks = 0;
  let failures = 0;
  let measuring = false;
  const lateness: number[] = [];
  let killedAt = 0;
  /** The targets made to fail: only their going down is a detection (an overloaded run times others out). */
  const killed = new Set<string>();
  const detected = new Map<string, number>();
  const failuresSeen = new Map<string, number>();
  const scheduler = new Scheduler({
    concurrency: CONCURRENCY,
    minConcurrency: min,
    ...(slotMs === undefined ? {} : { slotMs }),
    onResult: (e) => {
      if (killedAt && e.transition === 'down' && killed.has(e.target.address)) {
        detected.set(e.target.address, performance.now() - killedAt);
      }
      if (!measuring) return;
      checks++;
      lateness.push(e.latenessMs);
      if (!e.result.healthy) {
        failures++;
        const why = e.result.message.replace(/^.*?: /, '');
        failuresSeen.set(why, (failuresSeen.get(why) ?? 0) + 1);
      }
    },
  });
  for (let i = 0; i < n; i++) {
    scheduler.add(`s${i}`, check, { family: 4, address: address(i), port }, timing, POLICY);
  }
  await new Promise((r) => setTimeout(r, 3000)); // every target checked at least twice first
  const { wall, cpuMs, sysMs, mainMs, lag, mem } = await window((on) => (measuring = on));
  let detection = '';
  if (kind !== 'tcp') {
    // Detection under the same load: 100 targets start failing at once.
    const dead = Array.from({ length: KILLED }, (_, i) => address(i * Math.floor(n / KILLED)));
    for (const a of dead) killed.add(a);
    await server.setDead(dead);
    killedAt = performance.now();
    const deadline = killedAt + 30_000;
    while (detected.size < KILLED && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const times = [...detected.values()];
    const missed = KILLED - detected.size;
    detection = `  detection of ${KILLED}: p50 ${pct(times, 50).toFixed(0)} max ${Math.max(...times).toFixed(0)} ms (formula ${FORMULA_MS.toFixed(0)} ms + 3 checks)${missed ? `, ${missed} not detected in 30 s` : ''}`;
    await server.setDead([]);
  }
  await scheduler.stop();
  await pool?.close();
  const worst = [...failuresSeen.entries()].sort((a, b) => b[1] - a[1])[0];
  const cap = MINS.length > 1 ? (min >= CONCURRENCY ? ' fixed' : ` min ${min}`) : '';
  const slot = SLOTS.length > 1 ? ` slot ${slotMs ?? 'auto'}` : '';
  const name = `${kind}${workers > 0 ? ` ${workers} workers` : ''}${cap}${slot}`;
  return (
    row(name, n, checks, wall, cpuMs, sysMs, mainMs, lag, lateness, mem, failures, worst) +
    detection
  );
}

/**
 * The floor: the same checker's check() for the same targets at the same interval, from a bare
 * timer per target (no scheduler, no jitter, no rise/fall, results only counted), so the rows
 * above it show what the scheduler and its bookkeeping cost over the probe itself.
 */
async function measureFloor(kind: Kind, n: number, port: number): Promise<string> {
  const check = checker(kind);
  const stop = new AbortController();
  // One signal for every check, as the scheduler gives them (its stop).
  const context = { signal: stop.signal, timeoutMs: timing.timeoutMs };
  let checks = 0;
  let failures = 0;
  let measuring = false;
  const lateness: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const target = { family: 4 as const, address: address(i), port };
    let due = start + (i / n) * timing.intervalMs;
    const run = (): void => {
      const late = performance.now() - due;
      void check.check(target, context).then((r) => {
        if (measuring) {
          checks++;
          lateness.push(Math.max(0, Math.round(late)));
          if (!r.healthy) failures++;
        }
        if (stop.signal.aborted) return;
        due += timing.intervalMs;
        const timer = setTimeout(() => (timers.delete(timer), run()), due - performance.now());
        timers.add(timer);
      });
    };
    const timer = setTimeout(() => (timers.delete(timer), run()), due - start);
    timers.add(timer);
  }
  await new Promise((r) => setTimeout(r, 3000));
  const { wall, cpuMs, sysMs, mainMs, lag, mem } = await window((on) => (measuring = on));
  stop.abort();
  for (const timer of timers) clearTimeout(timer);
  await new Promise((r) => setTimeout(r, timing.timeoutMs + 200));
  return row(
    `${kind} floor`,
    n,
    checks,
    wall,
    cpuMs,
    sysMs,
    mainMs,
    lag,
    lateness,
    mem,
    failures,
    undefined,
  );
}

/**
 * The main thread's stat file, opened once, before any row (main): the floor at 50,000 targets
 * holds every descriptor the process may have.
 */
let mainStat: (() => string) | undefined;

/** The main thread's CPU alone (utime + stime), ms: with probe workers, what is left on it. */
function mainThreadMs(): number {
  mainStat ??= procReader(`/proc/self/task/${process.pid}/stat`, 1024);
  return 1000 * parseStat(mainStat()).cpu;
}

/**
 * The measured window: SECONDS of wall time as measured (never assumed), this process's CPU,
 * the event loop's lag and memory; `measuring` says when results count.
 */
async function window(measuring: (on: boolean) => void): Promise<{
  wall: number;
  cpuMs: number;
  sysMs: number;
  mainMs: number;
  lag: ReturnType<typeof monitorEventLoopDelay>;
  mem: NodeJS.MemoryUsage;
}> {
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  global.gc?.();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadMs();
  const t0 = performance.now();
  measuring(true);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring(false);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mainMs = mainThreadMs() - main0;
  lag.disable();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { wall, cpuMs, sysMs: cpu.system / 1000, mainMs, lag, mem: process.memoryUsage() };
}

/** One line of the table. */
function row(
  name: string,
  n: number,
  checks: number,
  wall: number,
  cpuMs: number,
  sysMs: number,
  mainMs: number,
  lag: ReturnType<typeof monitorEventLoopDelay>,
  lateness: number[],
  mem: NodeJS.MemoryUsage,
  failures: number,
  worst: [string, number] | undefined,
): string {
  return [
    `${name.padEnd(17)} ${String(n).padStart(6)}`,
    `${(checks / wall).toFixed(0).padStart(7)}/s`,
    (checks / ((n * wall) / (timing.intervalMs / 1000))).toFixed(2).padStart(5),
    `${(cpuMs / Math.max(1, checks)).toFixed(3).padStart(7)} ${(mainMs / Math.max(1, checks)).toFixed(3).padStart(6)} ${((100 * sysMs) / Math.max(1, cpuMs)).toFixed(0).padStart(3)} %`,
    `${(lag.percentile(50) / 1e6).toFixed(1).padStart(6)} ${(lag.percentile(99) / 1e6).toFixed(1).padStart(6)} ${(lag.max / 1e6).toFixed(0).padStart(6)}`,
    `${pct(lateness, 50).toFixed(0).padStart(6)} ${pct(lateness, 99).toFixed(0).padStart(6)}`,
    `${(mem.rss / 2 ** 20).toFixed(0).padStart(5)} ${(mem.heapUsed / 2 ** 20).toFixed(0).padStart(5)}`,
    `${failures}${worst ? ` (${worst[0]})` : ''}`,
  ].join('  ');
}

async function main(): Promise<void> {
  mainThreadMs(); // opens the stat file while descriptors are free
  const server = await startTarget(TARGET);
  console.log(
    `# target server: ${TARGET}; ${SECONDS} s per row after 3 s of warm-up; checks every ${timing.intervalMs} ms, timeout ${timing.timeoutMs} ms, jitter ${timing.jitter}`,
  );
  console.log(
    '# kind            targets  checks/s  on-time  cpu-ms/check (main thread, kernel share)  lag p50 p99 max (ms)  lateness p50 p99 (ms)  rss heap (MiB)  failures',
  );
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      if (ROUNDS > 1) console.log(`# round ${round} of ${ROUNDS}`);
      for (const n of SIZES) {
        for (const kind of KINDS) {
          for (const workers of WORKERS)
            for (const min of MINS)
              for (const slot of SLOTS)
                console.log(await measure(kind, n, server, workers, min, slot));
          if (FLOOR) console.log(await measureFloor(kind, n, server.port));
        }
      }
    }
  } finally {
    server.stop();
  }
}

if (process.argv[2] === 'server') {
  const { createServer } = await import('node:http');
  // Targets in `dead` answer 503: the parent flips them to measure detection time.
  const dead = new Set<string>();
  // Requests answered, counted where checks land: `{ count: true }` asks for the total.
  let answered = 0;
  process.on('message', (m: { dead?: string[]; count?: boolean }) => {
    if (m.count) return void process.send?.(answered);
    dead.clear();
    for (const a of m.dead ?? []) dead.add(a);
    process.send?.('ok');
  });
  const server = createServer((req, res) => {
    answered++;
    res.statusCode = dead.has(req.socket.localAddress ?? '') ? 503 : 200;
    res.end('ok');
  });
  server.keepAliveTimeout = 5000;
  server.listen(0, '0.0.0.0', () => {
    const addr = server.address();
    process.send?.(typeof addr === 'object' && addr ? addr.port : 0);
  });
} else {
  // The daemon's rows and the floor's run here: with the V8 flags `ipvs-warden` sets on itself,
  // and those it sets once running.
  setV8Flags();
  heapModes().running();
  await main();
}
