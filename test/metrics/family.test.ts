// stateFamily writes its series' labels itself: the text and the JSON must be what prom-client
// writes for the same series set through its own Gauge and Counter, escaping included.
import { Counter, Gauge, Registry } from 'prom-client';
import t from 'tap';
import { labelText, stateFamily } from '../../src/metrics/family.js';

const VALUES: readonly string[] = [
  'plain',
  'HTTP GET /healthz',
  'a "quoted" word',
  'back\\slash',
  'two\nlines',
  '\\"both\\"\n',
  'ünïcödé ✓',
  '',
];

t.test('labelText: as prom-client writes each value', async (t) => {
  for (const value of VALUES) {
    const reg = new Registry();
    const g = new Gauge({ name: 'x', help: 'x', labelNames: ['a', 'b'], registers: [reg] });
    g.set({ a: value, b: 'k' }, 1);
    const line = (await reg.metrics()).split('\n').find((l) => l.startsWith('x{'));
    t.equal(`x{${labelText({ a: value, b: 'k' })}} 1`, line, JSON.stringify(value));
  }
});

t.test('a family renders as prom-client does, and reads back as the same JSON', async (t) => {
  for (const Kind of [Gauge, Counter]) {
    const ours = new Registry();
    const theirs = new Registry();
    const series = VALUES.map((value, i) => {
      const fixed = { check: value, target: `10.0.0.${i}:80` };
      return { fixed, fixedText: labelText(fixed) };
    });
    const outcomes = ['healthy', 'unhealthy'].map((outcome) => {
      const labels = { outcome };
      return { labels, text: labelText(labels) };
    });
    stateFamily(
      Kind,
      {
        name: 'f',
        help: 'a "family"\nof series',
        labelNames: ['check', 'target', 'outcome'],
        registers: [ours],
      },
      (emit) => {
        series.forEach((s, i) =>
          outcomes.forEach((o, j) =>
            emit({ ...s, extra: o.labels, extraText: o.text, value: i * 10 + j + 0.5 }),
          ),
        );
      },
    );
    stateFamily(
      Kind,
      { name: 'g', help: 'no extra labels', labelNames: ['check', 'target'], registers: [ours] },
      (emit) => series.forEach((s, i) => emit({ ...s, value: i })),
    );
    const f = new Kind({
      name: 'f',
      help: 'a "family"\nof series',
      labelNames: ['check', 'target', 'outcome'],
      registers: [theirs],
    });
    const g = new Kind({
      name: 'g',
      help: 'no extra labels',
      labelNames: ['check', 'target'],
      registers: [theirs],
    });
    series.forEach((s, i) => {
      outcomes.forEach((o, j) => {
        const labels = { ...s.fixed, ...o.labels };
        if (f instanceof Gauge) f.set(labels, i * 10 + j + 0.5);
        else f.inc(labels, i * 10 + j + 0.5);
      });
      if (g instanceof Gauge) g.set(s.fixed, i);
      else g.inc(s.fixed, i);
    });
    t.equal(await ours.metrics(), await theirs.metrics(), `${Kind.name}: the same text`);
    t.same(
      await ours.getMetricsAsJSON(),
      await theirs.getMetricsAsJSON(),
      `${Kind.name}: the same JSON`,
    );
  }
});
