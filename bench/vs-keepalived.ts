// Side by side with keepalived (C, one epoll loop) on what both do: TCP connect checks of
// 1,000 real servers every second. Runs in the VM (keepalived's checker needs IPVS):
// `npm run bench:keepalived`. Checks are counted where they land (connections accepted by one
// server process); CPU is read from /proc for keepalived and from process.cpuUsage for us.
// Superseded by `npm run bench:peers` (bench/peers.ts), which runs ipvs-warden as its own process.
// This one once printed 2,404 checks/s from 1,000 targets at 1 s: it divided by the window it
// asked `sleep` for, while our checks saturated this very process, so its timer and the count's
// IPC reply came late and the real window was longer (bench/README.md, "The old count"). The
// window is now the one the server's clock saw, and the guard refuses a rate the schedule
// cannot produce.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { TcpChecker } from '../checks/tcp.js';
import { refusal } from './peers-lib.js';
import { Scheduler } from '../src/health/scheduler.js';

const N = Number(process.env.BENCH_TARGETS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PORT = 7000;
const address = (i: number): string => `127.1.${(i >> 8) & 0xff}.${(i & 0xff) + 1}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) of one process, from /proc: the same measure for both. */
function cpuOfPid(pid: number | string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ
}

/** CPU seconds (user + system) of every process named `name`, from /proc. */
function cpuOf(name: string): number {
  const hz = 100; // USER_HZ on Linux
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== name) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return ticks / hz;
}

/** Connections accepted so far, and the server's own clock (ms) when it counted them. */
async function counted(server: ChildProcess): Promise<{ n: number; t: number }> {
  return new Promise((resolve) => {
    server.once('message', (m: { n: number; t: number }) => resolve(m));
    server.send('count');
  });
}

async function main(): Promise<void> {
  const server = fork(new URL(import.meta.url).pathname, ['server'], { stdio: 'inherit' });
  await new Promise((r) => server.once('message', r));

  // keepalived: one virtual server, N real servers, TCP_CHECK every second.
  const reals = Array.from(
    { length: N },
    (_, i) =>
      `  real_server ${address(i)} ${PORT} {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`,
  ).join('\n');
  writeFileSync(
    '/tmp/ka.conf',
    `global_defs {\n  router_id bench\n}\nvirtual_server 10.9.0.1 ${PORT} {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${reals}\n}\n`,
  );
  const ka = spawn(
    'keepalived',
    ['-n', '-C', '-f', '/tmp/ka.conf', '-p', '/tmp/ka.pid', '-c', '/tmp/ka-check.pid'],
    { stdio: 'ignore' },
  );
  await sleep(5000);
  let c0 = await counted(server);
  let cpu0 = cpuOf('keepalived');
  await sleep(SECONDS * 1000);
  let c1 = await counted(server);
  const kaChecks = c1.n - c0.n;
  const kaWindow = (c1.t - c0.t) / 1000;
  const kaCpu = cpuOf('keepalived') - cpu0;
  ka.kill('SIGTERM');
  await sleep(1000);
  try {
    execFileSync('pkill', ['-KILL', '-x', 'keepalived'], { stdio: 'ignore' });
  } catch {
    // none left: it stopped on SIGTERM
  }
  await sleep(1000);
  execFileSync('ipvsadm', ['-C']);
  const quiet0 = await counted(server);
  await sleep(2000);
  const leftover = (await counted(server)).n - quiet0.n;
  if (leftover > 0) throw new Error(`${leftover} connections after keepalived stopped`);

  // ipvs-warden's scheduler and TCP probe on the same targets.
  const scheduler = new Scheduler({ onResult: () => undefined, concurrency: 1024 });
  const checker = new TcpChecker();
  const timing = {
    intervalMs: 1000,
    fastIntervalMs: 1000,
    downIntervalMs: 1000,
    timeoutMs: 1000,
    jitter: 0.1,
  };
  for (let i = 0; i < N; i++)
    scheduler.add(`s${i}`, checker, { family: 4, address: address(i), port: PORT }, timing, {
      rise: 1,
      fall: 3,
      initial: 'up',
    });
  await sleep(5000);
  c0 = await counted(server);
  cpu0 = cpuOfPid('self');
  await sleep(SECONDS * 1000);
  c1 = await counted(server);
  const ourChecks = c1.n - c0.n;
  const ourWindow = (c1.t - c0.t) / 1000;
  const ourCpu = cpuOfPid('self') - cpu0;
  await scheduler.stop();
  server.kill();

  const row = (name: string, checks: number, cpu: number, window: number): string =>
    refusal({ atTargets: checks, windowS: window, targets: N, intervalS: 1, jitter: 0.1 }) ??
    `${name.padEnd(22)} ${(checks / window).toFixed(0).padStart(7)}/s  ${((cpu * 1000) / Math.max(1, checks)).toFixed(3).padStart(7)} cpu-ms/check  (${cpu.toFixed(2)} s CPU in ${window.toFixed(2)} s, asked for ${SECONDS} s)`;
  console.log(
    `# ${N} TCP targets, 1 s interval, ${SECONDS} s after 5 s warm-up, in the VM (emulated CPU: compare ratios)`,
  );
  console.log(row('keepalived 2.2.7', kaChecks, kaCpu, kaWindow));
  console.log(row('ipvs-warden', ourChecks, ourCpu, ourWindow));
  console.log(
    `ratio cpu per check ipvs-warden/keepalived: ${(ourCpu / ourChecks / (kaCpu / kaChecks)).toFixed(2)}`,
  );
}

if (process.argv[2] === 'server') {
  const { createServer } = await import('node:net');
  let accepted = 0;
  const s = createServer((sock) => {
    accepted++;
    sock.on('error', () => undefined);
    sock.end();
  });
  const { performance } = await import('node:perf_hooks');
  process.on('message', () => process.send?.({ n: accepted, t: performance.now() }));
  s.listen(PORT, '0.0.0.0', () => process.send?.('up'));
} else {
  await main();
}
