// The sync daemons: the pure decision (a table), the keeper against the in-memory backend (as
// strict as the kernel: EEXIST, ESRCH, ENODEV), and the loop keeping them from daemon.sync:
// started, repaired after someone stops one (drift), stopped at stop only with cleanstop,
// untouched with state none. On the real kernel: test/vm/kernel.vm.ts (backend vs ipvsadm).
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { SyncSettings } from '../../src/config/daemon.js';
import { IpvsError } from '../../src/ipvs/errors.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import type { SyncDaemonSpec } from '../../src/ipvs/model.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { SyncKeeper, planSync, wantedSyncDaemons } from '../../src/reconcile/sync.js';
import { until } from '../checks/servers.js';

const SETTINGS: SyncSettings = {
  state: 'master',
  interface: 'eth1',
  syncId: 7,
  group: '224.0.0.81',
  port: 8848,
  ttl: 1,
  maxPacketLength: 0,
};
const M: SyncDaemonSpec = { ...SETTINGS, state: 'master' };
const B: SyncDaemonSpec = { ...SETTINGS, state: 'backup' };
const running = (s: SyncDaemonSpec, maxPacketLength = 1472): SyncDaemonSpec => ({
  ...s,
  maxPacketLength,
});

t.test('planSync: every row of the table', async (t) => {
  const cases: [string, SyncDaemonSpec[] | null, SyncDaemonSpec[], string[]][] = [
    ['none wanted, master running: left alone', null, [running(M)], []],
    ['master wanted, none running: start', [M], [], ['start-sync-daemon master: not running']],
    ['master wanted and running (kernel-chosen length): nothing', [M], [running(M)], []],
    [
      'master wanted, runs on another interface: stop, then start, with the difference',
      [M],
      [running({ ...M, interface: 'eth2' })],
      [
        'stop-sync-daemon master: running with interface eth2 (want eth1)',
        'start-sync-daemon master: restart: running with interface eth2 (want eth1)',
      ],
    ],
    [
      'a configured length that differs: restart',
      [{ ...M, maxPacketLength: 1000 }],
      [running(M)],
      [
        'stop-sync-daemon master: running with max packet length 1472 (want 1000)',
        'start-sync-daemon master: restart: running with max packet length 1472 (want 1000)',
      ],
    ],
    [
      'master wanted, backup running: backup stopped, master started',
      [M],
      [running(B)],
      ['stop-sync-daemon backup: not configured', 'start-sync-daemon master: not running'],
    ],
    [
      'both wanted, master runs with another sync id, none backup: stops first',
      [M, B],
      [running({ ...M, syncId: 1 })],
      [
        'stop-sync-daemon master: running with sync id 1 (want 7)',
        'start-sync-daemon master: restart: running with sync id 1 (want 7)',
        'start-sync-daemon backup: not running',
      ],
    ],
    ['both wanted and running: nothing', [M, B], [running(M), running(B)], []],
  ];
  for (const [name, wanted, have, want] of cases) {
    const got = planSync(wanted, have).map(
      (o) => `${o.op} ${o.op === 'start-sync-daemon' ? o.spec.state : o.state}: ${o.reason}`,
    );
    t.same(got, want, name);
  }
  t.same(wantedSyncDaemons({ ...SETTINGS, state: 'none' }), null, 'none wants nothing');
  t.same(
    wantedSyncDaemons({ ...SETTINGS, state: 'both' })?.map((s) => s.state),
    ['master', 'backup'],
    'both wants master and backup',
  );
});

t.test('the keeper: starts, finds a stopped daemon as drift, restarts it', async (t) => {
  const b = new MemoryBackend({ interfaces: ['eth1'] });
  const log = new MemoryLog();
  const k = new SyncKeeper(b, log);
  t.same(await k.tick(SETTINGS, false), { failed: false, drift: 0 }, 'first tick starts it');
  t.same(await b.syncDaemons(), [running(M)]);
  t.match(log.named('reconcile.applied'), [
    { op: 'start-sync-daemon', target: /^master on eth1, sync id 7/, reason: 'not running' },
  ]);
  t.same(await k.tick(SETTINGS, false), { failed: false, drift: 0 }, 'in place: nothing');
  t.equal(log.named('reconcile.applied').length, 1);
  await b.stopSyncDaemon('master');
  t.same(await k.tick(SETTINGS, false), { failed: false, drift: 1 }, 'stopped by hand: drift');
  t.match(log.named('drift.detected'), [
    { changes: [{ sync_daemon: 'master', change: 'stopped' }] },
  ]);
  t.same(await b.syncDaemons(), [running(M)], 'and started again');
  t.match(k.status(), { wanted: 'master', running: [running(M)], error: null });

  const bad = { ...SETTINGS, interface: 'eth9' };
  await b.stopSyncDaemon('master');
  t.same(
    await k.tick(bad, false),
    { failed: true, drift: 1 },
    'stopped by hand (drift), and a start on a missing interface fails',
  );
  t.match(log.named('reconcile.operation_failed'), [
    {
      op: 'start-sync-daemon',
      errno: 'ENODEV',
      reason: 'not running',
      error: /ENODEV \(no such interface\)/,
    },
  ]);
  t.match(k.status(), { running: [], error: /ENODEV/ });
  t.same(await k.tick(bad, false), { failed: true, drift: 0 }, 'tried again, no drift claimed');

  await k.tick({ ...SETTINGS, state: 'both' }, true);
  t.same(await b.syncDaemons(), [], 'a dry run changes nothing');
  t.match(log.named('reconcile.planned'), [
    { op: 'start-sync-daemon', dry_run: true },
    { op: 'start-sync-daemon', dry_run: true },
  ]);

  await b.startSyncDaemon(B);
  t.same(await k.tick({ ...SETTINGS, state: 'none' }, false), { failed: false, drift: 0 });
  t.same(await b.syncDaemons(), [running(B)], 'state none leaves a running backup alone');
  await k.stop({ ...SETTINGS, state: 'none' });
  t.same(await b.syncDaemons(), [running(B)], 'and so does its cleanstop');
  await k.stop({ ...SETTINGS, state: 'backup' });
  t.same(await b.syncDaemons(), [], 'cleanstop stops what the settings name');
});

const yaml = (sync: string, cleanstop: boolean): string => `daemon:
  resync_interval: 200ms
  retry_min: 100ms
  cleanstop: ${cleanstop}
  sync:
${sync}
virtual_services: []
`;

t.test(
  'the loop keeps the configured daemon, repairs it, stops it only with cleanstop',
  async (t) => {
    for (const cleanstop of [false, true]) {
      const backend = new MemoryBackend({ interfaces: ['eth1'] });
      const log = new MemoryLog();
      const cfg = parseConfig(
        yaml('    state: master\n    interface: eth1\n    sync_id: 7', cleanstop),
        'test',
        {},
      );
      const loop = new ReconcileLoop(cfg, { backend, log });
      await loop.start();
      t.ok(await until(async () => (await backend.syncDaemons()).length === 1), 'started');
      await backend.stopSyncDaemon('master');
      t.ok(
        await until(async () => (await backend.syncDaemons()).length === 1),
        'stopped by hand, started again within a resync',
      );
      t.ok(loop.stats.driftRepairs >= 1, 'counted as a drift repair');
      t.match(loop.syncStatus(), { wanted: 'master', running: [{ state: 'master', syncId: 7 }] });
      await loop.stop();
      t.equal(
        (await backend.syncDaemons()).length,
        cleanstop ? 0 : 1,
        cleanstop ? 'cleanstop stops it' : 'without cleanstop it keeps running',
      );
    }
  },
);

t.test('a failed start is retried at retry_min, not at the next resync', async (t) => {
  // The first start fails (as the kernel refuses one for a moment); the rest go through.
  class FailsOnce extends MemoryBackend {
    failed = false;
    override async startSyncDaemon(spec: SyncDaemonSpec): Promise<void> {
      if (!this.failed) {
        this.failed = true;
        throw new IpvsError('EBUSY', { op: 'start-sync-daemon', target: spec.state });
      }
      return super.startSyncDaemon(spec);
    }
  }
  const backend = new FailsOnce({ interfaces: ['eth1'] });
  const log = new MemoryLog();
  const cfg = parseConfig(
    yaml('    state: master\n    interface: eth1\n    sync_id: 7', false).replace(
      'resync_interval: 200ms',
      'resync_interval: 60s',
    ),
    'test',
    {},
  );
  const loop = new ReconcileLoop(cfg, { backend, log });
  t.teardown(() => loop.stop());
  await loop.start();
  t.ok(backend.failed, 'the first start failed');
  t.ok(
    await until(async () => (await backend.syncDaemons()).length === 1, 5000),
    'started by the retry, long before the resync 60 s on',
  );
});
