// The config reads a check through its declaration: a declaration of the test's own (a secret,
// a regex with flags, a required option, a rule between options) shows what any check gets from
// the config layer without a line of config code of its own.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { effectiveConfig } from '../../src/config/effective.js';
import { ConfigError, parseConfigWith } from '../../src/config/load.js';
import type { CheckTarget, Checker } from '../../src/health/checker.js';
import { catalogOf, defineCheck, keyOf, opt, type OptionsOf } from '../../src/health/schema.js';

const OPTIONS = {
  user: opt.text({ doc: 'who logs in' }),
  password: opt.secret({ doc: 'the password' }),
  expect: opt.regex({ doc: 'a reply that matches' }),
  mode: opt.text({ values: ['plain', 'tls'], default: 'plain', doc: 'how' }),
  greeting: opt.text({ required: true, doc: 'the greeting expected' }),
} as const;

const made: OptionsOf<typeof OPTIONS>[] = [];
const fake = defineCheck({
  kind: 'fake',
  summary: 'a check of the test',
  options: OPTIONS,
  validate(o, report) {
    if (o.password !== undefined && o.user === undefined)
      report('password', 'a password needs a user');
  },
  create(o): Checker {
    made.push(o);
    return {
      kind: 'fake',
      description: 'fake',
      key: keyOf('fake', OPTIONS, o),
      check: async (_target: CheckTarget) => ({ healthy: true, durationMs: 0, message: 'ok' }),
    };
  },
});
const catalog = catalogOf([fake]);

const dir = mkdtempSync(join(tmpdir(), 'warden-declared-'));
const file = join(dir, 'warden.yaml');
writeFileSync(join(dir, 'password'), 's3cret-from-file\nsecond line is not the secret\n');
writeFileSync(join(dir, 'empty'), '');

const config = (check: string): string => `virtual_services:
  - address: 10.0.0.1
    port: 25
    real_servers:
      - address: 10.0.1.1
        checks:
          - ${check}
`;

function parse(check: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfigWith(catalog, config(check), file, env);
}

function problems(check: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parse(check, env);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.path.slice(6).join('.')}: ${p.message}`);
  }
}

const options = (check: string, env: NodeJS.ProcessEnv = {}) =>
  parse(check, env).virtualServices[0]?.realServers[0]?.checks[0]?.options;

t.test('a secret from the config, a file (its first line) or the environment', async (t) => {
  t.same(options('{type: fake, greeting: hi, user: u, password: pw}')?.password, 'pw');
  t.same(options('{type: fake, greeting: hi, user: u, password: 1234}')?.password, '1234');
  t.same(
    options('{type: fake, greeting: hi, user: u, password_file: password}')?.password,
    's3cret-from-file',
  );
  t.same(
    options('{type: fake, greeting: hi, user: u, password_env: PW}', { PW: 'from-env' })?.password,
    'from-env',
  );
  t.same(problems('{type: fake, greeting: hi, user: u, password_env: PW}'), [
    'password_env: the environment variable PW is not set',
  ]);
  t.match(problems('{type: fake, greeting: hi, user: u, password_file: nope}'), [
    /^password_file: cannot read nope: /,
  ]);
  t.same(problems('{type: fake, greeting: hi, user: u, password_file: empty}'), [
    'password_file: empty is empty: the secret is its first line',
  ]);
  t.same(problems('{type: fake, greeting: hi, user: u, password: a, password_env: PW}'), [
    'password_env: give one of password, password_env, not several',
  ]);
});

t.test('check-config names the file or variable, never the value', async (t) => {
  const fromFile = parse('{type: fake, greeting: hi, user: u, password_file: password}');
  const shown = effectiveConfig(fromFile, catalog, { showSecrets: true });
  t.match(shown, `password_file: ${join(dir, 'password')}`);
  t.notMatch(shown, 's3cret');
  const fromEnv = parse('{type: fake, greeting: hi, user: u, password_env: PW}', { PW: 'x1' });
  t.match(effectiveConfig(fromEnv, catalog), 'password_env: PW');
  const literal = parse('{type: fake, greeting: hi, user: u, password: lit3ral}');
  const redacted = effectiveConfig(literal, catalog);
  t.notMatch(redacted, 'lit3ral');
  t.match(redacted, 'password: <redacted>');
  t.match(effectiveConfig(literal, catalog, { showSecrets: true }), 'password: lit3ral');
  // What check-config printed reads back as the same config, and a placeholder is refused.
  writeFileSync(file, effectiveConfig(fromFile, catalog, { showSecrets: true }));
  const again = parseConfigWith(
    catalog,
    effectiveConfig(fromFile, catalog, { showSecrets: true }),
    file,
    {},
  );
  t.equal(
    effectiveConfig(again, catalog, { showSecrets: true }),
    effectiveConfig(fromFile, catalog, { showSecrets: true }),
  );
  t.throws(() => parseConfigWith(catalog, redacted, file, {}), /password: is <redacted>/);
});

t.test('a regex with flags; g and y refused; printed back with its flags', async (t) => {
  const re = options('{type: fake, greeting: hi, expect: {pattern: "^ok", flags: im}}')?.expect;
  t.ok(re instanceof RegExp && re.flags === 'im' && re.source === '^ok');
  t.match(problems('{type: fake, greeting: hi, expect: {pattern: ok, flags: g}}'), [
    /^expect: flags must be from i, m, s, u/,
  ]);
  t.match(problems('{type: fake, greeting: hi, expect: "("}'), [
    /^expect: not a regular expression/,
  ]);
  const c = parse('{type: fake, greeting: hi, expect: {pattern: "^ok", flags: i}}');
  t.match(effectiveConfig(c, catalog), /expect:\n\s+pattern: \^ok\n\s+flags: i/);
});

t.test('required, one of the values, unknown keys, a rule between options', async (t) => {
  t.same(problems('{type: fake}'), ['greeting: required: the greeting expected']);
  t.same(problems('{type: fake, greeting: hi, mode: tsl}'), [
    'mode: must be one of plain, tls, got "tsl"',
  ]);
  t.same(problems('{type: fake, greeting: hi, usr: u}'), [
    'usr: unknown key (did you mean "user"?)',
  ]);
  t.same(problems('{type: fake, greeting: hi, password: x}'), [
    'password: a password needs a user',
  ]);
  t.same(problems('{type: nope, greeting: hi}'), ['type: must be one of fake, got "nope"']);
  t.same(
    effectiveConfig(parse('{type: fake, greeting: hi}'), catalog).match(/mode: plain/)?.length,
    1,
    'a default is printed',
  );
});
