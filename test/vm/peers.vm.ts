// Side by side with the real thing, on the real kernel (in the VM, one boot): for the same
// ldirectord.cf and the same live or dead real servers, Debian's ldirectord and ipvs-warden each
// keep their own IPVS table, and `ipvsadm -S -n` of the two must be the same once both have
// settled: at start (all up), with one server down, recovered, all down (the fallback in), one
// back (the fallback out), and after SIGTERM (both clean up). Then the same with keepalived and a
// keepalived.conf.
//
// IPVS tables are per network namespace, so each director gets its own: `ld` runs ldirectord,
// `iwld` runs ipvs-warden on the same ldirectord.cf, `ka` keepalived, `iwka` ipvs-warden on the
// same keepalived.conf. Each director namespace has a veth to its own real-server namespace
// (`<director>rs`) that holds the same addresses, 10.1.0.1-3 and the fallback 10.1.0.9, each
// served by its own busybox httpd; a server is failed by stopping its httpd in every
// real-server namespace at once, and brought back by starting it again.
//
// Normalised, because documented (README "Tests", test:peers):
// - the order of the lines: ldirectord and keepalived add the real servers in the order their
//   checks come in, ipvs-warden in the order its own checks pass, and the kernel lists them in
//   the order they were added, so after a recovery the order is a matter of timing. The lines
//   are sorted before they are compared; when the printed orders differ the test says so in a
//   comment (not seen in the runs so far).
// Nothing else is normalised: weights, forwarding methods, the scheduler and the fallback are
// compared as `ipvsadm -S -n` prints them, and each table must also be the expected one, so both
// being wrong the same way fails too. Every phase starts with all servers up (the documented
// difference at start, ipvs-warden never putting an unchecked server in, is not exercised).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { sh } from './sh.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const work = '/tmp/peers';
const www = join(work, 'www');

const VIP = '10.0.0.1:80';
const REALS = ['10.1.0.1', '10.1.0.2', '10.1.0.3'] as const;
const FALLBACK = '10.1.0.9';
/** checkinterval / delay_loop of both files. */
const INTERVAL_S = 2;
/** A table is settled once it has not changed for this long (three check intervals). */
const STABLE_MS = 3 * INTERVAL_S * 1000;
/** How long a phase may take to settle in the emulated VM. */
const SETTLE_MS = 60_000;

const LDIRECTORD_CF = `# ipvs-warden's side-by-side test (test/vm/peers.vm.ts)
checktimeout=1
checkinterval=${INTERVAL_S}
quiescent=no
autoreload=no

virtual=${VIP}
	real=${REALS[0]}:80 masq
	real=${REALS[1]}:80 masq
	real=${REALS[2]}:80 masq
	fallback=${FALLBACK}:80 masq
	service=http
	checktype=negotiate
	request="healthz"
	receive="ok"
	scheduler=wrr
	protocol=tcp
`;

const realServer = (address: string): string => `    real_server ${address} 80 {
        weight 1
        HTTP_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 1
            retry 0
        }
    }
`;
const KEEPALIVED_CONF = `# ipvs-warden's side-by-side test (test/vm/peers.vm.ts)
virtual_server 10.0.0.1 80 {
    delay_loop ${INTERVAL_S}
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    sorry_server ${FALLBACK} 80
${REALS.map(realServer).join('')}}
`;

/** A director's namespace and, behind a veth, its real servers' namespace. */
class Director {
  readonly rsNs: string;
  readonly httpd = new Map<string, ChildProcess>();
  proc: ChildProcess | null = null;
  exited: Promise<number | null> = Promise.resolve(null);
  readonly log: string;
  constructor(readonly ns: string) {
    this.rsNs = `${ns}rs`;
    this.log = join(work, `${ns}.log`);
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'add', this.rsNs]);
    sh('ip', [
      'link',
      'add',
      `${ns}0`,
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      `${ns}1`,
      'netns',
      this.rsNs,
    ]);
    const dir = (...a: string[]): string => sh('ip', ['-n', ns, ...a]);
    const rs = (...a: string[]): string => sh('ip', ['-n', this.rsNs, ...a]);
    dir('link', 'set', 'lo', 'up');
    dir('addr', 'add', '10.1.0.254/24', 'dev', `${ns}0`);
    dir('addr', 'add', '10.0.0.1/32', 'dev', 'lo');
    dir('link', 'set', `${ns}0`, 'up');
    rs('link', 'set', 'lo', 'up');
    for (const a of [...REALS, FALLBACK]) rs('addr', 'add', `${a}/24`, 'dev', `${ns}1`);
    rs('link', 'set', `${ns}1`, 'up');
    rs('route', 'add', 'default', 'via', '10.1.0.254');
  }
  startHttpd(address: string): void {
    this.httpd.set(
      address,
      spawn(
        'ip',
        ['netns', 'exec', this.rsNs, 'busybox', 'httpd', '-f', '-p', `${address}:80`, '-h', www],
        {
          stdio: 'ignore',
        },
      ),
    );
  }
  stopHttpd(address: string): void {
    this.httpd.get(address)?.kill('SIGKILL');
    this.httpd.delete(address);
  }
  /** The health page through this director's veth, as its checks see it. */
  reachable(address: string): boolean {
    try {
      const body = execFileSync(
        'ip',
        ['netns', 'exec', this.ns, 'busybox', 'wget', '-q', '-O', '-', `http://${address}/healthz`],
        { encoding: 'utf8', timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      return body.trim() === 'ok';
    } catch {
      return false;
    }
  }
  run(cmd: string, args: string[]): void {
    const out = openSync(this.log, 'a');
    this.proc = spawn('ip', ['netns', 'exec', this.ns, cmd, ...args], {
      stdio: ['ignore', out, out],
    });
    const p = this.proc;
    this.exited = new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }
  /** `ipvsadm -S -n` of this namespace as it prints it. */
  raw(): string {
    return sh('ip', ['netns', 'exec', this.ns, 'ipvsadm', '-S', '-n']);
  }
  /** `ipvsadm -S -n` of this namespace, its lines sorted (the one normalisation, see above). */
  table(): string {
    return this.raw()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .sort()
      .join('\n');
  }
  tail(n = 25): string {
    try {
      return readFileSync(this.log, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/**
 * Polls the directors' tables until every one has held `want` for STABLE_MS; returns the last
 * tables seen (settled or not) so a failure shows them.
 */
async function settle(
  directors: Director[],
  want: string,
): Promise<{ tables: string[]; ms: number }> {
  const start = Date.now();
  let since = start;
  let last: string[] = [];
  while (Date.now() - start < SETTLE_MS) {
    const tables = directors.map((d) => d.table());
    if (tables.join('\0') !== last.join('\0') || tables.some((x) => x !== want)) since = Date.now();
    last = tables;
    if (tables.every((x) => x === want) && Date.now() - since >= STABLE_MS) break;
    await sleep(500);
  }
  return { tables: last, ms: Date.now() - start };
}

const svc = `-A -t ${VIP} -s wrr`;
const dest = (a: string): string => `-a -t ${VIP} -r ${a}:80 -m -w 1`;
const expected = (up: readonly string[]): string =>
  [svc, ...(up.length > 0 ? up : [FALLBACK]).map(dest)].sort().join('\n');

async function sideBySide(
  t: Test,
  peer: Director,
  warden: Director,
  startPeer: () => void,
  config: string,
): Promise<void> {
  const both = [peer, warden];
  for (const d of both) for (const a of [...REALS, FALLBACK]) d.startHttpd(a);
  const ready = async (): Promise<boolean> => {
    for (let i = 0; i < 40; i++) {
      if (both.every((d) => REALS.every((a) => d.reachable(a)))) return true;
      await sleep(250);
    }
    return false;
  };
  t.ok(await ready(), 'every real server answers through both directors');
  startPeer();
  warden.run(process.execPath, [main, 'run', '--config', config]);

  const phase = async (name: string, up: readonly string[]): Promise<void> => {
    const want = expected(up);
    const { tables, ms } = await settle(both, want);
    const [p, w] = tables as [string, string];
    t.comment(`${name}: settled after ${ms} ms`);
    t.equal(w, p, `${name}: ipvs-warden's table is ${peer.ns}'s`);
    t.equal(p, want, `${name}: and it is the expected one`);
    const [rp, rw] = [peer.raw(), warden.raw()];
    if (rp !== rw && w === p)
      t.comment(`${name}: the same lines in another order:\n${rp}--\n${rw}`);
    if (p !== want || w !== p) {
      t.comment(`${peer.ns} log:\n${peer.tail()}`);
      t.comment(`${warden.ns} log:\n${warden.tail()}`);
    }
  };
  const setUp = (address: string, up: boolean): void => {
    for (const d of both) {
      if (up) d.startHttpd(address);
      else d.stopHttpd(address);
    }
  };

  await phase('start, all up', REALS);
  setUp(REALS[1], false);
  await phase(`${REALS[1]} down`, [REALS[0], REALS[2]]);
  setUp(REALS[1], true);
  await phase(`${REALS[1]} recovered`, REALS);
  for (const a of REALS) setUp(a, false);
  await phase('all down, the fallback in', []);
  setUp(REALS[0], true);
  await phase(`${REALS[0]} back, the fallback out`, [REALS[0]]);

  for (const d of both) d.proc?.kill('SIGTERM');
  const codes = await Promise.race([
    Promise.all(both.map((d) => d.exited)),
    sleep(30_000).then(() => null),
  ]);
  t.ok(codes, 'both stop on SIGTERM');
  t.same(
    both.map((d) => d.table()),
    ['', ''],
    'after SIGTERM both have removed their service (cleanstop)',
  );
}

t.setTimeout(900_000);
const directors: Director[] = [];
t.teardown(() => {
  for (const d of directors) {
    d.proc?.kill('SIGKILL');
    for (const a of [...d.httpd.keys()]) d.stopHttpd(a);
  }
});
rmSync(work, { recursive: true, force: true });
mkdirSync(www, { recursive: true });
writeFileSync(join(www, 'healthz'), 'ok\n');
writeFileSync(join(www, 'index.html'), 'hello\n');

t.test('ldirectord and ipvs-warden, one ldirectord.cf', { timeout: 400_000 }, async (t) => {
  const cf = join(work, 'peers.cf');
  writeFileSync(cf, LDIRECTORD_CF);
  const ld = new Director('ld');
  const iw = new Director('iwld');
  directors.push(ld, iw);
  // -d: the foreground (no fork, no pid file), its log on stderr.
  await sideBySide(t, ld, iw, () => ld.run('/usr/sbin/ldirectord', ['-d', cf, 'start']), cf);
});

t.test('keepalived and ipvs-warden, one keepalived.conf', { timeout: 400_000 }, async (t) => {
  const conf = join(work, 'keepalived.conf');
  writeFileSync(conf, KEEPALIVED_CONF);
  const ka = new Director('ka');
  const iw = new Director('iwka');
  directors.push(ka, iw);
  mkdirSync('/run/peers-ka', { recursive: true });
  await sideBySide(
    t,
    ka,
    iw,
    () =>
      ka.run('/usr/sbin/keepalived', [
        '--dont-fork',
        '--log-console',
        '--log-detail',
        '--no-syslog',
        '--check',
        '--use-file',
        conf,
        '--pid',
        '/run/peers-ka/keepalived.pid',
        '--checkers_pid',
        '/run/peers-ka/checkers.pid',
      ]),
    conf,
  );
});
