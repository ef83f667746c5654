// The loop's decisions as pure functions, case by case: a server's status from its checks,
// the health a new check starts from, which services a reload retires, and the drift filter.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import type { HealthState } from '../../src/health/policy.js';
import { ZERO_STATS, type Operation, type TableEntry } from '../../src/ipvs/model.js';
import { destinationSpec, serviceSpec } from '../../src/ipvs/spec.js';
import { drift, operationKey, ownedPart, snapshot, without } from '../../src/reconcile/drift.js';
import {
  initialHealth,
  retiredAfterReload,
  serverStatus,
  stillRetired,
} from '../../src/reconcile/servers.js';

const st = (up: boolean, results: number, failures = 0): HealthState => ({
  up,
  successes: up ? results : 0,
  failures,
  checked: results > 0,
});

t.test('serverStatus: every row of the truth table', async (t) => {
  const FALL = 3;
  const cases: [string, (HealthState | undefined)[], boolean, string][] = [
    ['no checks: always up', [], false, 'up'],
    ['no checks, settled', [], true, 'up'],
    ['a check not started yet', [st(true, 1), undefined], true, 'pending'],
    ['all up with results', [st(true, 2), st(true, 1)], false, 'up'],
    [
      'all up, one only assumed (initial up, no result)',
      [st(true, 2), st(true, 0)],
      false,
      'pending',
    ],
    ['all up, assumed, but the server was settled', [st(true, 0)], true, 'up'],
    ['one down, settled', [st(true, 4), st(false, 1, 1)], true, 'down'],
    ['one down after fall failures, not settled', [st(true, 4), st(false, 3, 3)], false, 'down'],
    ['initial down, fewer than fall failures', [st(false, 1, 1)], false, 'pending'],
    ['initial down, no result', [st(false, 0)], false, 'pending'],
  ];
  for (const [name, states, settled, want] of cases) {
    t.equal(serverStatus(states, settled, FALL), want, name);
  }
});

t.test('initialHealth: known health, then the kernel, then the config', async (t) => {
  const cases: [Parameters<typeof initialHealth>, string, string][] = [
    [['up', 0, 'down'], 'up', 'what the daemon knew wins over the kernel'],
    [['down', 10, 'up'], 'down', 'a known-down server stays down'],
    [['pending', 10, 'up'], 'down', 'pending is not proven: down'],
    [[undefined, 10, 'down'], 'up', 'adopted in with a weight: trusted'],
    [[undefined, 0, 'up'], 'down', 'adopted at weight 0: not trusted'],
    [[undefined, undefined, 'up'], 'up', 'not in the kernel: the config'],
    [[undefined, undefined, 'down'], 'down', 'not in the kernel: the config'],
  ];
  for (const [args, want, name] of cases) t.equal(initialHealth(...args), want, name);
});

const services = (...ports: number[]) =>
  parseConfig(
    `virtual_services:\n${ports.map((p) => `  - {address: 192.0.2.1, port: ${p}, real_servers: []}\n`).join('')}`,
    'x.yaml',
    {},
  ).virtualServices;

t.test('retiredAfterReload and stillRetired', async (t) => {
  const names = (r: { spec: { key: unknown } }[]) =>
    r.map((x) => (x.spec.key as { port: number }).port);
  const r1 = retiredAfterReload(services(80, 81, 82), services(80), []);
  t.same(names(r1), [81, 82], 'services gone from the config are retired');
  const r2 = retiredAfterReload(services(80), services(80, 81), r1);
  t.same(names(r2), [82], 'a retired service configured again is no longer retired');
  const r3 = retiredAfterReload(services(80, 82), services(80), r2);
  t.same(names(r3), [82], 'retired once, listed once');
  const present = new Set(['tcp/4/192.0.2.1/80']);
  t.same(names(stillRetired(r1, present)), [], 'deleted from the table: done');
  t.same(names(stillRetired(r1, new Set(['tcp/4/192.0.2.1/81']))), [81]);
});

t.test('drift filter: by service id, without parsing ids; unknown outcomes left out', async (t) => {
  const svc = (port: number) =>
    serviceSpec({ key: { family: 4, protocol: 'tcp', address: '192.0.2.1', port } });
  const dest = (address: string, weight: number) =>
    ({
      ...destinationSpec({ key: { family: 4, address, port: 80 }, weight }),
      activeConns: 0,
      inactiveConns: 0,
      persistentConns: 0,
      stats: ZERO_STATS,
    }) as TableEntry['destinations'][number];
  const entry = (port: number, ...d: TableEntry['destinations']) =>
    ({
      service: { ...svc(port), stats: ZERO_STATS },
      destinations: d,
    }) as TableEntry;
  const table = [entry(80, dest('10.0.0.1', 1)), entry(81, dest('10.0.0.1', 1))];
  const all = snapshot(table, new Set(['tcp/4/192.0.2.1/80', 'tcp/4/192.0.2.1/81']));
  t.equal(all.size, 4);
  t.same(
    [...ownedPart(all, new Set(['tcp/4/192.0.2.1/81'])).keys()],
    ['tcp/4/192.0.2.1/81', 'tcp/4/192.0.2.1/81>4/10.0.0.1/80'],
  );
  const op: Operation = {
    op: 'update-destination',
    service: svc(80).key,
    destination: destinationSpec({ key: { family: 4, address: '10.0.0.1', port: 80 }, weight: 5 }),
  };
  t.equal(operationKey(op), 'tcp/4/192.0.2.1/80>4/10.0.0.1/80');
  const changed = snapshot(
    [entry(80, dest('10.0.0.1', 5)), entry(81, dest('10.0.0.1', 1))],
    new Set(['tcp/4/192.0.2.1/80', 'tcp/4/192.0.2.1/81']),
  );
  t.same(drift(all, changed), ['TCP 192.0.2.1:80 -> 10.0.0.1:80 was changed: weight 1 -> 5']);
  t.same(
    drift(without(all, new Set([operationKey(op)])), without(changed, new Set([operationKey(op)]))),
    [],
    'a target whose outcome is unknown is not judged',
  );
});
