// The `checks:` list of a real server: each entry validated into a probe's options, with every
// mistake reported at its path. Certificates are read here, so a missing file fails the config.
import { resolve } from 'node:path';
import { DNS_TYPES, parseStatusSet, type TlsOptions } from '../health/options.js';
import type { ConfigFiles } from './files.js';
import type { CheckConfig } from './model.js';
import {
  checkKeys,
  defined,
  describe,
  isObj,
  readAddress,
  readBool,
  readEnum,
  readInt,
  readRegex,
  readString,
  readStringMap,
  type Path,
  type Problems,
} from './reader.js';

const CHECK_TYPES = ['tcp', 'http', 'https', 'dns', 'exec'] as const;
const COMMON = ['type', 'address', 'port'];
const HTTP_KEYS = [
  ...COMMON,
  'method',
  'path',
  'host',
  'headers',
  'expect_status',
  'body_match',
  'body_not_match',
  'reuse',
  'bind',
  'max_body',
];
const KEYS: Record<(typeof CHECK_TYPES)[number], readonly string[]> = {
  tcp: [...COMMON, 'send', 'expect', 'expect_regex', 'tls', 'bind', 'max_reply'],
  http: HTTP_KEYS,
  https: [...HTTP_KEYS, 'tls'],
  dns: [
    ...COMMON,
    'name',
    'record_type',
    'transport',
    'expect_rcode',
    'expect_answer',
    'recursion_desired',
    'bind',
  ],
  exec: [...COMMON, 'command', 'dynamic_weight', 'max_output', 'env'],
};
/** Every key some check type takes: what a check of no known type is held to. */
const ANY_KEYS = [...new Set(Object.values(KEYS).flat())];
/** The keys that name a file: the loader reads these ahead, off the event loop. */
export const TLS_FILE_KEYS = ['ca_file', 'cert_file', 'key_file'] as const;
const TLS_KEYS = ['sni', 'verify', ...TLS_FILE_KEYS];
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

function readPem(value: unknown, path: Path, p: Problems, files: ConfigFiles): string | undefined {
  const file = readString(value, path, p);
  if (file === undefined) return undefined;
  const read = files.readPem(resolve(files.baseDir, file));
  if ('problem' in read) {
    p.add(path, `cannot read ${file}: ${read.problem}`);
    return undefined;
  }
  return read.text;
}

function readTls(
  value: unknown,
  path: Path,
  p: Problems,
  files: ConfigFiles,
): TlsOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (!isObj(value)) {
    p.add(path, `must be true or a mapping of ${TLS_KEYS.join(', ')}, got ${describe(value)}`);
    return undefined;
  }
  checkKeys(value, TLS_KEYS, path, p);
  return defined<TlsOptions>({
    servername: readString(value.sni, [...path, 'sni'], p),
    verify: readBool(value.verify, [...path, 'verify'], p),
    ca: readPem(value.ca_file, [...path, 'ca_file'], p, files),
    cert: readPem(value.cert_file, [...path, 'cert_file'], p, files),
    key: readPem(value.key_file, [...path, 'key_file'], p, files),
  });
}

/** One check; undefined when it has problems (they are recorded). */
export function readCheck(
  raw: unknown,
  path: Path,
  p: Problems,
  files: ConfigFiles,
): CheckConfig | undefined {
  if (!isObj(raw)) {
    p.add(path, `must be a mapping with a type (${CHECK_TYPES.join(', ')}), got ${describe(raw)}`);
    return undefined;
  }
  const before = p.list.length;
  const type = readEnum(raw.type ?? null, CHECK_TYPES, [...path, 'type'], p);
  // A wrong type still lets the keys every type shares be judged.
  checkKeys(raw, type === undefined ? ANY_KEYS : KEYS[type], path, p);
  const at = (key: string): Path => [...path, key];

  const address = readAddress(raw.address, at('address'), p);
  const port = readInt(raw.port, 1, 65535, at('port'), p);
  const bindAddress = readAddress(raw.bind, at('bind'), p)?.address;
  if (type === undefined) return undefined;

  let check: CheckConfig | undefined;
  switch (type) {
    case 'tcp': {
      const expectRegex = readRegex(raw.expect_regex, at('expect_regex'), p);
      const expectText = readString(raw.expect, at('expect'), p);
      if (expectRegex && expectText !== undefined) {
        p.add(at('expect_regex'), 'give expect or expect_regex, not both');
      }
      check = {
        type,
        options: defined({
          send: readString(raw.send, at('send'), p),
          expect: expectRegex ?? expectText,
          tls: readTls(raw.tls, at('tls'), p, files),
          bindAddress,
          maxReply: readInt(raw.max_reply, 1, 16 << 20, at('max_reply'), p),
        }),
      };
      break;
    }
    case 'http':
    case 'https': {
      let expectStatus: string | undefined;
      const status = raw.expect_status;
      if (typeof status === 'number') expectStatus = String(status);
      else expectStatus = readString(status, at('expect_status'), p);
      if (expectStatus !== undefined) {
        try {
          parseStatusSet(expectStatus);
        } catch (e) {
          p.add(at('expect_status'), (e as Error).message);
        }
      }
      const method = readString(raw.method, at('method'), p);
      if (method !== undefined && !/^[A-Za-z]+$/.test(method)) {
        p.add(at('method'), `must be an HTTP method like GET or HEAD, got ${describe(method)}`);
      }
      const reqPath = readString(raw.path, at('path'), p);
      if (reqPath !== undefined && !reqPath.startsWith('/')) {
        p.add(at('path'), `must start with /, got ${describe(reqPath)}`);
      }
      if (type === 'http' && raw.tls !== undefined) {
        p.add(at('tls'), 'only for type https');
      }
      const headers = readStringMap(raw.headers, at('headers'), p);
      check = {
        type,
        options: defined({
          method: method?.toUpperCase(),
          path: reqPath,
          host: readString(raw.host, at('host'), p),
          headers:
            headers &&
            Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
          expectStatus,
          bodyMatch: readRegex(raw.body_match, at('body_match'), p),
          bodyNotMatch: readRegex(raw.body_not_match, at('body_not_match'), p),
          tls: type === 'https' ? (readTls(raw.tls ?? true, at('tls'), p, files) ?? {}) : undefined,
          reuse: readBool(raw.reuse, at('reuse'), p),
          bindAddress,
          maxBody: readInt(raw.max_body, 1, 16 << 20, at('max_body'), p),
        }),
      };
      break;
    }
    case 'dns': {
      const name = readString(raw.name, at('name'), p);
      if (name === undefined && raw.name === undefined)
        p.add(at('name'), 'required: the name to ask for');
      const recordType = readEnum(
        typeof raw.record_type === 'string' ? raw.record_type.toUpperCase() : raw.record_type,
        DNS_TYPES,
        at('record_type'),
        p,
      );
      let expectRcode: string[] | undefined;
      const rc = raw.expect_rcode;
      const rcodes =
        typeof rc === 'string'
          ? [rc]
          : Array.isArray(rc)
            ? rc
            : rc === undefined
              ? undefined
              : null;
      if (rcodes === null)
        p.add(at('expect_rcode'), `must be a rcode or a list, got ${describe(rc)}`);
      else if (rcodes) {
        expectRcode = [];
        rcodes.forEach((r: unknown, i) => {
          const code = readEnum(
            typeof r === 'string' ? r.toUpperCase() : r,
            RCODES,
            [...at('expect_rcode'), i],
            p,
          );
          if (code) expectRcode?.push(code);
        });
      }
      check = {
        type,
        options: defined({
          name: name ?? '',
          type: recordType,
          transport: readEnum(raw.transport, ['udp', 'tcp'] as const, at('transport'), p),
          expectRcode,
          expectAnswer: readRegex(raw.expect_answer, at('expect_answer'), p),
          recursionDesired: readBool(raw.recursion_desired, at('recursion_desired'), p),
          bindAddress,
        }),
      };
      break;
    }
    case 'exec': {
      const cmd = raw.command;
      let command: string[] = [];
      if (
        Array.isArray(cmd) &&
        cmd.length > 0 &&
        cmd.every((c) => typeof c === 'string' || typeof c === 'number')
      ) {
        command = cmd.map(String);
      } else {
        p.add(
          at('command'),
          `must be a list: program and arguments, run without a shell (["/usr/lib/check", "{address}"]), got ${describe(cmd ?? null)}`,
        );
      }
      check = {
        type,
        options: defined({
          command,
          dynamicWeight: readBool(raw.dynamic_weight, at('dynamic_weight'), p),
          maxOutput: readInt(raw.max_output, 1, 1 << 20, at('max_output'), p),
          env: readStringMap(raw.env, at('env'), p),
        }),
      };
      break;
    }
  }
  if (p.list.length > before) return undefined;
  return { ...check, ...defined({ address, port }) };
}
