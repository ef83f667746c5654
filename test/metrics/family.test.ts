// stateFamily writes its series' labels itself: the text and the JSON must be what prom-client
// writes for the same series set through its own Gauge and Counter, escaping included.
import { Counter, Gauge, Registry } from 'prom-client';
import t from 'tap';
import { StateFamily, labelSet, labelText, writeValue } from '../../src/metrics/family.js';

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

t.test('labels are written as UTF-8, whatever they hold', async (t) => {
  const family = new StateFamily('gauge', 'a', 'parts', function* () {
    for (let i = 0; i < 5000; i++)
      yield { series: labelSet({ i: i === 2500 ? 'ünï ✓' : String(i) }), value: i };
  });
  const text = await family.text();
  t.ok(text.includes('\na{i="ünï ✓"} 2500\n'), 'the one non-ASCII label, as it was');
  t.ok(text.includes('\na{i="2501"} 2501\n'), 'and the line after it');
  t.same(labelSet({ a: '✓' }).bytes, Buffer.from('a="✓"'));
});

t.test('writeValue: every value as String() spells it, whole numbers digit by digit', async (t) => {
  const values = [
    0,
    -0,
    1,
    9,
    10,
    99,
    100,
    12345,
    1e15,
    2 ** 53 - 1,
    2 ** 53,
    1e21,
    -1,
    -12.5,
    0.5,
    1e-7,
    0.1 + 0.2,
    1.7976931348623157e308,
    -2.2250738585072014e-308,
    NaN,
    Infinity,
    -Infinity,
  ];
  for (const v of values) {
    const buf = Buffer.alloc(40, 0x2a);
    const end = writeValue(buf, 3, v);
    const want = Number.isNaN(v)
      ? 'NaN'
      : v === Infinity
        ? '+Inf'
        : v === -Infinity
          ? '-Inf'
          : String(v);
    t.equal(buf.toString('latin1', 3, end), want, String(v));
    t.equal(
      buf.toString('latin1', 0, 3) + buf.toString('latin1', end),
      '*'.repeat(40 - end + 3),
      `${v}: nothing else touched`,
    );
  }
});

t.test('a long family comes in parts of 64 KiB at most, each ending at a line end', async (t) => {
  const long = 'x'.repeat(100_000);
  const family = new StateFamily('counter', 'long', 'many series', function* () {
    for (let i = 0; i < 5000; i++) yield { series: labelSet({ i: String(i) }), value: i };
    yield { series: labelSet({ i: long }), value: 1 };
    yield { series: labelSet({ i: 'after' }), value: 2 };
  });
  const parts: Buffer[] = [];
  for await (const part of family.parts()) parts.push(part);
  t.ok(parts.length >= 3, `${parts.length} parts`);
  t.ok(
    parts.every((p) => p.at(-1) === 0x0a),
    'each ends at the end of a line',
  );
  const sizes = parts.map((p) => p.length);
  t.ok(
    sizes.filter((n) => n > 64 * 1024).length === 1,
    `one part over 64 KiB, the long line's own: ${sizes.join(', ')}`,
  );
  t.equal(
    parts.find((p) => p.length > 64 * 1024)?.toString(),
    `long{i="${long}"} 1\n`,
    'the long line, alone in its part',
  );
  t.equal(Buffer.concat(parts).toString(), `${await family.text()}\n`, 'together: the text');
  t.equal((await family.text()).split('\n').length, 5004, 'HELP, TYPE and every series');
});
