// Benchmark of what the daemon spends on a check besides the probe: the reconcile loop, the
// scheduler and the metrics, as `ipvs-warden run` has them (memory backend, metrics_per_server
// false), BENCH_SIZE real servers (default 10,000) checked every second on real timers by a
// checker that opens no socket and answers on the next turn, every answer of a turn in one call
// (as the probe engine in C reports them). One child process per start grid of BENCH_GRID (the
// scheduler's slotMs in ms, or `auto`: the default, from the rate; default `1,auto`: the grid
// of ten checks a point at 10,000 a second against today's), all at once, each pinned to a core
// of its own (taskset), the cores rotated each round, so the host's noise falls on every setting
// alike: a setting's figure is compared with the others' of the same round. Reports the main
// thread's CPU per check (/proc/self/task) and the checks a second, per round and the median of
// the ratios to the first setting. `npm run bench:bookkeeping`; BENCH_ROUNDS (4), BENCH_SECONDS
// (12, after 4 of warm-up).
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createChecker, parseConfig } from '../src/checkers.js';
import type { Checker, CheckResult } from '../src/health/checker.js';
import { MemoryBackend } from '../src/ipvs/memory.js';
import { WardenMetrics } from '../src/metrics/metrics.js';
import { ReconcileLoop } from '../src/reconcile/loop.js';
import { median, parseStat } from './peers-lib.js';
import { procReader } from './procfile.js';

const SIZE = Number(process.env.BENCH_SIZE ?? 10_000);
const GRIDS = (process.env.BENCH_GRID ?? '1,auto').split(',');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 12);
const WARM_MS = 4000;

interface Figures {
  readonly grid: string;
  readonly checksPerSecond: number;
  /** The main thread's CPU (user + system) per check, µs. */
  readonly mainUs: number;
}

/** The config: one service of `n` servers at 10.x.y.z, a TCP check every second. */
function configText(n: number): string {
  let text = `daemon: {backend: memory, metrics_per_server: false}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, timeout: 1s, rise: 1, fall: 1, checks: [{type: tcp}]}
virtual_services:
  - name: bench
    address: 10.255.0.1
    port: 80
    real_servers:
`;
  for (let i = 0; i < n; i++)
    text += `      - {address: 10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}, port: 8080}\n`;
  return text;
}

/** The TCP check's key and description, answering healthy on the next turn with its message. */
function socketless(counter: { checks: number }): typeof createChecker {
  const waiting: (() => void)[] = [];
  const turn = (): void => {
    for (const answer of waiting.splice(0)) answer();
  };
  return (check): Checker => {
    const real = createChecker(check);
    return {
      kind: real.kind,
      description: real.description,
      key: real.key,
      check: (target) =>
        new Promise<CheckResult>((resolve) => {
          if (waiting.length === 0) setImmediate(turn);
          waiting.push(() => {
            counter.checks++;
            resolve({
              healthy: true,
              durationMs: 0.4,
              message: `${real.description} -> ${target.address}:${target.port}: connected`,
            });
          });
        }),
    };
  };
}

async function child(grid: string): Promise<void> {
  const config = parseConfig(configText(SIZE), 'bench', {});
  const backend = new MemoryBackend();
  const metrics = new WardenMetrics(
    {
      perServer: false,
      labels: config.daemon.metricsLabels,
      lagResolutionMs: config.daemon.metricsLagResolutionMs,
    },
    () => backend.table(),
  );
  const counter = { checks: 0 };
  const loop = new ReconcileLoop(config, {
    backend,
    log: { log: () => undefined },
    observer: metrics,
    createChecker: socketless(counter),
    ...(grid === 'auto' ? {} : { slotMs: Number(grid) }),
  });
  metrics.attach(loop);
  await loop.start();
  const stat = procReader(`/proc/self/task/${process.pid}/stat`);
  /** The main thread's CPU so far, in seconds (a thread has no reaped children). */
  const cpu = (): number => parseStat(stat()).cpu;
  await new Promise((r) => setTimeout(r, WARM_MS));
  const [c0, t0, w0] = [counter.checks, cpu(), performance.now()];
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const n = counter.checks - c0;
  const figures: Figures = {
    grid,
    checksPerSecond: (n * 1000) / (performance.now() - w0),
    mainUs: ((cpu() - t0) * 1e6) / n,
  };
  await loop.stop();
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  process.exit(0);
}

function run(grid: string, core: number): Promise<Figures> {
  const script = fileURLToPath(import.meta.url);
  const p = spawn('taskset', ['-c', String(core), process.execPath, script, 'child', grid], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    p.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as Figures)
        : reject(new Error(`grid ${grid}: exit ${code}`)),
    ),
  );
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  if (GRIDS.length > cores)
    throw new Error(`BENCH_GRID names ${GRIDS.length} grids, this host has ${cores} cores`);
  console.log(
    `# ${SIZE} servers every second, a socketless TCP check; ${SECONDS} s per round after ${WARM_MS / 1000} s; grids ${GRIDS.join(', ')} at once, one core each`,
  );
  console.log(`| round | ${GRIDS.map((g) => `grid ${g}: µs/check (checks/s)`).join(' | ')} |`);
  console.log(`| --- | ${GRIDS.map(() => '---').join(' | ')} |`);
  const ratios = GRIDS.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    const figures = await Promise.all(GRIDS.map((g, i) => run(g, (i + round) % cores)));
    const first = figures[0]?.mainUs ?? NaN;
    figures.forEach((f, i) => ratios[i]?.push(f.mainUs / first));
    const cells = figures.map((f) => `${f.mainUs.toFixed(2)} (${Math.round(f.checksPerSecond)})`);
    console.log(`| ${round + 1} | ${cells.join(' | ')} |`);
  }
  console.log(
    `| median of the ratios to grid ${GRIDS[0]} | ${ratios.map((r) => median(r).toFixed(3)).join(' | ')} |`,
  );
}

if (process.argv[2] === 'child') await child(process.argv[3] ?? 'auto');
else await main();
