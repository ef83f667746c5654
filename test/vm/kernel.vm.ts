// The kernel lane: runs inside the VM (test/vm/kernel-lane.sh) as one node process against
// Debian's kernel with IPVS. The contract suite, agreement with ipvsadm both ways, real NAT
// traffic in the counters, and a large pipelined batch.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'node:http';
import t from 'tap';
import type { IpvsBackend } from '../../src/ipvs/backend.js';
import type { Operation, TableEntry } from '../../src/ipvs/model.js';
import { NetlinkBackend } from '../../src/ipvs/netlink/backend.js';
import {
  compareDestinationKeys,
  compareServiceKeys,
  destinationSpec,
  serviceSpec,
} from '../../src/ipvs/spec.js';
import { SYNC_IF, contract, specOf } from '../ipvs/contract.js';
import { parseIpvsadmList } from '../ipvs/ipvsadm.js';
import { FIXTURE, FIXTURE_LINES, FIXTURE_RESTORE, fixtureOperations } from './fixture.js';
import { sh } from './sh.js';

const fixtureTable = (): unknown[] =>
  [...FIXTURE]
    .sort((a, b) => compareServiceKeys(a.service.key, b.service.key))
    .map((f) => ({
      service: f.service,
      destinations: f.destinations
        .map((d) => d.spec)
        .sort((a, b) => compareDestinationKeys(a.key, b.key)),
    }));

const tableSpecs = (table: TableEntry[]): unknown[] =>
  table.map((e) => ({ service: specOf(e.service), destinations: e.destinations.map(specOf) }));

// tap's default 30 s covers the whole file when it runs directly, as here; the emulated kernel on
// a busy machine can need more. The VM's own VM_TIMEOUT is the real limit.
t.setTimeout(600_000);

// The sync daemons' interface: a dummy, up, MTU 1500 (the contract's max length 1472 = 1500 - 28).
sh('ip', ['link', 'add', SYNC_IF, 'type', 'dummy']);
sh('ip', ['link', 'set', SYNC_IF, 'mtu', '1500', 'up']);

/** `ipvsadm --list --daemon`: each line's state and its key=value settings. */
function ipvsadmDaemons(): { state: string; settings: Record<string, string> }[] {
  return sh('ipvsadm', ['--list', '--daemon'])
    .split('\n')
    .flatMap((line) => {
      const m = /^(master|backup) sync daemon \((.*)\)$/.exec(line.trim());
      if (!m?.[1] || m[2] === undefined) return [];
      const settings = Object.fromEntries(
        m[2].split(', ').map((kv) => kv.split('=') as [string, string]),
      );
      return [{ state: m[1], settings }];
    });
}

t.test('sync daemons: the backend and ipvsadm --start/--stop-daemon agree', async (t) => {
  const b = await NetlinkBackend.open();
  t.teardown(async () => {
    for (const d of await b.syncDaemons()) await b.stopSyncDaemon(d.state);
    await b.close();
  });
  await b.startSyncDaemon({
    state: 'master',
    interface: SYNC_IF,
    syncId: 9,
    group: '239.1.2.3',
    port: 8900,
    ttl: 3,
    maxPacketLength: 1000,
  });
  t.same(
    ipvsadmDaemons(),
    [
      {
        state: 'master',
        settings: {
          mcast: SYNC_IF,
          syncid: '9',
          maxlen: '1000',
          group: '239.1.2.3',
          port: '8900',
          ttl: '3',
        },
      },
    ],
    'ipvsadm --list --daemon shows the master the backend started',
  );
  sh('ipvsadm', [
    '--start-daemon',
    'backup',
    '--mcast-interface',
    SYNC_IF,
    '--syncid',
    '3',
    '--sync-maxlen',
    '1300',
    '--mcast-group',
    'ff02::1:99',
    '--mcast-port',
    '9100',
    '--mcast-ttl',
    '2',
  ]);
  t.same(
    (await b.syncDaemons()).find((d) => d.state === 'backup'),
    {
      state: 'backup',
      interface: SYNC_IF,
      syncId: 3,
      group: 'ff02::1:99',
      port: 9100,
      ttl: 2,
      maxPacketLength: 1300,
    },
    'the backend reads the backup ipvsadm started (IPv6 group)',
  );
  // The port is the one the kernel's receiving socket is bound to (its byte order checked).
  const udp6 = readFileSync('/proc/net/udp6', 'utf8');
  t.match(udp6, /:238C /, 'the backup listens on UDP port 9100 (0x238C)');
  const main = new URL('../../src/main.js', import.meta.url).pathname;
  const ours = sh(process.execPath, [main, 'table']).split('\n\n')[1] ?? '';
  t.same(
    ours.trim().split('\n').sort(),
    sh('ipvsadm', ['--list', '--daemon'])
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .sort(),
    'ipvs-warden table ends with the daemons as ipvsadm --list --daemon prints them',
  );
  sh('ipvsadm', ['--stop-daemon', 'master']);
  t.same(
    (await b.syncDaemons()).map((d) => d.state),
    ['backup'],
    'the backend sees ipvsadm --stop-daemon master',
  );
  await b.stopSyncDaemon('backup');
  t.same(ipvsadmDaemons(), [], 'ipvsadm sees the backend stop the backup');
});

t.test('contract suite: netlink backend on the real kernel', (t) => {
  contract(t, () => NetlinkBackend.open());
  t.end();
});

t.test('agreement with ipvsadm, both ways, for every attribute', async (t) => {
  const b = await NetlinkBackend.open();
  t.teardown(() => b.close());
  await b.flush();

  const results = await b.apply(fixtureOperations());
  t.same(
    results.filter((r) => r.error).map((r) => r.error?.message),
    [],
    'the backend writes the fixture',
  );
  const saved = sh('ipvsadm', ['-S', '-n']).trim().split('\n');
  t.same(
    [...saved].sort(),
    [...FIXTURE_LINES].sort(),
    'ipvsadm -S -n shows what the backend wrote',
  );

  const listed = parseIpvsadmList(sh('ipvsadm', ['-Ln', '--thresholds']));
  const thresholds = FIXTURE.flatMap((f) =>
    f.destinations.map((d) => [d.spec.upperThreshold, d.spec.lowerThreshold]),
  );
  t.same(
    listed.flatMap((s) => s.destinations.map((d) => [d.columns[0], d.columns[1]])).sort(),
    thresholds.map(([u, l]) => [String(u), String(l)]).sort(),
    'ipvsadm -Ln --thresholds shows the thresholds the backend wrote',
  );
  t.same(tableSpecs(await b.table()), fixtureTable(), 'the backend reads back what it wrote');

  // `ipvs-warden table` prints each service and destination as ipvsadm -Ln does, then counters.
  const main = new URL('../../src/main.js', import.meta.url).pathname;
  const ours = sh(process.execPath, [main, 'table'])
    .split('\n')
    .slice(3)
    .filter(Boolean)
    .map((l) => l.replace(/(\s+\S+){5}$/, '').trimEnd()); // the five counter columns
  const theirs = sh('ipvsadm', ['-Ln'])
    .split('\n')
    .slice(3)
    .filter(Boolean)
    .map((l) => l.trimEnd());
  t.same(ours.sort(), theirs.sort(), 'ipvs-warden table agrees with ipvsadm -Ln line by line');
  const json = JSON.parse(sh(process.execPath, [main, 'table', '--json'])) as {
    services: { destinations: unknown[] }[];
  };
  t.equal(json.services.length, FIXTURE.length, 'ipvs-warden table --json lists every service');
  t.equal(
    json.services.reduce((n, s) => n + s.destinations.length, 0),
    FIXTURE.reduce((n, f) => n + f.destinations.length, 0),
    'and every destination',
  );

  sh('ipvsadm', ['-C']);
  t.same(await b.table(), [], 'the backend sees ipvsadm -C');
  sh('ipvsadm', ['-R'], `${FIXTURE_RESTORE}\n`);
  t.same(
    tableSpecs(await b.table()),
    fixtureTable(),
    'the backend reads what ipvsadm -R wrote, identically',
  );
  await b.flush();
  t.equal(sh('ipvsadm', ['-S', '-n']).trim(), '', 'ipvsadm sees the backend flush');
});

t.test('real traffic through a NAT VIP shows in connection counts and stats', async (t) => {
  const b = await NetlinkBackend.open();
  const cleanups: (() => void)[] = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) c();
    await b.flush();
    await b.close();
  });
  // root ns veth0 10.0.0.254/24 <-> rs1 veth1 10.0.0.2/24; VIP 10.0.0.1 reached by the subnet route.
  sh('ip', ['netns', 'add', 'rs1']);
  cleanups.push(() => sh('ip', ['netns', 'del', 'rs1']));
  sh('ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  sh('ip', ['link', 'set', 'veth1', 'netns', 'rs1']);
  sh('ip', ['addr', 'add', '10.0.0.254/24', 'dev', 'veth0']);
  sh('ip', ['link', 'set', 'veth0', 'up']);
  for (const args of [
    ['link', 'set', 'lo', 'up'],
    ['addr', 'add', '10.0.0.2/24', 'dev', 'veth1'],
    ['link', 'set', 'veth1', 'up'],
    ['route', 'add', 'default', 'via', '10.0.0.254'],
  ]) {
    sh('ip', ['netns', 'exec', 'rs1', 'ip', ...args]);
  }
  const server: ChildProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      'rs1',
      process.execPath,
      '-e',
      `require('http').createServer((q, r) => r.end('x'.repeat(1000))).listen(8080, '10.0.0.2', () => console.log('up'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => server.kill());
  await new Promise<void>((resolve, reject) => {
    server.stdout?.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`real server exited ${code}`)));
  });

  const vip = { family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
  const rs = { family: 4, address: '10.0.0.2', port: 8080 } as const;
  await b.addService(serviceSpec({ key: vip, scheduler: 'rr' }));
  await b.addDestination(vip, destinationSpec({ key: rs, weight: 1 }));

  const requests = 20;
  for (let i = 0; i < requests; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '10.0.0.1', port: 80, path: `/${i}`, agent: false }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve(data));
      });
      req.on('error', reject);
      req.end();
    });
    t.equal(body.length, 1000, `request ${i} through the VIP is answered by the real server`);
  }
  // One connection left open: it is active in the kernel's count.
  const open: Socket = await new Promise((resolve, reject) => {
    const s = connect(80, '10.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  cleanups.push(() => open.destroy());
  await sleep(2500); // the kernel folds per-cpu counters into the totals every 2 s

  const [entry] = await b.table();
  const dest = entry?.destinations[0];
  t.ok(dest, 'the destination is listed');
  if (!entry || !dest) return;
  t.equal(dest.activeConns, 1, 'the open connection is active');
  t.equal(dest.inactiveConns, requests, 'closed connections wait in TIME_WAIT, inactive');
  t.equal(
    dest.stats.conns,
    BigInt(requests + 1),
    'every connection was scheduled to the real server',
  );
  t.ok(dest.stats.inPkts >= BigInt(requests * 4), 'packets in are counted');
  t.ok(dest.stats.outPkts >= BigInt(requests * 3), 'packets out are counted (NAT sees replies)');
  t.ok(dest.stats.outBytes >= BigInt(requests * 1000), 'reply bytes are counted');
  t.same(entry.service.stats.conns, dest.stats.conns, 'the service totals its destinations');

  // ipvsadm reads the same numbers from the kernel.
  const [counts] = parseIpvsadmList(sh('ipvsadm', ['-Ln']));
  const [stats] = parseIpvsadmList(sh('ipvsadm', ['-Ln', '--stats', '--exact']));
  t.same(counts?.destinations[0]?.columns, [
    'Masq',
    '1',
    String(dest.activeConns),
    String(dest.inactiveConns),
  ]);
  t.same(
    stats?.columns,
    [
      entry.service.stats.conns,
      entry.service.stats.inPkts,
      entry.service.stats.outPkts,
      entry.service.stats.inBytes,
      entry.service.stats.outBytes,
    ].map(String),
    'service stats agree with ipvsadm -Ln --stats --exact',
  );
  t.same(
    stats?.destinations[0]?.columns,
    [
      dest.stats.conns,
      dest.stats.inPkts,
      dest.stats.outPkts,
      dest.stats.inBytes,
      dest.stats.outBytes,
    ].map(String),
    'destination stats agree with ipvsadm -Ln --stats --exact',
  );
  await b.zero();
  const [zeroed] = await b.table();
  t.equal(zeroed?.destinations[0]?.stats.conns, 0n, 'zero clears the counters');
  t.equal(zeroed?.destinations[0]?.activeConns, 1, 'zero leaves the connections alone');
});

t.test('a large batch is pipelined, one answer a datagram, none lost', async (t) => {
  const netlink = await NetlinkBackend.open();
  const b: IpvsBackend = netlink;
  t.teardown(async () => {
    await b.flush();
    await b.close();
  });
  const ops: Operation[] = [];
  for (let s = 0; s < 20; s++) {
    const key = { family: 4, protocol: 'tcp', address: `10.2.${s}.1`, port: 80 } as const;
    ops.push({ op: 'add-service', service: serviceSpec({ key }) });
    for (let d = 0; d < 100; d++) {
      ops.push({
        op: 'add-destination',
        service: key,
        destination: destinationSpec({
          key: { family: 4, address: `10.3.${s}.${d + 1}`, port: 8080 },
        }),
      });
    }
  }
  const { datagrams: sent, received, silent } = netlink.counters;
  const results = await b.apply(ops);
  t.equal(results.filter((r) => r.error).length, 0, 'every operation acknowledged');
  // Writes ask for no acknowledgement but the last of each datagram: the kernel answers one.
  const datagramsSent = netlink.counters.datagrams - sent;
  t.ok(datagramsSent < ops.length / 10, `${ops.length} writes in ${datagramsSent} datagrams`);
  t.equal(netlink.counters.received - received, datagramsSent, 'one answer a datagram');
  t.equal(
    netlink.counters.silent - silent,
    ops.length - datagramsSent,
    'the others known applied by it',
  );
  const before = netlink.counters.receivedDatagrams;
  const table = await b.table();
  const datagrams = netlink.counters.receivedDatagrams - before;
  // A dump part is as large as the socket's largest read (sized up at open): 32 KiB parts,
  // each dump of 100 destinations in two or three. On a socket that reads each datagram at its
  // size the parts stay one page: 223 datagrams for these 21 dumps.
  t.ok(datagrams <= 4 * 21, `the read's 21 dumps came in ${datagrams} datagrams, at most 4 each`);
  t.equal(
    table.reduce((n, e) => n + e.destinations.length, 0),
    2000,
    'the backend lists 2,000 destinations',
  );
  const listed = parseIpvsadmList(sh('ipvsadm', ['-Ln']));
  t.equal(
    listed.reduce((n, s) => n + s.destinations.length, 0),
    2000,
    'ipvsadm lists 2,000 destinations',
  );
});

t.test(
  'without CAP_NET_ADMIN reads and writes fail with EPERM and say what is needed',
  async (t) => {
    const script = `
    import { NetlinkBackend } from ${JSON.stringify(new URL('../../src/ipvs/netlink/backend.js', import.meta.url).href)};
    const b = await NetlinkBackend.open();
    try {
      await b.addService({ key: { family: 4, protocol: 'tcp', address: '10.9.0.1', port: 80 }, scheduler: 'rr', schedFlags: 0, persistent: false, timeout: 0, netmask: 32, onePacket: false, pe: '' });
      console.log('no error');
    } catch (e) { console.log(e.code + ' ' + e.message); }
    try { await b.services(); console.log('no error'); } catch (e) { console.log(e.code + ' ' + e.message); }
    await b.close();`;
    const out = sh('setpriv', [
      '--inh-caps=-all',
      '--bounding-set=-net_admin',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
    t.match(out, /^EPERM add-service TCP 10\.9\.0\.1:80 failed: EPERM \(.*CAP_NET_ADMIN/m);
    t.match(
      out,
      /^EPERM list-services failed: EPERM/m,
      'IPVS wants CAP_NET_ADMIN even to read the table',
    );
  },
);
