// ipvs-warden side by side with keepalived and ldirectord (Debian's packages) on the same
// targets, the same schedule and the same window, on the real kernel (in the VM, one boot):
// `npm run bench:peers`. Each peer runs as its own process, one after another, configured for
// the same N real servers (TCP connect or HTTP GET, every second, fall after one failure), beside
// the floor (our probe on bare timers) and, when named, the native floor (its connect in C).
//
// Measured the same way for each:
// - checks: counted where they land, by one target-server process (a forked child of this one,
//   the same for every peer) that answers each count with its own clock's time, so the window
//   is the one the server saw, not one this process assumed (HTTP: the requests it answered;
//   TCP: the kernel's count of connections completed to its listeners, Tcp PassiveOpens);
// - CPU: utime + stime + cutime + cstime of the peer's process tree, from /proc (keepalived's
//   checker child and ldirectord's ipvsadm children included);
// - RSS: VmRSS summed over the tree at the end of the window;
// - taken down: the healthy servers the peer took out of the table in the window, from the
//   removal lines its own log gained meanwhile (every target answered then);
// - detection: K targets stop answering (TCP: their listener closes, connections are refused;
//   HTTP: 503), one at a time over one interval (victimStops), and `ipvsadm -Ln` is polled until
//   each is gone from the table or at weight 0, each timed from its own stop.
// The guard (bench/peers-lib.ts `refusal`): a row whose counts disagree by more than 5 % (the
// targets' count against ipvs-warden's own check counter, between its healthy results and all;
// for every peer, against what the schedule can produce) is printed as REFUSED, not as numbers. It is there because of the old
// bench/vs-keepalived.ts figure (see bench/README.md, "The old count"), which this bench also
// re-measures (BENCH_LEGACY=0 leaves that out). Last, the kernel-table rows beside ipvsadm
// (bench/table.ts: start-up, reload, restart, dumps, writes at 10,000; BENCH_TABLE_ROUNDS=0 leaves
// them out).
import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import {
  combineRounds,
  figuresTable,
  HOST_BUSY_CORES,
  hostOthers,
  parseHostLoad,
  parsePassiveOpens,
  procCounter,
  parseRssKiB,
  parseStat,
  parseWardenMetrics,
  ratioTable,
  refusal,
  CHECK_RESULTS,
  countAt,
  type Mark,
  removalOf,
  removedServer,
  splitLines,
  tree,
  victimPositions,
  victimStops,
  USER_HZ,
  type Figures,
  type HostSample,
  type ProcStat,
  type WardenScrape,
  wardenWindow,
} from './peers-lib.js';
import { daemonSchema } from '../src/config/daemon.js';
import { NODE_START_FLAGS, heapModes, setV8Flags } from '../src/v8-flags.js';
import { errnoCode } from '../src/health/lean.js';
import { openNativeProbe } from './native.js';
import { procReader } from './procfile.js';
import { nginxTarget, type NginxTarget } from './targets.js';
import { rowsMarkdown, type TableRow } from './table-lib.js';
import { tableRows } from './table.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
/**
 * BENCH_HOST=1 (`npm run bench:peers:host`): on the host itself, off the emulation that runs
 * JIT-compiled code about 29 times slower and C 5 to 6 times (bench:emulation), so CPU per check
 * is compared on real cores. The host has no IPVS: ipvs-warden runs on its memory backend, and
 * keepalived's checker as it is, with its IPVS requests answered by bench/native/ipvs-shim.c
 * (LD_PRELOAD). Detection is read from the change each peer records (`hostRemovals`); no
 * black holes, table rows or ldirectord (which reads ipvsadm's table).
 */
const HOST = process.env.BENCH_HOST === '1';
const IPVS_SHIM = 'bench/native/build/ipvs-shim.so';
/** Where the shim writes the servers keepalived deletes, with when (IPVS_SHIM_LOG). */
const SHIM_LOG = '/tmp/bench-peers/ipvs-shim.log';
const SIZES = (process.env.BENCH_SIZES ?? '200,1000').split(',').map(Number);
const KINDS = (process.env.BENCH_KINDS ?? 'tcp,http').split(',') as ('tcp' | 'http')[];
const PEERS = (
  process.env.BENCH_PEERS ?? `ipvs-warden,floor,keepalived${HOST ? '' : ',ldirectord'}`
).split(',');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
/** Each row this many times, its peers in turn; the tables give medians (bench/peers-lib.ts). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
const WARM_S = Number(process.env.BENCH_WARM ?? 5);
/**
 * How many targets stop answering, one at a time, for detection. With ten, a uniform draw over
 * one interval moved the median by about a tenth of it: the full host run of 2026-12-06 23:46 had
 * ours 96 ms later than keepalived's on average, and with 100 victims at TCP 1,000 the medians
 * were 520 against 566 ms (README). Fifty is a quarter of the smallest row (200).
 */
const VICTIMS = Number(process.env.BENCH_VICTIMS ?? 50);
const LEGACY = !HOST && process.env.BENCH_LEGACY !== '0';
/** How long a peer may take to put every target in the table (node loads slowly in the VM). */
const FILL_S = Number(process.env.BENCH_FILL ?? 240);
const DETECT_S = Number(process.env.BENCH_DETECT ?? 30);
/**
 * Rows at these sizes run a second time with BENCH_BLACKHOLE of the pool black-holed: their
 * addresses route to a dummy device, so SYNs vanish and connects hang until the timeout, which
 * shows whether slow servers delay the checks of the others.
 */
const BLACKHOLE_SIZES = (HOST ? '' : (process.env.BENCH_BLACKHOLE_SIZES ?? '1000'))
  .split(',')
  .filter(Boolean)
  .map(Number);
const BLACKHOLE = Number(process.env.BENCH_BLACKHOLE ?? 0.1);
/** Where the black-holed servers are: a /16 routed to the dummy device bh0. */
const BLACKHOLE_NET = '10.99.0.0/16';
/**
 * HTTP targets answer this long after the request (0: at once): slow health pages, to show
 * whether a peer's checks of a pool whose servers answer slowly keep the schedule.
 */
const ANSWER_MS = Number(process.env.BENCH_ANSWER_MS ?? 0);
/**
 * BENCH_TARGET, what answers the targets that stay up (on PORT): `nginx` (Debian's nginx-light,
 * one worker; the default) or `node` (this file's own server, and the only one that answers
 * late, BENCH_ANSWER_MS). The victims are always this file's, so they can be turned off alone.
 * At 10,000 HTTP checks a second on the host, the node server took 0.64 to 0.92 of the two
 * cores, and its answers 8 to 38 ms: the peers then competed with it for the CPU, and checks
 * waited on it. In the VM (whose guest runs the host's own root, nginx with it) it answered
 * 190 to 390 requests a second at 1,000 HTTP targets; nginx took ours from 217 checks a second
 * to 696 and keepalived's healthy servers taken out from 687 to 0 (2026-12-07, one run each).
 */
const TARGET = process.env.BENCH_TARGET ?? (ANSWER_MS === 0 ? 'nginx' : 'node');
if (TARGET !== 'nginx' && TARGET !== 'node')
  throw new Error(`BENCH_TARGET=${TARGET}: set it to nginx or node`);
if (TARGET === 'nginx' && ANSWER_MS > 0)
  throw new Error('BENCH_ANSWER_MS needs BENCH_TARGET=node: nginx answers at once');
const INTERVAL_S = 1;
const JITTER = 0.1;
const PORT = 7000;
/** The victims' port: their own listeners, so they can be closed alone. */
const VICTIM_PORT = 7001;
const OURS = 'ipvs-warden';
/**
 * The floor: our own probe (the same checker's check()) for the same targets on a bare timer
 * each, in a process of its own, with no scheduler, metrics or logs, changing no table (the
 * kernel holds the same one for it as for the peers): what the probe itself costs in node
 * here, so the rows show what the daemon adds above it.
 */
const FLOOR = 'floor';
/**
 * The native floor (TCP only): the floor's bare timers and cap, with each connect made, read and
 * reset in C (src/native/probe.c, the daemon's connect probe), and JavaScript called once
 * per loop turn for all that finished. Beside the floor it splits the probe's CPU into what the kernel does and what node's
 * JavaScript handle costs: the most a probe engine in C could save ipvs-warden here.
 */
const NATIVE_FLOOR = 'native-floor';
/** The floors measure their probes alone: no table of their own, no detection. */
const isFloor = (peer: string): boolean => peer === FLOOR || peer === NATIVE_FLOOR;
const TCP_ONLY = 'not run (TCP only)';
/**
 * The most checks the floor has in flight: the daemon's own cap (check_concurrency's default).
 * Uncapped, it kept up to every target in flight at once, the target server fell behind, and
 * its HTTP rows at 1,000 were refused in every run (most checks timed out).
 */
const FLOOR_CAP = Number(
  process.env.BENCH_FLOOR_CAP ??
    daemonSchema().find((k) => k.key === 'check_concurrency')?.default ??
    256,
);
/** The floor fills no table: it is measured after this long (node's JIT warms up). */
const FLOOR_WARM_S = Number(process.env.BENCH_FLOOR_WARM ?? 20);
/** Where the report goes, relative to the project (a narrowed run may keep the full one). */
const OUT = process.env.BENCH_OUT ?? (HOST ? 'bench/host.md' : 'bench/README.md');
/** Rounds of the kernel-table rows beside ipvsadm (bench/table.ts) after the peers; 0: none. */
const TABLE_ROUNDS = HOST ? 0 : Number(process.env.BENCH_TABLE_ROUNDS ?? 3);
/**
 * node's flags for ipvs-warden and the floor: the package's (NODE_START_FLAGS), or these instead
 * (e.g. `--max-semi-space-size=4 --cpu-prof --cpu-prof-dir=DIR` to profile it here).
 */
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [
  ...NODE_START_FLAGS,
];
/** How node was started for ipvs-warden and the floor, for the report. */
function nodeFlagsText(): string {
  if (NODE_FLAGS.length === 0) return 'node with no flags';
  const flags = NODE_FLAGS.map((f) => `\`${f}\``).join(' ');
  const packaged = NODE_FLAGS.join(' ') === NODE_START_FLAGS.join(' ');
  return `node ${flags}${packaged ? ', as the package starts it' : ''}`;
}
/** Extra daemon keys for ipvs-warden, "key: value;key: value" (e.g. `check_workers: 2`). */
const DAEMON = (process.env.BENCH_DAEMON ?? '')
  .split(';')
  .map((l) => l.trim())
  .filter(Boolean);
const work = '/tmp/bench-peers';
/** The peers' logs, where the host can read them after the VM is gone. */
const logs = join(root, '.scratch/bench-peers');
/** The host's load beside the run (bench/host-load.sh, started by bench/peers.sh). */
const hostLoadFile = join(root, '.scratch/host-load.txt');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Target i: its own loopback address (all of 127/8 is local); targets 0 to VICTIMS - 1 are the victims. */
const address = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
/**
 * The pool of a row: `n` real servers, the last `holes` of them black-holed. The victims (targets
 * 0 to VICTIMS - 1, on VICTIM_PORT) are spread evenly through the servers that answer, the other
 * targets in order between them: a peer that serves the start of its list first when it is
 * behind gains nothing from where they stand (before 2026-12-05 they led the list).
 */
function pool(n: number, holes: number): { address: string; port: number }[] {
  const answering = n - holes;
  const victimAt = victimPositions(answering, VICTIMS);
  let next = VICTIMS;
  return Array.from({ length: n }, (_, i) => {
    if (i >= answering) return { address: `10.99.${(i >> 8) & 0xff}.${i & 0xff}`, port: PORT };
    const k = victimAt.get(i);
    return k === undefined
      ? { address: address(next++), port: PORT }
      : { address: address(k), port: VICTIM_PORT };
  });
}
const VIPS: Record<string, string> = {
  'ipvs-warden': '10.9.0.1',
  keepalived: '10.9.0.2',
  ldirectord: '10.9.0.3',
  [FLOOR]: '10.9.0.4',
  [NATIVE_FLOOR]: '10.9.0.5',
};

// ---- the target server (a child process) ----

interface CountReply {
  readonly connections: number;
  readonly requests: number;
  /** The kernel's count of connections completed to listeners here (TCP checks that landed). */
  readonly opened: number;
  /** Connections its listeners failed to accept (out of descriptors), since it started. */
  readonly acceptErrors: number;
  /** SYNs the kernel dropped at this namespace's listeners (TcpExt ListenDrops). */
  readonly listenDrops: number;
  /** Of those, the ones dropped for a full accept queue (TcpExt ListenOverflows). */
  readonly listenOverflows: number;
  /** The server process's CPU (user + system, µs) since it started, nginx's added. */
  readonly cpuUs: number;
  /** Its event loop's longest delay (ms) since the last count: did it stall? */
  readonly lagMaxMs: number;
  /** performance.now() of the server process when it answered. */
  readonly t: number;
  /**
   * When `requests` and `opened` were read (performance.now() of the server process): nginx's
   * count at its status request's middle, not at `t`, which comes after the /proc reads (the
   * request took 10 to 150 ms at 10,000 in the VM).
   */
  readonly requestsT: number;
  readonly openedT: number;
  /** How long nginx's status request took (ms; 0 without nginx). */
  readonly statusMs: number;
  /** performance.timeOrigin of the server process: its times on the bench's clock. */
  readonly origin: number;
}

function serve(): void {
  // Opened now: with thousands of checks' connections open, opening it could fail (EMFILE).
  const snmp = procReader('/proc/net/snmp');
  const netstat = procReader('/proc/net/netstat');
  let connections = 0;
  /** Connections the listeners could not accept (out of descriptors): counted, not fatal. */
  let acceptErrors = 0;
  let requests = 0;
  /** The victims (by index) that answer 503 (HTTP) or refuse (TCP: their listener closed). */
  const down = new Set<number>();
  /** A victim's index by its listener's address. */
  const victimOf = new Map(Array.from({ length: VICTIMS }, (_, k) => [address(k), k]));
  // Whether the server itself falls behind (a stall fills the listener's accept queue).
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    const k =
      req.socket.localPort === VICTIM_PORT
        ? victimOf.get(req.socket.localAddress ?? '')
        : undefined;
    const failing = k !== undefined && down.has(k);
    res.writeHead(failing ? 503 : 200, {
      'content-type': 'text/plain',
      connection: 'close',
    });
    res.end(failing ? 'down\n' : 'ok\n');
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    requests++;
    if (ANSWER_MS > 0) setTimeout(answer, ANSWER_MS, req, res);
    else answer(req, res);
  };
  // One HTTP server, fed the connections the listeners accept while HTTP is measured.
  const web = createServer(handler);
  web.keepAliveTimeout = 1000;
  let kind: 'tcp' | 'http' = 'http';
  const listen = (host: string, port: number): Promise<NetServer> =>
    new Promise((resolve, reject) => {
      const s = createNetServer({ pauseOnConnect: true }, (sock) => {
        connections++;
        sock.on('error', () => undefined);
        // A TCP check only connects: accepting and closing is all its server does. An HTTP
        // server's parser and timers on every connection made this process the VM's bottleneck
        // at 1,000 TCP targets (a core for about 750 a second), and a peer that connected faster
        // than it accepted overflowed the listener's queue (SYNs dropped, healthy servers flapped).
        if (kind === 'tcp') sock.destroy();
        else {
          web.emit('connection', sock);
          sock.resume();
        }
      });
      s.once('error', reject);
      s.listen({ host, port, backlog: 4096 }, () => {
        s.off('error', reject);
        // An accept that fails (EMFILE) is the server's 'error': it must not end the run.
        s.on('error', () => acceptErrors++);
        resolve(s);
      });
    });
  /** Each victim's listener; undefined once closed (a TCP victim down). */
  const victims: (NetServer | undefined)[] = [];
  const up = async (): Promise<void> => {
    down.clear();
    await Promise.all(
      Array.from({ length: VICTIMS }, async (_, k) => {
        victims[k] ??= await listen(address(k), VICTIM_PORT);
      }),
    );
  };
  process.on('message', (m: { op: string; id: number; kind?: string; victim?: number }) => {
    void (async () => {
      if (m.op === 'kind') {
        kind = m.kind === 'tcp' ? 'tcp' : 'http';
      } else if (m.op === 'down') {
        // One victim at a time (bench's victimStops).
        const k = m.victim;
        if (k !== undefined) down.add(k);
        // TCP: refuse (the listener closes; it keeps no connection open).
        if (k !== undefined && m.kind === 'tcp') {
          victims[k]?.close();
          victims[k] = undefined;
        }
      } else if (m.op === 'up') {
        await up();
      }
      const nginx = others ? await others : undefined;
      const asked = performance.now();
      const their = nginx ? await nginx.counts() : { accepts: 0, requests: 0 };
      const answered = performance.now();
      const theirCpuUs = nginx ? cpuOfTree(nginx.pid).cpu * 1e6 : 0;
      const openedT = performance.now();
      const opened = parsePassiveOpens(snmp());
      const ext = netstat();
      const cpu = process.cpuUsage();
      const reply: CountReply = {
        connections: connections + their.accepts,
        requests: requests + their.requests,
        opened,
        acceptErrors,
        listenDrops: procCounter(ext, 'TcpExt', 'ListenDrops'),
        listenOverflows: procCounter(ext, 'TcpExt', 'ListenOverflows'),
        cpuUs: cpu.user + cpu.system + theirCpuUs,
        lagMaxMs: lag.max / 1e6,
        t: performance.now(),
        // Its own count of the few victims' requests is read here too, a moment later.
        requestsT: nginx ? (asked + answered) / 2 : performance.now(),
        openedT,
        statusMs: nginx ? answered - asked : 0,
        origin: performance.timeOrigin,
      };
      lag.reset();
      process.send?.({ id: m.id, ...reply });
    })();
  });
  // nginx answers PORT, when it is the target: its counts are added to this server's.
  const others = TARGET === 'nginx' ? nginxTarget(PORT, address(VICTIMS)) : undefined;
  // Stopped with this process, however it ends (SIGTERM: bench's end; disconnect: the bench died).
  let started: NginxTarget | undefined;
  void others?.then((t) => (started = t));
  process.once('exit', () => started?.stop());
  process.once('SIGTERM', () => process.exit(0));
  process.once('disconnect', () => process.exit(0));
  Promise.all([others ?? listen('0.0.0.0', PORT), up()]).then(
    () => process.send?.({ id: 0 }),
    (error: unknown) => {
      const fix =
        TARGET === 'nginx'
          ? " (bash test/setup.sh installs nginx-light; BENCH_TARGET=node uses this bench's own server)"
          : '';
      console.error(`bench: the target server could not start: ${(error as Error).message}${fix}`);
      process.exit(1);
    },
  );
}

class Targets {
  private next = 1;
  private readonly waiting = new Map<number, (r: CountReply) => void>();
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  constructor() {
    this.proc = fork(fileURLToPath(import.meta.url), ['server'], { stdio: 'inherit' });
    this.ready = new Promise((resolve, reject) => {
      this.waiting.set(0, () => resolve());
      this.proc.once('exit', (code) => reject(new Error(`the target server exited (${code})`)));
    });
    this.proc.on('message', (m: CountReply & { id: number }) => {
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
  }
  ask(op: 'count' | 'down' | 'up' | 'kind', kind?: string, victim?: number): Promise<CountReply> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ op, id, kind, victim });
    });
  }
}

// ---- /proc ----

function procs(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push(parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
/**
 * CPU seconds of `pid`'s main thread and of each other thread, as `comm+N` (N: its thread id
 * less the process's). Node names its V8 and libuv helpers "node" too, so the order tells them
 * apart; the names tell node's helpers from the kernel's io_uring workers ("iou-wrk-N").
 */
function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        // V8's workers are made at start, libuv's pool only when first used.
        const name = Number(tid) === pid ? 'main' : `${comm}+${Number(tid) - pid}`;
        out.set(name, (out.get(name) ?? 0) + t.cpu);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** The host's load as last sampled (bench/host-load.sh, started by bench/peers.sh). */
function hostSample(): HostSample | undefined {
  if (HOST) {
    // Everything measured runs under this process: the others are the rest of /proc/stat.
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
    const j = (i: number): number => Number(f[i] ?? 0);
    // user nice system (idle iowait) irq softirq steal, as bench/host-load.sh adds them.
    const busy = j(1) + j(2) + j(3) + j(6) + j(7) + j(8);
    return { atMs: Date.now(), busy, vm: Math.round(cpuOfTree(process.pid).cpu * USER_HZ) };
  }
  try {
    return parseHostLoad(readFileSync(hostLoadFile, 'utf8')).at(-1);
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process tree, and how much of it was in the kernel. */
function cpuOfTree(rootPid: number): { cpu: number; system: number } {
  const all = procs();
  const pids = new Set(tree(all, rootPid));
  const mine = all.filter((p) => pids.has(p.pid));
  return {
    cpu: mine.reduce((s, p) => s + p.cpu, 0),
    system: mine.reduce((s, p) => s + p.system, 0),
  };
}
function rssOfTree(rootPid: number): number {
  let kib = 0;
  for (const pid of tree(procs(), rootPid)) {
    try {
      kib += parseRssKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      // gone meanwhile
    }
  }
  return kib / 1024;
}

// ---- the table ----

/** Real servers of one service in `ipvsadm -Ln -t VIP:80`: address:port -> weight. */
function table(vip: string): Map<string, number> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = execFileSync('ipvsadm', ['-Ln', '-t', `${vip}:80`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 << 20,
    });
  } catch {
    return out; // no such service (yet)
  }
  for (const line of text.split('\n')) {
    const m = /^\s+->\s+(\S+)\s+\S+\s+(\d+)/.exec(line);
    if (m?.[1] && m[1] !== 'RemoteAddress:Port') out.set(m[1], Number(m[2]));
  }
  return out;
}

/**
 * A peer's log for a row (its stdout and stderr) while the peer runs. In the VM it is written to
 * the guest's own tmpfs and copied to `logs` once the peer has stopped (`keepLog`): on the host's
 * share (virtio-9p) each write is a request QEMU serves on the host's cores, the ones the guest's
 * CPUs run on, so a peer that logs more (a server taken down: the result and the table change,
 * and again on the way back) would be charged for the share as well.
 */
const logOf = (peer: string, kind: string, n: number, holes: number): string =>
  join(HOST ? logs : join(work, 'logs'), logName(peer, kind, n, holes));

const logName = (peer: string, kind: string, n: number, holes: number): string =>
  `${peer}-${kind}-${n}${holes ? `-bh${holes}` : ''}.log`;

/**
 * In the VM, a stopped peer's log added to where the host reads it (`logs`), after the rounds
 * before it, as the peer wrote there before.
 */
function keepLog(peer: string, kind: string, n: number, holes: number): void {
  if (HOST) return;
  const from = logOf(peer, kind, n, holes);
  try {
    appendFileSync(join(logs, logName(peer, kind, n, holes)), readFileSync(from));
    rmSync(from);
  } catch (error) {
    console.error(`#   ${peer}'s log was not kept: ${String(error)}`);
  }
}

/**
 * A log read as it grows: each call returns the complete lines written since the last one,
 * starting from where the file ended when the tail was made. Reading only the new bytes keeps a
 * 10,000-server row's log of megabytes from being parsed again on every poll, on the cores the
 * measured peer runs on.
 */
function tailOf(path: string): () => string[] {
  let offset = 0;
  try {
    offset = statSync(path).size;
  } catch {
    // not written yet: read it from its start
  }
  let carry = '';
  const decoder = new StringDecoder('utf8');
  const buf = Buffer.alloc(1 << 20);
  return () => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return []; // not written yet
    }
    const lines: string[] = [];
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n === 0) break;
        offset += n;
        const split = splitLines(carry, decoder.write(buf.subarray(0, n)));
        carry = split.carry;
        lines.push(...split.lines);
      }
    } finally {
      closeSync(fd);
    }
    return lines;
  };
}

/**
 * On the host, when each stopped victim left the table since it stopped (`since`: wall clock,
 * ms, by victim), as each peer recorded the change, to the millisecond: ipvs-warden's log
 * (`reconcile.applied` for a server down) and the deletions the shim logged for keepalived.
 * `lines` are the log's lines written since the last call.
 */
function hostRemovals(
  peer: string,
  lines: readonly string[],
  since: ReadonlyMap<string, { readonly wall: number }>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of lines) {
    const r = removalOf(line, peer === OURS);
    const from = r ? since.get(r.server)?.wall : undefined;
    if (r && from !== undefined && r.ms >= from && !out.has(r.server)) out.set(r.server, r.ms);
  }
  return out;
}

// ---- the peers' configurations ----

function wardenConfig(kind: string, n: number, holes = 0): string {
  const reals = pool(n, holes)
    .map((r, i) => `      - {name: r${i}, address: ${r.address}, port: ${r.port}}`)
    .join('\n');
  const check = kind === 'tcp' ? '{type: tcp}' : '{type: http, path: /healthz}';
  return `daemon:
  backend: ${HOST ? 'memory' : 'netlink'}
  log_format: json
  listen: 127.0.0.1:9476
  metrics_per_server: false
  pid_file: ${work}/warden.pid${DAEMON.map((l) => `\n  ${l}`).join('')}
defaults:
  interval: ${INTERVAL_S}s
  fast_interval: ${INTERVAL_S}s
  down_interval: ${INTERVAL_S}s
  timeout: 1s
  jitter: ${JITTER}
  rise: 1
  fall: 1
  checks: [${check}]
virtual_services:
  - name: bench
    address: ${VIPS[OURS]}
    port: 80
    scheduler: rr
    on_failure: remove
    real_servers:
${reals}
`;
}

function keepalivedConfig(kind: string, n: number, holes = 0): string {
  const checker =
    kind === 'tcp'
      ? `TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }`
      : `HTTP_GET {\n      url {\n        path /healthz\n        status_code 200\n      }\n      connect_timeout 1\n      retry 0\n    }`;
  const reals = pool(n, holes)
    .map((r) => `  real_server ${r.address} ${r.port} {\n    weight 1\n    ${checker}\n  }`)
    .join('\n');
  return `global_defs {\n  router_id bench\n}\nvirtual_server ${VIPS.keepalived} 80 {\n  delay_loop ${INTERVAL_S}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${reals}\n}\n`;
}

function ldirectordConfig(kind: string, n: number, holes = 0): string {
  const reals = pool(n, holes)
    .map((r) => `\treal=${r.address}:${r.port} masq`)
    .join('\n');
  const check =
    kind === 'tcp'
      ? '\tchecktype=connect'
      : '\tservice=http\n\tchecktype=negotiate\n\trequest="healthz"\n\treceive="ok"';
  return `checktimeout=1\nnegotiatetimeout=1\ncheckinterval=${INTERVAL_S}\nfailurecount=1\nquiescent=no\nautoreload=no\n\nvirtual=${VIPS.ldirectord}:80\n${reals}\n${check}\n\tscheduler=rr\n\tprotocol=tcp\n`;
}

function startPeer(peer: string, kind: string, n: number, holes: number): ChildProcess {
  const log = logOf(peer, kind, n, holes);
  const out = (): ['ignore', number, number] => {
    const fd = openLog(log);
    return ['ignore', fd, fd];
  };
  if (peer === OURS) {
    const file = join(work, 'warden.yaml');
    writeFileSync(file, wardenConfig(kind, n, holes));
    return spawn(
      process.execPath,
      [...NODE_FLAGS, join(root, 'dist/src/main.js'), 'run', '--config', file],
      {
        stdio: out(),
      },
    );
  }
  if (isFloor(peer)) {
    // The same kernel table as the peers keep (every answering target in), so the IPVS and
    // conntrack hooks that every probe's packets pass cost the floor what they cost them.
    const vip = `${VIPS[peer]}:80`;
    const rules = [`-A -t ${vip} -s rr`];
    for (const r of pool(n, holes).slice(0, n - holes))
      rules.push(`-a -t ${vip} -r ${r.address}:${r.port} -m -w 1`);
    if (!HOST) execFileSync('ipvsadm', ['-R'], { input: `${rules.join('\n')}\n` });
    rmSync(FLOOR_COUNTS, { force: true });
    return spawn(
      process.execPath,
      [
        ...NODE_FLAGS,
        fileURLToPath(import.meta.url),
        'floor',
        kind,
        String(n),
        String(holes),
        peer === NATIVE_FLOOR ? 'native' : 'checker',
      ],
      { stdio: out() },
    );
  }
  if (peer === 'keepalived') {
    const file = join(work, 'keepalived.conf');
    rmSync(SHIM_LOG, { force: true });
    writeFileSync(file, keepalivedConfig(kind, n, holes));
    return spawn(
      '/usr/sbin/keepalived',
      [
        '--dont-fork',
        '--log-console',
        '--no-syslog',
        '--check',
        '--use-file',
        file,
        '--pid',
        join(work, 'ka.pid'),
        '--checkers_pid',
        join(work, 'ka-check.pid'),
      ],
      {
        stdio: out(),
        env: HOST
          ? { ...process.env, LD_PRELOAD: join(root, IPVS_SHIM), IPVS_SHIM_LOG: SHIM_LOG }
          : undefined,
      },
    );
  }
  const file = join(work, 'ldirectord.cf');
  writeFileSync(file, ldirectordConfig(kind, n, holes));
  // -d: the foreground (no fork), its log on stderr.
  return spawn('/usr/sbin/ldirectord', ['-d', file, 'start'], { stdio: out() });
}

const sizeOf = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

/**
 * The healthy servers `peer` took out of the table while its log grew from `from` to `to`
 * bytes (every target answered then): one removal line each (`removedServer`), counted once a
 * server. A peer whose output is block-buffered (keepalived's to a file) is read to within a
 * buffer at the window's edges.
 */
function takenDownIn(peer: string, path: string, from: number, to: number): number {
  if (to <= from) return 0;
  const buf = Buffer.alloc(to - from);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  const servers = new Set<string>();
  for (const line of buf.toString('utf8').split('\n')) {
    const server = removedServer(line, peer);
    if (server) servers.add(server);
  }
  return servers.size;
}

/** A plain fd: the peer writes its log without going through this process's event loop. */
const openLog = (path: string): number => openSync(path, 'a');

/**
 * ipvs-warden's own count and why its checks wait (bench/peers-lib.ts `parseWardenMetrics`),
 * with the time of the count. `mark` is called as the count's first series arrives and again
 * once its last has: the bench counts the targets then, to compare over the same window.
 */
async function wardenChecks(mark: () => void): Promise<(WardenScrape & { t: number }) | null> {
  try {
    // Plain: the bytes stay on loopback, and gzip costs the daemon more CPU (bench:scrape).
    const res = await fetch('http://127.0.0.1:9476/metrics', {
      headers: { 'accept-encoding': 'identity' },
      signal: AbortSignal.timeout(20_000),
    });
    if (!res.body) return null;
    // Each part's arrival, by where it ends in the page: the daemon reads the counter's series
    // part by part, a turn of its event loop between two, and at 10,000 in the VM a scrape took
    // 2 to 5 s, so the count's time is taken between its first and last series' arrival.
    const decoder = new TextDecoder();
    const ends: [number, number][] = [];
    const series = `\n${CHECK_RESULTS}{`;
    let text = '';
    let first = -1;
    let after = -1;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      const from = Math.max(0, text.length - series.length);
      text += decoder.decode(chunk, { stream: true });
      ends.push([text.length, performance.now()]);
      if (first < 0 && (first = text.indexOf(series, from)) >= 0) mark();
      if (first >= 0 && after < 0 && (after = text.indexOf('\n# HELP', Math.max(first, from))) >= 0)
        mark();
    }
    text += decoder.decode();
    if (after < 0) mark();
    const arrived = (offset: number): number =>
      (ends.find(([end]) => end > offset) ?? ends.at(-1))?.[1] ?? performance.now();
    const last = text.lastIndexOf(series);
    return { ...parseWardenMetrics(text), t: (arrived(first) + arrived(last)) / 2 };
  } catch {
    return null;
  }
}

/** The floor's own count, written every 100 ms (`t`: its clock, ms since the epoch). */
interface FloorCounts {
  all: number;
  healthy: number;
  t: number;
  failure?: string;
}
const FLOOR_COUNTS = join(work, 'floor-counts.json');

function floorChecks(): FloorCounts | null {
  try {
    return JSON.parse(readFileSync(FLOOR_COUNTS, 'utf8')) as FloorCounts;
  } catch {
    return null;
  }
}

async function stop(proc: ChildProcess): Promise<void> {
  const pid = proc.pid ?? -1;
  const exited = new Promise<void>((r) =>
    proc.exitCode !== null ? r() : proc.once('exit', () => r()),
  );
  proc.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (!done) {
    for (const p of tree(procs(), pid)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await exited;
  }
  // keepalived's checker child may outlive its parent for a moment.
  for (
    let i = 0;
    i < 50 && procs().some((p) => p.ppid === 1 && /keepalived|ldirectord/.test(p.comm));
    i++
  )
    await sleep(100);
  if (!HOST) execFileSync('ipvsadm', ['-C']);
}

async function measure(
  targets: Targets,
  peer: string,
  kind: 'tcp' | 'http',
  n: number,
  holes: number,
): Promise<Figures & { windows: string }> {
  /** The servers that answer: what fills the table and where checks are counted. */
  const answering = n - holes;
  const base = {
    peer,
    kind,
    targets: n,
    blackholed: holes,
    checksPerS: NaN,
    share: NaN,
    cpuMsPerCheck: NaN,
    rssMiB: NaN,
    detectMs: [],
    missed: 0,
  };
  const vip = VIPS[peer] ?? '';
  await targets.ask('kind', kind);
  const t0 = performance.now();
  const proc = startPeer(peer, kind, n, holes);
  const pid = proc.pid ?? -1;
  let exited = false;
  proc.once('exit', () => (exited = true));
  try {
    // Until every target is in the table: each peer puts a server in once a check passes.
    let seen = 0;
    const wanted = new Set(
      pool(n, holes)
        .slice(0, answering)
        .map((r) => `${r.address}:${r.port}`),
    );
    // No table to read on the host: every peer is measured after the floor's warm-up.
    if (isFloor(peer) || HOST) {
      await sleep(FLOOR_WARM_S * 1000);
      seen = answering;
    }
    while (!exited && seen < answering && performance.now() - t0 < FILL_S * 1000) {
      seen = [...table(vip)].filter(([rs, w]) => w > 0 && wanted.has(rs)).length;
      if (seen >= answering) break;
      await sleep(500);
    }
    const fillS = (performance.now() - t0) / 1000;
    if (seen < answering) {
      const why = exited
        ? `exited (${proc.exitCode})`
        : `${seen} of ${answering} in the table after ${fillS.toFixed(0)} s`;
      return { ...base, refused: `could not run: ${why}`, windows: '' };
    }
    if (exited)
      return { ...base, refused: `could not run: exited (${proc.exitCode})`, windows: '' };
    console.error(
      isFloor(peer) || HOST
        ? `#   measured after ${fillS.toFixed(0)} s`
        : `#   ${seen} in the table after ${fillS.toFixed(0)} s`,
    );
    await sleep(WARM_S * 1000);
    // TCP: the kernel's count. A check that resets its connection as soon as it is up (ours)
    // can go before the server accepts it, and the server never sees it; one that closes with
    // a FIN (keepalived's) is still accepted. The scrapes of our /metrics are some of these.
    const pick = (c: CountReply): number => (kind === 'tcp' ? c.opened : c.requests);
    const countT = (c: CountReply): number => (kind === 'tcp' ? c.openedT : c.requestsT);
    /** A count of the targets at its time on this process's clock. */
    const mark = (c: CountReply): Mark => ({
      n: pick(c),
      at: c.origin + countT(c) - performance.timeOrigin,
    });
    const count = async (
      end: boolean,
    ): Promise<{
      c: CountReply;
      own: { all: number; healthy: number } | null;
      warden: WardenScrape | null;
      ownT: number;
      /** The targets' count at `ownT`, from their counts while our counter was read. */
      targetsAtOwn: number | undefined;
      /** How long the scrape of our /metrics took (ms; 0 for another peer). */
      ownMs: number;
      cpu: number;
      system: number;
      at: number;
      host: HostSample | undefined;
      threads: Map<string, number>;
    }> => {
      // CPU and the targets' count are read together, outside the scrape of our /metrics
      // (after it at the start of the window, before it at the end): the scrape is the bench's
      // doing, not checking's, and it slows the checks (at 10,000 in the VM it took 2 to 5 s;
      // a window that took in one scrape and not the other counted its slower checks).
      const cpuNow = (): { cpu: number; system: number; threads: Map<string, number> } => ({
        ...cpuOfTree(pid),
        threads: peer === OURS || isFloor(peer) ? cpuByThread(pid) : new Map<string, number>(),
      });
      const marks: Promise<CountReply>[] = [];
      let ownMs = 0;
      const scrape = async (): Promise<(WardenScrape & { t: number }) | null> => {
        if (peer !== OURS) return null;
        const from = performance.now();
        const got = await wardenChecks(() => marks.push(targets.ask('count')));
        ownMs = performance.now() - from;
        return got;
      };
      const before = end ? cpuNow() : undefined;
      const asked = performance.now();
      const first = end ? null : await scrape();
      const c = await targets.ask('count');
      const { cpu, system, threads } = before ?? cpuNow();
      const warden = end ? await scrape() : first;
      const at = performance.now();
      const own: { all: number; healthy: number; t?: number } | null =
        warden ?? (isFloor(peer) ? floorChecks() : null);
      const ownT = own?.t ?? (asked + at) / 2;
      return {
        c,
        own,
        warden,
        // The floor's count carries its own time (written every 100 ms).
        ownT,
        targetsAtOwn: warden ? countAt((await Promise.all(marks)).map(mark), ownT) : undefined,
        ownMs,
        cpu,
        system,
        at,
        host: hostSample(),
        threads,
      };
    };
    const log = logOf(peer, kind, n, holes);
    const a = await count(false);
    const logFrom = sizeOf(log);
    await sleep(SECONDS * 1000);
    const b = await count(true);
    const logTo = sizeOf(log);
    const takenDown = isFloor(peer) ? undefined : takenDownIn(peer, log, logFrom, logTo);
    const rssMiB = rssOfTree(pid);
    const checks = pick(b.c) - pick(a.c);
    const windowS = (countT(b.c) - countT(a.c)) / 1000;
    const ownS = (b.ownT - a.ownT) / 1000;
    const ownRate = a.own && b.own ? (b.own.all - a.own.all) / ownS : undefined;
    const ownHealthyRate = a.own && b.own ? (b.own.healthy - a.own.healthy) / ownS : undefined;
    // The targets over our counter's own window: the guard compares the two there.
    const targetsRateOwn =
      a.targetsAtOwn !== undefined && b.targetsAtOwn !== undefined
        ? (b.targetsAtOwn - a.targetsAtOwn) / ownS
        : undefined;
    const timing =
      peer === OURS
        ? `; our /metrics took ${a.ownMs.toFixed(0)} and ${b.ownMs.toFixed(0)} ms, nginx's status ${a.c.statusMs.toFixed(0)} and ${b.c.statusMs.toFixed(0)} (start, end); over our counter's window the targets ${targetsRateOwn?.toFixed(1) ?? '?'}/s`
        : '';
    // Where node's CPU went: its main thread, and V8's and libuv's helper threads.
    const threads = [...b.threads]
      .map(([name, cpu]) => [name, cpu - (a.threads.get(name) ?? 0)] as const)
      .filter(([, cpu]) => cpu >= 0.05)
      .sort((x, y) => y[1] - x[1])
      .map(([name, cpu]) => `${name} ${cpu.toFixed(1)}`)
      .join(', ');
    // User or kernel: the kernel's share (syscalls, and loopback's handshakes, done in the
    // connecting process's syscalls) is the same work for every peer that checks alike.
    const perCheck = (s: number): string => ((s * 1000) / Math.max(1, checks)).toFixed(3);
    const split = `CPU-ms/check user ${perCheck(b.cpu - a.cpu - (b.system - a.system))}, system ${perCheck(b.system - a.system)}`;
    const others = hostOthers(a.host, b.host);
    const unaccepted = b.c.acceptErrors - a.c.acceptErrors;
    const dropped = b.c.listenDrops - a.c.listenDrops;
    const overflows = b.c.listenOverflows - a.c.listenOverflows;
    // The target server's own load: a server near a core, or stalling, drops SYNs for any peer.
    const serverCores = (b.c.cpuUs - a.c.cpuUs) / 1000 / (b.c.t - a.c.t);
    const server = `the target server used ${serverCores.toFixed(2)} cores, its loop stalled at most ${b.c.lagMaxMs.toFixed(0)} ms`;
    const why = a.warden && b.warden ? `; ${wardenWindow(a.warden, b.warden)}` : '';
    const windows = `${peer} ${kind} ${n}${holes ? ` (${holes} black-holed)` : ''}: window assumed ${SECONDS} s, this process ${((b.at - a.at) / 1000).toFixed(2)} s, the server ${windowS.toFixed(2)} s; fill ${fillS.toFixed(0)} s${ownRate !== undefined ? `; own counter ${ownRate.toFixed(1)}/s (${(ownHealthyRate ?? 0).toFixed(1)}/s healthy) vs targets ${(checks / windowS).toFixed(1)}/s` : ''}${timing}; ${split}${threads ? `; CPU s by thread: ${threads}` : ''}${why}${takenDown !== undefined ? `; ${takenDown} healthy servers taken out of the table (its log)` : ''}${unaccepted ? `; the target server failed to accept ${unaccepted} connections (out of descriptors)` : ''}; the targets' listeners dropped ${dropped} SYNs (ListenDrops; ${overflows} for a full accept queue); ${server}; host: ${others === null ? 'load not sampled' : `${others.toFixed(2)} cores used besides ${HOST ? 'the bench' : 'the VM'}`}`;
    if ((peer === OURS || isFloor(peer)) && ownRate === undefined)
      return {
        ...base,
        refused: `REFUSED: counts disagree: no count of its own from ${peer === OURS ? "ipvs-warden's /metrics" : 'the floor'}`,
        windows,
      };
    // On the host no table says that a peer has started checking: one that checked nothing in
    // the window (keepalived at 50,000, 45 s after its start) could not run.
    const refused =
      (checks <= 0 ? 'could not run: no check reached the targets in the window' : undefined) ??
      refusal({
        atTargets: checks,
        windowS,
        ownRate,
        ownHealthyRate,
        targetsRateOwn,
        targets: answering,
        intervalS: INTERVAL_S,
        jitter: peer === OURS ? JITTER : 0,
      }) ??
      undefined;

    const measured = {
      ...base,
      checksPerS: checks / windowS,
      share: checks / windowS / (answering / INTERVAL_S),
      cpuMsPerCheck: ((b.cpu - a.cpu) * 1000) / Math.max(1, checks),
      rssMiB,
      ...(takenDown === undefined ? {} : { takenDown }),
      hostOthers: others,
      refused,
      windows,
    };
    // The floor changes no table, so it has no detection.
    if (isFloor(peer)) return measured;
    // Detection: the victims stop answering one at a time over one interval (victimStops), and
    // the table is polled until each is out; each one's time is from its own stop.
    const victims = Array.from({ length: VICTIMS }, (_, i) => `${address(i)}:${VICTIM_PORT}`);
    console.error(`#   window done; ${VICTIMS} targets stop answering, one at a time`);
    // From here on only what the peer writes after the first stop is read (host mode).
    const tail = HOST ? tailOf(peer === OURS ? logOf(peer, kind, n, holes) : SHIM_LOG) : null;
    const stops = victimStops(VICTIMS, INTERVAL_S * 1000, Math.random);
    const first = performance.now();
    /** Each stopped victim's stop: performance.now() and the wall clock. */
    const stopped = new Map<string, { at: number; wall: number }>();
    /** How late each stop was made against its plan, and how long its ask took, ms. */
    const late: number[] = [];
    const asked: number[] = [];
    const detectMs: number[] = [];
    const pending = new Set(victims);
    while (pending.size > 0 && performance.now() - first < (DETECT_S + INTERVAL_S) * 1000) {
      for (const [k, v] of victims.entries()) {
        if (stopped.has(v) || performance.now() - first < (stops[k] ?? 0)) continue;
        // Timed from the asking: a peer quick enough could record the removal before the reply.
        const at = performance.now();
        const wall = Date.now();
        await targets.ask('down', kind, k);
        stopped.set(v, { at, wall });
        late.push(at - first - (stops[k] ?? 0));
        asked.push(performance.now() - at);
      }
      if (HOST) {
        // The times the peers recorded, to the millisecond, rather than when a poll saw them.
        for (const [v, ms] of hostRemovals(peer, tail?.() ?? [], stopped))
          if (pending.delete(v)) detectMs.push(ms - (stopped.get(v)?.wall ?? ms));
      } else {
        const t = table(vip);
        const now = performance.now();
        for (const [v, s] of stopped)
          if (pending.has(v) && !((t.get(v) ?? 0) > 0)) {
            detectMs.push(now - s.at);
            pending.delete(v);
          }
      }
      // Every 100 ms, and at the next victim's stop if that comes first.
      const next = Math.min(
        ...victims.map((v, k) => (stopped.has(v) ? Infinity : first + (stops[k] ?? 0))),
      );
      await sleep(Math.max(1, Math.min(100, next - performance.now())));
    }
    await targets.ask('up');
    const most = (xs: number[]): string => Math.max(0, ...xs).toFixed(0);
    console.error(
      `#   stops made up to ${most(late)} ms after their plan, each answered in at most ${most(asked)} ms; detection ${detectMs.map((ms) => ms.toFixed(0)).join(' ')} ms`,
    );
    return { ...measured, detectMs, missed: pending.size };
  } finally {
    await stop(proc);
    keepLog(peer, kind, n, holes);
    await targets.ask('up');
    // Nothing may still be checking once a peer is stopped: it would count for the next one.
    await sleep(1500);
    const q0 = await targets.ask('count');
    await sleep(2000);
    const q1 = await targets.ask('count');
    const left = q1.connections - q0.connections;
    if (left > 0) console.error(`warning: ${left} connections after ${peer} stopped`);
  }
}

/**
 * The old bench/vs-keepalived.ts measurement of ipvs-warden, as it was: the scheduler and the
 * TCP probe in THIS process, the window taken as the `sleep` it asked for. The server's own
 * timestamps say how long the window really was.
 */
async function legacy(targets: Targets, n: number): Promise<string> {
  await targets.ask('kind', 'tcp');
  const { TcpChecker } = await import('../checks/tcp.js');
  const { Scheduler } = await import('../src/health/scheduler.js');
  const scheduler = new Scheduler({ onResult: () => undefined, concurrency: 1024 });
  const checker = new TcpChecker();
  const timing = {
    intervalMs: 1000,
    fastIntervalMs: 1000,
    downIntervalMs: 1000,
    timeoutMs: 1000,
    jitter: 0.1,
  };
  for (let i = VICTIMS; i < n + VICTIMS; i++)
    scheduler.add(`s${i}`, checker, { family: 4, address: address(i), port: PORT }, timing, {
      rise: 1,
      fall: 3,
      initial: 'up',
    });
  await sleep(5000);
  const a = await targets.ask('count');
  const here0 = performance.now();
  await sleep(SECONDS * 1000);
  const b = await targets.ask('count');
  const here = (performance.now() - here0) / 1000;
  await scheduler.stop();
  const checks = b.connections - a.connections;
  const server = (b.t - a.t) / 1000;
  const guard = refusal({
    atTargets: checks,
    windowS: SECONDS,
    targets: n,
    intervalS: 1,
    jitter: 0.1,
  });
  return [
    `${n} TCP targets checked in the bench process (the old way), ${checks} checks counted at the server:`,
    `- the old figure, checks / the assumed ${SECONDS} s: ${(checks / SECONDS).toFixed(0)}/s${guard ? ` -> the guard: ${guard}` : ' (the guard lets it pass)'}`,
    `- the window as this process measured it: ${here.toFixed(2)} s; as the server's clock saw it: ${server.toFixed(2)} s (${(server / SECONDS).toFixed(2)}x the assumed one)`,
    `- checks / the server's window: ${(checks / server).toFixed(0)}/s (schedule: ${n}/s)`,
  ].join('\n');
}

function machine(): string {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '?';
  let host: string;
  try {
    host = readFileSync(join(root, '.scratch/peers-host.txt'), 'utf8').trim().replace(/\n/g, ', ');
  } catch {
    host = 'unknown (run through npm run bench:peers)';
  }
  if (HOST) return `on the host, not emulated: ${cpus().length} CPUs, "${model}"`;
  return `in the VM, emulated (TCG): ${cpus().length} vCPUs, "${model}"; the host: ${host}`;
}

/** The first line a command prints, on stdout or stderr (keepalived --version uses stderr). */
function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '').trim();
}

async function main(): Promise<void> {
  // Before any row: a report that cannot be written lost the row measured before it.
  if (isAbsolute(OUT) || !existsSync(dirname(join(root, OUT))))
    throw new Error(
      `BENCH_OUT=${OUT}: give a file relative to the checkout, in a folder that exists (e.g. .scratch/peers.md)`,
    );
  mkdirSync(work, { recursive: true });
  mkdirSync(logs, { recursive: true });
  mkdirSync(join(work, 'logs'), { recursive: true });
  if (HOST) {
    if (PEERS.includes('ldirectord'))
      throw new Error(
        'BENCH_HOST=1: ldirectord needs the kernel table; leave it out of BENCH_PEERS',
      );
  } else {
    execFileSync('ipvsadm', ['-C']);
    // The black hole: a dummy device drops whatever is routed to it, with no ARP to fail fast.
    spawnSync('ip', ['link', 'del', 'bh0']);
    execFileSync('ip', ['link', 'add', 'bh0', 'type', 'dummy']);
    execFileSync('ip', ['link', 'set', 'bh0', 'up']);
    execFileSync('ip', ['route', 'add', BLACKHOLE_NET, 'dev', 'bh0']);
  }
  const targets = new Targets();
  await targets.ready;
  const started = new Date();
  const all: Figures[] = [];
  const windows: string[] = [];
  let old = '';
  let table: TableRow[] = [];
  if (LEGACY) {
    old = await legacy(targets, 1000);
    console.log(old);
    writeFileSync(join(root, OUT), report([], windows, old, table, started, false));
  }
  const notRun = (peer: string, kind: 'tcp' | 'http', n: number, holes: number): Figures => ({
    peer,
    kind,
    targets: n,
    blackholed: holes,
    checksPerS: NaN,
    share: NaN,
    cpuMsPerCheck: NaN,
    rssMiB: NaN,
    detectMs: [],
    missed: 0,
    refused: 'not run',
  });
  const sizes = [...new Set([...SIZES, 10000])].sort((a, b) => a - b);
  for (const kind of KINDS)
    for (const n of sizes)
      for (const holes of [0, ...(BLACKHOLE_SIZES.includes(n) ? [Math.round(n * BLACKHOLE)] : [])])
        for (const peer of PEERS)
          all.push(
            peer === NATIVE_FLOOR && kind !== 'tcp'
              ? { ...notRun(peer, kind, n, holes), refused: TCP_ONLY }
              : notRun(peer, kind, n, holes),
          );
  // The README is rewritten after every row, so a run cut short still leaves what it measured.
  // In rounds, each (kind, size) runs all its peers once per round, in turn, the order reversed
  // every other round, so that a drift of the VM's speed falls on every peer alike.
  const rounds = new Map<number, Figures[]>();
  const groups = [...new Set(all.map((f) => `${f.kind} ${f.targets} ${f.blackholed ?? 0}`))];
  for (const group of groups) {
    const members = [...all.keys()].filter(
      (i) => `${all[i]?.kind} ${all[i]?.targets} ${all[i]?.blackholed ?? 0}` === group,
    );
    for (let round = 0; round < ROUNDS; round++)
      for (const i of round % 2 === 0 ? members : [...members].reverse()) {
        const row = all[i];
        if (!row || !SIZES.includes(row.targets) || row.refused === TCP_ONLY) continue;
        // A peer that could not fill a smaller table of this kind cannot fill a bigger one, nor
        // this one in another round: its FILL_S wait would only stretch the run.
        const smaller = all.find(
          (f) =>
            f.peer === row.peer &&
            f.kind === row.kind &&
            f.targets <= row.targets &&
            f.refused?.startsWith('could not run'),
        );
        if (smaller) {
          if (smaller !== row)
            all[i] = { ...row, refused: `not run (at ${smaller.targets}, ${smaller.refused})` };
          continue;
        }
        const holes = row.blackholed ?? 0;
        const label = `${row.peer} ${row.kind} ${row.targets}${holes ? ` (${holes} black-holed)` : ''}${ROUNDS > 1 ? `, round ${round + 1} of ${ROUNDS}` : ''}`;
        console.error(`# ${label} ...`);
        const f = await measure(targets, row.peer, row.kind, row.targets, holes);
        const done = [...(rounds.get(i) ?? []), f];
        rounds.set(i, done);
        all[i] = combineRounds(done);
        if (f.windows) windows.push(ROUNDS > 1 ? `round ${round + 1}: ${f.windows}` : f.windows);
        console.error(`#   ${f.windows}${f.refused ? `\n#   ${f.refused}` : ''}`);
        writeFileSync(join(root, OUT), report(all, windows, old, table, started, false));
      }
  }
  targets.proc.kill();
  if (TABLE_ROUNDS > 0) {
    // Last: it flushes the IPVS table, and nothing else runs beside it.
    console.error(`# the kernel table beside ipvsadm, ${TABLE_ROUNDS} rounds ...`);
    execFileSync('ipvsadm', ['-C']);
    table = await tableRows({ rounds: TABLE_ROUNDS });
  }

  const text = report(all, windows, old, table, started, true);
  writeFileSync(join(root, OUT), text);
  // In the project's style, so `npm run lint` (prettier --check) passes on what it wrote.
  const prettier = join(root, 'node_modules/prettier/bin/prettier.cjs');
  const pretty = spawnSync(process.execPath, [prettier, '--write', join(root, OUT)], {
    encoding: 'utf8',
  });
  if (pretty.status !== 0) console.error(`prettier: ${pretty.stderr}`);
  console.log(text);
}

function report(
  all: readonly Figures[],
  windows: readonly string[],
  old: string,
  table: readonly TableRow[],
  started: Date,
  done: boolean,
): string {
  const command = HOST ? 'npm run bench:peers:host' : 'npm run bench:peers';
  const env = [
    'BENCH_SIZES',
    'BENCH_KINDS',
    'BENCH_PEERS',
    'BENCH_SECONDS',
    'BENCH_ROUNDS',
    'BENCH_WARM',
    'BENCH_VICTIMS',
    'BENCH_ANSWER_MS',
    'BENCH_TARGET',
    'BENCH_BLACKHOLE',
    'BENCH_BLACKHOLE_SIZES',
    'BENCH_FILL',
    'BENCH_LEGACY',
    'BENCH_NODE_FLAGS',
    'BENCH_DAEMON',
    'BENCH_FLOOR_WARM',
    'BENCH_FLOOR_CAP',
    'BENCH_TABLE_ROUNDS',
  ]
    .filter((v) => process.env[v] !== undefined)
    .map((v) => `${v}=${process.env[v]}`)
    .join(' ');
  return `# Benchmarks: ipvs-warden side by side with keepalived and ldirectord
${done ? '' : '\n**Partial: the run is still going, or was cut short.**\n'}
Written by \`${env ? `${env} ` : ''}${command}\` (bench/peers.ts) on ${started.toISOString()}, ${machine()}.
${HOST ? `On the host: no IPVS, so ipvs-warden ran on its memory backend and keepalived with its IPVS requests answered by ${IPVS_SHIM} (LD_PRELOAD); detection is from the flip to the change each peer recorded (ipvs-warden's reconcile.applied in its log, keepalived's deletion as the shim logged it), to the millisecond, where the VM's is polled; no black-holed or table rows, no ldirectord.` : 'Everything in the VM runs about 10x slower than on the host: the ratios are what matter.'}
${TARGET === 'nginx' ? `The targets that stay up were answered by nginx (${version('dpkg-query', ['-W', '-f', '${Version}', 'nginx-light'])}, one worker; BENCH_TARGET=node for this bench's own node server), the ${VICTIMS} victims by the node server; the target server's CPU below is the two together.\n` : ''}${ANSWER_MS > 0 ? `The HTTP targets answered ${ANSWER_MS} ms after each request (BENCH_ANSWER_MS): slow health pages.\n` : ''}Versions: ${version('/usr/sbin/keepalived', ['--version'])}; ${version('/usr/sbin/ldirectord', ['-v'])} (Debian ldirectord ${version('dpkg-query', ['-W', '-f', '${Version}', 'ldirectord'])}); node ${process.version}.

## Ratios, ipvs-warden / peer

Below 1 is better for ipvs-warden in CPU-ms per check, RSS and detection; above 1 in checks/s and share.

${ratioTable(all, OURS)}

## Figures

${SECONDS} s measured after every target is in the table and ${WARM_S} s more; checks per
second are the checks counted at the targets over the window the target server's own clock saw
(HTTP: the requests it answered; TCP: the connections the kernel completed to its listeners, Tcp
PassiveOpens of /proc/net/snmp, as a check that resets its connection at once can go before the
server accepts it);
share is that over the schedule's N checks per second; CPU-ms per check is the peer's process
tree's CPU (user + system, children included, from /proc) over those checks (each peer's line
below splits it: system time holds the syscalls and loopback's handshakes, done inside the
connecting process's connect and close, the same work for every peer); RSS is the tree's
VmRSS; taken down is how many healthy servers the peer took out of the table during the window
(every target answered then: each one is a check that failed a server that was up, mostly a
timeout), from the removal lines its own log gained meanwhile (keepalived's "Removing service",
ldirectord's "Deleted real server", ours \`reconcile.applied\` for a server down); detection is from the moment each of ${VICTIMS} targets, spread evenly through the list each peer
is given, stops answering (TCP: refused; HTTP: 503) to its leaving the table (${
    HOST
      ? 'as each peer recorded it'
      : '`ipvsadm -Ln` polled, each poll takes its own time in the VM'
  }), min/median/max over the ${VICTIMS}; they stop one at a time, one interval cut into ${VICTIMS} slots, each
victim at a random moment of a slot of its own, the slots in a random order, so that wherever a
peer's checks fall in the interval the victims meet all of it (in the runs of 2026-12-06 and
before they stopped together and met one moment of it, and the medians' ratio swung with where
each peer's checks happened to fall). A row "N (K black-holed)" has the last K of its N real
servers at addresses routed to a dummy device (SYNs vanish, connects hang until the 1 s
timeout): its share and checks are of the N - K that answer, and its detection shows whether
the hanging checks delay the others'.${
    ROUNDS > 1
      ? ` Each row ran ${ROUNDS} rounds, its peers one after another in each, the order
reversed every other round: a figure is the median of the rounds not refused, each round's in
brackets after it (x: refused), detection over the victims of all of them; a ratio is the median
of the rounds' own ratios (each of two peers run back to back).`
      : ''
  }

${figuresTable(all)}

Windows and cross-checks:

${windows.map((w) => `- ${w}`).join('\n')}

## The kernel table beside ipvsadm

${
  TABLE_ROUNDS <= 0
    ? '(not run: BENCH_TABLE_ROUNDS=0)'
    : table.length === 0
      ? '(after the peers)'
      : `100 services x 100 real servers (10,000), median of ${TABLE_ROUNDS} rounds (the dumps: 5 per round), each row beside its \`ipvsadm\` counterpart in the same run (\`npm run bench:table\` runs these alone, bench/table.ts). Start-up, reload and restart are the daemon's own path from a config to a matching table (parse, read, desired + plan, apply; every server given as up). Below 1 is better for ipvs-warden.

${rowsMarkdown(table)}`
}

## Settings (the same schedule for each)

- ipvs-warden: \`ipvs-warden run\` (${nodeFlagsText()}), backend ${HOST ? 'memory' : 'netlink'}, interval, fast_interval and down_interval
  ${INTERVAL_S} s, timeout 1 s, jitter ${JITTER}, rise 1, fall 1, on_failure remove, \`{type: tcp}\` or
  \`{type: http, path: /healthz}\`, \`metrics_per_server: false\` (neither peer has metrics; the
  per-check series stay); the rest its defaults (check_concurrency 256).
- floor: our own TcpChecker or HttpChecker (path /healthz), node started as ipvs-warden is, for the same targets, each on a bare
  timer (the next check ${INTERVAL_S} s after one ends, timeout 1 s, no jitter), at most ${FLOOR_CAP} at once
  (p-limit; the rest wait their turn), in a node process of its own with no scheduler, metrics or logs; the kernel holds the same table for it (every
  answering target, loaded with \`ipvsadm -R\`) as for the peers, which it does not read (\`node dist/bench/peers.js floor KIND N\`),
  measured ${FLOOR_WARM_S} s after it starts: what the probe itself costs in node here. It changes no
  table, so it has no detection. ipvs-warden / floor is what the daemon adds above its probes.
- native-floor (TCP only, when BENCH_PEERS names it): the floor's timers, cap and table, with
  each connect made, read and reset in C (src/native/probe.c: socket, connect, one epoll set
  watched from node's loop, SO_LINGER 0 and close), JavaScript called once per loop turn for every
  connect that finished: what the probe costs here without node's JavaScript handle. Beside the
  floor, the most that a probe in C could save.
- keepalived: \`keepalived --dont-fork --check\`, delay_loop ${INTERVAL_S}, \`TCP_CHECK\` or \`HTTP_GET\`
  (url /healthz, status_code 200), connect_timeout 1, retry 0 (fail on the first failed check).
- ldirectord: \`ldirectord -d FILE start\` (the foreground), checkinterval ${INTERVAL_S},
  checktimeout and negotiatetimeout 1, failurecount 1 (checkcount is deprecated), quiescent no, checktype connect or
  negotiate (service http, request healthz, receive ok).

## Notes

- A peer that does not get every target into its table within BENCH_FILL seconds (${FILL_S} s here)
  is reported as \`could not run: K of N in the table after S s\`: it cannot keep up at that size in
  this VM. ldirectord changes the table by running \`ipvsadm\` once per change (and reads
  \`ipvsadm -L -n\` for it), and at start it adds and removes every real server once before its
  first check: under emulation that start alone takes minutes at 200 real servers.
- Checks that time out (1 s) fail, so a peer that falls behind also takes healthy servers out; its
  log (.scratch/bench-peers/PEER-KIND-N.log) shows it. Share below 100 % is the schedule not kept.
- The VM is emulated and has no steal time: when other host processes take the host's CPU, the
  guest charges the time it lost to whatever process it was running, and a busy peer is charged
  most. \`bench/peers.sh\` samples the host beside the run (\`bench/host-load.sh\`); a window in
  which other processes used more than ${HOST_BUSY_CORES} cores has its CPU figure marked "host busy"
  (its CPU-ms per check is inflated: run that row again on a quiet host). The windows list says
  how many cores the host's other processes used in each.
- The window is the targets' count and the CPU read together, after the scrape of ipvs-warden's
  /metrics at its start and before the one at its end: a scrape at 10,000 takes seconds in the
  VM and slows the checks meanwhile, and it is the bench's doing. ipvs-warden's own count is
  timed between the arrival of its counter's first and last series; the targets are counted
  again as those arrive, and the guard compares the two over the counter's own window (the
  targets' count taken on the line between those two counts).

## The guard and the old count

A row is printed only if its counts agree: the checks counted at the targets per second over
ipvs-warden's own counter's window must lie between ipvs-warden's healthy results and all its results, 5 %
either way (\`ipvs_warden_check_results_total\`, summed, per second between two scrapes: a
healthy check landed on its target; a failed one, a connect that timed out, may not have), and no peer's
rate may exceed what the schedule can produce (N / interval, a check early by at most the
jitter, plus 5 %). The floor keeps a count of its own, held to the first rule as ipvs-warden's
is. keepalived and ldirectord keep no check counter, so for them only the second
holds. Otherwise the row says \`REFUSED: counts disagree ...\`; and a row whose own counter
finds fewer than half of its checks healthy says \`REFUSED: most checks failed ...\` (it would
measure failures, which cost another amount than checks that pass).

Why: \`npm run bench:keepalived\` (bench/vs-keepalived.ts) once printed 2,404 checks/s for
ipvs-warden from 1,000 targets checked once a second, which the schedule cannot produce. It ran
our checks in its own process and divided by the \`sleep\` it asked for, not by a window it
measured. Re-measured here, the old way, with the server timestamping each count:

${old || '(not run: BENCH_LEGACY=0)'}
`;
}

/**
 * The floor process: each target of the pool checked on a timer of its own, every INTERVAL_S,
 * timeout 1 s, no jitter, at most FLOOR_CAP at once (the rest wait, first come first served, as
 * the daemon's do); results are counted and dropped. The probe is our own checker, or (`native`,
 * TCP only) a connect made in C. Runs until it is stopped.
 */
async function floor(kind: string, n: number, holes: number, probe: string): Promise<void> {
  // As the daemon runs: with the V8 flags `ipvs-warden` sets on itself, and those it sets once
  // running (there is no config to read here).
  setV8Flags();
  heapModes().running();
  const counts: FloorCounts = { all: 0, healthy: 0, t: 0 };
  const targets = pool(n, holes);
  // The next check an interval after this one ends, as the scheduler plans it.
  const report = (i: number, healthy: boolean, failure: () => string): void => {
    counts.all++;
    if (healthy) counts.healthy++;
    else counts.failure ??= failure();
    setTimeout(() => check(i), INTERVAL_S * 1000);
  };
  if (probe === 'native' && kind !== 'tcp')
    throw new Error(`the native floor checks TCP only, not ${kind}`);
  const check =
    probe === 'native' ? nativeChecks(targets, report) : await checkerChecks(kind, targets, report);
  for (let i = 0; i < n; i++) setTimeout(() => check(i), (i / n) * INTERVAL_S * 1000);
  // Its own count, as ipvs-warden's /metrics gives one, for the guard; and in its log why checks
  // failed, when they did (a floor whose every check fails would measure failures).
  setInterval(() => {
    counts.t = performance.timeOrigin + performance.now();
    writeFileSync(`${FLOOR_COUNTS}.tmp`, JSON.stringify(counts));
    renameSync(`${FLOOR_COUNTS}.tmp`, FLOOR_COUNTS);
  }, 100);
  setInterval(() => {
    console.error(
      `floor (${probe}): ${counts.all} checks, ${counts.healthy} healthy; first failure: ${counts.failure ?? 'none'}`,
    );
  }, 5000);
  process.once('SIGTERM', () => process.exit(0));
}

type FloorReport = (i: number, healthy: boolean, failure: () => string) => void;

/** The floor's checks by our own checker, capped by p-limit. */
async function checkerChecks(
  kind: string,
  targets: readonly { address: string; port: number }[],
  report: FloorReport,
): Promise<(i: number) => void> {
  const { TcpChecker } = await import('../checks/tcp.js');
  const { HttpChecker } = await import('../checks/http.js');
  const checker = kind === 'tcp' ? new TcpChecker() : new HttpChecker({ path: '/healthz' });
  // One signal for every check, as the scheduler gives them (its stop).
  const context = { signal: new AbortController().signal, timeoutMs: INTERVAL_S * 1000 };
  const limit = pLimit(FLOOR_CAP);
  const all = targets.map((r) => ({ family: 4 as const, address: r.address, port: r.port }));
  return (i) => {
    const target = all[i];
    if (!target) return;
    void limit(() => checker.check(target, context)).then((result) =>
      report(i, result.healthy, () => result.message),
    );
  };
}

/**
 * The native floor's checks: a connect in C (bench/native.ts), its deadline kept here and swept
 * every 50 ms, at most FLOOR_CAP in flight and the rest waiting in order, as with p-limit.
 */
function nativeChecks(
  targets: readonly { address: string; port: number }[],
  report: FloorReport,
): (i: number) => void {
  const timeoutMs = INTERVAL_S * 1000;
  const fds = new Int32Array(targets.length).fill(-1);
  /** When each check in flight gives up; 0: not in flight. */
  const deadlines = new Float64Array(targets.length);
  const waiting: number[] = [];
  let head = 0;
  let live = 0;
  const finish = (i: number, status: number): void => {
    if (!deadlines[i]) return;
    deadlines[i] = 0;
    fds[i] = -1;
    live--;
    report(i, status === 0, () => {
      const t = targets[i];
      return `${t?.address}:${t?.port}: ${errnoCode(status)}`;
    });
    const next = waiting[head];
    if (next !== undefined) {
      head++;
      if (head === waiting.length) {
        waiting.length = 0;
        head = 0;
      }
      start(next);
    }
  };
  const probe = openNativeProbe(finish);
  const start = (i: number): void => {
    if (live >= FLOOR_CAP) {
      waiting.push(i);
      return;
    }
    live++;
    deadlines[i] = performance.now() + timeoutMs;
    const fd = probe.connect(i, targets[i]?.address ?? '', targets[i]?.port ?? 0);
    // Told on a later turn, as a failed connect is told to our checker.
    if (fd < 0) setImmediate(() => finish(i, fd));
    else fds[i] = fd;
  };
  // After the loop's I/O of this turn, as ProbeRun's deadline: timers run before the loop reads
  // I/O, and on a late loop a connect that finished in time would lose to its own deadline.
  const sweep = (): void => {
    const now = performance.now();
    for (let i = 0; i < deadlines.length; i++) {
      const deadline = deadlines[i] ?? 0;
      if (deadline === 0 || deadline > now) continue;
      probe.cancel(fds[i] ?? -1);
      finish(i, -110); // ETIMEDOUT
    }
  };
  setInterval(() => setImmediate(sweep), 50);
  return start;
}

if (process.argv[2] === 'server') serve();
else if (process.argv[2] === 'floor') {
  const [kind = 'tcp', n = '200', holes = '0', probe = 'checker'] = process.argv.slice(3);
  await floor(kind, Number(n), Number(holes), probe);
} else if (process.argv[2] === 'configs') {
  // The three files for one row, to check them by hand (keepalived -t, ipvs-warden check-config).
  const [kind = 'tcp', n = '20', dir = work] = process.argv.slice(3);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'warden.yaml'), wardenConfig(kind, Number(n)));
  writeFileSync(join(dir, 'keepalived.conf'), keepalivedConfig(kind, Number(n)));
  writeFileSync(join(dir, 'ldirectord.cf'), ldirectordConfig(kind, Number(n)));
} else await main();
