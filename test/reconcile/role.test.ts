// The loop following the director's role (daemon.sync.state: follow-role): on the memory
// backend with a manual clock and a role file the test holds, each role switches the running
// sync daemon within one maintenance_poll, without a restart; a malformed or unreadable file is
// logged once and the last good role kept; /status, its text and the metric show the role. Then
// the same with `ipvs-warden role` writing a real file and the system clock. The config's
// problems with follow-role. (On the real kernel, with keepalived: test/vm/vrrp.vm.ts.)
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { buildStatus, formatStatus } from '../../src/http/status.js';
import { IPVS_LABELS } from '../../src/ipvs/labels.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { until } from '../checks/servers.js';
import { cli } from '../cli/daemon.js';
import { ManualClock } from '../clock.js';
import { configProblems } from '../config/problems.js';

const yaml = (stateDir: string, state = 'follow-role'): string => `daemon:
  maintenance_poll: 1s
  resync_interval: 1h
  state_dir: ${stateDir}
  sync:
    state: ${state}
    interface: eth1
    sync_id: 5
virtual_services: []
`;

/** Moves the clock until `p` settles (a reload waits for its tick, min_tick_interval away). */
async function drive<T>(clock: ManualClock, p: Promise<T>): Promise<T> {
  let done = false;
  const mark = (): void => void (done = true);
  p.then(mark, mark);
  for (let i = 0; i < 100 && !done; i++) await clock.advance(50);
  return p;
}

t.test('follow-role: each role switches the daemon within one poll', async (t) => {
  const backend = new MemoryBackend({ interfaces: ['eth1'] });
  const log = new MemoryLog();
  const clock = new ManualClock();
  const files = new Map<string, string | NodeJS.ErrnoException>();
  const readRoleFile = async (path: string): Promise<string> => {
    const v = files.get(path);
    if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    if (typeof v !== 'string') throw v;
    return v;
  };
  const setRole = (text: string | NodeJS.ErrnoException | undefined): void => {
    if (text === undefined) files.delete('/state/role');
    else files.set('/state/role', text);
  };
  const loop = new ReconcileLoop(parseConfig(yaml('/state'), 'test', {}), {
    backend,
    log,
    clock,
    readRoleFile,
  });
  const metrics = new WardenMetrics({ perServer: false, labels: IPVS_LABELS }, () =>
    backend.table(),
  );
  metrics.attach(loop);
  t.teardown(() => loop.stop());
  const daemons = async (): Promise<string> =>
    (await backend.syncDaemons()).map((d) => `${d.state}/${d.syncId}`).join(',');
  const roleMetric = async (): Promise<string> =>
    (await metrics.render())
      .split('\n')
      .filter((l) => l.startsWith('ipvs_warden_director_role{'))
      .join(' ');

  await loop.start();
  t.equal(await daemons(), 'backup/5', 'no role file: a backup daemon');
  t.equal(loop.syncStatus().role, null);
  t.equal(log.named('director.role_changed').length, 0, 'no file at start is no change');

  setRole('master\n');
  await clock.advance(999);
  t.equal(await daemons(), 'backup/5', 'not before the poll');
  await clock.advance(1);
  t.equal(await daemons(), 'master/5', 'master: the master daemon, within one poll');
  t.match(log.named('director.role_changed'), [{ from: null, to: 'master', file: '/state/role' }]);
  t.match(log.named('reconcile.applied'), [
    { op: 'start-sync-daemon', target: /^backup on eth1/ },
    { op: 'stop-sync-daemon', target: 'backup', reason: 'not configured' },
    { op: 'start-sync-daemon', target: /^master on eth1/ },
  ]);
  t.match(loop.syncStatus(), { wanted: 'follow-role', role: 'master' });
  const status = buildStatus(loop, await backend.table());
  t.match(status.sync, { wanted: 'follow-role', role: 'master', running: [{ state: 'master' }] });
  t.match(
    formatStatus(status),
    /director role: master\n\nsync daemons \(want follow-role, role master\): master on eth1/,
  );
  t.equal(
    await roleMetric(),
    'ipvs_warden_director_role{role="master"} 1 ipvs_warden_director_role{role="backup"} 0 ipvs_warden_director_role{role="fault"} 0',
  );

  // A half-written or wrong file: logged once, the last good role kept.
  setRole('primary\n');
  await clock.advance(3000);
  t.equal(await daemons(), 'master/5', 'a malformed file keeps master');
  t.match(log.named('director.role_unreadable'), [
    {
      file: '/state/role',
      error: 'holds "primary\\n", not master, backup or fault',
      fix: /ipvs-warden role master\|backup\|fault --state-dir \/state/,
      kept: 'master',
    },
  ]);
  t.equal(log.named('director.role_unreadable').length, 1, 'logged once over three polls');
  setRole(Object.assign(new Error('EACCES'), { code: 'EACCES' }));
  await clock.advance(2000);
  t.equal(log.named('director.role_unreadable').length, 2, 'another trouble: logged once more');
  t.match(log.named('director.role_unreadable')[1], { error: 'EACCES', kept: 'master' });
  t.equal(await daemons(), 'master/5', 'an unreadable file keeps master');

  setRole('fault\n');
  await clock.advance(1000);
  t.equal(await daemons(), 'backup/5', 'fault: the backup daemon');
  t.equal(log.named('director.role_readable').length, 1, 'readable again: said once');
  t.match(await roleMetric(), /role="master"} 0 .*role="backup"} 0 .*role="fault"} 1/);
  setRole('backup');
  await clock.advance(1000);
  t.equal(await daemons(), 'backup/5', 'backup after fault: the same daemon, untouched');
  t.equal(log.named('reconcile.applied').length, 5, 'no restart of the backup daemon');
  setRole('MASTER');
  await clock.advance(1000);
  t.equal(await daemons(), 'master/5');
  setRole(undefined);
  await clock.advance(1000);
  t.equal(await daemons(), 'backup/5', 'the file removed: back to backup');
  t.same(
    log.named('director.role_changed').map((e) => `${String(e.from)}->${String(e.to)}`),
    ['null->master', 'master->fault', 'fault->backup', 'backup->master', 'master->null'],
  );
  t.equal(
    await roleMetric(),
    'ipvs_warden_director_role{role="master"} 0 ipvs_warden_director_role{role="backup"} 0 ipvs_warden_director_role{role="fault"} 0',
  );

  // A fixed state does not follow: the role is shown, the daemon stays.
  setRole('master');
  await drive(clock, loop.reload(parseConfig(yaml('/state', 'backup'), 'test', {})));
  await clock.advance(1000);
  t.equal(await daemons(), 'backup/5', 'state backup ignores the role');
  t.equal(loop.syncStatus().role, 'master', 'and still shows it');
  await drive(clock, loop.reload(parseConfig(yaml('/state'), 'test', {})));
  t.equal(await daemons(), 'master/5', 'back to follow-role: at once, from the known role');
});

t.test('ipvs-warden role and the running loop, on real files and the system clock', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'warden-role-loop-')), 'state');
  const backend = new MemoryBackend({ interfaces: ['eth1'] });
  const loop = new ReconcileLoop(
    parseConfig(yaml(dir).replace('maintenance_poll: 1s', 'maintenance_poll: 100ms'), 't', {}),
    { backend, log: new MemoryLog() },
  );
  t.teardown(() => loop.stop());
  await loop.start();
  const role = async (): Promise<string> =>
    (await backend.syncDaemons()).map((d) => d.state).join();
  t.equal(await role(), 'backup');
  t.equal((await cli('role', 'INSTANCE', 'VI_1', 'MASTER', '100', '--state-dir', dir)).code, 0);
  t.ok(await until(async () => (await role()) === 'master'), 'keepalived MASTER: master daemon');
  t.equal((await cli('role', 'INSTANCE', 'VI_1', 'FAULT', '0', '--state-dir', dir)).code, 0);
  t.ok(await until(async () => (await role()) === 'backup'), 'keepalived FAULT: backup daemon');
});

t.test('config: follow-role needs an interface like the other states', async (t) => {
  const doc = (sync: string): string => `daemon:\n  sync:\n${sync}\nvirtual_services: []\n`;
  t.same(configProblems(doc('    state: follow-role')), [
    'daemon.sync.interface: is needed when state is follow-role (e.g. interface: eth0)',
  ]);
  t.same(configProblems(doc('    state: follow-role\n    interface: eth1')), []);
  t.same(configProblems(doc('    state: leader\n    interface: eth1')), [
    'daemon.sync.state: must be one of the possible values: ["none","master","backup","both","follow-role"]: value was "leader"',
  ]);
  t.same(
    configProblems(doc('    state: follow-role'), { WARDEN_SYNC_INTERFACE: 'eth2' }),
    [],
    'the interface from the environment',
  );
});
