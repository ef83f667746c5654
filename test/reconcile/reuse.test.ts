// A tick without a read decides again only the services whose servers changed (and those not
// settled, and their VIPs' other services); the rest keep the last tick's desired state. Two
// loops on the same scripted health, one deciding every service every tick, end with the same
// table: a service wrongly kept would stay as it was, as the resync is an hour away.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { Config, VirtualServiceConfig } from '../../src/config/model.js';
import { MemoryRouteTable } from '../../src/announce/routes.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import {
  desiredTable,
  reusableServices,
  settledServices,
  type DesiredService,
} from '../../src/reconcile/desired.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { scriptedChecker } from './scripted.js';
import { ManualClock } from '../clock.js';

const CONFIG = `daemon: {backend: memory, min_tick_interval: 250ms, resync_interval: 1h, announce: {withdraw_hold: 2s}}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, timeout: 1s, jitter: 0, rise: 1, fall: 1, checks: [{type: tcp}]}
virtual_services:
  - {name: slow, address: 192.0.2.1, port: 80, announce: true, slow_start: 2s, real_servers: [{address: 10.1.0.1, weight: 10}, {address: 10.1.0.2, weight: 10}, {address: 10.1.0.3, weight: 10}, {address: 10.1.0.4, weight: 10}]}
  - {name: drained, address: 192.0.2.1, port: 81, announce: true, drain_timeout: 3s, real_servers: [{address: 10.2.0.1}, {address: 10.2.0.2}, {address: 10.2.0.3}]}
  - {name: quiesced, address: 192.0.2.2, port: 80, on_failure: quiesce, real_servers: [{address: 10.3.0.1}, {address: 10.3.0.2}, {address: 10.3.0.3}]}
  - {name: sorry, address: 192.0.2.3, port: 80, quorum: 2, fallback: {address: 10.9.0.1}, real_servers: [{address: 10.4.0.1, weight: 1}, {address: 10.4.0.2, weight: 1}, {address: 10.4.0.3, weight: 1}]}
  - {name: panicky, address: 192.0.2.4, port: 80, panic_threshold: 0.5, real_servers: [{address: 10.5.0.1}, {address: 10.5.0.2}, {address: 10.5.0.3}, {address: 10.5.0.4}]}
  - {name: marked, fwmark: 7, real_servers: [{address: 10.6.0.1, port: 80}, {address: 10.6.0.2, port: 80}]}
`;

const ADDRESSES = [...CONFIG.matchAll(/address: (10\.[1-6]\.0\.\d)/g)].map((m) => m[1] as string);

t.test('reusableServices: unchanged and settled, and so is the rest of its VIP', async (t) => {
  const config = parseConfig(CONFIG, 'test.yaml', {});
  const [slow, drained, quiesced, sorry, panicky, marked] = config.virtualServices as [
    VirtualServiceConfig,
    VirtualServiceConfig,
    VirtualServiceConfig,
    VirtualServiceConfig,
    VirtualServiceConfig,
    VirtualServiceConfig,
  ];
  const all = config.virtualServices;
  const names = (s: Set<VirtualServiceConfig>): string[] => [...s].map((v) => v.name).sort();
  const cases: [
    string,
    readonly VirtualServiceConfig[],
    readonly VirtualServiceConfig[],
    string[],
  ][] = [
    ['nothing changed, all settled', [], all, all.map((v) => v.name).sort()],
    ['nothing settled', [], [], []],
    ['one changed', [quiesced], all, ['drained', 'marked', 'panicky', 'slow', 'sorry']],
    [
      'one changed: its VIP decided with it',
      [slow],
      all,
      ['marked', 'panicky', 'quiesced', 'sorry'],
    ],
    [
      'one not settled: its VIP too',
      [],
      [slow, quiesced, sorry, panicky, marked],
      ['marked', 'panicky', 'quiesced', 'sorry'],
    ],
    [
      'a fwmark service has no VIP to share',
      [marked],
      all,
      ['drained', 'panicky', 'quiesced', 'slow', 'sorry'],
    ],
    [
      'several',
      [sorry, panicky],
      [drained, quiesced, sorry, panicky, marked],
      ['marked', 'quiesced'],
    ],
  ];
  for (const [what, changed, settled, want] of cases)
    t.same(names(reusableServices(all, new Set(changed), new Set(settled))), want, what);
});

t.test('settledServices: no wake of its own and no drain', async (t) => {
  const config = parseConfig(CONFIG, 'test.yaml', {});
  const desired = desiredTable({
    services: config.virtualServices,
    retired: [],
    health: () => ({ status: 'up', upSince: null, weight: undefined }),
    maintenance: () => null,
    now: 0,
  });
  const byService = new Map<VirtualServiceConfig, DesiredService>();
  config.virtualServices.forEach((vs, i) => byService.set(vs, desired.services[i]!));
  const names = (s: Set<VirtualServiceConfig>): string[] => [...s].map((v) => v.name).sort();
  t.same(
    names(settledServices(byService, new Map())),
    config.virtualServices.map((v) => v.name).sort(),
  );
  const drain = new Map([['tcp/4/192.0.2.1/81>4/10.2.0.1/81', 0]]);
  t.notOk(names(settledServices(byService, drain)).includes('drained'), 'a drain under way');
  t.ok(names(settledServices(byService, drain)).includes('slow'), 'another service on its VIP is');
  // Planned and not applied (a dry run, a failed or refused operation): still to do.
  const quiesced = config.virtualServices[2]!;
  const undone = [
    { op: 'update-service' as const, service: quiesced.service },
    {
      op: 'delete-destination' as const,
      service: config.virtualServices[5]!.service.key,
      destination: { family: 4 as const, address: '10.6.0.1', port: 80 },
    },
  ];
  t.same(
    names(settledServices(byService, new Map(), undone)),
    ['drained', 'panicky', 'slow', 'sorry'],
    'the services of operations left undone are not settled',
  );
  // A slow start in progress: the service wakes for its next step.
  const starting = desiredTable({
    services: config.virtualServices,
    retired: [],
    health: (vs) => ({ status: 'up', upSince: vs.name === 'slow' ? 0 : null, weight: undefined }),
    maintenance: () => null,
    now: 500,
  });
  t.equal(starting.services[0]?.wakeAt, 600, 'its own wake');
  t.equal(starting.services[2]?.wakeAt, null, 'none for the others');
  const during = new Map<VirtualServiceConfig, DesiredService>();
  config.virtualServices.forEach((vs, i) => during.set(vs, starting.services[i]!));
  t.notOk(names(settledServices(during, new Map())).includes('slow'), 'slow start: not settled');
});

interface Twin {
  readonly loop: ReconcileLoop;
  readonly backend: MemoryBackend;
  readonly routes: MemoryRouteTable;
  readonly log: MemoryLog;
}

t.test(
  'ticks that reuse settled services leave the table a loop deciding every service leaves',
  async (t) => {
    const clock = new ManualClock();
    const healthy = new Map<string, boolean>();
    const checker = scriptedChecker(healthy);
    const twin = (reuseSettled: boolean): Twin => {
      const backend = new MemoryBackend();
      const routes = new MemoryRouteTable();
      const log = new MemoryLog();
      const config: Config = parseConfig(CONFIG, 'test.yaml', {});
      const loop = new ReconcileLoop(config, {
        backend,
        routes,
        log,
        clock,
        createChecker: checker,
        reuseSettled,
      });
      return { loop, backend, routes, log };
    };
    const reusing = twin(true);
    const deciding = twin(false);
    t.teardown(async () => {
      await reusing.loop.stop();
      await deciding.loop.stop();
    });
    /** The IPVS table, then the VIPs announced. */
    const layout = async ({ backend, routes }: Twin): Promise<string[]> => [
      ...(await backend.table()).flatMap((e) =>
        e.destinations.map(
          (d) =>
            `${'port' in e.service.key ? e.service.key.port : 'fwm'} ${e.service.key.family}/${'address' in e.service.key ? e.service.key.address : ''} ${d.key.address} w=${d.weight}`,
        ),
      ),
      ...(await routes.list(240, [4, 6])).map((r) => `route ${r.address}`),
    ];
    const same = async (what: string): Promise<void> => {
      await reusing.loop.idle();
      await deciding.loop.idle();
      t.same(await layout(reusing), await layout(deciding), what);
    };
    await reusing.loop.start();
    await deciding.loop.start();
    await clock.advance(3000);
    await same('the same at the start');
    t.ok((await layout(reusing)).includes('route 192.0.2.1'), 'the VIP announced');

    // A seeded sequence of health changes, one to three servers a step.
    let seed = 20261207;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let compared = 0;
    for (let step = 0; step < 60; step++) {
      const flips = 1 + Math.floor(random() * 3);
      for (let i = 0; i < flips; i++) {
        const address = ADDRESSES[Math.floor(random() * ADDRESSES.length)] as string;
        healthy.set(address, !(healthy.get(address) ?? true));
      }
      // Long enough for the checks to see it and a tick to follow, not for the rest to settle.
      for (let i = 0; i < 30; i++) await clock.advance(50);
      if (step % 4 === 3) {
        // Slow starts (2 s), drains (3 s) and their reads all over: both must agree.
        await clock.advance(6000);
        await same(`the same table after step ${step + 1}`);
        compared++;
      }
    }
    t.equal(compared, 15);
    // Both services on the announced VIP lose every server: the VIP is withdrawn, and their
    // destinations are held for withdraw_hold (2 s) before they drain. Then one comes back.
    const onVip = ADDRESSES.filter((a) => a.startsWith('10.1.') || a.startsWith('10.2.'));
    for (const a of onVip) healthy.set(a, false);
    await clock.advance(6000);
    await same('the same once the VIP has no server');
    t.notOk((await layout(reusing)).includes('route 192.0.2.1'), 'the VIP withdrawn');
    t.ok(reusing.log.named('vip.withdrawn').length > 0);
    healthy.set('10.2.0.1', true);
    await clock.advance(6000);
    await same('the same once one is back');
    t.ok((await layout(reusing)).includes('route 192.0.2.1'), 'announced again');
    const reusedTicks = reusing.log
      .named('reconcile.tick')
      .filter((e) => typeof e.reused === 'number' && e.reused > 0).length;
    t.ok(reusedTicks > 20, `${reusedTicks} ticks took settled services as they were`);
    t.equal(
      deciding.log.named('reconcile.tick').filter((e) => e.reused !== 0).length,
      0,
      'the other loop decided every service every tick',
    );
  },
);

t.test('a dry run keeps no service as it was: what it planned is still to do', async (t) => {
  const clock = new ManualClock();
  const healthy = new Map<string, boolean>();
  const checker = scriptedChecker(healthy);
  const config = parseConfig(
    `daemon: {backend: memory, dry_run: true, min_tick_interval: 250ms, resync_interval: 1h}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, jitter: 0, rise: 1, fall: 1, checks: [{type: tcp}]}
virtual_services:
  - {name: a, address: 192.0.2.1, port: 80, real_servers: [{address: 10.1.0.1}, {address: 10.1.0.2}]}
  - {name: b, address: 192.0.2.2, port: 80, real_servers: [{address: 10.2.0.1}, {address: 10.2.0.2}]}
`,
    'test.yaml',
    {},
  );
  const log = new MemoryLog();
  const loop = new ReconcileLoop(config, {
    backend: new MemoryBackend(),
    log,
    clock,
    createChecker: checker,
  });
  t.teardown(() => loop.stop());
  await loop.start();
  await clock.advance(3000);
  await loop.idle();
  const planned = (): string[] =>
    log.named('reconcile.planned').map((e) => (typeof e.target === 'string' ? e.target : ''));
  const before = planned().length;
  t.ok(before >= 6, 'both services and their servers planned');
  healthy.set('10.1.0.1', false);
  await clock.advance(3000);
  await loop.idle();
  const after = planned().slice(before);
  t.ok(
    after.some((line) => line.includes('10.2.0.')),
    `the plan logged after a transition in a still holds b's servers: ${after.join('; ')}`,
  );
});
