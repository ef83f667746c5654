// The ping probe with iputils ping (Debian's iputils-ping): loopback on this machine; silence,
// an unreachable and a blackholed route inside a network namespace this test makes (and
// deletes); as the daemon runs under deploy/systemd (an unprivileged user with the unit's
// capabilities, NoNewPrivileges and its system-call filter, emulated by setpriv and
// unit-seccomp.py) with and without the ping drop-in and the sysctl.d file; and a stand-in
// `ping` on PATH for output iputils would not give (an ICMP error line, garbage, a flood, a hang).
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PingChecker, ping, type PingCheckOptions } from '../../checks/ping.js';
import type { CheckResult, CheckTarget } from '../../src/health/checker.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./ping-fixture.js', import.meta.url));
const seccomp = join(root, 'test/checks/unit-seccomp.py');
const unit = join(root, 'deploy/systemd/ipvs-warden.service');
const dropIn = join(root, 'deploy/systemd/ipvs-warden.service.d/ping.conf');
const sysctl = join(root, 'deploy/sysctl.d/ipvs-warden.conf');
const ctx = (timeoutMs = 3000, signal = new AbortController().signal) => ({ signal, timeoutMs });
const MARGIN = 3000;
const v4 = (address: string): CheckTarget => ({ family: 4, address, port: 80 });
const v6 = (address: string): CheckTarget => ({ family: 6, address, port: 80 });

t.test('loopback answers, on IPv4 and IPv6', async (t) => {
  for (const target of [v4('127.0.0.1'), v6('::1')]) {
    const r = await new PingChecker().check(target, ctx());
    t.ok(r.healthy, r.message);
    t.match(
      r.message,
      /^ICMP echo -> (127\.0\.0\.1|::1): echo reply from (127\.0\.0\.1|::1) in [\d.]+ ms$/,
    );
  }
  const three = await new PingChecker({ count: 3, size: 1200 }).check(v4('127.0.0.1'), ctx());
  t.ok(three.healthy, three.message);
  t.match(three.message, /^ICMP echo x3 -> /);
  t.ok(three.durationMs < 1000 + MARGIN, `healthy on the first reply: ${three.durationMs} ms`);
});

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the fixture in namespace `ns`, as root or as the unit would run it. */
function inNs(
  ns: string,
  cases: { target: CheckTarget; options?: PingCheckOptions; timeoutMs: number }[],
  asUnit?: { units: string[]; bounding: string[]; ambient: string[] },
): Promise<CheckResult[]> {
  return inNsRun(ns, cases, asUnit).then((r) => r.results);
}

/** The same, with the ping processes the fixture left alive. */
function inNsRun(
  ns: string,
  cases: { target: CheckTarget; options?: PingCheckOptions; timeoutMs: number }[],
  asUnit?: { units: string[]; bounding: string[]; ambient: string[] },
): Promise<{ results: CheckResult[]; livePings: number }> {
  const node = [process.execPath, fixture, JSON.stringify(cases)];
  const caps = (list: string[]): string =>
    ['-all', ...list.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  const args = asUnit
    ? [
        'netns',
        'exec',
        ns,
        'setpriv',
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        `--inh-caps=${caps(asUnit.ambient)}`,
        `--ambient-caps=${caps(asUnit.ambient)}`,
        `--bounding-set=${caps(asUnit.bounding)}`,
        '--no-new-privs',
        '--',
        '/usr/bin/python3',
        seccomp,
        ...asUnit.units,
        '--',
        ...node,
      ]
    : ['netns', 'exec', ns, ...node];
  return new Promise((resolve, reject) =>
    execFile('ip', args, { timeout: 60_000 }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${error.message}\n${stderr}`))
        : resolve(JSON.parse(stdout) as { results: CheckResult[]; livePings: number }),
    ),
  );
}

/** The unit's capability lines, merged as systemd merges them (base, then drop-ins). */
function capsOf(files: string[]): { bounding: string[]; ambient: string[] } {
  const out = { bounding: [] as string[], ambient: [] as string[] };
  for (const f of files)
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const m = /^(AmbientCapabilities|CapabilityBoundingSet)=(.*)$/.exec(line);
      if (!m) continue;
      (m[1] === 'AmbientCapabilities' ? out.ambient : out.bounding).push(
        ...(m[2] ?? '').split(/\s+/).filter(Boolean),
      );
    }
  return out;
}

t.test('in a namespace of its own', async (t) => {
  const ns = `warden-ping-${process.pid}`;
  sh('ip', ['netns', 'add', ns]);
  t.teardown(() => void execFileSync('ip', ['netns', 'del', ns]));
  for (const cmd of [
    'link set lo up',
    // A veth pair whose far end has no address: what is sent to a fixed neighbour there is
    // dropped, never answered (no ARP or neighbour discovery to fail either).
    'link add w0 type veth peer name w1',
    'link set w0 up',
    'link set w1 up',
    'addr add 192.0.2.1/24 dev w0',
    '-6 addr add 2001:db8::1/64 dev w0 nodad',
    'neigh add 192.0.2.9 lladdr 02:00:00:00:00:09 dev w0 nud permanent',
    '-6 neigh add 2001:db8::9 lladdr 02:00:00:00:00:09 dev w0 nud permanent',
    'route add unreachable 198.51.100.0/24',
    'route add blackhole 203.0.113.0/24',
    '-6 route add unreachable 2001:db8:dead::/48',
  ])
    sh('ip', ['-n', ns, ...cmd.split(' ')]);

  t.test('silence: the deadline, and ping is gone with it', async (t) => {
    const { results, livePings } = await inNsRun(ns, [
      { target: v4('192.0.2.9'), timeoutMs: 1200 },
      { target: v6('2001:db8::9'), timeoutMs: 1200, options: { count: 2 } },
    ]);
    for (const r of results) {
      t.notOk(r.healthy, r.message);
      t.match(r.message, /: timed out after 1200 ms waiting for an echo reply$/);
      t.ok(r.durationMs >= 1190 && r.durationMs < 1200 + MARGIN, `took ${r.durationMs} ms`);
    }
    t.equal(results.length, 2);
    // ping -W 2 would still be waiting: it was killed at the deadline.
    t.equal(livePings, 0, 'no ping left running');
  });

  t.test('an unreachable or blackholed route fails at once', async (t) => {
    const rs = await inNs(ns, [
      { target: v4('198.51.100.7'), timeoutMs: 5000 },
      { target: v4('203.0.113.7'), timeoutMs: 5000 },
      { target: v6('2001:db8:dead::7'), timeoutMs: 5000 },
    ]);
    for (const r of rs) {
      t.notOk(r.healthy, r.message);
      t.match(r.message, /: ping failed: "ping: (connect|sendmsg): [^"]+"$/);
      t.ok(r.durationMs < 1000 + MARGIN, `took ${r.durationMs} ms`);
    }
  });

  t.test('as under the systemd unit', async (t) => {
    // -e: the file's IPVS keys do not exist on a kernel without ip_vs loaded (this one).
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-e', '-q', '-p', sysctl]);
    const loop = [
      { target: v4('127.0.0.1'), timeoutMs: 3000 },
      { target: v6('::1'), timeoutMs: 3000 },
    ];
    const withDropIn = await inNs(ns, loop, { units: [unit, dropIn], ...capsOf([unit, dropIn]) });
    for (const r of withDropIn) t.ok(r.healthy, `unit + ping.conf + sysctl.d: ${r.message}`);
    t.same(capsOf([unit]).ambient, ['CAP_NET_ADMIN'], 'the daemon holds CAP_NET_ADMIN alone');

    const [bare] = await inNs(ns, loop.slice(0, 1), { units: [unit], ...capsOf([unit]) });
    t.notOk(bare!.healthy);
    t.match(
      bare!.message,
      /cannot run ping \(EPERM\): its file capability cap_net_raw must be in the service's CapabilityBoundingSet/,
    );

    const [filtered] = await inNs(ns, loop.slice(0, 1), {
      units: [unit],
      ...capsOf([unit, dropIn]),
    });
    t.notOk(filtered!.healthy);
    t.match(
      filtered!.message,
      /ping was refused a system call \("ping: (cap_set_proc|setuid): Operation not permitted"\): the service's SystemCallFilter must allow capset and setuid/,
    );

    sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ping_group_range=1 0']);
    const [noSysctl] = await inNs(ns, loop.slice(1), {
      units: [unit, dropIn],
      ...capsOf([unit, dropIn]),
    });
    t.notOk(noSysctl!.healthy);
    t.match(
      noSysctl!.message,
      /ping cannot open an ICMP socket \("ping: socket: Operation not permitted"\): .*net\.ipv4\.ping_group_range/,
    );
  });
});

t.test('a stand-in ping: an ICMP error line, garbage, a flood, a hang', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ping-'));
  const fake = (body: string): void => {
    writeFileSync(join(dir, 'ping'), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'ping'), 0o755);
  };
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path ?? ''}`;
  t.teardown(() => void (process.env.PATH = path));
  const run = (timeoutMs = 2000) => new PingChecker().check(v4('10.9.9.9'), ctx(timeoutMs));

  fake(
    'echo "PING 10.9.9.9 (10.9.9.9) 56(84) bytes of data."; echo "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable"; sleep 5',
  );
  const icmp = await run(4000);
  t.notOk(icmp.healthy);
  t.match(icmp.message, /: ICMP error from 10\.0\.0\.1: Destination Host Unreachable$/);
  t.ok(icmp.durationMs < 1000 + MARGIN, `at once: ${icmp.durationMs} ms`);

  fake('echo "64 bytes from nowhere, trust me"; echo "\\001\\377junk"; exit 1');
  const junk = await run();
  t.notOk(junk.healthy);
  t.match(junk.message, /: no echo reply \(1 sent\)$/);

  fake('yes "flood flood flood flood flood" | head -c 10000000; exit 1');
  const flood = await run(10_000);
  t.notOk(flood.healthy, 'ten megabytes of output are read through a bounded buffer');
  t.match(flood.message, /: no echo reply \(1 sent\)$/);

  fake('exec sleep 30');
  const hang = await run(500);
  t.notOk(hang.healthy);
  t.match(hang.message, /: timed out after 500 ms waiting for an echo reply$/);

  fake('echo "ping: something odd" >&2; exit 2');
  const odd = await run();
  t.match(odd.message, /: ping failed: "ping: something odd"$/);

  fake('exec sleep 30');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const cancelled = await new PingChecker().check(v4('10.9.9.9'), ctx(5000, ac.signal));
  t.notOk(cancelled.healthy);
  t.match(cancelled.message, /: cancelled waiting for an echo reply$/);
  t.ok(cancelled.durationMs < 1000 + MARGIN, `took ${cancelled.durationMs} ms`);

  process.env.PATH = join(dir, 'nothing-here'); // no ping at all
  const missing = await run();
  t.notOk(missing.healthy);
  t.match(missing.message, /: cannot run ping: not found \(install iputils-ping\)$/);
});

t.test('the declaration', async (t) => {
  t.equal(ping.kind, 'ping');
  t.equal(ping.create({}).key, ping.create({ count: 1, size: 56 }).key);
  t.not(ping.create({}).key, ping.create({ count: 2 }).key);
});
