// stateFamily writes its series' labels itself: the text and the JSON must be what prom-client
// writes for the same series set through its own Gauge and Counter, escaping included.
import { Counter, Gauge, Registry } from 'prom-client';
import t from 'tap';
import { StateFamily, labelSet, labelText } from '../../src/metrics/family.js';

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
  const series = VALUES.map((value, i) => labelSet({ check: value, target: `10.0.0.${i}:80` }));
  const outcomes = ['healthy', 'unhealthy'].map((outcome) => labelSet({ outcome }));
  for (const Kind of [Gauge, Counter]) {
    const type = Kind === Gauge ? 'gauge' : 'counter';
    const ours = [
      new StateFamily(type, 'f', 'a "family"\nof \\ series', () =>
        series.flatMap((s, i) =>
          outcomes.map((o, j) => ({ series: s, extra: o, value: i * 10 + j + 0.5 })),
        ),
      ),
      new StateFamily(type, 'g', 'no extra labels', () =>
        series.map((s, i) => ({ series: s, value: i })),
      ),
      new StateFamily(type, 'h', 'no labels at all', () => [{ series: labelSet({}), value: 7 }]),
    ];
    const theirs = new Registry();
    const f = new Kind({
      name: 'f',
      help: 'a "family"\nof \\ series',
      labelNames: ['check', 'target', 'outcome'],
      registers: [theirs],
    });
    const g = new Kind({
      name: 'g',
      help: 'no extra labels',
      labelNames: ['check', 'target'],
      registers: [theirs],
    });
    const h = new Kind({ name: 'h', help: 'no labels at all', registers: [theirs] });
    const set = (m: Gauge | Counter, labels: Record<string, string>, v: number): void => {
      if (m instanceof Gauge) m.set(labels, v);
      else m.inc(labels, v);
    };
    series.forEach((s, i) => {
      outcomes.forEach((o, j) => set(f, { ...s.labels, ...o.labels }, i * 10 + j + 0.5));
      set(g, s.labels, i);
    });
    set(h, {}, 7);
    for (const family of ours) {
      const name = family.name;
      t.equal(
        await family.text(),
        await theirs.getSingleMetricAsString(name),
        `${type} ${name}: the same text`,
      );
      const json = (await theirs.getMetricsAsJSON()).find((m) => m.name === name);
      t.same(await family.json(), json, `${type} ${name}: the same JSON`);
    }
  }
});

t.test('a long family lets the event loop turn while it is written', async (t) => {
  let turned = false;
  let turnedBeforeLast = false;
  const family = new StateFamily('gauge', 'long', 'many series', function* () {
    for (let i = 0; i < 5000; i++) {
      if (i === 4999) turnedBeforeLast = turned;
      yield { series: labelSet({ i: String(i) }), value: i };
    }
  });
  setImmediate(() => (turned = true));
  const text = await family.text();
  t.equal(text.split('\n').length, 5002, 'every series, after HELP and TYPE');
  t.ok(turnedBeforeLast, 'a callback queued before the scrape ran before its last line');
});

t.test('each part says whether it is all ASCII (and may go as Latin-1)', async (t) => {
  const family = new StateFamily('gauge', 'a', 'parts', function* () {
    for (let i = 0; i < 5000; i++)
      yield { series: labelSet({ i: i === 2500 ? 'ünï' : String(i) }), value: i };
  });
  const ascii: boolean[] = [];
  for await (const part of family.parts()) ascii.push(part.ascii);
  t.same(ascii, [true, false, true], 'only the part with the one non-ASCII label');
  t.equal(labelSet({ a: '✓' }).ascii, false);
  t.equal(labelSet({ a: 'x"\\' }).ascii, true);
});

t.test(
  'a long family comes in parts, one turn of the event loop apart, that make its text',
  async (t) => {
    const family = new StateFamily('counter', 'long', 'many series', function* () {
      for (let i = 0; i < 5000; i++) yield { series: labelSet({ i: String(i) }), value: i };
    });
    const parts: string[] = [];
    let turns = 0;
    const count = (): void => {
      turns++;
      if (turns < 100) setImmediate(count);
    };
    setImmediate(count);
    for await (const part of family.parts()) parts.push(part.text);
    const lines = parts.map((p) => p.split('\n').length);
    t.same(
      lines,
      [2000, 2000, 1002],
      'HELP, TYPE and 5,000 series in parts of 2,000 lines at most',
    );
    t.ok(turns >= 2, 'the loop turned between the parts');
    t.equal(parts.join('\n'), await family.text(), 'joined by line feeds: the text');
  },
);
