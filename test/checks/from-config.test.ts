// Every check kind, and every option of it, from a config file: each is read through its
// declaration into the same options the probe is made with, check-config prints it, and what it
// prints reads back as the same check. Walked over the catalog, so a new check is covered here.
import t from 'tap';
import { stringify } from 'yaml';
import { CATALOG, createChecker, parseConfig } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { configKey, type AnyCheckDeclaration, type OptionSpec } from '../../src/health/schema.js';
import { sample } from './keys.test.js';

/** An option's value as a config file writes it. */
function raw(spec: OptionSpec, value: unknown): unknown {
  if (value instanceof RegExp)
    return value.flags ? { pattern: value.source, flags: value.flags } : value.source;
  if (spec.type === 'tls') {
    const v = value as { servername?: string; verify?: boolean };
    return { sni: v.servername, verify: v.verify };
  }
  return value;
}

function configWith(kind: string, check: Record<string, unknown>): string {
  return stringify({
    virtual_services: [
      {
        address: '10.0.0.1',
        port: 80,
        real_servers: [{ address: '10.0.1.1', checks: [{ type: kind, ...check }] }],
      },
    ],
  });
}

function read(kind: string, check: Record<string, unknown>) {
  const c = parseConfig(configWith(kind, check), '/nonexistent/warden.yaml', {});
  const got = c.virtualServices[0]?.realServers[0]?.checks[0];
  if (!got) throw new Error('no check read');
  return { config: c, check: got };
}

for (const kind of CATALOG.kinds) {
  const d = CATALOG.get(kind) as AnyCheckDeclaration;
  t.test(`${kind}: from a config, each option, and back from check-config`, async (t) => {
    const base: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(d.options))
      if (spec.required) base[configKey(name, spec)] = raw(spec, sample(spec));
    const { config, check } = read(kind, base);
    const checker = createChecker(check);
    t.equal(checker.kind === kind || kind.startsWith(checker.kind), true, `made a ${kind} check`);
    const printed = effectiveConfig(config, CATALOG, { showSecrets: true });
    const again = parseConfig(printed, '/nonexistent/warden.yaml', {});
    t.equal(
      effectiveConfig(again, CATALOG, { showSecrets: true }),
      printed,
      'check-config reads back',
    );
    t.equal(createChecker(again.virtualServices[0]!.realServers[0]!.checks[0]!).key, checker.key);
    for (const [name, spec] of Object.entries(d.options)) {
      if (spec.required) continue;
      const value = sample(spec, undefined);
      const key = configKey(name, spec);
      const alone = { ...base, [key]: raw(spec, value) };
      // A rule between options may want a companion (tls with starttls, password with user):
      // the first other option that makes it valid.
      const others = Object.entries(d.options)
        .filter(([other]) => other !== name)
        .map(([other, o]) => ({ [configKey(other, o)]: raw(o, sample(o)) }));
      const tries = [
        alone,
        ...others.map((one) => ({ ...alone, ...one })),
        ...others.flatMap((one, i) =>
          others.slice(i + 1).map((two) => ({ ...alone, ...one, ...two })),
        ),
        ...others.flatMap((one, i) =>
          others
            .slice(i + 1)
            .flatMap((two, j) =>
              others.slice(i + j + 2).map((three) => ({ ...alone, ...one, ...two, ...three })),
            ),
        ),
      ];
      let got;
      let first = '';
      for (const attempt of tries) {
        try {
          got = read(kind, attempt).check;
          break;
        } catch (e) {
          first ||= (e as Error).message;
        }
      }
      if (!got) {
        t.fail(`${key}: ${first}`);
        continue;
      }
      t.not(createChecker(got).key, checker.key, `${key} reaches the probe`);
    }
  });
}
