// Another daemon's config: its format recognised, its translation's problems by source line, a
// native problem pointed at the source line, keepalived's include globs, and `convert`'s YAML,
// whose check-config is the translation's own.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import type { Translation } from '../../src/config/foreign.js';
import { convertText, detectFormat, sourceOf } from '../../src/config/formats.js';
import { includeFiles } from '../../src/config/include.js';

t.test('the format, by name and then by content', async (t) => {
  const cases: [string, string, string][] = [
    ['/etc/ha.d/ldirectord.cf', '', 'ldirectord'],
    ['/etc/ha.d/conf/www.cf', '', 'ldirectord'],
    ['/etc/keepalived/keepalived.conf', '', 'keepalived'],
    ['/etc/ipvs-warden/ipvs-warden.yaml', 'virtual=1.2.3.4:80', 'yaml'],
    ['/etc/x.json', '{}', 'yaml'],
    ['/tmp/lb', '# lb\nchecktimeout=3\nvirtual=10.0.0.1:80\n', 'ldirectord'],
    ['/tmp/lb', '! keepalived\nvirtual_server 10.0.0.1 80 {\n}\n', 'keepalived'],
    ['/tmp/lb', 'global_defs {\n}\n', 'keepalived'],
    ['/tmp/lb', 'virtual_services: []\n', 'yaml'],
  ];
  for (const [file, text, want] of cases) t.equal(detectFormat(file, text), want, file);
});

const translation: Translation = {
  raw: {
    virtual_services: [
      {
        address: '10.0.0.1',
        port: 80,
        on_failure: 'quiesce',
        real_servers: [{ address: '10.0.1.1', port: 80, weight: 5 }],
      },
    ],
  },
  notes: [
    { path: ['virtual_services', 0], line: 3 },
    { path: ['virtual_services', 0, 'on_failure'], line: 1, text: 'quiescent = yes' },
    { path: ['virtual_services', 0, 'real_servers', 0], line: 4 },
    { path: ['virtual_services', 0, 'real_servers', 0, 'weight'], line: 4, text: 'weight 5' },
  ],
  problems: [],
  left: [{ path: [], line: 9, text: 'vrrp_instance VI_1' }],
};

t.test('a native path has the line of the deepest note on its way', async (t) => {
  t.equal(sourceOf(translation, ['virtual_services', 0, 'real_servers', 0, 'port'])?.line, 4);
  t.equal(sourceOf(translation, ['virtual_services', 0, 'scheduler'])?.line, 3);
  t.equal(sourceOf(translation, ['daemon']), undefined);
});

t.test('convert: comments where the meaning shifts; its check-config is the same', async (t) => {
  const text = convertText(translation, 'ldirectord', '/etc/ha.d/ldirectord.cf');
  t.match(text, /^# Converted from \/etc\/ha\.d\/ldirectord\.cf \(ldirectord\)/);
  t.match(
    text,
    /# Left to ldirectord \(not ours\): \/etc\/ha\.d\/ldirectord\.cf:9 vrrp_instance VI_1/,
  );
  t.match(text, /# \/etc\/ha\.d\/ldirectord\.cf:1: quiescent = yes\n\s+on_failure: quiesce/);
  t.match(text, /# \/etc\/ha\.d\/ldirectord\.cf:4: weight 5\n\s+weight: 5/);
  const fromText = parseConfig(text, '/tmp/converted.yaml', {});
  const fromData = parseConfig(JSON.stringify(translation.raw), '/tmp/data.yaml', {});
  t.equal(effectiveConfig(fromText, CATALOG), effectiveConfig(fromData, CATALOG));
});

t.test("keepalived's include: a path or a glob, relative to the including file", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-include-'));
  mkdirSync(join(dir, 'conf.d'));
  for (const name of ['b.conf', 'a.conf', '.hidden.conf', 'c.txt'])
    writeFileSync(join(dir, 'conf.d', name), name);
  const from = join(dir, 'keepalived.conf');
  t.same(
    includeFiles('conf.d/*.conf', from).map((f) => f.text),
    ['a.conf', 'b.conf'],
    'in name order, no hidden files',
  );
  t.same(includeFiles('conf.d/[ab].conf', from).length, 2);
  t.same(includeFiles('conf.d/nothing-*.conf', from), [], 'no match: no file');
  t.same(includeFiles(join(dir, 'conf.d', 'c.txt'), from)[0]?.text, 'c.txt', 'an absolute path');
  t.throws(() => includeFiles('conf.d/missing.conf', from), /cannot read .*missing\.conf: ENOENT/);
});

for (const [format, ext] of [
  ['ldirectord', '.cf'],
  ['keepalived', '.conf'],
] as const) {
  t.test(`${format}: check-config of convert is check-config of the file`, async (t) => {
    const { loadConfigFile } = await import('../../src/checkers.js');
    const { ConfigError, translated } = await import('../../src/config/load.js');
    const { readdirSync, readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const dir = fileURLToPath(new URL(`../../../test/config/${format}/`, import.meta.url));
    let runs = 0;
    for (const name of readdirSync(dir).filter((n) => n.endsWith(ext))) {
      const file = join(dir, name);
      const text = readFileSync(file, 'utf8');
      let direct;
      try {
        direct = await loadConfigFile(file, {});
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        t.ok(
          e.problems.every((p) => p.line !== undefined || /^\S+:\d+: /.test(p.message)),
          `${name}: refused, every problem at its line`,
        );
        continue;
      }
      const converted = convertText(translated(format, text, file), format, file);
      const again = parseConfig(converted, join(tmpdir(), 'converted.yaml'), {});
      t.equal(
        effectiveConfig(again, CATALOG, { showSecrets: true }),
        effectiveConfig(direct, CATALOG, { showSecrets: true }),
        `${name}: the same effective config`,
      );
      runs++;
    }
    t.ok(runs >= 1, 'a file of the corpus runs');
  });
}
