// The man pages (src/cli/manpage.ts, rendered by Debian's pandoc) against what they document:
// every command and option of `ipvs-warden --help`, every config key with the schema's default,
// every check option, and every exit status the program really gives; and groff (as man and
// lintian run it) and mandoc render them without a warning.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { CATALOG } from '../../checks/index.js';
import { EXIT_STATUS, commandPage, configPage } from '../../src/cli/manpage.js';
import { daemonSchema } from '../../src/config/daemon.js';
import {
  FALLBACK_KEYS,
  RS_KEYS,
  SERVER_KEYS,
  SERVICE_KEYS,
  VS_KEYS,
} from '../../src/config/services.js';
import { HOOK_KEYS } from '../../src/config/hooks.js';
import { ALERT_KEYS } from '../../src/config/alerts.js';
import { configKey } from '../../src/health/schema.js';
import { renderMan } from '../man.js';

const root = new URL('../../../', import.meta.url);
const main = new URL('dist/src/main.js', root).pathname;
const readme = readFileSync(new URL('README.md', root), 'utf8');
const facts = { readme, environment: daemonSchema() };
const dir = mkdtempSync(join(tmpdir(), 'warden-man-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const pages = [commandPage(facts), configPage(facts)].map((page) => {
  const file = join(dir, page.file);
  writeFileSync(file, renderMan(page, '0.0.0', '2026-12-01'));
  return { page, file };
});
const [eight, five] = pages as [(typeof pages)[0], (typeof pages)[0]];

/** What a reader sees: `man -l` on a wide terminal, without formatting. */
function text(file: string): string {
  return execFileSync('man', ['-l', file], {
    encoding: 'utf8',
    env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', LC_ALL: 'C.UTF-8' },
  });
}
const text8 = text(eight.file);
const text5 = text(five.file);

t.test('groff, as man and lintian run it, and mandoc find nothing to say', async (t) => {
  for (const { file } of pages) {
    for (const width of ['80', '120']) {
      const man = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', file], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8', MANWIDTH: width, MANROFFSEQ: '' },
      });
      t.equal(man.status, 0, `${file}: man`);
      t.equal(man.stderr, '', `${file}: man --warnings at ${width} columns`);
    }
    const groff = spawnSync('groff', ['-t', '-man', '-ww', '-z', '-Tutf8', file], {
      encoding: 'utf8',
    });
    t.equal(groff.stderr, '', `${file}: groff -ww`);
    const mandoc = spawnSync('mandoc', ['-Tlint', '-W', 'warning', file], { encoding: 'utf8' });
    t.equal(mandoc.stdout + mandoc.stderr, '', `${file}: mandoc -Tlint`);
    t.equal(mandoc.status, 0);
  }
  t.match(text8, /^IPVS-WARDEN\(8\) +System Manager.s Manual/);
  t.match(text5, /^IPVS-WARDEN\.YAML\(5\) +File Formats Manual/);
});

t.test('ipvs-warden(8) has every command and option of --help', async (t) => {
  const help = execFileSync('node', [main, 'help'], { encoding: 'utf8' });
  const commandsPart = help.split('\nCommands:\n')[1]?.split('\nOptions:\n')[0] ?? '';
  const commands = [...commandsPart.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]);
  t.ok(commands.length >= 12, `commands found in --help: ${commands.join(' ')}`);
  for (const c of commands)
    t.match(text8, new RegExp(`^ *ipvs-warden\\b.*[ |]${c}\\b`, 'm'), `command ${c}`);
  const options = new Set([...help.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]));
  t.ok(options.size >= 10);
  for (const o of options) t.ok(text8.includes(o) || text5.includes(o), `option ${o}`);
  t.match(text8, /\nSIGNALS\n[^]*SIGHUP[^]*SIGTERM/);
  for (const k of daemonSchema()) t.match(text8, k.env, `environment ${k.env}`);
});

t.test('ipvs-warden.yaml(5) has every key, each daemon key with its default', async (t) => {
  for (const k of daemonSchema()) {
    const shown = k.default === '' ? '""' : String(k.default);
    // A definition: the key, then "default X, environment VAR: ..." (on its line when short).
    const key = k.key.replace(/\./g, '\\.');
    const entry = new RegExp(`\\n {7}${key}(?:\\n {14}| +)default (\\S+),`).exec(text5);
    t.equal(entry?.[1], shown, `daemon.${k.key}: default ${shown}`);
  }
  const keys = new Set([
    ...SERVER_KEYS,
    ...SERVICE_KEYS,
    ...VS_KEYS,
    ...RS_KEYS,
    ...FALLBACK_KEYS,
    ...HOOK_KEYS,
    ...ALERT_KEYS,
  ]);
  for (const key of keys) t.match(text5, new RegExp(`\\b${key}\\b`), key);
  for (const kind of CATALOG.kinds) {
    t.match(text5, new RegExp(`\\n {7}${kind}(?:\\n {14}| +)\\S`), `check kind ${kind}`);
    for (const [name, spec] of Object.entries(CATALOG.get(kind)?.options ?? {}))
      t.match(text5, configKey(name, spec), `${kind}: ${configKey(name, spec)}`);
  }
});

t.test('EXIT STATUS names every status the program gives', async (t) => {
  const run = promisify(execFile);
  const code = async (...args: string[]): Promise<number> =>
    run('node', [main, ...args]).then(
      () => 0,
      (e: unknown) => (e as { code?: number }).code ?? -1,
    );
  const seen = new Map([
    ['--version', await code('--version')],
    ['check-config of a missing file', await code('check-config', '--config', join(dir, 'none'))],
    ['no command', await code()],
    // A source address this host does not have: a local error, UNKNOWN.
    ['probe with a foreign bind', await code('probe', 'tcp', '127.0.0.1:9', '--bind', '192.0.2.1')],
  ]);
  t.same([...seen.values()], [0, 1, 2, 3], [...seen.keys()].join(', '));
  t.same(
    EXIT_STATUS.map(([c]) => c),
    [0, 1, 2, 3],
  );
  const section = /\nEXIT STATUS(\n[^]*?)\n[A-Z][A-Z ]+\n/.exec(text8)?.[1] ?? '';
  for (const [c] of EXIT_STATUS) t.match(section, new RegExp(`\\n {7}${c} +\\S`), `${c}`);
});
