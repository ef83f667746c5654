// A tick for health transitions plans against the table as it last read it. When the table was
// edited by hand since (ipvsadm), the kernel refuses what no longer fits: that is read as the
// table having changed (the table read again at once, the edit reported as drift), not as a
// failed operation (no error, no failure counted for the alert, no retry backoff).
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { IpvsError, refusedByTable } from '../../src/ipvs/errors.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { destinationSpec } from '../../src/ipvs/spec.js';
import type { Operation } from '../../src/ipvs/model.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { scriptedChecker } from './scripted.js';
import { ManualClock } from '../clock.js';

t.test('refusedByTable: what a table edited since the plan explains', async (t) => {
  const cases: [Operation['op'] | 'start-sync-daemon' | 'stop-sync-daemon', string, boolean][] = [
    ['add-service', 'EEXIST', true],
    ['add-destination', 'EEXIST', true],
    ['update-service', 'ESRCH', true],
    ['delete-service', 'ESRCH', true],
    ['add-destination', 'ESRCH', true],
    ['update-destination', 'ESRCH', true],
    ['delete-destination', 'ESRCH', true],
    ['update-destination', 'ENOENT', true],
    ['delete-destination', 'ENOENT', true],
    // A scheduler or persistence engine module that is not loaded.
    ['add-service', 'ENOENT', false],
    ['update-service', 'ENOENT', false],
    ['add-destination', 'ENOENT', false],
    ['update-destination', 'EEXIST', false],
    ['add-destination', 'ERANGE', false],
    ['add-destination', 'EINVAL', false],
    ['update-destination', 'EPERM', false],
    ['delete-destination', 'ENOBUFS', false],
    // The sync daemons' codes mean something else.
    ['start-sync-daemon', 'EEXIST', false],
    ['stop-sync-daemon', 'ESRCH', false],
  ];
  for (const [op, code, want] of cases)
    t.equal(refusedByTable(new IpvsError(code, { op })), want, `${op} ${code}`);
});

const CONFIG = `daemon: {backend: memory, min_tick_interval: 250ms, resync_interval: 1h, retry_min: 5s}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, timeout: 1s, jitter: 0, rise: 1, fall: 1, checks: [{type: tcp}]}
virtual_services:
  - {name: web, address: 192.0.2.1, port: 80, real_servers: [{address: 10.1.0.1, weight: 10}, {address: 10.1.0.2, weight: 10}, {address: 10.1.0.3, weight: 10}]}
`;

t.test(
  'a tick that meets a hand edit reads the table again at once: drift, not a failure',
  async (t) => {
    const clock = new ManualClock();
    const healthy = new Map<string, boolean>();
    const backend = new MemoryBackend();
    const log = new MemoryLog();
    const config = parseConfig(CONFIG, 'test.yaml', {});
    const loop = new ReconcileLoop(config, {
      backend,
      log,
      clock,
      createChecker: scriptedChecker(healthy),
    });
    t.teardown(() => loop.stop());
    const key = config.virtualServices[0]!.service.key;
    const table = async (): Promise<string[]> =>
      (await backend.table()).flatMap((e) =>
        e.destinations.map((d) => `${d.key.address} w=${d.weight}`).sort(),
      );
    const settle = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms / 50; i++) await clock.advance(50);
      await loop.idle();
    };
    await loop.start();
    await settle(2000);
    t.same(await table(), ['10.1.0.1 w=10', '10.1.0.2 w=10', '10.1.0.3 w=10'], 'all in');
    const reads = (): number => log.named('reconcile.tick').filter((e) => e.read).length;
    const readsBefore = reads();

    // By hand: 10.1.0.1 deleted, 10.1.0.2 reweighted. Then 10.1.0.1 fails its check: the tick
    // for it plans from the table as read, and its drain (weight 0) finds nothing (ENOENT).
    await backend.deleteDestination(key, { family: 4, address: '10.1.0.1', port: 80 });
    await backend.updateDestination(
      key,
      destinationSpec({ key: { family: 4, address: '10.1.0.2', port: 80 }, weight: 3 }),
    );
    healthy.set('10.1.0.1', false);
    // Within retry_min (5 s): a retry with backoff would come later.
    await settle(1500);
    t.match(log.named('reconcile.operation_refused'), [
      { op: 'update-destination', errno: 'ENOENT', target: /10\.1\.0\.1:80/ },
    ]);
    t.same(log.named('reconcile.operation_failed'), [], 'no operation failed');
    t.equal(loop.stats.operationsFailed, 0);
    t.ok(reads() > readsBefore, 'the table read again');
    // In table order, which is the order the servers first came up (their first checks' phase).
    const drifts = log.named('drift.detected');
    t.equal(drifts.length, 1, 'one drift, read once');
    t.match([...((drifts[0]?.changes ?? []) as string[])].sort(), [
      /10\.1\.0\.1:80 was deleted/,
      /10\.1\.0\.2:80 was changed: weight 10 -> 3/,
    ]);
    t.equal(loop.stats.driftRepairs, 2);
    t.same(await table(), ['10.1.0.2 w=10', '10.1.0.3 w=10'], 'the edit repaired, 10.1.0.1 out');

    // By hand: 10.1.0.1 back in at weight 5 while it is down. It recovers: the tick's add finds
    // it there (EEXIST); the read after it sets its weight.
    await backend.addDestination(
      key,
      destinationSpec({ key: { family: 4, address: '10.1.0.1', port: 80 }, weight: 5 }),
    );
    healthy.set('10.1.0.1', true);
    await settle(1500);
    t.match(log.named('reconcile.operation_refused').slice(1), [
      { op: 'add-destination', errno: 'EEXIST', target: /10\.1\.0\.1:80/ },
    ]);
    t.same(log.named('reconcile.operation_failed'), [], 'still none failed');
    t.same(await table(), ['10.1.0.1 w=10', '10.1.0.2 w=10', '10.1.0.3 w=10'], 'weight 10');

    // By hand: the table cleared (ipvsadm -C). 10.1.0.3 fails: its drain finds no service (ESRCH);
    // the read after it puts the service back with the servers that are up.
    await backend.flush();
    healthy.set('10.1.0.3', false);
    await settle(1500);
    t.match(log.named('reconcile.operation_refused').slice(2), [
      { op: 'update-destination', errno: 'ESRCH', target: /10\.1\.0\.3:80/ },
    ]);
    t.same(log.named('reconcile.operation_failed'), [], 'none failed');
    t.match(log.named('drift.detected').at(-1), { changes: [/TCP 192\.0\.2\.1:80 was deleted/] });
    t.same(await table(), ['10.1.0.1 w=10', '10.1.0.2 w=10'], 'the service back, 10.1.0.3 out');
  },
);
