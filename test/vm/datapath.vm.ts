// Data-path checks on the real kernel (in the VM, after the e2e lane, in the same boot): two DR
// real servers set up by `ipvs-warden realserver --apply`, and two services on them, one checked
// through the data path (data_path: true) and one the ordinary way. A real server then loses
// the VIPs from its lo while its own address still answers: the ordinary check stays green and
// keeps it in, the data-path check goes red and the daemon takes it out. The detection time is
// measured and printed; the VIP back brings the server back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseIpvsadmList } from '../ipvs/ipvsadm.js';
import { sh } from './sh.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const work = '/tmp/warden-datapath';

const DP = '10.0.0.10';
const PLAIN = '10.0.0.11';
// The test config's timings. A server that lost its VIP drops the probe's SYN (it is not its
// address and it does not forward), so each failing check runs to its timeout.
const INTERVAL = 1000;
const FAST = 500;
const TIMEOUT = 1000;
const FALL = 2;
const JITTER = 0.1;
const MIN_TICK = 250;
/** The next check, then fall - 1 fast ones, each to its timeout; then a tick. */
const DETECTION_BOUND =
  INTERVAL * (1 + JITTER) + TIMEOUT + (FALL - 1) * (FAST * (1 + JITTER) + TIMEOUT) + MIN_TICK;

/** Real server n: its namespace on a veth pair of its own, 10.0.n.2, the director 10.0.n.254. */
function realServer(n: number): { ns: string; address: string } {
  const ns = `dp${n}`;
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['link', 'add', `hdp${n}`, 'type', 'veth', 'peer', 'name', `ndp${n}`]);
  sh('ip', ['link', 'set', `ndp${n}`, 'netns', ns]);
  sh('ip', ['addr', 'add', `10.0.${n}.254/24`, 'dev', `hdp${n}`]);
  sh('ip', ['link', 'set', `hdp${n}`, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', `10.0.${n}.2/24`, 'dev', `ndp${n}`]);
  sh('ip', ['-n', ns, 'link', 'set', `ndp${n}`, 'up']);
  // What every DR real server needs, by the project's own command.
  sh('ip', [
    'netns',
    'exec',
    ns,
    process.execPath,
    main,
    'realserver',
    '--vip',
    `${DP},${PLAIN}`,
    '--mode',
    'dr',
    '--apply',
  ]);
  return { ns, address: `10.0.${n}.2` };
}

/** The destinations of a service in `ipvsadm -Ln`, "address weight". */
function table(service: string): string[] {
  const svc = parseIpvsadmList(sh('ipvsadm', ['-Ln'])).find((s) => s.service === service);
  return (svc?.destinations ?? []).map((d) => `${d.address} w=${d.columns[1]}`).sort();
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}

t.setTimeout(300_000);
t.test('data-path checks see what DR traffic sees', { timeout: 300_000 }, async (t) => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const procs: ChildProcess[] = [];
  t.teardown(() => {
    for (const p of procs) p.kill('SIGKILL');
    sh('ipvsadm', ['-C']);
  });
  // The director holds the VIPs, and takes replies whose source is one of its own addresses
  // (the VIP, from a real server): without accept_local the kernel drops them as martians.
  sh('ip', ['link', 'set', 'lo', 'up']);
  for (const vip of [DP, PLAIN]) sh('ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
  sh('sysctl', ['-qw', 'net.ipv4.conf.all.accept_local=1']);
  const servers = [realServer(1), realServer(2)];
  for (const s of servers) {
    const www = join(work, s.ns);
    mkdirSync(www);
    writeFileSync(join(www, 'index.html'), `${s.ns}\n`);
    // On every address: the real server's own and the VIPs on its lo.
    procs.push(
      spawn('ip', ['netns', 'exec', s.ns, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], {
        stdio: 'ignore',
      }),
    );
  }
  const config = join(work, 'warden.yaml');
  const rs = servers.map((s, i) => `{name: rs${i + 1}, address: ${s.address}}`).join(', ');
  writeFileSync(
    config,
    `daemon: {backend: netlink, log_format: json, resync_interval: 2s, min_tick_interval: ${MIN_TICK}ms, pid_file: ${work}/warden.pid, listen: ""}
defaults: {interval: 1s, fast_interval: 500ms, down_interval: 1s, timeout: 1s, jitter: ${JITTER}, rise: 2, fall: ${FALL}, checks: [{type: http, path: /}], fwd: route}
virtual_services:
  - {name: dp, address: ${DP}, port: 80, data_path: true, real_servers: [${rs}]}
  - {name: plain, address: ${PLAIN}, port: 80, real_servers: [${rs}]}
`,
  );
  const daemon = spawn(process.execPath, [main, 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const events: { event: string; time?: string; [k: string]: unknown }[] = [];
  createInterface({ input: daemon.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as { event: string });
    } catch {
      events.push({ event: 'unparsed', line });
    }
  });
  procs.push(daemon);
  const both = ['10.0.1.2:80 w=1', '10.0.2.2:80 w=1'];
  t.ok(
    await until(
      () =>
        table(`TCP ${DP}:80`).join() === both.join() &&
        table(`TCP ${PLAIN}:80`).join() === both.join(),
      // The daemon's start under emulation (node itself) is slow and not what is measured.
      90_000,
    ),
    'both servers in both services',
  );
  const carriers = parseIpvsadmList(sh('ipvsadm', ['-Ln'])).filter((s) =>
    s.service.startsWith('FWM'),
  );
  t.same(
    carriers.map((c) => c.destinations.map((d) => `${d.address} ${d.columns[0]}`)).sort(),
    [['10.0.1.2:80 Route'], ['10.0.2.2:80 Route']],
    'one fwmark carrier per data-path server, by DR',
  );

  // rs1 loses its VIPs; its own address still answers.
  const lost = Date.now();
  for (const vip of [DP, PLAIN]) sh('ip', ['-n', 'dp1', 'addr', 'del', `${vip}/32`, 'dev', 'lo']);
  t.equal(
    sh('busybox', ['wget', '-q', '-O', '-', 'http://10.0.1.2/']),
    'dp1\n',
    'its own address answers',
  );
  const margin = 2 * DETECTION_BOUND + 3000;
  const out = await until(() => table(`TCP ${DP}:80`).join() === '10.0.2.2:80 w=1', margin);
  t.ok(out, 'the data-path check takes it out');
  const detection = Date.now() - lost;
  t.comment(
    `detection of a lost VIP: ${detection} ms with the data-path check (bound ${Math.round(DETECTION_BOUND)} ms), never without it`,
  );
  t.ok(detection < margin, `within ${margin} ms`);
  if (!out) for (const e of events.slice(-25)) t.comment(JSON.stringify(e).slice(0, 400));
  // The ordinary check keeps passing: the server stays in, though every packet to it is lost.
  await sleep(DETECTION_BOUND);
  t.same(table(`TCP ${PLAIN}:80`), both, `without it, still in ${Date.now() - lost} ms later`);

  sh('ip', ['-n', 'dp1', 'addr', 'add', `${DP}/32`, 'dev', 'lo']);
  t.ok(
    await until(() => table(`TCP ${DP}:80`).join() === both.join(), margin),
    'the VIP back: the server back',
  );
  daemon.kill('SIGTERM');
});
