// The `checks:` list of a real server: each entry validated into a probe's options, with every
// mistake reported at its path. Certificates are read here, so a missing file fails the config.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { canonical } from '../health/canonical.js';
import {
  DNS_TYPES,
  REDACTED,
  REDACTED_QUERY_VALUE,
  parseStatusSet,
  redactQuery,
  type TlsOptions,
} from '../health/options.js';
import type { ConfigFiles } from './files.js';
import type { CheckConfig, TlsFiles } from './model.js';
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
  exec: [...COMMON, 'command', 'dynamic_weight', 'max_output', 'env', 'user', 'group'],
};
/** Every key some check type takes: what a check of no known type is held to. */
const ANY_KEYS = [...new Set(Object.values(KEYS).flat())];
/** The keys that name a file: the loader reads these ahead, off the event loop. */
export const TLS_FILE_KEYS = ['ca_file', 'cert_file', 'key_file'] as const;
const TLS_KEYS = ['sni', 'verify', ...TLS_FILE_KEYS];
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/**
 * check-config's output without --show-secrets, saved as the config, would send its
 * placeholders (`Authorization: <redacted>`) and fail every check: refused instead.
 */
const HIDDEN = `is ${REDACTED}, a secret check-config hid: print it with --show-secrets`;

/** A map (headers, env) without a value check-config hid. */
function noPlaceholders(
  map: Readonly<Record<string, string>> | undefined,
  path: Path,
  p: Problems,
): void {
  for (const [name, value] of Object.entries(map ?? {}))
    if (value === REDACTED) p.add([...path, name], HIDDEN);
}

/** RFC 9110 token: a header name (and a method). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Headers the HTTP client (undici, lib/core/request.js) refuses, or that would break a request
 * without a body: a check that sends one fails every time.
 */
const REFUSED_HEADERS: Record<string, string> = {
  expect: 'the HTTP client refuses it',
  'transfer-encoding': 'the HTTP client refuses it',
  'keep-alive': 'the HTTP client refuses it',
  upgrade: 'the HTTP client refuses it',
  'content-length': 'a check sends no body',
};

/** A control character other than tab: CR and LF end a header line, NUL ends it in C servers. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Header names lowercased; a value is never echoed in a problem (it may be a credential). */
function readHeaders(value: unknown, path: Path, p: Problems): Record<string, string> | undefined {
  const map = readStringMap(value, path, p);
  if (!map) return undefined;
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(map)) {
    const at: Path = [...path, name];
    const lower = name.toLowerCase();
    if (!TOKEN.test(name))
      p.add(at, "not a header name (letters, digits and !#$%&'*+-.^_`|~ only)");
    else if (hasControl(text)) p.add(at, 'the value has a CR, LF, NUL or other control character');
    else if (/[^\t\x20-\x7e\x80-\xff]/.test(text))
      p.add(at, 'the value has a character past U+00FF, which a header cannot carry');
    else if (Object.hasOwn(out, lower))
      p.add(at, 'given twice (header names are not case-sensitive)');
    else if (REFUSED_HEADERS[lower])
      p.add(at, `not a header a check may send (${REFUSED_HEADERS[lower]})`);
    else if (lower === 'connection' && !text.split(',').every((x) => TOKEN.test(x.trim())))
      p.add(at, 'must be a list of tokens, such as close');
    else out[lower] = text;
  }
  return out;
}

/** A Host header: a name (RFC 3986 reg-name), an IPv4 address or a bracketed IPv6 one, and a port. */
function readHost(value: unknown, path: Path, p: Problems): string | undefined {
  const host = readString(value, path, p);
  if (host === undefined) return undefined;
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m || Number(m[1] ?? 0) > 65535) {
    p.add(path, 'must be a host name or address, with an optional :port');
    return undefined;
  }
  return host;
}

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

  // tcp and https take tls (https has it on by default); http refuses it below.
  const tls =
    type === 'tcp' || type === 'https'
      ? readTls(type === 'https' ? (raw.tls ?? true) : raw.tls, at('tls'), p, files)
      : undefined;
  let check: CheckConfig | undefined;
  switch (type) {
    case 'tcp': {
      const expectRegex = readRegex(raw.expect_regex, at('expect_regex'), p);
      const expectText = readString(raw.expect, at('expect'), p);
      const send = readString(raw.send, at('send'), p);
      if (send === REDACTED) p.add(at('send'), HIDDEN);
      if (expectRegex && expectText !== undefined) {
        p.add(at('expect_regex'), 'give expect or expect_regex, not both');
      }
      check = {
        type,
        options: defined({
          send,
          expect: expectRegex ?? expectText,
          tls: tls?.options,
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
        p.add(at('path'), `must start with /, got ${describe(redactQuery(reqPath))}`);
      } else if (reqPath?.split('?').slice(1).join('?').includes(REDACTED_QUERY_VALUE)) {
        p.add(
          at('path'),
          `has a secret check-config hid (${REDACTED_QUERY_VALUE}): print it with --show-secrets`,
        );
      } else if (reqPath !== undefined && /[^\x21-\xff]/.test(reqPath)) {
        // The HTTP client refuses these (undici: "invalid request path").
        p.add(at('path'), 'must have no spaces or control characters (percent-encode them)');
      }
      if (type === 'http' && raw.tls !== undefined) {
        p.add(at('tls'), 'only for type https');
      }
      const headers = readHeaders(raw.headers, at('headers'), p);
      noPlaceholders(headers, at('headers'), p);
      check = {
        type,
        options: defined({
          method: method?.toUpperCase(),
          path: reqPath,
          host: readHost(raw.host, at('host'), p),
          headers,
          expectStatus,
          bodyMatch: readRegex(raw.body_match, at('body_match'), p),
          bodyNotMatch: readRegex(raw.body_not_match, at('body_not_match'), p),
          tls: type === 'https' ? (tls?.options ?? {}) : undefined,
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
      const env = readStringMap(raw.env, at('env'), p);
      noPlaceholders(env, at('env'), p);
      check = {
        type,
        options: defined({
          command,
          dynamicWeight: readBool(raw.dynamic_weight, at('dynamic_weight'), p),
          maxOutput: readInt(raw.max_output, 1, 1 << 20, at('max_output'), p),
          env,
          // Who the command runs as (keepalived's MISC_CHECK `user`); checks/exec.ts applies it.
          user: readString(raw.user, at('user'), p),
          group: readString(raw.group, at('group'), p),
        }),
      };
      break;
    }
  }
  if (p.list.length > before) return undefined;
  const tlsFiles = tls && Object.keys(tls.files).length > 0 ? tls.files : undefined;
  return { ...check, ...defined({ address, port, tlsFiles }) };
}
