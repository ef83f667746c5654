// `ipvs-warden probe KIND TARGET [options]`: one check, once, from the command line, for
// debugging a check before it goes into a config (what keepalived's genhash is for). The flags
// are derived from the kind's declaration, and what they give is validated by the config's own
// reader: a flag means what its config key means, and is refused for the same reasons.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readCheck } from '../config/checks.js';
import { filesReadOnDemand } from '../config/files.js';
import { Problems } from '../config/reader.js';
import type { CheckTarget, Checker } from '../health/checker.js';
import {
  configKey,
  flagName,
  type AnyCheckDeclaration,
  type CheckCatalog,
  type OptionSpec,
} from '../health/schema.js';
import { canonicalAddress } from '../ipvs/address.js';

export class ProbeUsageError extends Error {}

/** A probe flag: its name (no dashes), the config key it fills, how it reads, what it says. */
interface Flag {
  readonly flag: string;
  readonly key: string;
  readonly kind: 'value' | 'switch' | 'off' | 'many';
  readonly arg: string;
  readonly doc: string;
}

const TLS_FLAGS: readonly Flag[] = [
  { flag: 'sni', key: 'sni', kind: 'value', arg: 'NAME', doc: 'server name sent and verified' },
  {
    flag: 'insecure',
    key: 'verify',
    kind: 'off',
    arg: '',
    doc: 'do not verify the certificate',
  },
  {
    flag: 'ca-file',
    key: 'ca_file',
    kind: 'value',
    arg: 'FILE',
    doc: 'trusted CA certificates (PEM)',
  },
  {
    flag: 'cert-file',
    key: 'cert_file',
    kind: 'value',
    arg: 'FILE',
    doc: 'client certificate (PEM)',
  },
  { flag: 'key-file', key: 'key_file', kind: 'value', arg: 'FILE', doc: 'client key (PEM)' },
];

const ARG: Record<OptionSpec['type'], string> = {
  text: 'TEXT',
  address: 'ADDRESS',
  int: 'N',
  bool: '',
  regex: 'RE',
  list: 'ITEM',
  map: 'NAME=VALUE',
  tls: '',
  secret: 'TEXT',
};

/** Every flag of a kind, in declaration order. */
export function probeFlags(d: AnyCheckDeclaration): Flag[] {
  const flags: Flag[] = [];
  for (const [name, spec] of Object.entries(d.options)) {
    const flag = flagName(name, spec);
    const key = configKey(name, spec);
    if (flag === null || (spec.type === 'list' && spec.rest)) continue;
    const doc = spec.doc;
    switch (spec.type) {
      case 'bool':
        flags.push({ flag, key, kind: 'switch', arg: '', doc });
        if (spec.default === true)
          flags.push({ flag: `no-${flag}`, key, kind: 'off', arg: '', doc: `not ${flag}` });
        break;
      case 'tls':
        if (!spec.on) flags.push({ flag, key, kind: 'switch', arg: '', doc });
        flags.push(...TLS_FLAGS.map((f) => ({ ...f, key: `${key}.${f.key}` })));
        break;
      case 'secret':
        flags.push(
          {
            flag,
            key,
            kind: 'value',
            arg: 'TEXT',
            doc: `${doc} (seen in ps: prefer the next two)`,
          },
          {
            flag: `${flag}-file`,
            key: `${key}_file`,
            kind: 'value',
            arg: 'FILE',
            doc: 'its first line',
          },
          {
            flag: `${flag}-env`,
            key: `${key}_env`,
            kind: 'value',
            arg: 'VAR',
            doc: 'from the environment',
          },
        );
        break;
      case 'map':
        flags.push({
          flag,
          key,
          kind: 'many',
          arg: `NAME${spec.sep}VALUE`,
          doc: `${doc} (repeatable)`,
        });
        break;
      case 'list':
        flags.push({
          flag,
          key,
          kind: 'many',
          arg: ARG.list,
          doc: `${doc} (repeatable, or comma-separated)`,
        });
        break;
      case 'regex':
        flags.push(
          { flag, key, kind: 'value', arg: 'RE', doc },
          {
            flag: `${flag}-flags`,
            key: `${key}.flags`,
            kind: 'value',
            arg: 'imsu',
            doc: `flags for --${flag}`,
          },
        );
        break;
      default:
        flags.push({
          flag,
          key,
          kind: 'value',
          arg: spec.type === 'text' && spec.values ? spec.values.join('|') : ARG[spec.type],
          doc,
        });
    }
  }
  return flags;
}

/** The command line's help for probe: each kind with its flags (derived, so never stale). */
export function probeUsage(catalog: CheckCatalog): string {
  const lines = [
    'ipvs-warden probe KIND TARGET [options]   run one check once; exit 0 when healthy,',
    '  1 when not, 3 when it could not run for a reason on this machine (descriptors, memory, ports)',
    '  TARGET: 10.0.0.5:8080 or [2001:db8::5]:8080    --timeout MS (3000)',
    '  `ipvs-warden probe KIND --help` describes each flag of a kind.',
  ];
  // The kinds, wrapped; each kind's flags are `probe KIND --help` (twenty kinds of flags would
  // bury the rest of the help).
  let line = '  KIND:';
  for (const kind of catalog.kinds) {
    if (line.length + kind.length + 1 > 96) {
      lines.push(line);
      line = '       ';
    }
    line += ` ${kind}`;
  }
  lines.push(line);
  return lines.join('\n');
}

/** `probe KIND --help`: the kind's summary and every flag with its doc and default. */
export function probeKindHelp(d: AnyCheckDeclaration): string {
  const lines = [`ipvs-warden probe ${d.kind} TARGET [options]: ${d.summary}`];
  const defaults = new Map(
    Object.entries(d.options).map(([name, spec]) => [configKey(name, spec), spec.default]),
  );
  for (const f of probeFlags(d)) {
    const dflt = defaults.get(f.key);
    const shown =
      dflt === undefined || f.kind === 'off' ? '' : ` (default ${JSON.stringify(dflt)})`;
    const head = `  --${f.flag}${f.arg ? ` ${f.arg}` : ''}`;
    lines.push(`${head.padEnd(34)}${head.length >= 34 ? ' ' : ''}${f.doc}${shown}`);
  }
  for (const spec of Object.values(d.options))
    if (spec.type === 'list' && spec.rest) lines.push(`  -- COMMAND ARGS...`.padEnd(34) + spec.doc);
  return `${lines.join('\n')}\n`;
}

/** "10.0.0.5:80", "[2001:db8::5]:80" -> a target. */
export function parseTarget(text: string): CheckTarget {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  const host = m?.[1] ?? '';
  const family = text.startsWith('[') ? 6 : 4;
  const address = canonicalAddress(family, host);
  if (!m || address === null || port > 65535) {
    throw new ProbeUsageError(`target must be ADDRESS:PORT or [IPv6]:PORT, got "${text}"`);
  }
  return { family, address, port };
}

function setPath(raw: Record<string, unknown>, key: string, value: unknown): void {
  const [head = key, sub] = key.split('.');
  if (sub === undefined) {
    raw[head] = value;
    return;
  }
  // `--tls --sni x` and `--sni x` alike: a TLS setting says TLS is wanted.
  const inner = raw[head];
  raw[head] = { ...(typeof inner === 'object' && inner !== null ? inner : {}), [sub]: value };
}

/** The option as the config file would give it, from what the flags said. */
function rawOption(
  d: AnyCheckDeclaration,
  flags: readonly Flag[],
  values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>,
  rest: readonly string[],
): Record<string, unknown> {
  const raw: Record<string, unknown> = { type: d.kind };
  for (const f of flags) {
    const v = values[f.flag];
    if (v === undefined) continue;
    if (f.kind === 'off') setPath(raw, f.key, false);
    // `--tls` after `--sni x` keeps the settings.
    else if (f.kind === 'switch' && typeof raw[f.key] === 'object') continue;
    else setPath(raw, f.key, v);
  }
  for (const [name, spec] of Object.entries(d.options)) {
    const key = configKey(name, spec);
    const v = raw[key];
    if (spec.type === 'int' && typeof v === 'string') raw[key] = v.trim() === '' ? v : Number(v);
    if (spec.type === 'list' && spec.rest && rest.length > 0) raw[key] = [...rest];
    else if (spec.type === 'list' && Array.isArray(v))
      raw[key] = (v as string[]).flatMap((x) => (spec.values ? x.split(',') : [x]));
    else if (spec.type === 'map' && Array.isArray(v)) {
      const map: Record<string, string> = {};
      for (const pair of v as string[]) {
        const at = pair.indexOf(spec.sep);
        if (at <= 0)
          throw new ProbeUsageError(
            `--${flagName(name, spec) ?? key} must be "NAME${spec.sep}VALUE", got "${pair}"`,
          );
        map[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
      }
      raw[key] = map;
    }
  }
  return raw;
}

/** A probe's checker and deadline from `probe KIND TARGET ...` (argv after TARGET). */
export function buildProbe(
  catalog: CheckCatalog,
  kind: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { checker: Checker; timeoutMs: number } {
  const d = catalog.get(kind);
  if (!d)
    throw new ProbeUsageError(`KIND must be one of ${catalog.kinds.join(', ')}, got "${kind}"`);
  const flags = probeFlags(d);
  const options: NonNullable<ParseArgsConfig['options']> = { timeout: { type: 'string' } };
  for (const f of flags)
    options[f.flag] = {
      type: f.kind === 'switch' || f.kind === 'off' ? 'boolean' : 'string',
      ...(f.kind === 'many' ? { multiple: true } : {}),
    };
  const dash = argv.indexOf('--');
  const { values } = parseArgs({
    args: dash < 0 ? [...argv] : argv.slice(0, dash),
    options,
    allowPositionals: false,
    strict: true,
  });
  const rest = dash < 0 ? [] : argv.slice(dash + 1);
  // Regex flags ride with their pattern: --body-match RE --body-match-flags i.
  const typed = values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  const raw = rawOption(d, flags, typed, rest);
  for (const [name, spec] of Object.entries(d.options)) {
    const key = configKey(name, spec);
    if (spec.type !== 'regex') continue;
    const pattern = typed[flagName(name, spec) ?? ''];
    const f = typed[`${flagName(name, spec) ?? ''}-flags`];
    if (typeof pattern === 'string')
      raw[key] = typeof f === 'string' ? { pattern, flags: f } : pattern;
    else if (f !== undefined)
      throw new ProbeUsageError(
        `--${flagName(name, spec) ?? key}-flags needs --${flagName(name, spec) ?? key}`,
      );
  }

  const p = new Problems();
  const check = readCheck(raw, [], p, {
    catalog,
    files: filesReadOnDemand(process.cwd()),
    env,
  });
  if (!check) {
    const byKey = new Map(flags.map((f) => [f.key, f.flag]));
    const first = p.list[0];
    const path = (first?.path ?? []).map(String);
    const restOption = Object.entries(d.options).find(([, s]) => s.type === 'list' && s.rest);
    if (restOption && path[0] === configKey(restOption[0], restOption[1]))
      throw new ProbeUsageError(`${kind} needs a command after --: ${first?.message ?? ''}`);
    const flag =
      byKey.get(path.slice(0, 2).join('.')) ?? byKey.get(path[0] ?? '') ?? path.join('.');
    throw new ProbeUsageError(`--${flag}: ${first?.message ?? 'invalid'}`);
  }
  const timeoutMs = Number(typed.timeout ?? 3000);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new ProbeUsageError(`--timeout must be milliseconds > 0, got "${String(typed.timeout)}"`);
  return { checker: d.create(check.options as never), timeoutMs };
}
