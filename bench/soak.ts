// Soak benchmark: the unit soak's scenario (test/metrics/soak-fixture.ts: 1,000 real servers on
// the memory backend, a checker with no sockets) for minutes, a reload every second (every 10th
// back to the base config) and a scrape every few seconds. At each return to the base it prints
// the heap after a forced GC and the series count, then a verdict: does anything grow?
// `npm run bench:soak` (host; runs node with --expose-gc). --minutes=N or BENCH_MINUTES (default
// 3); BENCH_SCRAPE_SECONDS (default 5).
import { setTimeout as sleep } from 'node:timers/promises';
import { Soak, type SoakCounts } from '../test/metrics/soak-fixture.js';
import { slope } from './stats.js';

const flag = process.argv.find((a) => a.startsWith('--minutes='))?.split('=')[1];
const MINUTES = Number(flag ?? process.env.BENCH_MINUTES ?? 3);
const SCRAPE_S = Number(process.env.BENCH_SCRAPE_SECONDS ?? 5);
/** Every this many reloads the config is the base again, and a sample is taken. */
const CYCLE = 10;
/** Heap growth, first sample to last, that still counts as flat. */
const FLAT_MIB = 2;

const MiB = 2 ** 20;

interface Sample extends SoakCounts {
  readonly seconds: number;
  readonly reloads: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
}

async function main(): Promise<void> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:soak does)');
  const soak = new Soak();
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  await soak.start();
  let reloads = 0;

  const sample = async (): Promise<Sample> => {
    if (!(await soak.settled())) throw new Error('the checks did not settle within 60 s');
    const { counts } = await soak.measure();
    // Twice: the first pass can leave garbage that only the second finds collectable.
    gc();
    gc();
    const mem = process.memoryUsage();
    return {
      ...counts,
      seconds: seconds(),
      reloads,
      heapMiB: mem.heapUsed / MiB,
      rssMiB: mem.rss / MiB,
    };
  };
  const print = (s: Sample): void => {
    console.log(
      [
        `${s.seconds.toFixed(0).padStart(5)} s`,
        String(s.reloads).padStart(7),
        s.heapMiB.toFixed(1).padStart(9),
        s.rssMiB.toFixed(0).padStart(7),
        String(s.series).padStart(7),
        String(s.servers).padStart(7),
        String(s.runs).padStart(5),
      ].join('  '),
    );
  };

  console.log(
    `# ${MINUTES} min: 1,000 real servers, a reload every second (every ${CYCLE}th back to the base config), a scrape every ${SCRAPE_S} s; a sample at each return to the base`,
  );
  console.log('#  time  reloads  heap MiB  rss MiB   series  servers  runs');
  // A first cycle warms up (code paths compiled, caches filled); the baseline is after it.
  const samples: Sample[] = [];
  let lastScrape = performance.now();
  const end = t0 + MINUTES * 60_000;
  let round = 0;
  while (performance.now() < end || reloads % CYCLE !== 0) {
    const began = performance.now();
    round++;
    const base = round % CYCLE === 0;
    await soak.reload(base ? null : round);
    reloads++;
    if (performance.now() - lastScrape >= SCRAPE_S * 1000) {
      await soak.metrics.render();
      lastScrape = performance.now();
    }
    if (base) {
      const s = await sample();
      print(s);
      samples.push(s);
    }
    await sleep(Math.max(0, 1000 - (performance.now() - began)));
  }
  await soak.stop();

  const [, first, ...rest] = samples;
  const last = rest.at(-1) ?? first;
  if (!first || !last) throw new Error('too short: run at least two cycles');
  const after = samples.slice(1);
  const perMin = slope(
    after.map((s) => s.seconds / 60),
    after.map((s) => s.heapMiB),
  );
  const same = after.every(
    (s) => s.series === first.series && s.servers === first.servers && s.runs === first.runs,
  );
  const growth = last.heapMiB - first.heapMiB;
  const flat = same && growth < FLAT_MIB;
  console.log(
    `# ${reloads} reloads in ${seconds().toFixed(0)} s. From the sample after warm-up to the last: heap ${first.heapMiB.toFixed(1)} -> ${last.heapMiB.toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)}; trend ${perMin >= 0 ? '+' : ''}${perMin.toFixed(2)} MiB/min), series ${first.series} -> ${last.series}, servers ${first.servers} -> ${last.servers}, runs ${first.runs} -> ${last.runs}`,
  );
  console.log(
    `# verdict: ${flat ? 'FLAT' : 'GROWING'} (flat: series, servers and runs equal at every sample, heap within ${FLAT_MIB} MiB)`,
  );
  if (soak.log.problems.length)
    console.log(`# logged: ${soak.log.problems.slice(0, 5).join('; ')}`);
  process.exitCode = flat ? 0 : 1;
}

await main();
