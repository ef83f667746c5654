// HistogramFamily counts its buckets itself: its text and JSON must be what prom-client's
// Histogram writes for the same observations, bounds and escaping included.
import { Histogram, Registry } from 'prom-client';
import t from 'tap';
import { HistogramFamily } from '../../src/metrics/histogram.js';

const BOUNDS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
// Each bound itself (in its bucket: le is "less or equal"), next to one, 0, negative, above all.
const VALUES = [
  0,
  -0.5,
  ...BOUNDS,
  ...BOUNDS.map((b) => b + 1e-9),
  ...BOUNDS.map((b) => b - 1e-9),
  7,
  1e6,
  0.1 + 0.2,
];

t.test('the same text and JSON as prom-client for the same observations', async (t) => {
  const help = 'how "late"\nand \\ why';
  const ours = new HistogramFamily('late_seconds', help, 'kind', BOUNDS);
  const reg = new Registry();
  const theirs = new Histogram({
    name: 'late_seconds',
    help,
    labelNames: ['kind'],
    buckets: BOUNDS,
    registers: [reg],
  });
  t.equal(ours.text(), await reg.getSingleMetricAsString('late_seconds'), 'empty: head only');
  const kinds = ['tcp', 'http', 'a "quoted"\nkind \\'];
  VALUES.forEach((v, i) => {
    const kind = kinds[i % kinds.length] as string;
    ours.of(kind).observe(v);
    theirs.labels({ kind }).observe(v);
  });
  t.equal(ours.text(), await reg.getSingleMetricAsString('late_seconds'), 'text');
  const json = (await reg.getMetricsAsJSON()).find((m) => m.name === 'late_seconds');
  // As serialized: prom-client's sum and count carry `exemplar: undefined`, which JSON drops.
  const serialized = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
  t.same(serialized(await ours.json()), serialized(json), 'JSON');
  t.equal(
    Buffer.concat(ours.parts()).toString(),
    `${ours.text()}\n`,
    'its parts: the text and a LF',
  );
});

t.test('a series counts each value in its first bucket at or above it', (t) => {
  const f = new HistogramFamily('x', 'x', 'kind', [1, 2]);
  const s = f.of('tcp');
  t.equal(f.of('tcp'), s, 'one series a label value');
  for (const v of [0, 1, 1.5, 2, 3, NaN, Infinity, -Infinity]) s.observe(v);
  t.same(s.counts, [2, 2, 1], '0 and 1 in le=1; 1.5 and 2 in le=2; 3 above');
  t.equal(s.count, 5, 'what is not a finite number is not counted');
  t.equal(s.sum, 7.5);
  t.end();
});

t.test('bounds and label refused as prom-client would, at construction', (t) => {
  t.throws(() => new HistogramFamily('x', 'x', 'le', [1]), /le is the buckets' own label/);
  for (const bounds of [[1, 1], [2, 1], [1, Infinity], [NaN]])
    t.throws(
      () => new HistogramFamily('x', 'x', 'kind', bounds),
      /finite and rising/,
      JSON.stringify(bounds),
    );
  t.end();
});
