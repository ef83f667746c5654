// YAML that parses but cannot be turned into data (an alias to no anchor, an alias bomb) is a
// ConfigError with a line, like any other mistake: never a stack trace from check-config.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError } from '../../src/config/load.js';
import { parseConfig } from '../../src/checkers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const UNRESOLVED = `virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers: *nope
`;
/** Nine to the sixth: half a million strings from a few hundred bytes. */
const BOMB = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
virtual_services: *e
`;

function configError(text: string): ConfigError {
  try {
    parseConfig(text, 'x.yaml', {});
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('the config was accepted');
}

t.test('an alias to no anchor is a problem at its line', async (t) => {
  const e = configError(UNRESOLVED);
  t.same(
    e.problems.map((p) => [p.line, p.path, p.message]),
    [
      [
        4,
        ['virtual_services', 0, 'real_servers'],
        'alias *nope refers to no anchor &nope before it',
      ],
    ],
  );
});

t.test('an alias bomb is refused, at the line of the first alias', async (t) => {
  const e = configError(BOMB);
  t.equal(e.problems.length, 1);
  t.equal(e.problems[0]?.line, 2);
  t.same(e.problems[0]?.path, ['b', 0]);
  t.match(e.problems[0]?.message, /^aliases expand too far \(more than 100 /);
});

t.test('anchors and aliases within the limit still work', async (t) => {
  const c = parseConfig(
    `defaults: {checks: &none []}
virtual_services:
  - {address: 10.0.0.1, port: 80, checks: *none, real_servers: &rs [{address: 10.0.0.2}]}
  - {address: 10.0.0.1, port: 81, checks: *none, real_servers: *rs}
`,
    'x.yaml',
    {},
  );
  t.same(
    c.virtualServices.map((v) => v.realServers.length),
    [1, 1],
  );
});

t.test('check-config: one line per problem, exit 1, no stack trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-yaml-'));
  for (const [name, text, place] of [
    ['unresolved.yaml', UNRESOLVED, '4: virtual_services\\[0\\]\\.real_servers'],
    ['bomb.yaml', BOMB, '2: b\\[0\\]'],
  ] as const) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = await new Promise<{ code: number; err: string }>((resolve) => {
      execFile(process.execPath, [main, 'check-config', '--config', file], (error, _out, err) =>
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, err }),
      );
    });
    t.equal(r.code, 1, name);
    t.match(r.err, new RegExp(`^${file}: 1 problem:\\n  ${file}:${place}: alias`));
    t.notMatch(r.err, /unexpected error|ReferenceError|\n\s+at /, 'no trace');
    t.equal(r.err.trim().split('\n').length, 2, 'the count, then the problem');
  }
});
