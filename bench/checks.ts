// Benchmark of every check kind in the catalog, side by side in one run: each against a real
// server on loopback (the test suite's own launchers: exim4, dovecot, vsftpd, jamnntpd, slapd,
// kamailio, MariaDB, PostgreSQL, FreeRADIUS; dnsmasq and nginx started as their tests do), N
// checks in a row and N more 16 at a time, after a warm-up. Reports checks/s, this process's
// CPU-ms per check (process.cpuUsage over the phase), its ratio to the TCP check's in the same
// run, the duration's median and p99, and the server's CPU per check (/proc: the server's
// process tree; for ping and exec, the processes the check spawns). Prints one Markdown table
// and nothing else. `npm run bench:checks`; BENCH_SCALE (default 1) multiplies every N.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CATALOG } from '../checks/index.js';
import type { CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import {
  startMariadb,
  startPostgres,
  DB_NAME,
  DB_PASSWORD,
  DB_USER,
} from '../test/checks/dbservers.js';
import { startFreeradius } from '../test/checks/freeradius.js';
import { startKamailio } from '../test/checks/kamailio.js';
import {
  MAIL_PASSWORD,
  MAIL_USER,
  startDovecot,
  startExim,
  startJamnntpd,
  startVsftpd,
} from '../test/checks/mail-servers.js';
import { freePort, nginxConf, selfSigned, startDnsmasq } from '../test/checks/servers.js';
import { startSlapd } from '../test/checks/slapd.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
/** Checks in flight at once in the second phase (a row may ask for fewer: a server's limit). */
const CONCURRENCY = 16;
/** A phase ends after this long even when it has not done its N (the row shows how many). */
const PHASE_CAP_MS = 8000;
/** How long a server may take to answer its first healthy check. */
const READY_MS = 15_000;
const TIMEOUT_MS = 5000;
const RADIUS_SECRET = 'bench-secret';
/** The DNS query the udp check sends dnsmasq (id 0x1234, RD, A www.example.test). */
const DNS_QUERY =
  '12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 07 65 78 61 6d 70 6c 65 04 74 65 73 74 00 00 01 00 01';

/** A server the benchmark started: where its checks go, and how to stop it. */
interface Server {
  readonly targets: Readonly<Record<string, CheckTarget>>;
  stop(): Promise<void>;
}

const v4 = (port: number): CheckTarget => ({ family: 4, address: '127.0.0.1', port });

/** Resolves when the child has exited (at once when it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once the child runs; rejects (and stays quiet after) when it cannot be started. */
function spawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.on('error', reject);
  });
}

/** The programs each server needs: a missing one is a row that says so, not a crash. */
const PROGRAMS: Readonly<Record<string, readonly string[]>> = {
  nginx: ['nginx'],
  dnsmasq: ['dnsmasq'],
  exim4: ['exim4'],
  dovecot: ['dovecot'],
  vsftpd: ['vsftpd'],
  jamnntpd: ['jamnntpd'],
  slapd: ['slapd', 'slapadd', 'slappasswd'],
  kamailio: ['kamailio'],
  mariadb: ['mariadb-install-db', 'mariadbd', 'mariadb'],
  postgresql: ['/usr/lib/postgresql/15/bin/postgres', 'setpriv'],
  freeradius: ['freeradius'],
};

function installed(program: string): boolean {
  const dirs = program.includes('/') ? [''] : (process.env.PATH ?? '').split(':');
  return dirs.some((dir) => {
    try {
      accessSync(dir ? join(dir, program) : program, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** nginx as test/checks/nginx.test.ts starts it: one process, HTTP and HTTPS, /healthz. */
async function startNginx(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-nginx-'));
  const { key, cert } = selfSigned();
  writeFileSync(join(dir, 'key.pem'), key);
  writeFileSync(join(dir, 'cert.pem'), cert);
  const [http, https] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'nginx.conf'),
    nginxConf(
      dir,
      `  server {
    listen 127.0.0.1:${http};
    listen 127.0.0.1:${https} ssl;
    ssl_certificate ${dir}/cert.pem; ssl_certificate_key ${dir}/key.pem;
    server_name warden.test;
    location = /healthz { return 200 "status: ok\\n"; }
  }
`,
    ),
  );
  const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: 'ignore',
  });
  await spawned(nginx);
  return {
    targets: { http: v4(http), https: v4(https) },
    stop: async () => {
      nginx.kill();
      await exited(nginx);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** dnsmasq as test/checks/dns.test.ts and udp.test.ts start it: one local zone. */
async function startDnsmasqServer(): Promise<Server> {
  const dnsmasq = await startDnsmasq(['--host-record=www.example.test,10.0.0.5'], '127.0.0.1');
  return { targets: { dns: v4(dnsmasq.port) }, stop: () => dnsmasq.stop() };
}

/** Each server by name: how to start it and which of its ports are what. */
const SERVERS: Readonly<Record<string, () => Promise<Server>>> = {
  nginx: startNginx,
  dnsmasq: startDnsmasqServer,
  exim4: async () => {
    const s = await startExim();
    return { targets: { smtp: s.smtp, smtps: s.smtps }, stop: () => s.stop() };
  },
  dovecot: async () => {
    const s = await startDovecot();
    const { imap, imaps, pop3, pop3s } = s;
    return { targets: { imap, imaps, pop3, pop3s }, stop: () => s.stop() };
  },
  vsftpd: async () => {
    const s = await startVsftpd();
    return { targets: { ftp: s.ftp }, stop: () => s.stop() };
  },
  jamnntpd: async () => {
    const s = await startJamnntpd();
    return { targets: { nntp: s.nntp }, stop: () => s.stop() };
  },
  slapd: async () => {
    const s = await startSlapd();
    return { targets: { ldap: v4(s.ldapPort), ldaps: v4(s.ldapsPort) }, stop: () => s.stop() };
  },
  kamailio: async () => {
    const s = await startKamailio();
    return { targets: { sip: v4(s.port) }, stop: () => s.stop() };
  },
  mariadb: async () => {
    const s = await startMariadb();
    return { targets: { mysql: v4(s.port) }, stop: () => s.stop() };
  },
  postgresql: async () => {
    const s = await startPostgres();
    return { targets: { pgsql: v4(s.port) }, stop: () => s.stop() };
  },
  freeradius: async () => {
    const s = await startFreeradius({ secret: RADIUS_SECRET, users: { warden: 'pw' } });
    return { targets: { radius: v4(s.port) }, stop: () => s.stop() };
  },
};

/** One row: a kind of the catalog with the options its tests use for a healthy check. */
interface Case {
  readonly label: string;
  readonly kind: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** A key of SERVERS, or null for checks of this machine (ping, exec). */
  readonly server: string | null;
  /** What the server column says when `server` is null. */
  readonly serverLabel?: string;
  /** The server's target (a key of its targets), or the target itself. */
  readonly target: string | CheckTarget;
  /** The server's socket, to find its processes: udp or tcp. */
  readonly proto?: 'udp';
  readonly n: number;
  readonly concurrency?: number;
}

const { cert } = selfSigned();
/** Verified TLS, as the tests configure it: the self-signed certificate as CA, its name. */
const TRUSTED = { ca: cert, servername: 'warden.test' };
const MAIL_LOGIN = { user: MAIL_USER, password: MAIL_PASSWORD };
const DB_LOGIN = { user: DB_USER, password: DB_PASSWORD, database: DB_NAME, expect: /^1$/ };

const TCP: Case = {
  label: 'tcp',
  kind: 'tcp',
  options: {},
  server: 'nginx',
  target: 'http',
  n: 2000,
};
const CASES: readonly Case[] = [
  TCP,
  {
    label: 'http',
    kind: 'http',
    options: { path: '/healthz' },
    server: 'nginx',
    target: 'http',
    n: 1000,
  },
  {
    label: 'https',
    kind: 'https',
    options: { path: '/healthz', tls: TRUSTED },
    server: 'nginx',
    target: 'https',
    n: 400,
  },
  {
    label: 'dns',
    kind: 'dns',
    options: { name: 'www.example.test' },
    server: 'dnsmasq',
    target: 'dns',
    proto: 'udp',
    n: 2000,
  },
  // exim answers QUIT in clear text about 200 ms late (a raw socket sees it too): few checks.
  { label: 'smtp', kind: 'smtp', options: {}, server: 'exim4', target: 'smtp', n: 30 },
  {
    label: 'smtp STARTTLS',
    kind: 'smtp',
    options: { starttls: 'required', tls: TRUSTED },
    server: 'exim4',
    target: 'smtp',
    n: 200,
  },
  { label: 'submission', kind: 'submission', options: {}, server: 'exim4', target: 'smtp', n: 30 },
  {
    label: 'smtps',
    kind: 'smtps',
    options: { tls: TRUSTED },
    server: 'exim4',
    target: 'smtps',
    n: 300,
  },
  { label: 'pop3', kind: 'pop3', options: {}, server: 'dovecot', target: 'pop3', n: 300 },
  // dovecot lets a user and address hold 10 sessions at once (mail_max_userip_connections).
  {
    label: 'pop3 login',
    kind: 'pop3',
    options: MAIL_LOGIN,
    server: 'dovecot',
    target: 'pop3',
    n: 200,
    concurrency: 8,
  },
  {
    label: 'pop3s',
    kind: 'pop3s',
    options: { tls: TRUSTED },
    server: 'dovecot',
    target: 'pop3s',
    n: 300,
  },
  { label: 'imap', kind: 'imap', options: {}, server: 'dovecot', target: 'imap', n: 300 },
  {
    label: 'imap login',
    kind: 'imap',
    options: MAIL_LOGIN,
    server: 'dovecot',
    target: 'imap',
    n: 200,
    concurrency: 8,
  },
  {
    label: 'imaps',
    kind: 'imaps',
    options: { tls: TRUSTED },
    server: 'dovecot',
    target: 'imaps',
    n: 300,
  },
  {
    label: 'ftp anonymous',
    kind: 'ftp',
    options: { user: 'anonymous' },
    server: 'vsftpd',
    target: 'ftp',
    n: 300,
  },
  // jamnntpd serves 5 connections at once (its -m default); the launcher does not change it.
  {
    label: 'nntp',
    kind: 'nntp',
    options: {},
    server: 'jamnntpd',
    target: 'nntp',
    n: 500,
    concurrency: 4,
  },
  { label: 'ldap', kind: 'ldap', options: {}, server: 'slapd', target: 'ldap', n: 1000 },
  {
    label: 'ldaps',
    kind: 'ldaps',
    options: { tls: TRUSTED },
    server: 'slapd',
    target: 'ldaps',
    n: 300,
  },
  {
    label: 'mysql handshake',
    kind: 'mysql',
    options: {},
    server: 'mariadb',
    target: 'mysql',
    n: 500,
  },
  {
    label: 'mysql login+query',
    kind: 'mysql',
    options: DB_LOGIN,
    server: 'mariadb',
    target: 'mysql',
    n: 300,
  },
  {
    label: 'pgsql SSLRequest',
    kind: 'pgsql',
    options: {},
    server: 'postgresql',
    target: 'pgsql',
    n: 300,
  },
  {
    label: 'pgsql login+query',
    kind: 'pgsql',
    options: DB_LOGIN,
    server: 'postgresql',
    target: 'pgsql',
    n: 200,
  },
  {
    label: 'sip udp',
    kind: 'sip',
    options: { transport: 'udp' },
    server: 'kamailio',
    target: 'sip',
    proto: 'udp',
    n: 2000,
  },
  {
    label: 'sip tcp',
    kind: 'sip',
    options: { transport: 'tcp' },
    server: 'kamailio',
    target: 'sip',
    n: 1000,
  },
  {
    label: 'radius',
    kind: 'radius',
    options: { secret: RADIUS_SECRET, user: 'warden', password: 'pw' },
    server: 'freeradius',
    target: 'radius',
    proto: 'udp',
    n: 1000,
  },
  {
    label: 'udp (DNS query)',
    kind: 'udp',
    options: { payloadHex: DNS_QUERY, expectHex: '12 34 85 80' },
    server: 'dnsmasq',
    target: 'dns',
    proto: 'udp',
    n: 2000,
  },
  {
    label: 'ping',
    kind: 'ping',
    options: {},
    server: null,
    serverLabel: 'kernel (ping spawned)',
    target: v4(0),
    n: 150,
  },
  {
    label: 'exec /bin/true',
    kind: 'exec',
    options: { command: ['/bin/true'] },
    server: null,
    serverLabel: '(spawned)',
    target: v4(0),
    n: 200,
  },
  // The baseline again, last: how far the machine drifted during the run.
  { ...TCP, label: 'tcp (again, last)' },
];

// --- The server's CPU, from /proc ---------------------------------------------------------------

const CLK_TCK = 100; // USER_HZ: 100 on every Linux architecture Node runs on

/** /proc/PID/stat's fields after the command: [state, ppid, ..., utime at 11, stime, cutime, cstime]. */
function statOf(pid: number | 'self'): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone
  }
}
const ticks = (f: readonly string[], from: number, to: number): number =>
  f.slice(from, to + 1).reduce((sum, x) => sum + Number(x), 0);

function pids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** The server process this one started that holds the listening socket on `port`. */
function serverRoot(port: number, proto: 'tcp' | 'udp'): number | undefined {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let lines: string[];
    try {
      lines = readFileSync(file, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      const local = f[1]?.split(':')[1];
      // tcp: LISTEN (0A); udp: unconnected (07).
      if (local && parseInt(local, 16) === port && f[3] === (proto === 'tcp' ? '0A' : '07'))
        inodes.add(`socket:[${f[9]}]`);
    }
  }
  const parents = new Map<number, number>();
  for (const pid of pids()) parents.set(pid, Number(statOf(pid)?.[1] ?? 0));
  for (const pid of pids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    // Up to the process this one spawned (dovecot's and kamailio's workers hold it too).
    for (let p = pid, depth = 0; p > 1 && depth < 20; p = parents.get(p) ?? 0, depth++)
      if (parents.get(p) === process.pid) return p;
  }
  return undefined;
}

/** CPU ticks of a process tree: each live process's own, and what it collected from its children. */
function treeTicks(root: number): number {
  const stats = new Map<number, string[]>();
  for (const pid of pids()) {
    const f = statOf(pid);
    if (f) stats.set(pid, f);
  }
  let sum = 0;
  for (const [pid, f] of stats) {
    for (let p = pid, depth = 0; p > 1 && depth < 20; p = Number(stats.get(p)?.[1] ?? 0), depth++) {
      if (p === root) {
        sum += ticks(f, 11, 14);
        break;
      }
    }
  }
  return sum;
}

/** The children this process has reaped (ping, exec's commands), in ticks. */
const childTicks = (): number => ticks(statOf('self') ?? [], 13, 14);

// --- Measuring ----------------------------------------------------------------------------------

interface Phase {
  readonly n: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly durations: readonly number[];
  readonly failed: readonly CheckResult[];
}

async function safeCheck(checker: Checker, target: CheckTarget): Promise<CheckResult> {
  try {
    return await checker.check(target, {
      signal: new AbortController().signal,
      timeoutMs: TIMEOUT_MS,
    });
  } catch (error) {
    return { healthy: false, durationMs: 0, message: `threw: ${String(error)}` };
  }
}

/** `n` checks of one target, `concurrency` at a time, for at most PHASE_CAP_MS. */
async function phase(
  checker: Checker,
  target: CheckTarget,
  n: number,
  concurrency: number,
): Promise<Phase> {
  global.gc?.();
  const durations: number[] = [];
  const failed: CheckResult[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + PHASE_CAP_MS;
  const worker = async (): Promise<void> => {
    while (next < n && performance.now() < deadline) {
      next++;
      const start = performance.now();
      const r = await safeCheck(checker, target);
      durations.push(performance.now() - start);
      if (!r.healthy) failed.push(r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { n: durations.length, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, durations, failed };
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

interface Row {
  readonly c: Case;
  readonly sequential?: Phase;
  readonly parallel?: Phase;
  readonly serverMsPerCheck?: number;
  /** Why the row has no figures: the server did not start, the check never passed. */
  readonly problem?: string;
}

async function waitHealthy(checker: Checker, target: CheckTarget): Promise<CheckResult> {
  const end = performance.now() + READY_MS;
  for (;;) {
    const r = await safeCheck(checker, target);
    if (r.healthy || performance.now() > end) return r;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function measure(c: Case, server: Server | undefined): Promise<Row> {
  const target = typeof c.target === 'string' ? server?.targets[c.target] : c.target;
  if (!target) return { c, problem: `no target ${JSON.stringify(c.target)}` };
  const declaration = CATALOG.get(c.kind);
  if (!declaration) return { c, problem: `no kind ${c.kind} in the catalog` };
  let checker: Checker;
  try {
    // The options as the tests give them; the catalog's type for them is the declaration's own.
    checker = (declaration.create as (o: unknown) => Checker)(c.options);
  } catch (error) {
    return { c, problem: `create failed: ${String(error)}` };
  }
  try {
    const first = await waitHealthy(checker, target);
    if (!first.healthy) return { c, problem: `never healthy: ${first.message}` };
    const n = Math.max(10, Math.round(c.n * SCALE));
    await phase(checker, target, Math.max(5, Math.round(n / 10)), 1); // warm-up
    await phase(checker, target, Math.max(5, Math.round(n / 20)), c.concurrency ?? CONCURRENCY);
    let root: number | undefined;
    try {
      root = c.server ? serverRoot(target.port, c.proto ?? 'tcp') : undefined;
    } catch {
      root = undefined;
    }
    const serverTicks = (): number | undefined =>
      c.server === null ? childTicks() : root === undefined ? undefined : treeTicks(root);
    const before = serverTicks();
    const sequential = await phase(checker, target, n, 1);
    const parallel = await phase(checker, target, n, c.concurrency ?? CONCURRENCY);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the server's last closes
    const after = serverTicks();
    const serverMsPerCheck =
      before === undefined || after === undefined
        ? undefined
        : ((after - before) * (1000 / CLK_TCK)) / (sequential.n + parallel.n);
    return {
      c,
      sequential,
      parallel,
      ...(serverMsPerCheck === undefined ? {} : { serverMsPerCheck }),
    };
  } finally {
    await checker.close?.();
  }
}

// --- The table ----------------------------------------------------------------------------------

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ');
const fmt = (x: number, digits = 2): string =>
  Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(digits)) : '—';
const thousands = (x: number): string => Math.round(x).toLocaleString('en-US');
const perCheck = (p: Phase): number => p.cpuMs / Math.max(1, p.n);

function phaseCells(p: Phase, tcp: Phase | undefined, concurrency?: number): string[] {
  const ratio = tcp ? perCheck(p) / perCheck(tcp) : NaN;
  return [
    concurrency === undefined ? thousands(p.n) : `${thousands(p.n)} ×${concurrency}`,
    thousands((p.n / p.wallMs) * 1000),
    fmt(perCheck(p), 3),
    Number.isFinite(ratio) ? fmt(ratio, 1) : '—',
    `${fmt(pct(p.durations, 50))} / ${fmt(pct(p.durations, 99))}`,
  ];
}

function table(rows: readonly Row[]): string {
  const base = rows.find((r) => r.c === TCP);
  const header = [
    'check',
    'server',
    'n',
    'checks/s',
    'CPU ms/check',
    '× tcp',
    'p50 / p99 ms',
    `n, ×${CONCURRENCY}`,
    'checks/s',
    'CPU ms/check',
    '× tcp',
    'p50 / p99 ms',
    'server CPU ms/check',
    'failed',
  ];
  const lines = [header, header.map((h) => '-'.repeat(Math.max(3, h.length)))];
  for (const r of rows) {
    const server = r.c.server ?? r.c.serverLabel ?? '—';
    if (!r.sequential || !r.parallel) {
      lines.push([
        r.c.label,
        server,
        cell(r.problem ?? '?'),
        ...Array<string>(header.length - 3).fill('—'),
      ]);
      continue;
    }
    const failed = [...r.sequential.failed, ...r.parallel.failed];
    lines.push([
      r.c.label,
      server,
      ...phaseCells(r.sequential, base?.sequential),
      ...phaseCells(r.parallel, base?.parallel, r.c.concurrency ?? CONCURRENCY),
      r.serverMsPerCheck === undefined ? '—' : fmt(r.serverMsPerCheck, 3),
      failed.length === 0
        ? '0'
        : cell(`${failed.length}: ${failed[0]?.message.slice(0, 100) ?? ''}`),
    ]);
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

// --- Main ---------------------------------------------------------------------------------------

const running = new Map<string, Server>();
let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= Promise.allSettled([...running.values()].map((s) => s.stop())).then(() => undefined);
  return stopping;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const failedToStart = new Map<string, string>();
  const wanted = [...new Set(CASES.map((c) => c.server).filter((s) => s !== null))];
  // All at once: the databases take the longest to initialise. Measuring starts after.
  await Promise.all(
    wanted.map(async (name) => {
      const start = SERVERS[name];
      try {
        if (!start) throw new Error('no launcher');
        const missing = (PROGRAMS[name] ?? []).filter((p) => !installed(p));
        if (missing.length > 0) throw new Error(`not installed: ${missing.join(', ')}`);
        running.set(name, await start());
      } catch (error) {
        failedToStart.set(name, (error as Error).message.split('\n')[0] ?? 'failed');
      }
    }),
  );
  const rows: Row[] = [];
  try {
    for (const c of CASES) {
      const failure = c.server === null ? undefined : failedToStart.get(c.server);
      if (failure !== undefined) {
        rows.push({ c, problem: `server did not start: ${failure}` });
        continue;
      }
      try {
        rows.push(await measure(c, c.server === null ? undefined : running.get(c.server)));
      } catch (error) {
        rows.push({ c, problem: `bench error: ${String(error)}` });
      }
    }
    // A kind added to the catalog and not here still gets a row.
    for (const kind of CATALOG.kinds)
      if (!CASES.some((c) => c.kind === kind))
        rows.push({
          c: { label: kind, kind, options: {}, server: null, target: v4(0), n: 0 },
          problem: 'no case in bench/checks.ts',
        });
  } finally {
    await stopAll();
  }
  console.log(table(rows));
}

await main();
