// Benchmark: does spreading probes over worker threads keep more targets on time than one
// event loop? TCP and HTTP at 10,000 targets, TCP at 50,000, and loads that fit (HTTP at 1,000
// and 3,000, TCP at 3,000), each target checked every second by the bare per-target timer loop
// of bench/probes.ts's floor rows (HttpChecker/TcpChecker from checks/), run on the main thread
// alone, then split over 2 and 3 worker threads. Each worker owns a share of the targets and
// posts its results to the main thread every 100 ms packed in a transferred Float64Array ({id,
// healthy, durationMs, latenessMs, doneAt} per result), which the main thread unpacks into
// per-target state, as a daemon would; checks in flight are capped at 1,024 over all threads.
// One run, rows side by side, against nginx (one process, temp-dir config) on 0.0.0.0, each
// target its own 127.x.y.z. Per row: checks/s and share of the schedule, share on time
// (lateness < 50 ms), p99 lateness, CPU-ms per check of the whole process (process.cpuUsage,
// and its kernel share) and of the main thread alone (/proc/self/task/PID/stat, and its
// event-loop utilisation), how late results reach the main thread, nginx's CPU per check,
// the CPU other processes took (/proc/stat), RSS, failures (and the commonest, warm-up
// included). `npm run bench:workers`; BENCH_SECONDS, BENCH_ROUNDS, BENCH_YOUNG_MB and
// BENCH_ROWS ("kind:targets:threads,threads ...") to change.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { HttpChecker } from '../checks/http.js';
import { TcpChecker } from '../checks/tcp.js';
import type { Checker } from '../src/health/checker.js';
import { freePort, nginxConf } from '../test/checks/servers.js';

type Kind = 'tcp' | 'http';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** The whole table this many times over, so a row's neighbours in time are all the others. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const WARM_MS = 3000;
/** BENCH_YOUNG_MB: a cap on each worker's young generation (V8's default lets it grow to 48 MiB). */
const YOUNG_MB = Number(process.env.BENCH_YOUNG_MB ?? 0);
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 1000;
const ON_TIME_MS = 50;
/** How often a worker posts its results: the most a result waits before the main thread has it. */
const BATCH_MS = 100;
/** Float64s per result: id, healthy (0/1), durationMs, latenessMs, doneAt (timeOrigin + now). */
const STRIDE = 5;
const ROWS = (
  process.env.BENCH_ROWS ??
  'http:1000:1,2 tcp:3000:1,2 http:3000:1,2,3 tcp:10000:1,2,3 http:10000:1,2,3 tcp:50000:1,2,3'
)
  .split(/\s+/)
  .filter(Boolean)
  .map((spec) => {
    const [kind, n, threads] = spec.split(':');
    if ((kind !== 'tcp' && kind !== 'http') || !n || !threads)
      throw new Error(`BENCH_ROWS: "${spec}" is not kind:targets:threads,threads`);
    const checked: Kind = kind;
    return { kind: checked, n: Number(n), threads: threads.split(',').map(Number) };
  });

function address(i: number): string {
  return `127.${1 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

function makeChecker(kind: Kind): Checker {
  return kind === 'tcp' ? new TcpChecker() : new HttpChecker({ path: '/healthz' });
}

/**
 * Checks in flight at once over all threads (each thread its share), as the daemon's scheduler
 * caps them (`concurrency: 1024`): a loop that falls behind queues its checks instead of opening
 * sockets past the descriptor limit, and every row may have the same number open.
 */
const IN_FLIGHT = 1024;

/**
 * The per-target loop of bench/probes.ts's floor: target ids `first, first + step, ...` below
 * n, each checked every INTERVAL_MS from a timer of its own, phases spread over the interval
 * by the id so every thread's share is as even as the whole; at most its share of IN_FLIGHT at
 * once (a check waiting for a slot is late by the wait). Returns a stop function.
 */
function runLoop(
  kind: Kind,
  n: number,
  port: number,
  first: number,
  step: number,
  onResult: (id: number, healthy: boolean, durationMs: number, latenessMs: number) => void,
  reasons: Map<string, number>,
): () => void {
  const checker = makeChecker(kind);
  const stop = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const start = performance.now();
  let inFlight = 0;
  const cap = Math.ceil(IN_FLIGHT / step);
  const waiting: (() => void)[] = [];
  let head = 0;
  const next = (): void => {
    inFlight--;
    if (head < waiting.length) {
      const run = waiting[head++];
      if (head > 4096) {
        waiting.splice(0, head);
        head = 0;
      }
      run?.();
    }
  };
  for (let id = first; id < n; id += step) {
    const target = { family: 4 as const, address: address(id), port };
    let due = start + (id / n) * INTERVAL_MS;
    const run = (): void => {
      if (stop.signal.aborted) return;
      if (inFlight >= cap) {
        waiting.push(run);
        return;
      }
      inFlight++;
      const late = Math.max(0, performance.now() - due);
      // One signal for every check, as the scheduler gives them (its stop).
      void checker.check(target, { signal: stop.signal, timeoutMs: TIMEOUT_MS }).then((r) => {
        next();
        if (stop.signal.aborted) return;
        onResult(id, r.healthy, r.durationMs, late);
        if (!r.healthy) {
          const why = r.message.replace(/^.*?: /, '');
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
        }
        due += INTERVAL_MS;
        const timer = setTimeout(() => (timers.delete(timer), run()), due - performance.now());
        timers.add(timer);
      });
    };
    const timer = setTimeout(() => (timers.delete(timer), run()), due - start);
    timers.add(timer);
  }
  return () => {
    stop.abort();
    for (const timer of timers) clearTimeout(timer);
  };
}

// ---------------------------------------------------------------- worker thread

interface WorkerJob {
  kind: Kind;
  n: number;
  port: number;
  first: number;
  step: number;
}
type ToWorker = { cmd: 'mark' } | { cmd: 'stop' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'batch'; count: number; buffer: ArrayBuffer }
  | { type: 'elu'; elu: number }
  | { type: 'stopped'; reasons: [string, number][] };

function workerMain(): void {
  const port = parentPort;
  if (!port) return;
  const job = workerData as WorkerJob;
  const share = Math.ceil(job.n / job.step);
  const reasons = new Map<string, number>();
  // Room for two batch intervals of results; a full batch is posted at once.
  const capacity = Math.max(256, Math.ceil((share * BATCH_MS * 2) / INTERVAL_MS));
  let batch = new Float64Array(capacity * STRIDE);
  let count = 0;
  const flush = (): void => {
    if (count === 0) return;
    const buffer = batch.buffer;
    port.postMessage({ type: 'batch', count, buffer } satisfies FromWorker, [buffer]);
    batch = new Float64Array(capacity * STRIDE);
    count = 0;
  };
  const stopLoop = runLoop(
    job.kind,
    job.n,
    job.port,
    job.first,
    job.step,
    (id, ok, dur, late) => {
      const o = count * STRIDE;
      batch[o] = id;
      batch[o + 1] = ok ? 1 : 0;
      batch[o + 2] = dur;
      batch[o + 3] = late;
      batch[o + 4] = performance.timeOrigin + performance.now();
      if (++count === capacity) flush();
    },
    reasons,
  );
  const flusher = setInterval(flush, BATCH_MS);
  let mark: EventLoopUtilization | undefined;
  port.on('message', (m: ToWorker) => {
    if (m.cmd === 'mark') {
      // First mark starts the window; the second ends it and reports this loop's utilisation.
      if (!mark) mark = performance.eventLoopUtilization();
      else {
        const elu = performance.eventLoopUtilization(mark).utilization;
        port.postMessage({ type: 'elu', elu } satisfies FromWorker);
      }
    } else {
      stopLoop();
      clearInterval(flusher);
      // In-flight checks end within their timeout; then the thread can go.
      setTimeout(() => {
        port.postMessage({ type: 'stopped', reasons: [...reasons] } satisfies FromWorker);
        port.close();
      }, TIMEOUT_MS + 200);
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

// ---------------------------------------------------------------- main thread

/** What the main thread keeps of each result (as a daemon would), and the row's counts. */
class Tally {
  measuring = false;
  checks = 0;
  failures = 0;
  onTime = 0;
  /** Lateness by whole ms (the last bin holds everything later). */
  readonly lateness = new Uint32Array(10_001);
  /** How long a result took from its end in a worker to the main thread, by whole ms. */
  readonly delivery = new Uint32Array(10_001);
  readonly healthy: Uint8Array;
  readonly durationMs: Float32Array;

  constructor(n: number) {
    this.healthy = new Uint8Array(n);
    this.durationMs = new Float32Array(n);
  }

  add(id: number, healthy: boolean, durationMs: number, latenessMs: number): void {
    this.healthy[id] = healthy ? 1 : 0;
    this.durationMs[id] = durationMs;
    if (!this.measuring) return;
    this.checks++;
    if (!healthy) this.failures++;
    if (latenessMs < ON_TIME_MS) this.onTime++;
    bump(this.lateness, latenessMs);
  }

  addBatch(batch: Float64Array, count: number): void {
    const now = performance.timeOrigin + performance.now();
    for (let i = 0; i < count; i++) {
      const o = i * STRIDE;
      this.add(batch[o] ?? 0, batch[o + 1] === 1, batch[o + 2] ?? 0, batch[o + 3] ?? 0);
      if (this.measuring) bump(this.delivery, now - (batch[o + 4] ?? now));
    }
  }
}

/** Counts `ms` in its whole-ms bin (the last bin holds everything later). */
function bump(histogram: Uint32Array, ms: number): void {
  const bin = Math.min(histogram.length - 1, Math.max(0, Math.floor(ms)));
  histogram[bin] = (histogram[bin] ?? 0) + 1;
}

function percentile(histogram: Uint32Array, p: number): number {
  let total = 0;
  for (const c of histogram) total += c;
  if (total === 0) return NaN;
  const want = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let ms = 0; ms < histogram.length; ms++) {
    seen += histogram[ms] ?? 0;
    if (seen >= want) return ms;
  }
  return histogram.length - 1;
}

const CLOCK_TICKS = 100;

/**
 * Reads a /proc file again and again through one descriptor opened up front, so a reading
 * never needs a new descriptor while the probes hold thousands.
 */
function procReader(path: string): () => string {
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(4096);
  return () => buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0));
}

/** utime + stime of a /proc/PID[/task/TID]/stat, in ms. */
function cpuMsOf(read: () => string): () => number {
  return () => {
    const stat = read();
    // The fields after the command, which may hold spaces, in parentheses; utime is field 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  };
}

/** Busy CPU time of the whole machine (every state but idle and iowait), in ms. */
function machineBusyMs(read: () => string): () => number {
  return () => {
    const all = read().split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const busy = all.reduce((a, b) => a + b, 0) - (all[3] ?? 0) - (all[4] ?? 0);
    return (busy * 1000) / CLOCK_TICKS;
  };
}

interface Nginx {
  port: number;
  pid: number;
  stop: () => Promise<void>;
}

/** nginx, one process (master_process off), from a config in a temp dir, on 0.0.0.0:PORT. */
async function startNginx(): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-workers-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    nginxConf(
      dir,
      `  server {
    listen 0.0.0.0:${port} backlog=4096;
    location = /healthz { return 200 "ok"; }
  }`,
      65536,
    ),
  );
  const nginx: ChildProcess = spawn(
    '/usr/sbin/nginx',
    ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    { stdio: 'inherit' },
  );
  await new Promise<void>((resolve, reject) => {
    nginx.once('spawn', resolve);
    nginx.once('error', reject);
  });
  const end = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > end || nginx.exitCode !== null)
      throw new Error(`nginx did not listen on ${port}; see ${dir}/error.log`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: nginx.pid ?? 0,
    stop: async () => {
      if (nginx.exitCode === null) {
        const exited = new Promise((r) => nginx.once('exit', r));
        nginx.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Meters {
  main: () => number;
  nginx: () => number;
  machine: () => number;
}

async function measure(
  kind: Kind,
  n: number,
  threads: number,
  nginx: Nginx,
  meters: Meters,
): Promise<string> {
  const tally = new Tally(n);
  /** Why checks failed (warm-up included), by message without the target. */
  const reasons = new Map<string, number>();
  const workers: Worker[] = [];
  let stopMain: (() => void) | undefined;
  const elus: number[] = [];
  let eluWanted = 0;
  let eluDone: (() => void) | undefined;
  if (threads === 1) {
    stopMain = runLoop(
      kind,
      n,
      nginx.port,
      0,
      1,
      (id, ok, dur, late) => tally.add(id, ok, dur, late),
      reasons,
    );
  } else {
    await Promise.all(
      Array.from({ length: threads }, (_, k) => {
        const job: WorkerJob = { kind, n, port: nginx.port, first: k, step: threads };
        const worker = new Worker(new URL(import.meta.url), {
          workerData: job,
          ...(YOUNG_MB ? { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } } : {}),
        });
        workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.once('error', reject);
          worker.on('message', (m: FromWorker) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'batch') tally.addBatch(new Float64Array(m.buffer), m.count);
            else if (m.type === 'elu') {
              elus.push(m.elu);
              if (elus.length === eluWanted) eluDone?.();
            }
          });
        });
      }),
    );
  }
  await sleep(WARM_MS);
  global.gc?.();
  const mark = (): void =>
    workers.forEach((w) => w.postMessage({ cmd: 'mark' } satisfies ToWorker));
  const cpu0 = process.cpuUsage();
  const main0 = meters.main();
  const nginx0 = meters.nginx();
  const machine0 = meters.machine();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  mark();
  tally.measuring = true;
  await sleep(SECONDS * 1000);
  tally.measuring = false;
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mainMs = meters.main() - main0;
  const nginxMs = meters.nginx() - nginx0;
  const othersMs = meters.machine() - machine0 - nginxMs - (cpu.user + cpu.system) / 1000;
  const mainElu = performance.eventLoopUtilization(elu0).utilization;
  const rss = process.memoryUsage().rss;
  if (workers.length) {
    eluWanted = workers.length;
    await new Promise<void>((resolve) => {
      eluDone = resolve;
      mark();
    });
  }
  // Teardown: stop every loop, let in-flight checks end.
  if (stopMain) {
    stopMain();
    await sleep(TIMEOUT_MS + 200);
  } else {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.on('message', (m: FromWorker) => {
              if (m.type !== 'stopped') return;
              for (const [why, c] of m.reasons) reasons.set(why, (reasons.get(why) ?? 0) + c);
              resolve();
            });
            w.postMessage({ cmd: 'stop' } satisfies ToWorker);
          }),
      ),
    );
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const worst = [...reasons].sort((a, b) => b[1] - a[1])[0];
  const checks = tally.checks;
  const per = (ms: number): string => (ms / Math.max(1, checks)).toFixed(3);
  return (
    line([
      kind,
      String(n),
      threads === 1 ? 'main' : `${threads} workers`,
      (checks / wall).toFixed(0),
      `${((100 * checks) / ((n * wall * 1000) / INTERVAL_MS)).toFixed(1)}%`,
      `${((100 * tally.onTime) / Math.max(1, checks)).toFixed(1)}%`,
      String(percentile(tally.lateness, 99)),
      per((cpu.user + cpu.system) / 1000),
      `${((100 * cpu.system) / Math.max(1, cpu.user + cpu.system)).toFixed(0)}%`,
      ((cpu.user + cpu.system) / 1000 / 1000 / wall).toFixed(2),
      per(mainMs),
      mainElu.toFixed(2),
      elus.length ? Math.max(...elus).toFixed(2) : '-',
      workers.length ? String(percentile(tally.delivery, 99)) : '-',
      per(nginxMs),
      (othersMs / 1000 / wall).toFixed(2),
      (rss / 2 ** 20).toFixed(0),
      String(tally.failures),
    ]) + (worst ? `  (most: ${worst[0]})` : '')
  );
}

/** The table's columns: heading and width (the first three left-aligned). */
const COLUMNS: readonly (readonly [string, number])[] = [
  ['kind', 4],
  ['targets', 7],
  ['where', 9],
  ['checks/s', 8],
  ['sched', 6],
  ['on-time', 7],
  ['p99-late', 8],
  ['cpu/check', 9],
  ['sys', 4],
  ['cores', 5],
  ['main-cpu/check', 14],
  ['main-elu', 8],
  ['worker-elu', 10],
  ['deliver-p99', 11],
  ['nginx-cpu/check', 15],
  ['others', 6],
  ['rss-MiB', 7],
  ['failed', 6],
];

function line(cells: readonly string[]): string {
  return cells
    .map((c, i) => {
      const width = COLUMNS[i]?.[1] ?? 0;
      return i < 3 ? c.padEnd(width) : c.padStart(width);
    })
    .join('  ');
}

async function main(): Promise<void> {
  const nginx = await startNginx();
  try {
    console.log(
      `# ${SECONDS} s per row after ${WARM_MS / 1000} s of warm-up; each target checked every ${INTERVAL_MS} ms (timeout ${TIMEOUT_MS} ms) from a bare timer; worker results posted every ${BATCH_MS} ms`,
    );
    if (YOUNG_MB) console.log(`# each worker's young generation capped at ${YOUNG_MB} MiB`);
    console.log(`# target: nginx (one process, pid ${nginx.pid}) on 0.0.0.0:${nginx.port}`);
    console.log(
      "# times in ms; cpu/check: the whole process (process.cpuUsage), sys: the kernel's share of it; main-cpu/check: the main thread alone (/proc/self/task/PID/stat); main-elu/worker-elu (the busiest): event-loop utilisation; deliver-p99: a result's end in its worker to the main thread; nginx-cpu/check: /proc/NGINX/stat; cores, others: CPUs busy with this process, and with everything but it and nginx (/proc/stat)",
    );
    console.log(line(COLUMNS.map(([heading]) => heading)));
    const meters: Meters = {
      main: cpuMsOf(procReader(`/proc/self/task/${process.pid}/stat`)),
      nginx: cpuMsOf(procReader(`/proc/${nginx.pid}/stat`)),
      machine: machineBusyMs(procReader('/proc/stat')),
    };
    for (let round = 1; round <= ROUNDS; round++) {
      if (ROUNDS > 1) console.log(`# round ${round} of ${ROUNDS}`);
      for (const { kind, n, threads } of ROWS) {
        for (const t of threads) console.log(await measure(kind, n, t, nginx, meters));
      }
    }
  } finally {
    await nginx.stop();
  }
}

if (isMainThread) await main();
else workerMain();
