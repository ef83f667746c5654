// The catalog lists every check declared in checks/, so a new check file is offered by the
// config, `probe` and the README once it is listed there, and the test says when it is not.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CATALOG } from '../../checks/index.js';

const dir = fileURLToPath(new URL('../../../checks/', import.meta.url));

t.test('every declaration in checks/ is in the catalog', async (t) => {
  const declared = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    .flatMap((f) =>
      [
        ...readFileSync(`${dir}${f}`, 'utf8').matchAll(/defineCheck\(\{\s*kind: '([a-z0-9_]+)'/g),
      ].map((m) => `${m[1] ?? ''} (${f})`),
    );
  t.ok(declared.length >= CATALOG.kinds.length, 'the declarations are found');
  const missing = declared.filter((d) => !CATALOG.kinds.includes(d.split(' ')[0] ?? ''));
  t.same(missing, [], 'declared but not in checks/index.ts');
});

t.test('every kind has a summary, and every option a doc', async (t) => {
  for (const kind of CATALOG.kinds) {
    const d = CATALOG.get(kind);
    t.ok(d?.summary, `${kind}: summary`);
    for (const [name, spec] of Object.entries(d?.options ?? {}))
      t.ok(spec.doc.length > 5, `${kind}.${name}: doc`);
    t.ok(
      Object.values(d?.options ?? {}).filter((s) => s.type === 'tls').length <= 1,
      `${kind}: at most one TLS option (the config keeps one set of TLS files per check)`,
    );
  }
});
