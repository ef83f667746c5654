// Benchmark of one reconcile decision at scale, on the host (`npm run bench:plan`): 100 services x
// 100 real servers (10,000), desired() + plan() against the kernel table as read, in steady state
// (nothing to do) and with 10 % of the servers down (1,000 deletions planned). Side by side in the
// same run: copying the same table out of the memory backend, the cheapest thing a tick does
// besides planning; and a whole tick of a reconcile loop over that table (read, drift, desired,
// plan, nothing to apply), what every resync costs at that size, and the same tick for a health
// transition, which does not read the table: deciding every service again (a transition in a
// service of all 10,000), and taking the 100 settled services as they were (what the other 99
// cost a transition in one of them). Prints medians and the ratios.
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/checkers.js';
import { MemoryBackend } from '../src/ipvs/memory.js';
import type { Operation } from '../src/ipvs/model.js';
import { desiredTable, type ServerHealth } from '../src/reconcile/desired.js';
import { ReconcileLoop } from '../src/reconcile/loop.js';
import { plan } from '../src/reconcile/plan.js';
import { MemoryLog } from '../src/log.js';

const SERVICES = 100;
const PER_SERVICE = 100;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

const lines = ['daemon: {backend: memory}', 'virtual_services:'];
for (let s = 0; s < SERVICES; s++) {
  lines.push(
    `  - address: 10.100.0.${s + 1}`,
    '    port: 80',
    '    checks: []',
    '    real_servers:',
  );
  for (let d = 0; d < PER_SERVICE; d++)
    lines.push(`      - {address: 10.101.${s}.${d + 1}, port: 8080, weight: 10}`);
}
const parseStart = performance.now();
const config = parseConfig(lines.join('\n'), 'bench', {});
const parseMs = performance.now() - parseStart;

const backend = new MemoryBackend();
const ops: Operation[] = config.virtualServices.flatMap((vs) => [
  { op: 'add-service', service: vs.service },
  ...vs.realServers.map((rs): Operation => ({
    op: 'add-destination',
    service: vs.service.key,
    destination: rs.destination,
  })),
]);
for (const r of await backend.apply(ops)) if (r.error) throw r.error;

const up: ServerHealth = { status: 'up', upSince: null, weight: undefined };
const down: ServerHealth = { status: 'down', upSince: null, weight: undefined };
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function time(f: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await f();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

const table = await backend.table();
const decide = (failing: number): number => {
  const desired = desiredTable({
    services: config.virtualServices,
    retired: [],
    health: (_vs, rs) => (Number(rs.destination.key.address.split('.')[3]) <= failing ? down : up),
    maintenance: () => null,
    now: 0,
  });
  return plan(desired, table, new Map(), 0).operations.length;
};
if (decide(0) !== 0 || decide(10) !== SERVICES * 10)
  throw new Error('the plan is not what the benchmark expects');
const copyMs = await time(() => backend.table());
const steadyMs = await time(() => decide(0));
const failingMs = await time(() => decide(10));
// A loop over a table that already holds every server (checks: [], so always up): each tick
// finds nothing to do, as a resync does in steady state.
const loop = new ReconcileLoop(
  parseConfig(
    ['daemon: {backend: memory, min_tick_interval: 1ms}', ...lines.slice(1)].join('\n'),
    'bench',
    {},
  ),
  { backend, log: new MemoryLog(), reuseSettled: false },
);
await loop.start();
await loop.idle();
const tickMs = await time(async () => {
  const ended = loop.nextTick();
  loop.requestTick('bench');
  await ended;
});
// The same tick for a health transition alone: against the table as last read (no read, no drift
// comparison, no sync daemons), as every server found down between resyncs costs.
const knownMs = await time(async () => {
  const ended = loop.nextTick();
  loop.requestTick('bench', false, false);
  await ended;
});
const stats = loop.checkStats();
await loop.stop();
// The same tick, every service settled: each is taken as the last tick decided it.
const reusing = new ReconcileLoop(
  parseConfig(
    ['daemon: {backend: memory, min_tick_interval: 1ms}', ...lines.slice(1)].join('\n'),
    'bench',
    {},
  ),
  { backend, log: new MemoryLog() },
);
await reusing.start();
await reusing.idle();
const reusedMs = await time(async () => {
  const ended = reusing.nextTick();
  reusing.requestTick('bench', false, false);
  await ended;
});
await reusing.stop();
const heap = process.memoryUsage().heapUsed / 2 ** 20;
console.log(
  `config of ${SERVICES * PER_SERVICE} real servers parsed and validated in ${parseMs.toFixed(0)} ms`,
);
console.log(`median of ${ROUNDS}:`);
console.log(`  copy the table out of the memory backend: ${copyMs.toFixed(1)} ms`);
console.log(
  `  desired + plan, steady state (0 operations): ${steadyMs.toFixed(1)} ms (${(steadyMs / copyMs).toFixed(1)}x the copy)`,
);
console.log(
  `  desired + plan, 10 % down (${SERVICES * 10} deletions): ${failingMs.toFixed(1)} ms (${(failingMs / copyMs).toFixed(1)}x the copy)`,
);
console.log(
  `  a whole tick of the loop, steady state: ${tickMs.toFixed(1)} ms (${(tickMs / copyMs).toFixed(1)}x the copy; ${stats.checks} checks)`,
);
console.log(
  `  the same tick for a health transition, without a read, every service decided: ${knownMs.toFixed(1)} ms (${(knownMs / tickMs).toFixed(2)}x the tick that reads)`,
);
console.log(
  `  the same, the 100 settled services taken as they were: ${reusedMs.toFixed(1)} ms (${(reusedMs / knownMs).toFixed(2)}x deciding them)`,
);
console.log(`  heap used: ${heap.toFixed(0)} MiB`);
