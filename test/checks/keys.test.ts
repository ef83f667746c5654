// Merge keys: identical checks of one target run once, so a check's key must change with every
// option that changes what it does, and only with those. Walked over every declared check and
// every option it declares, so a check or an option added later is covered without a line here.
import t from 'tap';
import { CATALOG } from '../../checks/index.js';
import { ExecChecker } from '../../checks/exec.js';
import { HttpChecker } from '../../checks/http.js';
import { TcpChecker } from '../../checks/tcp.js';
import type { TlsOptions } from '../../src/health/options.js';
import type { AnyCheckDeclaration, OptionSpec } from '../../src/health/schema.js';

/** A valid value for an option, other than its default (and other than `other`). */
export function sample(spec: OptionSpec, other?: unknown): unknown {
  if (spec.example !== undefined && spec.example !== other) return spec.example;
  switch (spec.type) {
    case 'text':
    case 'list': {
      const values = spec.values ?? ['sample-one', 'sample-two'];
      const dflt = spec.type === 'list' ? spec.default?.[0] : spec.default;
      const pick = values.find(
        (v) => v !== dflt && v !== other && !(Array.isArray(other) && other[0] === v),
      );
      return spec.type === 'list' ? [pick] : pick;
    }
    case 'address':
      return other === '192.0.2.1' ? '192.0.2.2' : '192.0.2.1';
    case 'int': {
      const v = (spec.default ?? spec.min) === spec.min ? spec.min + 1 : spec.min;
      return v === other ? v + 1 : v;
    }
    case 'bool':
      return other === undefined ? !(spec.default ?? false) : !other;
    case 'regex':
      return other instanceof RegExp && other.source === 'sample' ? /sample2/ : /sample/;
    case 'map':
      return { 'x-sample': other ? 'two' : 'one' };
    case 'tls':
      return { servername: other ? 'b.example' : 'a.example', verify: true };
    case 'secret':
      return other === 'sample-secret' ? 'sample-secret-2' : 'sample-secret';
  }
}

function base(d: AnyCheckDeclaration): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(d.options)) if (spec.required) o[name] = sample(spec);
  return o;
}

const make = (d: AnyCheckDeclaration, o: Record<string, unknown>): string =>
  d.create(o as never).key;

for (const kind of CATALOG.kinds) {
  const d = CATALOG.get(kind) as AnyCheckDeclaration;
  t.test(`${kind}: every option changes the key, and only the options do`, async (t) => {
    const b = base(d);
    const baseKey = make(d, b);
    t.equal(make(d, { ...b }), baseKey, 'the same options make the same key');
    const keys = new Map<string, string>();
    for (const [name, spec] of Object.entries(d.options)) {
      const key = make(d, { ...b, [name]: sample(spec, b[name]) });
      t.not(key, baseKey, `${name} changes the key`);
      t.notOk(keys.get(key), `${name} and ${keys.get(key) ?? ''} make different keys`);
      keys.set(key, name);
      if (spec.secrecy === 'secret' || spec.type === 'secret') {
        const secret = 'Hunter2-sample-secret';
        const k = make(d, {
          ...b,
          [name]: spec.type === 'regex' ? /Hunter2-sample-secret/ : secret,
        });
        t.notOk(k.includes('Hunter2'), `${name}: the key holds no secret in clear`);
        t.equal(
          k,
          make(d, { ...b, [name]: spec.type === 'regex' ? /Hunter2-sample-secret/ : secret }),
        );
      }
      if (spec.default !== undefined && !spec.required)
        t.equal(
          make(d, { ...b, [name]: spec.default }),
          baseKey,
          `${name}: an explicit default is no change`,
        );
      if (spec.type === 'tls') {
        const tls: TlsOptions = {
          servername: 'a.example',
          verify: true,
          ca: 'CA',
          cert: 'C',
          key: 'K',
        };
        const tlsKeys = new Set(
          [
            tls,
            { ...tls, servername: 'b.example' },
            { ...tls, verify: false },
            { ...tls, ca: 'CA2' },
            { ...tls, cert: 'C2' },
            { ...tls, key: 'K2' },
          ].map((x) => make(d, { ...b, [name]: x })),
        );
        t.equal(tlsKeys.size, 6, `${name}: every TLS setting changes the key`);
      }
    }
  });
}

t.test('kinds never share a key', async (t) => {
  const keys = CATALOG.kinds.map((kind) => {
    const d = CATALOG.get(kind) as AnyCheckDeclaration;
    return make(d, base(d));
  });
  t.equal(new Set(keys).size, keys.length);
});

t.test('the order of keys in a mapping does not matter; a regex is not its text', async (t) => {
  t.equal(
    new HttpChecker({ headers: { a: '1', b: '2' } }).key,
    new HttpChecker({ headers: { b: '2', a: '1' } }).key,
  );
  t.equal(
    new ExecChecker({ command: ['x'], env: { A: '1', B: '2' } }).key,
    new ExecChecker({ command: ['x'], env: { B: '2', A: '1' } }).key,
  );
  t.not(new TcpChecker({ expect: '/ok/' }).key, new TcpChecker({ expectRegex: /ok/ }).key);
  t.not(new TcpChecker({ expectRegex: /ok/ }).key, new TcpChecker({ expectRegex: /ok/i }).key);
  t.not(new TcpChecker({}).key, new TcpChecker({ tls: {} }).key, 'TLS on is another check');
});
