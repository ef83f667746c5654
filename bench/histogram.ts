// Benchmark of one histogram observation, as every check makes two (its duration and its
// lateness, by kind), on the host (`npm run bench:histogram`): prom-client's labelled series
// against the daemon's own (src/metrics/histogram.ts), with the daemon's duration buckets, side
// by side in each round. Prints each round's ns per observation and the median ratio.
import { Histogram, Registry } from 'prom-client';
import { HistogramFamily } from '../src/metrics/histogram.js';

const BOUNDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const N = Number(process.env.BENCH_N ?? 2_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const theirs = new Histogram({
  name: 'theirs',
  help: 'prom-client',
  labelNames: ['kind'],
  buckets: BOUNDS,
  registers: [new Registry()],
}).labels({ kind: 'tcp' });
const ours = new HistogramFamily('ours', 'ours', 'kind', BOUNDS).of('tcp');
// Durations of checks on loopback: mostly a few ms.
const values = Array.from({ length: 1024 }, (_, i) => ((i * 7919) % 1024) / 20480);

function nsPerObservation(series: { observe(v: number): void }): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) series.observe(values[i & 1023] as number);
  return Number(process.hrtime.bigint() - t) / N;
}

const ratios: number[] = [];
console.log('| round | prom-client ns | ours ns | ratio |\n| --- | --- | --- | --- |');
for (let r = 1; r <= ROUNDS; r++) {
  const a = nsPerObservation(theirs);
  const b = nsPerObservation(ours);
  ratios.push(b / a);
  console.log(`| ${r} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} |`);
}
ratios.sort((x, y) => x - y);
console.log(`\nmedian ratio, ours / prom-client: ${ratios[ratios.length >> 1]?.toFixed(3)}`);
