// Two directors, active/standby, on the real kernel (in the VM, one boot): keepalived does VRRP
// only and tells ipvs-warden the role through its notify script (`ipvs-warden role`); each
// director runs ipvs-warden on the same config with `daemon.sync.state: follow-role`, so the
// master director runs the master sync daemon and the other the backup one. Issue 14.
//
//   lan (bridge br0, 10.9.0.0/24): client .100, d1 .1 (priority 150), d2 .2 (priority 100),
//     rs1 .11 and rs2 .12 (DR real servers: the VIP on lo, arp_ignore/arp_announce), VIP .200,
//     held by whichever director keepalived makes master.
//
// A client holds one TCP connection to a line-echo server through the VIP (every real server
// answers "NAME LINE") and opens a new short one every 50 ms. Then d1 dies: its port on the
// bridge taken down (the cable pulled), then kill -9 of its keepalived (both processes) and its
// ipvs-warden (a power cut: no priority-0 advert, no goodbye). d2 takes the VIP when VRRP's master-down timer runs out
// (3 x advert_int + skew); the held connection must keep echoing on the same real server, because
// d2's backup sync daemon already holds its entry (shown before the kill); new connections resume;
// d2's notify makes it master and its sync daemon switches to master. Measured: the gap (kill to
// the first new connection that succeeds), new connections lost, the role switch.
//
// The control: d1 comes back (keepalived preempts it to master), both daemons run with sync
// state none, the same failover again. With DR and no entry, d2 sees a non-SYN segment for no
// connection: IPVS schedules only a SYN (unless net.ipv4.vs.sloppy_tcp), so the segment goes to
// d2's own stack, which holds the VIP and has no socket: a reset. The held connection must not
// survive.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { clearNetworks } from './netns.js';
import { snippet } from './snippet.js';
import { sleep, until } from './wait.js';
import { script, sh } from './sh.js';

const inNs = (ns: string, cmd: string, ...args: string[]): string =>
  sh('ip', ['netns', 'exec', ns, cmd, ...args]);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const work = '/tmp/warden-vrrp';

const VIP = '10.9.0.200';
const PORT = 8000;
const CLIENT = '10.9.0.100';
const SYNC_ID = 9;
/** VRRP timers: advert_int 1 s; keepalived's skew is (256 - priority) / 256 of advert_int. */
const ADVERT_MS = 1000;
const DIRECTORS = {
  d1: { address: '10.9.0.1', priority: 150 },
  d2: { address: '10.9.0.2', priority: 100 },
} as const;
type Director = keyof typeof DIRECTORS;
/** RFC 3768's Master_Down_Interval of a backup: when it takes over after the last advert. */
const masterDown = (d: Director): number =>
  3 * ADVERT_MS + ((256 - DIRECTORS[d].priority) / 256) * ADVERT_MS;
/** A new connection every CONNECT_EVERY ms, each given CONNECT_TIMEOUT ms to echo its line. */
const CONNECT_EVERY = 50;
const CONNECT_TIMEOUT = 1000;
/**
 * The gap's bound: d2's master-down interval (counted from d1's last advert, at most one
 * advert_int before the kill, so this is an upper bound), then the next attempt, then slack for
 * keepalived adding the VIP and sending its gratuitous ARP and the connection itself in the
 * emulated VM (some 10x slower than the host).
 */
const GAP_BOUND = masterDown('d2') + CONNECT_EVERY + 1500;
/** And its floor: no new connection can succeed before d2's timer runs out. */
const GAP_FLOOR = masterDown('d2') - ADVERT_MS;

/** A process in a namespace, its output kept line by line (JSON lines parsed). */
class Proc {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  readonly events: Record<string, unknown>[] = [];
  constructor(ns: string, cmd: string, args: readonly string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.proc.stdout!, this.proc.stderr!])
      createInterface({ input: stream }).on('line', (l) => {
        this.lines.push(l);
        if (l.startsWith('{'))
          try {
            this.events.push(JSON.parse(l) as Record<string, unknown>);
          } catch {
            // a line that only looks like JSON
          }
      });
  }
  named(event: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === event || e.ev === event);
  }
  tail(n = 15): string {
    return this.lines.slice(-n).join('\n');
  }
}

/** Every real server echoes each line as "NAME LINE" (the client learns who served it). */
const ECHO = `
const name = process.argv[1];
require('net').createServer((s) => {
  let b = '';
  s.on('error', () => {});
  s.on('data', (d) => {
    b += d;
    for (let i; (i = b.indexOf('\\n')) >= 0; b = b.slice(i + 1)) s.write(name + ' ' + b.slice(0, i) + '\\n');
  });
}).listen(${PORT});
console.log('listening');
`;

/**
 * The client: one held connection that sends "held N" every 200 ms and reports each echo, and a
 * new connection every ${CONNECT_EVERY} ms that must echo one line within ${CONNECT_TIMEOUT} ms.
 * One JSON line per event, with the time.
 */
const CLIENT_JS = `
const net = require('net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const emit = (o) => console.log(JSON.stringify({ t: Date.now(), ...o }));
const held = net.connect({ host, port });
held.setNoDelay(true);
let seq = 0, buf = '';
held.on('connect', () => {
  emit({ ev: 'held-open', port: held.localPort });
  setInterval(() => {
    if (held.destroyed) return;
    held.write('held ' + ++seq + '\\n');
    emit({ ev: 'held-sent', seq });
  }, 200);
});
held.on('data', (d) => {
  buf += d;
  for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) {
    const [server, , n] = buf.slice(0, i).split(' ');
    emit({ ev: 'held-echo', server, seq: Number(n) });
  }
});
held.on('error', (e) => emit({ ev: 'held-error', code: e.code }));
held.on('close', () => emit({ ev: 'held-close' }));
let id = 0;
setInterval(() => {
  const start = Date.now(), n = ++id;
  const s = net.connect({ host, port });
  let got = '', done = false;
  const end = (ok, why) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    s.destroy();
    emit({ ev: ok ? 'new-ok' : 'new-fail', id: n, start, why, server: got.split(' ')[0] });
  };
  const timer = setTimeout(() => end(false, 'timeout'), ${CONNECT_TIMEOUT});
  s.on('connect', () => s.write('new ' + n + '\\n'));
  s.on('data', (d) => { got += d; if (got.includes('\\n')) end(true); });
  s.on('error', (e) => end(false, e.code));
}, ${CONNECT_EVERY});
`;

/** The keepalived.conf of a director: deploy/directors/keepalived.conf in the lane's namespace. */
function keepalivedConf(d: Director): string {
  return snippet('keepalived.conf', [
    ['router_id d1', `router_id ${d}\n    script_user root`],
    ['interface eth0', 'interface e0'],
    ['priority 150', `priority ${DIRECTORS[d].priority}`],
    ['advert_int 1', `advert_int ${ADVERT_MS / 1000}`],
    ['10.9.0.200/32 dev eth0', `${VIP}/32 dev e0`],
    [
      '"/usr/bin/ipvs-warden role"',
      `"${process.execPath} ${main} role --state-dir ${stateDir(d)}"`,
    ],
  ]);
}

const stateDir = (d: Director): string => join(work, d, 'state');

/** The same config on both directors but for state_dir. */
function wardenConf(d: Director, sync: 'follow-role' | 'none'): string {
  return `daemon:
  backend: netlink
  log_format: json
  resync_interval: 2s
  listen: ''
  maintenance_poll: 500ms
  state_dir: ${stateDir(d)}
  sync:
    state: ${sync}
    interface: e0
    sync_id: ${SYNC_ID}
defaults:
  interval: 1s
  timeout: 1s
  rise: 1
  fall: 2
  checks: [{type: tcp}]
virtual_services:
  - name: echo
    address: ${VIP}
    port: ${PORT}
    scheduler: rr
    fwd: route
    real_servers:
      - {name: rs1, address: 10.9.0.11, port: ${PORT}}
      - {name: rs2, address: 10.9.0.12, port: ${PORT}}
`;
}

/** Namespaces, links, addresses and the DR real servers' settings, as one script. */
function topology(): string {
  const lines = ['ip link add br0 type bridge', 'ip link set br0 up'];
  const ns = (name: string, address: string): void => {
    lines.push(
      `ip netns add ${name}`,
      `ip link add v${name} type veth peer name e0 netns ${name}`,
      `ip link set v${name} master br0 up`,
      `ip -n ${name} -batch - <<'EOF'\nlink set lo up\nlink set e0 up\naddr add ${address}/24 dev e0\nEOF`,
    );
  };
  ns('client', CLIENT);
  for (const [d, { address }] of Object.entries(DIRECTORS)) ns(d, address);
  for (const [rs, n] of [
    ['rs1', 11],
    ['rs2', 12],
  ] as const) {
    ns(rs, `10.9.0.${n}`);
    // What `ipvs-warden realserver --vip ${VIP} --mode dr --apply` sets (test/vm/forwarding.vm.ts
    // runs that command; a node start costs seconds here).
    lines.push(
      `ip -n ${rs} addr add ${VIP}/32 dev lo`,
      `ip netns exec ${rs} sh -ec 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce'`,
    );
  }
  return lines.join('\n');
}

const syncDaemons = (d: Director): string =>
  inNs(d, 'ipvsadm', '--list', '--daemon')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
const syncDaemon = (state: 'master' | 'backup'): string =>
  `${state} sync daemon (mcast=e0, syncid=${SYNC_ID}, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`;
const holdsVip = (d: Director): boolean =>
  inNs(d, 'ip', '-4', '-br', 'addr', 'show', 'e0').includes(`${VIP}/32`);
const table = (d: Director): string => inNs(d, 'ipvsadm', '-S', '-n').trim();
const role = (d: Director): string => {
  const f = join(stateDir(d), 'role');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : 'none';
};
/** The director's connection entries of the client's port (ipvsadm -Lnc). */
const entries = (d: Director, port: number): string[] =>
  inNs(d, 'ipvsadm', '-L', '-n', '-c')
    .split('\n')
    .filter((l) => l.includes(`${CLIENT}:${port} `));

interface Failover {
  readonly gap: number;
  /** Failed new connections (none fail before the cut: asserted). */
  readonly lost: number;
  /** New connections that echoed, started after the cut. */
  readonly resumed: number;
  /** New connections started after the cut. */
  readonly attempts: number;
  /** Echoes of lines the held connection sent after the kill, and from which servers. */
  readonly heldAfter: readonly string[];
  readonly heldBefore: string;
  readonly heldError: string | null;
}

t.setTimeout(900_000);
t.test(
  'active/standby with keepalived VRRP and synced connections',
  { timeout: 900_000 },
  async (t) => {
    const began = Date.now();
    const since = (): string => `${((Date.now() - began) / 1000).toFixed(1)} s`;
    rmSync(work, { recursive: true, force: true });
    const procs: Proc[] = [];
    const nets = ['client', ...Object.keys(DIRECTORS), 'rs1', 'rs2'];
    clearNetworks(nets, ['br0']);
    t.teardown(() => {
      for (const p of procs) p.proc.kill('SIGKILL');
      clearNetworks(nets, ['br0']);
    });
    const start = (ns: string, cmd: string, args: readonly string[]): Proc => {
      const p = new Proc(ns, cmd, args);
      procs.push(p);
      return p;
    };
    script(topology());
    for (const d of Object.keys(DIRECTORS) as Director[]) {
      mkdirSync(join(work, d), { recursive: true });
      writeFileSync(join(work, d, 'keepalived.conf'), keepalivedConf(d));
      writeFileSync(join(work, d, 'sync.yaml'), wardenConf(d, 'follow-role'));
      writeFileSync(join(work, d, 'nosync.yaml'), wardenConf(d, 'none'));
    }
    const echo = ['rs1', 'rs2'].map((rs) => start(rs, process.execPath, ['-e', ECHO, rs]));
    const keepalived = (d: Director): Proc =>
      start(d, '/usr/sbin/keepalived', [
        '--dont-fork',
        '--log-console',
        '--log-detail',
        '--no-syslog',
        '--vrrp',
        '--use-file',
        join(work, d, 'keepalived.conf'),
        '--pid',
        join(work, d, 'keepalived.pid'),
        '--vrrp_pid',
        join(work, d, 'vrrp.pid'),
      ]);
    const warden = (d: Director, conf: 'sync' | 'nosync'): Proc =>
      start(d, process.execPath, [main, 'run', '--config', join(work, d, `${conf}.yaml`)]);
    const ka: Record<Director, Proc> = { d1: keepalived('d1'), d2: keepalived('d2') };
    const iw: Record<Director, Proc> = { d1: warden('d1', 'sync'), d2: warden('d2', 'sync') };

    /**
     * d1 dies: its cable pulled (its port on the bridge down: from then on it neither forwards
     * nor sends adverts; killing processes alone would leave the kernel forwarding), then its
     * VRRP child, keepalived and ipvs-warden killed with -9 (no priority-0 advert, no cleanup).
     * The cut happens somewhere inside the `ip` command: `cut` is when it was started,
     * `cutDone` when it had returned.
     */
    const killD1 = (): { cut: number; cutDone: number } => {
      const cut = Date.now();
      sh('ip', ['link', 'set', 'vd1', 'down']);
      const cutDone = Date.now();
      process.kill(Number(readFileSync(join(work, 'd1', 'vrrp.pid'), 'utf8')), 'SIGKILL');
      ka.d1.proc.kill('SIGKILL');
      iw.d1.proc.kill('SIGKILL');
      return { cut, cutDone };
    };

    /** Runs the client until d1 is killed and the service has come back; what it measured. */
    const failover = async (
      t: Test,
      beforeKill: (heldPort: number) => Promise<void>,
    ): Promise<Failover & { cut: number; cutMs: number }> => {
      const client = start('client', process.execPath, ['-e', CLIENT_JS, VIP, String(PORT)]);
      t.ok(
        await until(
          () => client.named('held-echo').length >= 3 && client.named('new-ok').length >= 10,
          60_000,
        ),
        'the held connection echoes, new connections succeed',
      );
      const heldPort = Number(client.named('held-open')[0]?.port);
      const heldBefore = String(client.named('held-echo')[0]?.server);
      t.same(client.named('new-fail'), [], 'no new connection fails before the kill');
      await beforeKill(heldPort);
      const { cut, cutDone } = killD1();
      // Only what started after the cut is judged: before cutDone d1 may still have served it.
      const okAfter = (): Record<string, unknown>[] =>
        client.named('new-ok').filter((e) => Number(e.start) >= cutDone);
      const sentAfter = (): number =>
        Number(client.named('held-sent').find((e) => Number(e.t) >= cutDone)?.seq ?? Infinity);
      const heldAfter = (): Record<string, unknown>[] =>
        client.named('held-echo').filter((e) => Number(e.seq) >= sentAfter());
      await until(() => okAfter().length >= 10, 60_000);
      // TCP's retransmission backs off (0.2, 0.4, ... 3.2 s): the held connection's next try after
      // the VIP moves may come some seconds later.
      await until(() => heldAfter().length >= 3 || client.named('held-close').length > 0, 20_000);
      client.proc.kill('SIGKILL');
      const first = okAfter()[0];
      const attempts = client.events.filter(
        (e) => (e.ev === 'new-ok' || e.ev === 'new-fail') && Number(e.start) >= cut,
      );
      return {
        cut,
        cutMs: cutDone - cut,
        // From the start of the cut: at most cutMs more than from the cut itself.
        gap: first ? Number(first.t) - cut : Infinity,
        lost: client.named('new-fail').length,
        resumed: okAfter().length,
        attempts: attempts.length,
        heldAfter: heldAfter().map((e) => String(e.server)),
        heldBefore,
        heldError: (client.named('held-error')[0]?.code as string | undefined) ?? null,
      };
    };

    await t.test(
      'both directors up: d1 master with the VIP and the master sync daemon',
      async (t) => {
        // Node takes 20-35 s to start the daemon in the emulated VM, longer for two at once.
        for (const d of ['d1', 'd2'] as const)
          t.ok(
            await until(() => iw[d].named('daemon.started').length > 0, 150_000, 250),
            `ipvs-warden runs in ${d} (${since()})`,
          );
        t.ok(
          await until(() => role('d1') === 'master' && role('d2') === 'backup', 30_000),
          `keepalived's notify: d1 master, d2 backup (${role('d1')}, ${role('d2')})`,
        );
        t.ok(holdsVip('d1') && !holdsVip('d2'), 'the VIP on d1 only');
        const want = `-A -t ${VIP}:${PORT} -s rr\n-a -t ${VIP}:${PORT} -r 10.9.0.11:${PORT} -g -w 1\n-a -t ${VIP}:${PORT} -r 10.9.0.12:${PORT} -g -w 1`;
        for (const d of ['d1', 'd2'] as const)
          t.ok(await until(() => table(d) === want, 30_000, 500), `${d}: the same table, both in`);
        t.ok(
          await until(
            () =>
              syncDaemons('d1') === syncDaemon('master') &&
              syncDaemons('d2') === syncDaemon('backup'),
            30_000,
            500,
          ),
          `sync daemons from the role: d1 ${syncDaemons('d1')}; d2 ${syncDaemons('d2')}`,
        );
        t.ok(
          echo.every((e) => e.lines.includes('listening')),
          'the echo servers listen',
        );
        t.comment(`set up: ${since()}`);
      },
    );
    if (!t.passing()) return;

    await t.test(
      'd1 dies: the VIP moves, the held connection survives (synced), d2 becomes sync master',
      async (t) => {
        const f = await failover(t, async (port) => {
          // The master sends its buffer at least every 2 s (IPVS_SYNC_FLUSH_TIME).
          t.ok(
            await until(() => entries('d2', port).length > 0, 15_000, 500),
            "the held connection's entry reaches d2 before the kill",
          );
          t.comment(`d2 before the kill: ${entries('d2', port).join(' | ')}`);
        });
        t.comment(
          `failover gap: ${f.gap} ms (bound ${Math.round(GAP_BOUND)}, floor ${Math.round(GAP_FLOOR)}); new connections lost: ${f.lost} of ${f.attempts} started after the cut`,
        );
        t.ok(
          f.gap >= GAP_FLOOR && f.gap <= GAP_BOUND + f.cutMs,
          `gap ${f.gap} ms within VRRP's bounds (${Math.round(GAP_FLOOR)}..${Math.round(GAP_BOUND)} ms + ${f.cutMs} ms the cut took)`,
        );
        t.ok(
          f.heldAfter.length >= 3,
          `the held connection echoes after the kill (${f.heldAfter.length} lines)`,
        );
        t.ok(
          f.heldAfter.every((s) => s === f.heldBefore),
          `on the same real server (${f.heldBefore}: ${[...new Set(f.heldAfter)].join(', ')})`,
        );
        t.equal(f.heldError, null, 'and never fails');
        t.ok(f.resumed >= 10, `new connections resume through d2 (${f.resumed})`);
        t.ok(holdsVip('d2'), 'the VIP on d2');
        t.ok(await until(() => role('d2') === 'master', 30_000), "d2's notify: master");
        t.ok(
          await until(() => syncDaemons('d2') === syncDaemon('master'), 30_000, 250),
          `d2's sync daemon switches to master: ${syncDaemons('d2')}`,
        );
        const switched = (): Record<string, unknown> | undefined =>
          iw.d2
            .named('reconcile.applied')
            .find((e) => e.op === 'start-sync-daemon' && String(e.target).startsWith('master'));
        const changed = (): Record<string, unknown> | undefined =>
          iw.d2.named('director.role_changed').find((e) => e.to === 'master');
        // The log lines trail what they tell.
        await until(() => changed() !== undefined && switched() !== undefined, 10_000);
        t.match(changed(), { from: 'backup', to: 'master' }, 'logged as director.role_changed');
        const after = (e: Record<string, unknown> | undefined): number =>
          Date.parse(String(e?.time)) - f.cut;
        t.comment(
          `after the kill: d2's daemon read role master at ${after(changed())} ms, started the master sync daemon at ${after(switched())} ms`,
        );
      },
    );

    await t.test(
      'the control: the same failover without sync loses the held connection',
      async (t) => {
        // d2 keeps running, now without sync; d1 comes back the same, and preempts.
        writeFileSync(join(work, 'd2', 'sync.yaml'), wardenConf('d2', 'none'));
        iw.d2.proc.kill('SIGHUP');
        t.ok(
          await until(() => iw.d2.named('config.reloaded').length > 0, 60_000, 250),
          'd2 reloads with sync state none',
        );
        // state none leaves running daemons alone: stopped by hand, d1's left by its killed daemon.
        for (const d of ['d1', 'd2'] as const)
          for (const state of ['master', 'backup'])
            if (syncDaemons(d).includes(`${state} sync`))
              inNs(d, 'ipvsadm', '--stop-daemon', state);
        t.equal(syncDaemons('d1') + syncDaemons('d2'), '', 'no sync daemon on either');
        // keepalived killed with -9 left the VIP on d1's link: off before the link comes up (the
        // keepalived started below would remove it too, but only once it runs).
        if (holdsVip('d1')) sh('ip', ['-n', 'd1', 'addr', 'del', `${VIP}/32`, 'dev', 'e0']);
        sh('ip', ['link', 'set', 'vd1', 'up']);
        iw.d1 = warden('d1', 'nosync');
        t.ok(
          await until(() => iw.d1.named('daemon.started').length > 0, 120_000, 250),
          `ipvs-warden runs in d1 again (${since()})`,
        );
        ka.d1 = keepalived('d1');
        t.ok(
          await until(
            () => holdsVip('d1') && !holdsVip('d2') && role('d1') === 'master',
            30_000,
            250,
          ),
          'd1 preempts: master with the VIP',
        );
        t.ok(await until(() => role('d2') === 'backup', 30_000), 'd2 backup');
        t.equal(
          inNs('d2', 'cat', '/proc/sys/net/ipv4/vs/sloppy_tcp').trim(),
          '0',
          'd2 schedules only SYNs (sloppy_tcp 0)',
        );
        const f = await failover(t, async (port) => {
          await sleep(4000); // twice the sync flush time: an entry would have reached d2 by now
          t.same(entries('d2', port), [], 'no entry of the held connection on d2');
        });
        t.comment(
          `control (no sync) failover gap: ${f.gap} ms; new connections lost: ${f.lost} of ${f.attempts} started after the cut; held connection: ${f.heldError ?? 'no error'}, ${f.heldAfter.length} echoes after the kill`,
        );
        t.ok(
          f.gap >= GAP_FLOOR && f.gap <= GAP_BOUND + f.cutMs,
          `gap ${f.gap} ms within VRRP's bounds (${Math.round(GAP_FLOOR)}..${Math.round(GAP_BOUND)} ms + ${f.cutMs} ms the cut took)`,
        );
        t.same(f.heldAfter, [], 'the held connection echoes nothing after the kill');
        t.equal(f.heldError, 'ECONNRESET', "reset by d2's own stack (the VIP is local, no socket)");
      },
    );
    t.comment(`lane: ${since()}`);
  },
);
