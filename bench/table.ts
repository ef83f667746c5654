// Benchmark of the kernel table at scale, side by side in one run (inside the VM:
// `npm run bench:table`): 100 services x 100 destinations written through the netlink backend
// (pipelined, and one-at-a-time for contrast) and through `ipvsadm -R`, then dumped back through
// the backend and through `ipvsadm -Ln`. Prints medians and the ratios that matter.
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { NetlinkBackend } from '../src/ipvs/netlink/backend.js';
import type { Operation } from '../src/ipvs/model.js';
import { destinationSpec, serviceSpec } from '../src/ipvs/spec.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const PER_SERVICE = Number(process.env.BENCH_DESTS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TOTAL = SERVICES * PER_SERVICE;

function workload(): { ops: Operation[]; rules: string } {
  const ops: Operation[] = [];
  const rules: string[] = [];
  for (let s = 0; s < SERVICES; s++) {
    const vip = `10.100.${s >> 8}.${(s & 0xff) + 1}`;
    const key = { family: 4, protocol: 'tcp', address: vip, port: 80 } as const;
    ops.push({ op: 'add-service', service: serviceSpec({ key, scheduler: 'wlc' }) });
    rules.push(`-A -t ${vip}:80 -s wlc`);
    for (let d = 0; d < PER_SERVICE; d++) {
      const rs = `10.${101 + (s >> 8)}.${s & 0xff}.${d + 1}`;
      ops.push({
        op: 'add-destination',
        service: key,
        destination: destinationSpec({ key: { family: 4, address: rs, port: 8080 }, weight: 10 }),
      });
      rules.push(`-a -t ${vip}:80 -r ${rs}:8080 -m -w 10`);
    }
  }
  return { ops, rules: `${rules.join('\n')}\n` };
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const value = await fn();
  return [performance.now() - t0, value];
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const countDests = (text: string): number =>
  text.split('\n').filter((l) => l.startsWith('  -> ') && !l.includes('RemoteAddress')).length;

async function main(): Promise<void> {
  const { ops, rules } = workload();
  const backend = await NetlinkBackend.open();
  const serial = await NetlinkBackend.open({ window: 1 });
  const samples: Record<string, number[]> = {
    'write: backend (pipelined)': [],
    'write: backend (one at a time)': [],
    'write: ipvsadm -R': [],
    'dump: backend table()': [],
    'dump: ipvsadm -Ln': [],
  };
  const add = (name: string, ms: number): void => void samples[name]?.push(ms);

  for (let round = 0; round < ROUNDS; round++) {
    await backend.flush();
    const [wms, results] = await timed(() => backend.apply(ops));
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new Error(`backend write failed: ${failed[0]?.error?.message}`);
    add('write: backend (pipelined)', wms);

    const [dms, table] = await timed(() => backend.table());
    const n = table.reduce((k, e) => k + e.destinations.length, 0);
    if (n !== TOTAL) throw new Error(`backend dumped ${n} destinations, expected ${TOTAL}`);
    add('dump: backend table()', dms);

    const [lms, listing] = await timed(() =>
      execFileSync('ipvsadm', ['-Ln'], { encoding: 'utf8', maxBuffer: 64 << 20 }),
    );
    if (countDests(listing) !== TOTAL)
      throw new Error(`ipvsadm listed ${countDests(listing)} destinations`);
    add('dump: ipvsadm -Ln', lms);

    await backend.flush();
    const [rms] = await timed(() => execFileSync('ipvsadm', ['-R'], { input: rules }));
    add('write: ipvsadm -R', rms);
    const check = await backend.table();
    if (check.reduce((k, e) => k + e.destinations.length, 0) !== TOTAL)
      throw new Error('ipvsadm -R wrote a different table');

    await backend.flush();
    const [sms, sresults] = await timed(() => serial.apply(ops));
    if (sresults.some((r) => r.error)) throw new Error('one-at-a-time write failed');
    add('write: backend (one at a time)', sms);
  }
  await backend.flush();
  await backend.close();
  await serial.close();

  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const get = (k: string): number => med[k] ?? NaN;
  console.log(
    `# ${SERVICES} services x ${PER_SERVICE} destinations = ${TOTAL}, median of ${ROUNDS} rounds`,
  );
  for (const [k, v] of Object.entries(samples)) {
    console.log(
      `${k.padEnd(34)} ${get(k).toFixed(0).padStart(7)} ms   (${v.map((x) => x.toFixed(0)).join(', ')})`,
    );
  }
  console.log(
    `ratio write backend/ipvsadm -R           ${(get('write: backend (pipelined)') / get('write: ipvsadm -R')).toFixed(2)}`,
  );
  console.log(
    `ratio dump  backend/ipvsadm -Ln          ${(get('dump: backend table()') / get('dump: ipvsadm -Ln')).toFixed(2)}`,
  );
  console.log(
    `ratio write one-at-a-time/pipelined      ${(get('write: backend (one at a time)') / get('write: backend (pipelined)')).toFixed(2)}`,
  );
  console.log(
    `heap used after the runs: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MiB`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
