// The `checks:` list of a real server: each entry validated against its check's declaration
// (checks/*.ts declare their options; the catalog is handed in, so the config never imports a
// probe), with every mistake reported at its path. Certificates and password files are read
// here, so a missing file fails the config, not every check at run time.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { canonical } from '../health/canonical.js';
import { REDACTED, REDACTED_QUERY_VALUE, type TlsOptions } from '../health/options.js';
import {
  configKey,
  type CheckCatalog,
  type AnyCheckDeclaration,
  type OptionSpec,
} from '../health/schema.js';
import type { ConfigFiles } from './files.js';
import type { CheckConfig, SecretSource, TlsFiles } from './model.js';
import {
  checkKeys,
  defined,
  describe,
  isObj,
  readAddress,
  readBool,
  readInt,
  readString,
  readStringMap,
  type Obj,
  type Path,
  type Problems,
} from './reader.js';

/** What reading a check needs besides its text: the declarations, the files, the environment. */
export interface CheckReading {
  readonly catalog: CheckCatalog;
  readonly files: ConfigFiles;
  /** For a secret given as `KEY_env`. */
  readonly env: NodeJS.ProcessEnv;
}

const COMMON = ['type', 'address', 'port'];
/** The keys that name a file: the loader reads these ahead, off the event loop. */
export const TLS_FILE_KEYS = ['ca_file', 'cert_file', 'key_file'] as const;
const TLS_KEYS = ['sni', 'verify', ...TLS_FILE_KEYS];
/** Regex flags a check may use: `g` and `y` make RegExp.test stateful, so never. */
const REGEX_FLAGS = /^[imsu]*$/;

/** Every config key a check kind takes (a secret also as KEY_file and KEY_env). */
export function checkConfigKeys(d: AnyCheckDeclaration): string[] {
  const keys = [...COMMON];
  for (const [name, spec] of Object.entries(d.options)) {
    const key = configKey(name, spec);
    keys.push(key);
    if (spec.type === 'secret') keys.push(`${key}_file`, `${key}_env`);
  }
  return keys;
}

/** The keys, over every kind, that name a file to read ahead (TLS files, secret files). */
export function fileKeys(catalog: CheckCatalog): string[] {
  const keys = new Set<string>(TLS_FILE_KEYS);
  for (const kind of catalog.kinds)
    for (const [name, spec] of Object.entries(catalog.get(kind)?.options ?? {}))
      if (spec.type === 'secret') keys.add(`${configKey(name, spec)}_file`);
  return [...keys];
}

/**
 * check-config's output without --show-secrets, saved as the config, would send its
 * placeholders (`Authorization: <redacted>`) and fail every check: refused instead.
 */
const HIDDEN = `is ${REDACTED}, a secret check-config hid: print it with --show-secrets`;

/** What a PEM file holds, or what is wrong with it: said without its content. */
type PemRead<T> = { readonly text: string; readonly value: T } | { readonly problem: string };

function errorCode(e: unknown): string {
  return (e as { code?: string }).code ?? 'invalid';
}

/** Every certificate of a file (a bundle has many; text between them is ignored, as TLS does). */
function certificates(text: string, file: string): PemRead<X509Certificate[]> {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/g) ?? [];
  const begins = text.split('-----BEGIN CERTIFICATE-----').length - 1;
  if (begins === 0)
    return { problem: `${file} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)` };
  if (blocks.length < begins)
    return { problem: `a certificate in ${file} has no "-----END CERTIFICATE-----" line` };
  const value: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      value.push(new X509Certificate(block));
    } catch (e) {
      return {
        problem: `certificate ${i + 1} of ${blocks.length} in ${file} cannot be parsed (${errorCode(e)})`,
      };
    }
  }
  return { text, value };
}

function privateKey(text: string, file: string): PemRead<KeyObject> {
  const begin = /-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----/.exec(text);
  if (!begin)
    return { problem: `${file} holds no PEM private key (no "-----BEGIN PRIVATE KEY-----" line)` };
  if (begin[1] === 'ENCRYPTED PRIVATE KEY' || text.includes('Proc-Type: 4,ENCRYPTED'))
    return { problem: `${file} is encrypted, and a check has no passphrase to open it` };
  try {
    return { text, value: createPrivateKey(text) };
  } catch (e) {
    return { problem: `${file} holds a private key that cannot be parsed (${errorCode(e)})` };
  }
}

/** A PEM file named at `path`: read (bounded) and parsed once per load, however often named. */
function readPem<T>(
  value: unknown,
  path: Path,
  p: Problems,
  files: ConfigFiles,
  kind: 'certificates' | 'key',
  parse: (text: string, file: string) => PemRead<T>,
): { readonly text: string; readonly value: T; readonly file: string } | undefined {
  const file = readString(value, path, p);
  if (file === undefined) return undefined;
  const absolute = resolve(files.baseDir, file);
  const read = files.once(`${kind}\0${absolute}\0${file}`, (): PemRead<T> => {
    const r = files.readPem(absolute);
    return 'problem' in r ? { problem: `cannot read ${file}: ${r.problem}` } : parse(r.text, file);
  });
  if ('problem' in read) {
    p.add(path, read.problem);
    return undefined;
  }
  return { ...read, file: absolute };
}

/**
 * TLS settings, with their files parsed now: a file that is not a certificate (or a key), or a
 * key that does not match its certificate, would fail every check of every server at run time,
 * and that must never read as the servers failing.
 */
function readTls(
  value: unknown,
  path: Path,
  p: Problems,
  files: ConfigFiles,
): { options: TlsOptions; files: TlsFiles } | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { options: {}, files: {} };
  if (!isObj(value)) {
    p.add(path, `must be true or a mapping of ${TLS_KEYS.join(', ')}, got ${describe(value)}`);
    return undefined;
  }
  const before = p.list.length;
  const at = (key: string): Path => [...path, key];
  checkKeys(value, TLS_KEYS, path, p);
  const ca = readPem(value.ca_file, at('ca_file'), p, files, 'certificates', certificates);
  const cert = readPem(value.cert_file, at('cert_file'), p, files, 'certificates', certificates);
  const key = readPem(value.key_file, at('key_file'), p, files, 'key', privateKey);
  if (value.cert_file !== undefined && value.key_file === undefined)
    p.add(at('cert_file'), 'a client certificate needs its key: give key_file too');
  if (value.key_file !== undefined && value.cert_file === undefined)
    p.add(at('key_file'), 'a client key needs its certificate: give cert_file too');
  if (cert && key && !cert.value[0]?.checkPrivateKey(key.value)) {
    p.add(
      at('key_file'),
      `${String(value.key_file)} does not match the certificate in cert_file ${String(value.cert_file)}`,
    );
  }
  const options = defined<TlsOptions>({
    servername: readString(value.sni, at('sni'), p),
    verify: readBool(value.verify, at('verify'), p),
    ca: ca?.text,
    cert: cert?.text,
    key: key?.text,
  });
  if (p.list.length === before && (ca || cert)) {
    // Last, what the TLS library itself refuses (a key too small for its security level).
    const problem = files.once(`tls\0${canonical(options)}`, () => {
      try {
        createSecureContext(options);
        return null;
      } catch (e) {
        return `the TLS library refuses these files: ${(e as Error).message} (${errorCode(e)})`;
      }
    });
    if (problem) p.add(path, problem);
  }
  return {
    options,
    files: defined<TlsFiles>({ ca: ca?.file, cert: cert?.file, key: key?.file }),
  };
}

/** A secret's first line, from a file (bounded, read ahead by the loader) or the environment (alerts read theirs with it too). */
export function readSecret(
  raw: Obj,
  key: string,
  path: Path,
  p: Problems,
  ctx: CheckReading,
): { value: string; source?: SecretSource } | undefined {
  const given = [key, `${key}_file`, `${key}_env`].filter((k) => raw[k] !== undefined);
  if (given.length > 1) {
    p.add([...path, given[1] ?? key], `give one of ${given.join(', ')}, not several`);
    return undefined;
  }
  if (raw[key] !== undefined) {
    const value = readString(
      typeof raw[key] === 'number' ? String(raw[key]) : raw[key],
      [...path, key],
      p,
    );
    if (value === REDACTED) p.add([...path, key], HIDDEN);
    return value === undefined ? undefined : { value };
  }
  const fileAt: Path = [...path, `${key}_file`];
  const file = readString(raw[`${key}_file`], fileAt, p);
  if (file !== undefined) {
    const absolute = resolve(ctx.files.baseDir, file);
    const read = ctx.files.once(`secret\0${absolute}`, () => ctx.files.readPem(absolute));
    if ('problem' in read) {
      p.add(fileAt, `cannot read ${file}: ${read.problem}`);
      return undefined;
    }
    // The first line: a file written by `echo` ends in a newline that is not the secret's.
    const value = read.text.split(/\r?\n/)[0] ?? '';
    if (value === '') p.add(fileAt, `${file} is empty: the secret is its first line`);
    return { value, source: { file: absolute } };
  }
  const envAt: Path = [...path, `${key}_env`];
  const name = readString(raw[`${key}_env`], envAt, p);
  if (name === undefined) return undefined;
  const value = ctx.env[name];
  if (value === undefined) {
    p.add(envAt, `the environment variable ${name} is not set`);
    return undefined;
  }
  return { value, source: { env: name } };
}

function readRegexOption(value: unknown, path: Path, p: Problems): RegExp | undefined {
  if (value === undefined) return undefined;
  let pattern: unknown = value;
  let flags: unknown = '';
  if (isObj(value)) {
    checkKeys(value, ['pattern', 'flags'], path, p);
    pattern = value.pattern;
    flags = value.flags ?? '';
  }
  if (typeof pattern !== 'string' || typeof flags !== 'string') {
    p.add(path, `must be a regex, or {pattern, flags}, got ${describe(value)}`);
    return undefined;
  }
  if (!REGEX_FLAGS.test(flags)) {
    p.add(path, `flags must be from i, m, s, u (g and y make a match stateful), got "${flags}"`);
    return undefined;
  }
  try {
    return new RegExp(pattern, flags);
  } catch (e) {
    p.add(path, `not a regular expression: ${(e as Error).message}`);
    return undefined;
  }
}

function readText(value: unknown, path: Path, p: Problems): string | undefined {
  // A number in YAML (a status 200, a password 1234) is its text.
  return readString(typeof value === 'number' ? String(value) : value, path, p);
}

function oneOf(
  text: string,
  spec: { readonly values?: readonly string[]; readonly upper?: boolean },
  path: Path,
  p: Problems,
): string | undefined {
  const value = spec.upper ? text.toUpperCase() : text;
  if (spec.values && !spec.values.includes(value)) {
    p.add(path, `must be one of ${spec.values.join(', ')}, got ${describe(text)}`);
    return undefined;
  }
  return value;
}

/** An option's value from its config key; undefined when absent or wrong (recorded). */
function readOption(
  spec: OptionSpec,
  raw: Obj,
  key: string,
  path: Path,
  p: Problems,
  ctx: CheckReading,
  tlsOut: { files?: TlsFiles },
  secretsOut: Record<string, SecretSource>,
): unknown {
  const at: Path = [...path, key];
  const value = raw[key];
  switch (spec.type) {
    case 'text': {
      const text = readText(value, at, p);
      if (text === undefined) return undefined;
      if (spec.secrecy === 'secret' && text === REDACTED) p.add(at, HIDDEN);
      if (
        spec.secrecy === 'query' &&
        text.split('?').slice(1).join('?').includes(REDACTED_QUERY_VALUE)
      )
        p.add(
          at,
          `has a secret check-config hid (${REDACTED_QUERY_VALUE}): print it with --show-secrets`,
        );
      return oneOf(text, spec, at, p);
    }
    case 'address':
      return readAddress(value, at, p)?.address;
    case 'int':
      return readInt(value, spec.min, spec.max, at, p);
    case 'bool':
      return readBool(value, at, p);
    case 'regex':
      return readRegexOption(value, at, p);
    case 'list': {
      if (value === undefined) return undefined;
      if (spec.listOnly && (!Array.isArray(value) || value.length === 0)) {
        p.add(at, `must be a list: ${spec.doc}, got ${describe(value)}`);
        return undefined;
      }
      const items = Array.isArray(value) ? (value as unknown[]) : [value];
      const out: string[] = [];
      items.forEach((item, i) => {
        const where: Path = Array.isArray(value) ? [...at, i] : at;
        if (typeof item !== 'string' && typeof item !== 'number') {
          p.add(where, `must be text, got ${describe(item)}`);
          return;
        }
        const text = oneOf(String(item), spec, where, p);
        if (text !== undefined) out.push(text);
      });
      if (out.length < (spec.minItems ?? 0))
        p.add(at, `needs at least ${spec.minItems ?? 0}: ${spec.doc}`);
      return out;
    }
    case 'map': {
      const map = readStringMap(value, at, p);
      if (map && spec.secrecy === 'values')
        for (const [name, v] of Object.entries(map))
          if (v === REDACTED) p.add([...at, name], HIDDEN);
      return map;
    }
    case 'tls': {
      const tls = readTls(spec.on ? (value ?? true) : value, at, p, ctx.files);
      if (!tls) return undefined;
      if (Object.keys(tls.files).length > 0) tlsOut.files = tls.files;
      return tls.options;
    }
    case 'secret': {
      const secret = readSecret(raw, key, path, p, ctx);
      if (secret?.source) secretsOut[key] = secret.source;
      return secret?.value;
    }
  }
}

/** One check; undefined when it has problems (they are recorded). */
export function readCheck(
  raw: unknown,
  path: Path,
  p: Problems,
  ctx: CheckReading,
): CheckConfig | undefined {
  const kinds = ctx.catalog.kinds;
  if (!isObj(raw)) {
    p.add(path, `must be a mapping with a type (${kinds.join(', ')}), got ${describe(raw)}`);
    return undefined;
  }
  const before = p.list.length;
  const typeAt: Path = [...path, 'type'];
  const type = typeof raw.type === 'string' ? raw.type : undefined;
  const declaration = type === undefined ? undefined : ctx.catalog.get(type);
  if (!declaration) {
    p.add(typeAt, `must be one of ${kinds.join(', ')}, got ${describe(raw.type ?? null)}`);
    // A wrong type still lets the keys be judged: against every key some type takes.
    const any = new Set(
      kinds.flatMap((k) => {
        const other = ctx.catalog.get(k);
        return other ? checkConfigKeys(other) : [];
      }),
    );
    checkKeys(raw, [...any], path, p);
    readAddress(raw.address, [...path, 'address'], p);
    readInt(raw.port, 1, 65535, [...path, 'port'], p);
    return undefined;
  }
  checkKeys(raw, checkConfigKeys(declaration), path, p);
  const address = readAddress(raw.address, [...path, 'address'], p);
  const port = readInt(raw.port, 1, 65535, [...path, 'port'], p);

  const tlsOut: { files?: TlsFiles } = {};
  const secretSources: Record<string, SecretSource> = {};
  const options: Record<string, unknown> = {};
  const keyOf: Record<string, string> = {};
  for (const [name, spec] of Object.entries(declaration.options)) {
    const key = configKey(name, spec);
    keyOf[name] = key;
    const at: Path = [...path, key];
    const mark = p.list.length;
    const value = readOption(spec, raw, key, path, p, ctx, tlsOut, secretSources);
    if (value === undefined) {
      const absent =
        spec.type === 'secret'
          ? raw[key] === undefined &&
            raw[`${key}_file`] === undefined &&
            raw[`${key}_env`] === undefined
          : raw[key] === undefined;
      if (spec.required && absent) p.add(at, `required: ${spec.doc}`);
      continue;
    }
    if (spec.check && p.list.length === mark) {
      (
        spec.check as (
          v: unknown,
          r: (problem: string, ...sub: (string | number)[]) => void,
        ) => void
      )(value, (problem, ...sub) => p.add([...at, ...sub], problem));
    }
    options[name] = value;
  }
  if (p.list.length === before && declaration.validate) {
    declaration.validate(options as never, (option, problem) =>
      p.add([...path, keyOf[option] ?? option], problem),
    );
  }
  if (p.list.length > before) return undefined;
  return {
    type: declaration.kind,
    options,
    ...defined({
      address,
      port,
      tlsFiles: tlsOut.files,
      secretSources: Object.keys(secretSources).length > 0 ? secretSources : undefined,
    }),
  };
}
