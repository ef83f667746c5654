// The loop announcing VIPs: the in-memory IPVS table and the in-memory routing table (as strict
// as the kernel's), real HTTP servers on 127.0.0.1 as the real servers, the drain flag in a temp
// STATE_DIR. A VIP is announced while any of its announcing services has quorum, withdrawn when
// none has, while the director is drained, and first of all when the daemon stops; a route
// changed by hand is drift, repaired; someone else's route in the table is left alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MemoryRouteTable } from '../../src/announce/routes.js';
import { parseConfig } from '../../src/checkers.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { formatServiceKey } from '../../src/ipvs/spec.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { buildStatus, formatStatus } from '../../src/http/status.js';
import { flippableHttp, until, type Flippable } from '../checks/servers.js';
import { announced } from './route.js';

async function setup(t: Test, daemon = '', log = new MemoryLog()) {
  const [http, https, other] = await Promise.all([
    flippableHttp(),
    flippableHttp(),
    flippableHttp(),
  ]);
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-announce-'));
  t.teardown(async () => {
    await Promise.all([http, https, other].map((s) => s.stop()));
    rmSync(stateDir, { recursive: true, force: true });
  });
  const servers = (s: Flippable): string =>
    `    real_servers: [{name: s, address: 127.0.0.1, port: ${s.target.port}}]\n`;
  const config = parseConfig(
    `daemon:
  resync_interval: 1s
  retry_min: 100ms
  retry_max: 200ms
  maintenance_poll: 100ms
  state_dir: ${stateDir}
${daemon}defaults:
  interval: 200ms
  fast_interval: 200ms
  down_interval: 200ms
  timeout: 150ms
  jitter: 0
  rise: 1
  fall: 1
  checks: [{type: http}]
  announce: true
virtual_services:
  - name: http
    address: 192.0.2.1
    port: 80
${servers(http)}  - name: https
    address: 192.0.2.1
    port: 443
${servers(https)}  - name: quiet
    address: 192.0.2.2
    port: 80
    announce: false
${servers(other)}`,
    'test',
    {},
  );
  const backend = new MemoryBackend();
  const routes = new MemoryRouteTable();
  const loop = new ReconcileLoop(config, { backend, routes, log });
  t.teardown(() => loop.stop());
  const ours = async (): Promise<string[]> =>
    (await routes.list(240, [4, 6])).filter((r) => r.protocol === 250).map((r) => r.address);
  return { http, https, other, stateDir, routes, log, loop, backend, ours };
}

/** The time each event was logged (the hold is judged by the gap between two). */
class TimedLog extends MemoryLog {
  readonly at: number[] = [];
  override log(...args: Parameters<MemoryLog['log']>): void {
    this.at.push(Date.now());
    super.log(...args);
  }
}

const HOLD_MS = 600;

t.test('announced while any service on the VIP has quorum; withdrawn when none has', async (t) => {
  const log = new TimedLog();
  const { http, https, loop, ours, backend } = await setup(
    t,
    `  announce: {withdraw_hold: ${HOLD_MS}ms}\n`,
    log,
  );
  await loop.start();
  t.ok(await until(async () => (await ours()).length === 1), 'the VIP is announced');
  t.same(await ours(), ['192.0.2.1'], 'only the VIP of announcing services');
  t.match(log.named('vip.announced'), [{ vip: '192.0.2.1', reason: /^quorum: http, https$/ }]);
  t.match(loop.announceStatus(), [
    { vip: '192.0.2.1', announced: true, services: ['http', 'https'] },
  ]);
  const weights = async (port: number): Promise<string> =>
    (await backend.table())
      .filter((e) => formatServiceKey(e.service.key) === `TCP 192.0.2.1:${port}`)
      .flatMap((e) => e.destinations.map((d) => String(d.weight)))
      .join() || 'none';

  http.healthy = false;
  t.ok(await until(() => loop.desired()?.services[0]?.quorum === false), 'http loses quorum');
  await loop.nextTick();
  t.same(await ours(), ['192.0.2.1'], 'https still has quorum: still announced');
  t.match(loop.announceStatus(), [{ announced: true, reason: 'quorum: https' }]);
  // Out of the pool: at weight 0 from the tick for the transition (which does not read the
  // table), then deleted by the read that counts its connections.
  t.ok(
    ['0', 'none'].includes(await weights(80)),
    'the VIP stays: no hold, the failed server is out',
  );
  t.ok(await until(async () => (await weights(80)) === 'none', 5000), 'and deleted');
  t.equal(loop.desired()?.services[0]?.withdrawHoldUntil, null);

  https.healthy = false;
  t.ok(await until(async () => (await ours()).length === 0), 'none has quorum: withdrawn');
  t.match(log.named('vip.withdrawn'), [{ vip: '192.0.2.1', reason: 'no quorum: http, https' }]);
  t.match(log.named('service.quorum_down').at(-1), {
    service: 'https',
    servers_kept_ms: HOLD_MS,
  });
  t.equal(await weights(443), '1', "the withdrawal's hold: https's last server stays in");
  t.match(
    loop.desired()?.services[1]?.destinations[0]?.want.reason,
    // It went down in the tick that lost the quorum (`backForHold`).
    /VIP withdrawn: in for daemon\.announce\.withdraw_hold \(0\.6 s\), as it went down within/,
  );
  const at = (pred: (e: (typeof log.events)[number]) => boolean): number =>
    log.events.findIndex(pred);
  const removed = (e: (typeof log.events)[number]): boolean =>
    e.event === 'reconcile.applied' &&
    e.fields.service === 'https' &&
    e.fields.op !== 'add-destination' &&
    e.fields.op !== 'add-service';
  t.ok(await until(async () => (await weights(443)) === 'none', 5000), 'then it leaves');
  const withdrawnAt = at((e) => e.event === 'vip.withdrawn');
  const removedAt = at(removed);
  t.ok(
    withdrawnAt >= 0 && removedAt > withdrawnAt,
    `withdrawn (event ${withdrawnAt}) before its last server leaves the table (event ${removedAt})`,
  );
  const gap = (log.at[removedAt] ?? 0) - (log.at[withdrawnAt] ?? 0);
  // The hold is judged on the loop's clock from the tick that withdrew: never sooner.
  t.ok(gap >= HOLD_MS - 20, `it left ${gap} ms after the withdrawal (hold ${HOLD_MS} ms)`);
  t.match(loop.announceStatus(), [{ announced: false, reason: 'no quorum: http, https' }]);

  https.healthy = true;
  t.ok(await until(async () => (await ours()).length === 1), 'quorum back: announced again');
  t.equal(loop.desired()?.services[1]?.withdrawHoldUntil, null, 'the hold is over');
  t.equal(loop.stats.driftRepairs, 0, 'our own changes are no drift');
});

t.test('drained: withdrawn within maintenance_poll, back when undrained', async (t) => {
  const { stateDir, log, loop, ours, backend } = await setup(t);
  await loop.start();
  t.ok(await until(async () => (await ours()).length === 1));
  writeFileSync(join(stateDir, 'drained'), 'since now\n');
  t.ok(await until(async () => (await ours()).length === 0, 3000), 'drained: withdrawn');
  const metrics = new WardenMetrics({ perServer: false, labels: [] }, () => backend.table());
  metrics.attach(loop);
  const text = await metrics.render();
  t.match(text, /ipvs_warden_vip_announced\{vip="192\.0\.2\.1"\} 0/);
  t.match(text, /ipvs_warden_director_drained 1/);
  const status = buildStatus(loop, await backend.table());
  t.match(status.director, { drained: true, drained_reason: /drained/ });
  t.match(status.announce, [{ vip: '192.0.2.1', announced: false, reason: /director drained/ }]);
  t.match(
    formatStatus(status),
    /DIRECTOR DRAINED: .*\n[^]*192\.0\.2\.1 +WITHDRAWN +director drained/,
  );
  t.match(log.named('vip.withdrawn'), [
    { vip: '192.0.2.1', reason: `director drained (flag file ${stateDir}/drained)` },
  ]);
  t.match(loop.directorDrained(), /drained/);
  t.equal((await backend.table()).length, 3, 'the IPVS table is not touched');
  rmSync(join(stateDir, 'drained'));
  t.ok(await until(async () => (await ours()).length === 1, 3000), 'undrained: announced');
  t.match(await metrics.render(), /ipvs_warden_vip_announced\{vip="192\.0\.2\.1"\} 1/);
  t.equal(loop.directorDrained(), null);
});

t.test(
  'drift repaired; a route of another protocol left alone; a stray of ours removed',
  async (t) => {
    const { routes, log, loop, ours } = await setup(t);
    await loop.start();
    t.ok(await until(async () => (await ours()).length === 1));
    await routes.add(announced('192.0.2.77', { protocol: 4 }));
    await routes.delete(announced('192.0.2.1'));
    await routes.add(announced('192.0.2.9'));
    t.ok(
      await until(async () => (await ours()).join() === '192.0.2.1', 3000),
      'the next resync puts ours back and removes the stray',
    );
    t.ok(loop.stats.driftRepairs >= 2, `counted as drift (${loop.stats.driftRepairs})`);
    t.match(log.named('vip.drift')[0], {
      changes: [/removed: .*192\.0\.2\.1/, /added: .*192\.0\.2\.9/],
    });
    t.match(log.named('vip.withdrawn'), [
      { vip: '192.0.2.9', reason: 'not a VIP this config announces' },
    ]);
    t.same(
      (await routes.list(240, [4])).map((r) => `${r.address} ${r.protocol}`).sort(),
      ['192.0.2.1 250', '192.0.2.77 4'],
      'the static route stays',
    );
  },
);

t.test(
  'a failed write is logged and retried; stop withdraws first, cleanstop or not',
  async (t) => {
    const { routes, log, loop, ours, backend } = await setup(t);
    routes.failNext('add', 'EPERM');
    await loop.start();
    t.ok(await until(async () => (await ours()).length === 1, 3000), 'announced on a retry');
    t.match(log.named('vip.route_failed'), [{ vip: '192.0.2.1', op: 'add', error: /EPERM/ }]);
    const services = (await backend.table()).length;
    t.equal(services, 3);
    await loop.stop();
    t.same(await ours(), [], 'withdrawn at stop');
    t.match(log.named('vip.withdrawn').at(-1), { vip: '192.0.2.1', reason: 'daemon stopping' });
    t.equal((await backend.table()).length, 3, 'without cleanstop the IPVS table stays');
  },
);

t.test('a table moved by a reload: the old one is emptied', async (t) => {
  const { routes, loop, ours } = await setup(t);
  await loop.start();
  t.ok(await until(async () => (await ours()).length === 1));
  const next = parseConfig(
    JSON.stringify({
      daemon: { announce: { table: 4093 }, state_dir: '/nonexistent' },
      virtual_services: loop.currentConfig().virtualServices.map((v) => ({
        name: v.name,
        address: 'address' in v.service.key ? v.service.key.address : '',
        port: 'port' in v.service.key ? v.service.key.port : 0,
        announce: v.announce,
        checks: [],
        real_servers: v.realServers.map((r) => ({
          address: r.destination.key.address,
          port: r.destination.key.port,
        })),
      })),
    }),
    'next',
    {},
  );
  await loop.reload(next);
  t.ok(await until(async () => (await routes.list(4093, [4])).length === 1, 3000), 'in 4093');
  t.same(await ours(), [], 'and gone from 240');
});
