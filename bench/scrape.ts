// What a /metrics scrape costs the daemon: `ipvs-warden run` on the memory backend with N real
// servers, one TCP check each every 30 s to its own 127.x address, where this process listens
// (0.0.0.0): every check passes, so every server stays up and in the table, and nothing changes
// while the scrapes run (no transition, no tick; the resync is an hour away). Until 2026-12-07
// the checks went to port 9, refused: servers went down all through the scrapes, and each
// scrape's CPU carried the ticks that took them out. Once every check has a result, SCRAPES
// scrapes a second apart, each timed (wall), with the daemon's CPU (utime + stime from /proc,
// read 300 ms after the answer, so the page's last write is in) and the event loop's longest
// stall (the daemon's own nodejs_eventloop_lag_max_seconds, which prom-client resets on each
// scrape: the next scrape's figure covers this one). With metrics_per_server off and on.
// `npm run bench:scrape` (host). BENCH_SIZE (default 10000), BENCH_SCRAPES (default 6),
// BENCH_MAIN (another build's dist/src/main.js, to compare builds on one host in one session).
// Each daemon is scraped SCRAPES times plain and SCRAPES times gzipped (as Prometheus asks), in
// turn; a build from before gzip answered plain to both, and its gzip row says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/checks/servers.js';
import { parseStat, parseWardenMetrics } from './peers-lib.js';

const SIZE = Number(process.env.BENCH_SIZE ?? 10_000);
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 6);
const main = process.env.BENCH_MAIN ?? new URL('../src/main.js', import.meta.url).pathname;

const address = (i: number): string => `127.${1 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;

/** CPU time of a process and its reaped children, in ms. */
const cpu = (pid: number): number =>
  1000 * parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpu;

function config(n: number, listen: string, perServer: boolean, port: number): string {
  const lines = [
    'daemon:',
    '  backend: memory',
    '  log_level: warn',
    `  listen: ${listen}`,
    `  metrics_per_server: ${perServer}`,
    '  resync_interval: 1h',
    'defaults: {interval: 30s, timeout: 1s, rise: 1, initial: up}',
    'virtual_services:',
  ];
  for (let s = 0; s * 100 < n; s++) {
    lines.push(
      `  - {address: 10.${(s >> 8) & 0xff}.${s & 0xff}.1, port: 80, checks: [{type: tcp}], real_servers: [`,
    );
    const end = Math.min(n, (s + 1) * 100);
    for (let i = s * 100; i < end; i++)
      lines.push(`      {address: ${address(i)}, port: ${port}}${i + 1 < end ? ',' : ''}`);
    lines.push('    ]}');
  }
  return lines.join('\n') + '\n';
}

const sample = (page: string, name: string): number =>
  Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(page)?.[1] ?? NaN);

/** Results so far over every check (the sum of ipvs_warden_check_results_total). */
function results(page: string): number {
  return parseWardenMetrics(page).all;
}

/** A family's samples summed over its series (`name` alone or with labels). */
function total(page: string, name: string): number {
  let sum = 0;
  for (const m of page.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm')))
    sum += Number(m[1]);
  return sum;
}

/** What says the daemon did something besides answering scrapes: transitions and ticks. */
const activity = (page: string): number =>
  total(page, 'ipvs_warden_server_transitions_total') +
  total(page, 'ipvs_warden_reconcile_tick_duration_seconds_count');

const range = (xs: readonly number[], digits = 0): string => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s[Math.floor(s.length / 2)] ?? NaN;
  return `${mid.toFixed(digits)} (${(s[0] ?? NaN).toFixed(digits)}-${(s.at(-1) ?? NaN).toFixed(digits)})`;
};

async function measure(perServer: boolean, port: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-scrape-'));
  const listen = `127.0.0.1:${await freePort()}`;
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, config(SIZE, listen, perServer, port));
  const daemon: ChildProcess = spawn(process.execPath, [main, 'run', '--config', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
    // The stall figure comes from the lag monitor, which at the daemon's 100ms would miss most
    // stalls; from the environment, so that a build from before the key (BENCH_MAIN) runs too.
    env: { ...process.env, WARDEN_METRICS_LAG_RESOLUTION: '10ms' },
  });
  const pid = daemon.pid ?? 0;
  /** One scrape, plain or gzipped as asked: the page, its wall time and its bytes on the wire. */
  const scrape = (
    gzip = false,
  ): Promise<{ page: string; ms: number; wire: number; zipped: boolean }> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const headers = { 'accept-encoding': gzip ? 'gzip' : 'identity' };
      get(`http://${listen}/metrics`, { headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - t0;
          const body = Buffer.concat(parts);
          const zipped = res.headers['content-encoding'] === 'gzip';
          const page = (zipped ? gunzipSync(body) : body).toString('utf8');
          resolve({ page, ms, wire: body.length, zipped });
        });
      }).on('error', reject);
    });
  try {
    // Every check has a result (the first checks are spread over one interval), so the page
    // holds every series; a scrape every 5 s meanwhile.
    const began = Date.now();
    for (;;) {
      await sleep(5000);
      const page = await scrape().then(
        (s) => s.page,
        () => '',
      );
      if (results(page) >= SIZE) break;
      if (Date.now() - began > 180_000) throw new Error('not every check had a result in 180 s');
    }
    await sleep(1000);
    // From here each scrape's lag covers the previous one.
    const before = activity((await scrape()).page);
    // Plain and gzipped in turn, so both meet the same machine.
    const figure = (gzip: boolean) => ({
      gzip,
      wall: [] as number[],
      cpuMs: [] as number[],
      stall: [] as number[],
      page: 0,
      wire: 0,
      answered: true,
    });
    const plain = figure(false);
    const zipped = figure(true);
    for (let i = 0; i < 2 * SCRAPES; i++) {
      const f = i % 2 === 0 ? plain : zipped;
      await sleep(1000);
      const c0 = cpu(pid);
      const s = await scrape(f.gzip);
      await sleep(300);
      f.cpuMs.push(cpu(pid) - c0);
      f.wall.push(s.ms);
      f.page = Buffer.byteLength(s.page);
      f.wire = s.wire;
      f.answered &&= s.zipped === f.gzip;
      // The figure this page carries is the stall since the previous scrape began.
      if (i > 0)
        (f === plain ? zipped : plain).stall.push(
          1000 * sample(s.page, 'ipvs_warden_nodejs_eventloop_lag_max_seconds'),
        );
    }
    // One more scrape for the last one's stall.
    await sleep(1000);
    const last = (await scrape()).page;
    zipped.stall.push(1000 * sample(last, 'ipvs_warden_nodejs_eventloop_lag_max_seconds'));
    // The figures are a scrape's alone only if the daemon did nothing else meanwhile.
    const busy = activity(last) - before;
    if (busy !== 0)
      throw new Error(
        `the daemon was not quiet: ${busy} transitions and reconcile ticks during the scrapes`,
      );
    for (const f of [plain, zipped]) {
      const row = `metrics_per_server ${perServer ? 'on ' : 'off'}  ${f.gzip ? 'gzip ' : 'plain'}`;
      console.log(
        !f.answered
          ? `${row}  not offered by this build (it answered plain)`
          : `${row}  ${(f.page / 1e6).toFixed(1)} MB (${(f.wire / 1e6).toFixed(2)} MB sent)  wall ms ${range(f.wall)}  CPU ms ${range(f.cpuMs)}  longest event-loop stall ms ${range(f.stall)}`,
      );
    }
  } finally {
    daemon.kill('SIGTERM');
    await Promise.race([new Promise((r) => daemon.once('exit', r)), sleep(20_000)]);
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `# ${main}: ipvs-warden run, memory backend, ${SIZE} real servers, a TCP check each every 30 s; ${SCRAPES} scrapes a second apart; median (min-max)`,
);
// Every real server's address answers here: each check passes, and no server changes state.
const target = createServer((socket) => {
  socket.on('error', () => undefined);
  socket.destroy();
});
await new Promise<void>((resolve) => target.listen(0, '0.0.0.0', resolve));
try {
  for (const perServer of [false, true])
    await measure(perServer, (target.address() as AddressInfo).port);
} finally {
  target.close();
}
