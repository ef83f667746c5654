// Memory of the daemon as it runs: `ipvs-warden run` on the memory backend with N real servers,
// each with an HTTP check against one node server process on loopback (each server its own
// 127.x.y.z address), sampled from /proc/PID/status once every server has been checked twice.
// Prints VmRSS per size and the growth per real server (least squares over the sizes).
// `npm run bench:memory` (host). BENCH_SIZES (default 1,1000,5000,10000), BENCH_INTERVAL
// (default 1s: the check rate is part of what is held in flight), BENCH_DAEMON ("key: value;..."
// added to daemon:), BENCH_NODE_FLAGS (node's own, for the daemon, instead of the package's
// NODE_START_FLAGS; several sets separated by "|" are measured side by side, each size with each
// set in turn; an empty set is node's defaults), BENCH_SNAPSHOT (a directory:
// a heap snapshot of each size), BENCH_TARGET=nginx (Debian's nginx answers instead of a node
// server, which takes most of a core at 10,000 requests a second: for the on-time figures).
// BENCH_SECONDS: the window (5 s). BENCH_DETECT=1: then 100 servers start answering 503
// and each one's server.down (the daemon's log) is timed: detection under that load. With the
// daemon's checks/s it prints how late they started, from its lateness histogram.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { latenessText, parseWardenMetrics, type WardenScrape } from './peers-lib.js';
import { NODE_START_FLAGS } from '../src/v8-flags.js';
import { slope } from './stats.js';
import { address, startTarget, type Target } from './targets.js';

const SIZES = (process.env.BENCH_SIZES ?? '1,1000,5000,10000').split(',').map(Number);
const INTERVAL = process.env.BENCH_INTERVAL ?? '1s';
/** BENCH_DETECT=1: after the window, KILLED servers fail and their server.down is timed. */
const DETECT = process.env.BENCH_DETECT === '1';
const KILLED = 100;
const FALL = 3;

/** The window sampled (RSS every 0.5 s, checks and CPU over it). */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const intervalSeconds = Number.parseFloat(INTERVAL) * (INTERVAL.endsWith('ms') ? 0.001 : 1);
/** As bench:probes': interval + (fall - 1) x fast interval (both the interval here), + jitter. */
const FORMULA_MS = FALL * intervalSeconds * 1000 * 1.1;
const main = new URL('../src/main.js', import.meta.url).pathname;
const MiB = 2 ** 20;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** CPU time of a process (user + system), in ms. */
function cpu(child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in USER_HZ
}

/** VmRSS of a process, in bytes. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

/** The daemon's /metrics, read twice a run (a scrape of 10,000 servers costs the daemon real
 * CPU, which a tighter poll would add to what is measured); undefined if it does not answer. */
async function scrape(listen: string): Promise<WardenScrape | undefined> {
  try {
    return parseWardenMetrics(await (await fetch(`http://${listen}/metrics`)).text());
  } catch {
    return undefined;
  }
}

/** A server.down log line's address (from its message, `... -> ADDRESS:PORT: ...`) and time. */
function downAt(line: string): { address: string; time: number } | undefined {
  try {
    const e = JSON.parse(line) as { time?: string; message?: string };
    const address = /-> \[?([0-9a-f.:]+?)\]?:\d+/.exec(e.message ?? '')?.[1];
    const time = Date.parse(e.time ?? '');
    return address && Number.isFinite(time) ? { address, time } : undefined;
  } catch {
    return undefined;
  }
}

/** The daemon's own heap figures (prom-client's nodejs_* series), in MiB: where RSS goes. */
async function heap(listen: string): Promise<string> {
  try {
    const text = await (await fetch(`http://${listen}/metrics`)).text();
    const read = (name: string): number =>
      Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / MiB;
    const used = read('ipvs_warden_nodejs_heap_size_used_bytes');
    const total = read('ipvs_warden_nodejs_heap_size_total_bytes');
    const external = read('ipvs_warden_nodejs_external_memory_bytes');
    return `heap used ${used.toFixed(0)} of ${total.toFixed(0)} MiB, external ${external.toFixed(0)} MiB`;
  } catch {
    return 'heap: no /metrics';
  }
}

function config(n: number, port: number, listen: string): string {
  const lines = [
    'daemon:',
    '  backend: memory',
    '  log_level: warn',
    ...(process.env.BENCH_DAEMON ? process.env.BENCH_DAEMON.split(';').map((l) => `  ${l}`) : []),
    `  listen: ${listen}`,
    `defaults: {interval: ${INTERVAL}, fast_interval: ${INTERVAL}, timeout: 1s, rise: 1, fall: ${FALL}, initial: up}`,
    'virtual_services:',
  ];
  // 100 real servers per service, as a large site groups them.
  for (let s = 0; s * 100 < n; s++) {
    lines.push(
      `  - {address: 10.${(s >> 8) & 0xff}.${s & 0xff}.1, port: 80, checks: [{type: http, path: /healthz}], real_servers: [`,
    );
    const end = Math.min(n, (s + 1) * 100);
    for (let i = s * 100; i < end; i++)
      lines.push(`      {address: ${address(i)}, port: ${port}}${i + 1 < end ? ',' : ''}`);
    lines.push('    ]}');
  }
  return lines.join('\n') + '\n';
}

/** The flag sets to compare ("" is node's defaults); unset, the package's (NODE_START_FLAGS). */
const FLAG_SETS = (process.env.BENCH_NODE_FLAGS ?? NODE_START_FLAGS.join(' '))
  .split('|')
  .map((f) => f.trim());

async function measure(
  n: number,
  port: number,
  server: Target,
  nodeFlags: string,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-memory-'));
  const listen = `127.0.0.1:${await freePort()}`;
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, config(n, port, listen));
  const snapshots = process.env.BENCH_SNAPSHOT;
  const flags = [
    ...nodeFlags.split(' ').filter(Boolean),
    ...(snapshots ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`] : []),
  ];
  const daemon: ChildProcess = spawn(process.execPath, [...flags, main, 'run', '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Its log (stdout; json, as that is a pipe): each server.down kept by address with its time.
  const downs = new Map<string, number>();
  if (daemon.stdout)
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      const at = line.includes('"server.down"') ? downAt(line) : undefined;
      if (at) downs.set(at.address, at.time);
    });
  try {
    const began = Date.now();
    const base = await server.answered();
    // Every server checked twice: the daemon holds what a steady state holds.
    while ((await server.answered()) - base < 2 * n && Date.now() - began < 120_000)
      await sleep(500);
    // The first scrape formats every series' labels (kept for the next ones): at 10,000
    // servers it made checks late for about a second, once. The window is the steady state.
    await scrape(listen);
    await sleep(2000);
    const [served0, scrape0, cpu0] = [await server.answered(), await scrape(listen), cpu(daemon)];
    const t0 = Date.now();
    const samples: number[] = [];
    for (let i = 0; i < 2 * SECONDS; i++) {
      await sleep(500);
      samples.push(rss(daemon.pid ?? 0));
    }
    const [served1, cpu1] = [await server.answered(), cpu(daemon)];
    const seconds = (Date.now() - t0) / 1000;
    const scrape1 = await scrape(listen);
    const done = (scrape1?.all ?? 0) - (scrape0?.all ?? 0);
    // How late the window's checks started, by the daemon's own histogram.
    const late = scrape0 && scrape1 ? latenessText(scrape0, scrape1) : '';
    const lateness = late ? `  ${late}` : '';
    const heapFigures = await heap(listen);
    const rate = (served1 - served0) / seconds;
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)] ?? NaN;
    const max = samples.at(-1) ?? NaN;
    console.log(
      `${String(n).padStart(6)} servers ${FLAG_SETS.length > 1 ? ` [${nodeFlags || 'defaults'}]` : ''} RSS median ${(median / MiB).toFixed(1).padStart(6)} MiB  max ${(max / MiB).toFixed(1).padStart(6)} MiB  ${rate.toFixed(0).padStart(6)} checks/s (${((100 * rate) / (n / intervalSeconds)).toFixed(0)} %)  ${((cpu1 - cpu0) / (served1 - served0)).toFixed(3)} CPU-ms/check  (daemon counted ${(done / seconds).toFixed(0)}/s)${lateness}  ${heapFigures}`,
    );
    if (snapshots) {
      // BENCH_SNAPSHOT=DIR: a heap snapshot of each size there, to see what a server costs.
      daemon.kill('SIGUSR2');
      // Written when its size has held for 3 s (10,000 servers take a while).
      let size = -1;
      for (let held = 0, waited = 0; held < 3 && waited < 180; waited++) {
        await sleep(1000);
        const now = readdirSync(snapshots).reduce(
          (n, f) => n + statSync(join(snapshots, f)).size,
          0,
        );
        held = now === size && now > 0 ? held + 1 : 0;
        size = now;
      }
    }
    if (DETECT && n >= 10 * KILLED) {
      const dead = Array.from({ length: KILLED }, (_, i) => address(i * Math.floor(n / KILLED)));
      downs.clear();
      await server.setDead(dead);
      const flipped = Date.now();
      while (dead.some((a) => !downs.has(a)) && Date.now() - flipped < 30_000) await sleep(100);
      const times = dead.flatMap((a) => {
        const t = downs.get(a);
        return t === undefined ? [] : [Math.max(0, t - flipped)];
      });
      times.sort((a, b) => a - b);
      const missed = KILLED - times.length;
      console.log(
        `${String(n).padStart(6)} servers  detection of ${KILLED} (503 to server.down): p50 ${times[Math.floor(times.length / 2)] ?? NaN} max ${times.at(-1) ?? NaN} ms (formula ${FORMULA_MS.toFixed(0)} ms + 3 checks)${missed ? `, ${missed} not in 30 s` : ''}`,
      );
      await server.setDead([]);
    }
    return median;
  } finally {
    // A clean stop first, so node's --cpu-prof / --heap-prof flags write their files.
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const server = await startTarget(process.env.BENCH_TARGET);
const port = server.port;
try {
  console.log(
    `# ipvs-warden run, memory backend, an HTTP check per real server every ${INTERVAL}, target ${process.env.BENCH_TARGET === 'nginx' ? 'nginx' : 'a node server'}`,
  );
  const ys = FLAG_SETS.map((): number[] => []);
  for (const n of SIZES)
    for (const [i, flags] of FLAG_SETS.entries())
      ys[i]?.push(await measure(n, port, server, flags));
  if (SIZES.length > 1)
    for (const [i, flags] of FLAG_SETS.entries())
      console.log(
        `# growth${FLAG_SETS.length > 1 ? ` [${flags || 'defaults'}]` : ''}: ${(slope(SIZES, ys[i] ?? []) / 1024).toFixed(2)} KiB of RSS per real server`,
      );
} finally {
  server.stop();
}
