// HTTP(S) check: a request to the real server (a fresh connection each time: pre-built request
// bytes, the reply read by quickReply when it comes whole and plain, else by http-parser-js;
// undici keeps one with `reuse`), healthy on an expected status, a body that ends cleanly (read
// up to maxBody; what is beyond is cancelled) and, when configured, a body that matches (or does
// not match) a regex and a body whose MD5 is keepalived's `digest` (then the whole body is read,
// hashed as it streams, up to maxDigestBody). HTTP/1.0, which undici does not speak, is a few
// lines over a socket here. The deadline covers the whole exchange.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { HTTPParser } from 'http-parser-js';
import {
  openConnection,
  openProbeConnection,
  type ProbeConnection,
  type ProbeEvents,
} from '../src/health/datapath.js';
import type { Client, buildConnector } from 'undici';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { parseStatusSet, redactOptions } from '../src/health/options.js';
import { ProbeRun, describeError, hostPort, printable } from '../src/health/probe.js';
import { onFirstUse, preload } from '../src/lazy.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  secrecyOf,
  type NormalOf,
  type OptionsOf,
  type Report,
} from '../src/health/schema.js';

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
  'content-length': 'the client sets it',
};

/** A control character other than tab: CR and LF end a header line, NUL ends it in C servers. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Each header, by name; a value is never echoed in a problem (it may be a credential). */
function checkHeaders(map: Readonly<Record<string, string>>, report: Report): void {
  const seen = new Set<string>();
  for (const [name, text] of Object.entries(map)) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name))
      report("not a header name (letters, digits and !#$%&'*+-.^_`|~ only)", name);
    else if (hasControl(text))
      report('the value has a CR, LF, NUL or other control character', name);
    else if (/[^\t\x20-\x7e\x80-\xff]/.test(text))
      report('the value has a character past U+00FF, which a header cannot carry', name);
    else if (seen.has(lower)) report('given twice (header names are not case-sensitive)', name);
    else if (REFUSED_HEADERS[lower])
      report(`not a header a check may send (${REFUSED_HEADERS[lower]})`, name);
    else if (lower === 'connection' && !text.split(',').every((x) => TOKEN.test(x.trim())))
      report('must be a list of tokens, such as close', name);
    seen.add(lower);
  }
}

const lowerNames = (map: Readonly<Record<string, string>>): Readonly<Record<string, string>> =>
  Object.fromEntries(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));

export const HTTP_OPTIONS = {
  method: opt.text({
    default: 'GET',
    example: 'HEAD',
    doc: 'the request method',
    check: (m, report) => {
      if (!/^[A-Za-z]+$/.test(m)) report('must be an HTTP method like GET or HEAD');
    },
    normalise: (m) => m.toUpperCase(),
  }),
  path: opt.text({
    default: '/',
    example: '/healthz?token=x',
    secrecy: 'query',
    doc: 'the request path; query values are secret (shown as …)',
    check: (path, report) => {
      if (!path.startsWith('/')) report('must start with /');
      // The HTTP client refuses these (undici: "invalid request path").
      else if (/[^\x21-\xff]/.test(path))
        report('must have no spaces or control characters (percent-encode them)');
    },
  }),
  host: opt.text({
    doc: "the Host header (virtual host); default: the target's address and port",
    check: (host, report) => {
      const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::(\d{1,5}))?$/.exec(host);
      if (!m || Number(m[1] ?? 0) > 65535)
        report('must be a host name or address, with an optional :port');
    },
  }),
  headers: opt.map({
    sep: ':',
    flag: 'header',
    default: {},
    secrecy: 'values',
    doc: 'more request headers; every value is secret (Authorization, cookies, keys)',
    check: checkHeaders,
    normalise: lowerNames,
  }),
  expectStatus: opt.text({
    default: '200-299',
    example: '200,301-302',
    doc: 'healthy statuses: `200`, `200-299`, `200,301-302`',
    check: (set, report) => {
      try {
        parseStatusSet(set);
      } catch (e) {
        report((e as Error).message);
      }
    },
  }),
  body: opt.text({
    secrecy: 'secret',
    doc: 'sent as the request body, as given (UTF-8, no escapes); the client sets Content-Length; give Content-Type in headers',
  }),
  httpVersion: opt.text({
    default: '1.1',
    example: '1.0',
    doc: '`1.1`, or `1.0` as ldirectord and keepalived send (no keep-alive, no chunked reply)',
    check: (v, report) => {
      // YAML reads an unquoted 1.0 as the number 1, which the config hands over as "1".
      if (!['1.1', '1.0', '1'].includes(v)) report('must be 1.1 or 1.0');
    },
    normalise: (v) => (v === '1' ? '1.0' : v),
  }),
  proxyUrl: opt.text({
    secrecy: 'query',
    example: 'http://www.example.test/',
    doc: "the target is an HTTP proxy (ldirectord's http_proxy service): ask it for this absolute `http://` URL instead of `path`; query values are secret",
    check: (url, report) => {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        // reported below
      }
      if (!parsed || parsed.protocol !== 'http:' || !/^http:\/\/[^/?#]+\//i.test(url))
        report('must be an absolute http:// URL with a path, such as http://www.example.com/');
      else if (parsed.username || parsed.password)
        report('must not carry user:password@ (send a Proxy-Authorization header instead)');
      else if (url.includes('#')) report('must have no #fragment');
      else if (/[^\x21-\xff]/.test(url))
        report('must have no spaces or control characters (percent-encode them)');
    },
  }),
  bodyMatch: opt.regex({ doc: 'healthy only if the body matches' }),
  bodyNotMatch: opt.regex({ doc: 'healthy only if the body does not match' }),
  reuse: opt.bool({
    default: false,
    doc: 'keep the connection between checks (default: a fresh one each time, as ldirectord and keepalived)',
  }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
  maxBody: opt.int({
    min: 1,
    max: 16 << 20,
    default: 64 * 1024,
    doc: 'body bytes read for matching; the rest is not read (unless a digest is asked for)',
  }),
  digest: opt.text({
    example: 'd41d8cd98f00b204e9800998ecf8427e',
    doc: "healthy only if the body's MD5 is this (32 hex digits, as keepalived's `genhash` prints it); the whole body is read",
    check: (d, report) => {
      if (!/^[0-9a-fA-F]{32}$/.test(d)) report('must be an MD5 digest: 32 hex digits');
    },
    normalise: (d) => d.toLowerCase(),
  }),
  showDigest: opt.bool({
    default: false,
    doc: "the message ends with the body's MD5 (for `digest`: `ipvs-warden probe http TARGET --show-digest`)",
  }),
  maxDigestBody: opt.int({
    min: 1,
    max: 1 << 30,
    default: 4 << 20,
    doc: 'for `digest` and `show_digest`: the longest body hashed (streamed, not kept); a longer one fails a digest',
  }),
} as const;

export const HTTPS_OPTIONS = {
  ...HTTP_OPTIONS,
  tls: opt.tls({
    on: true,
    doc: 'TLS settings; the certificate is verified unless `verify: false`',
  }),
} as const;
export type HttpCheckOptions = OptionsOf<typeof HTTPS_OPTIONS>;

type Undici = typeof import('undici');
/** undici is loaded only for `reuse` (src/lazy.ts): the fresh-connection path never needs it. */
const undici = onFirstUse<Undici>('undici');

const HTTP_SECRECY = secrecyOf(HTTPS_OPTIONS);

export class HttpChecker implements Checker {
  readonly kind: string;
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalOf<typeof HTTP_OPTIONS> & {
    readonly tls?: NormalOf<typeof HTTPS_OPTIONS>['tls'];
  };
  private readonly okStatus: (status: number) => boolean;
  /** The request target: the path, or the absolute URL a proxy is asked for. */
  private readonly requestTarget: string;
  /** The Host header unless `host` says: the URL's host for a proxy, else the target's. */
  private readonly urlHost: string | undefined;
  private readonly body: Buffer | undefined;
  /** Kept-alive clients by origin (reuse mode only), with the check now using each. */
  private readonly clients = new Map<string, Holder>();
  /**
   * The fresh-connection HTTP/1.1 request, built once: the bytes before the Host value, and
   * after it (`hostFixed` set: the whole request, Host included).
   */
  private readonly requestHead: { before: string; after: string; hostFixed: boolean };
  /** What every fresh-connection exchange of this check reads a reply by. */
  private readonly exchange: ExchangeSpec;

  constructor(options: HttpCheckOptions = {}) {
    this.kind = options.tls ? 'https' : 'http';
    this.options = normalOptions(options.tls ? HTTPS_OPTIONS : HTTP_OPTIONS, options);
    const o = this.options;
    this.okStatus = parseStatusSet(o.expectStatus);
    this.requestTarget = o.proxyUrl ?? o.path;
    this.urlHost = o.proxyUrl === undefined ? undefined : new URL(o.proxyUrl).host;
    this.body = o.body === undefined ? undefined : Buffer.from(o.body, 'utf8');
    // Logs, /status, a metric label and every result message show it: no query value.
    const shown = redactOptions(o, HTTP_SECRECY);
    const version = o.httpVersion === '1.0' ? ' HTTP/1.0' : '';
    this.description = `${o.tls ? 'HTTPS' : 'HTTP'} ${shown.method} ${shown.proxyUrl ?? shown.path}${version}`;
    this.key = keyOf(this.kind, options.tls ? HTTPS_OPTIONS : HTTP_OPTIONS, options);
    this.requestHead = this.buildRequest();
    if (o.reuse && o.httpVersion !== '1.0') preload(undici);
    this.exchange = {
      okStatus: this.okStatus,
      expectStatus: o.expectStatus,
      head: o.method === 'HEAD',
      options: o,
      conclude: (run, reading, declared, error) => this.conclude(run, reading, declared, error),
    };
  }

  /**
   * The request line and headers of a fresh-connection check, in the order headers() gives
   * them, with `connection: close` and the body's length; only the Host value can depend on
   * the target. Latin-1, as Node's client writes header values.
   */
  private buildRequest(): { before: string; after: string; hostFixed: boolean } {
    const o = this.options;
    const host = o.headers.host ?? o.host ?? this.urlHost;
    const fields: [string, string][] = [];
    for (const [name, value] of Object.entries({
      'user-agent': 'ipvs-warden',
      ...o.headers,
      connection: 'close',
      ...(this.body ? { 'content-length': String(this.body.length) } : {}),
    }))
      if (name !== 'host') fields.push([name, value]);
    const line = `${o.method} ${this.requestTarget} HTTP/1.1\r\nhost: `;
    const rest = `\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
    return host === undefined
      ? { before: line, after: rest, hostFixed: false }
      : { before: `${line}${host}${rest}`, after: '', hostFixed: true };
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    if (this.options.httpVersion === '1.0') return this.check10(target, run);
    if (!this.options.reuse) return this.checkFresh(target, run);
    return this.checkKept(target, run);
  }

  /** `reuse: true`: undici keeps the connection between checks; a broken one is not reused. */
  private async checkKept(target: CheckTarget, run: ProbeRun): Promise<CheckResult> {
    const origin = `${this.options.tls ? 'https' : 'http'}://${hostPort(target)}`;
    // Through the data path every server of a service has the VIP's origin: its mark tells them apart.
    const id = target.dataPath ? `${origin} mark ${target.dataPath.mark}` : origin;
    let holder = this.clients.get(id);
    if (!holder) {
      let lib: Undici;
      try {
        lib = undici();
      } catch (error) {
        return run.failWith(error, 'loading undici');
      }
      holder = this.client(lib, origin, target);
      this.clients.set(id, holder);
    }
    holder.run = run;
    const client = holder.client;
    let stage = 'waiting for the connection';
    try {
      const res = await client.request({
        method: this.options.method,
        path: this.requestTarget,
        headers: this.headers(target),
        ...(this.body ? { body: this.body } : {}),
        signal: run.signal,
        // The run's signal is the deadline; undici's own timers would only race it.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      stage = 'reading the body';
      // Cancelling the body makes undici emit an abort error on it: expected, and never fatal.
      res.body.on('error', () => undefined);
      try {
        const length = res.headers['content-length'];
        return await this.judge(
          run,
          res.statusCode,
          typeof length === 'string' ? length : '',
          res.body,
        );
      } finally {
        res.body.destroy();
      }
    } catch (error) {
      // A broken kept-alive connection is not reused.
      this.clients.delete(id);
      void client.destroy().catch(() => undefined);
      if (stage === 'waiting for the connection' && run.connected)
        stage = 'waiting for the response';
      return run.failWith(error, stage);
    }
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((h) => h.client.destroy().catch(() => undefined)));
  }

  /** The request's headers: Host, User-Agent, then the configured ones (which may replace them). */
  private headers(target: CheckTarget): Record<string, string> {
    return {
      host: this.options.host ?? this.urlHost ?? hostPort(target),
      'user-agent': 'ipvs-warden',
      ...this.options.headers,
    };
  }

  /**
   * The status, then the body: read to its end (up to maxBody, or maxDigestBody when it is
   * hashed), so a reply cut short fails; then the digest, then the regexes.
   */
  private async judge(
    run: ProbeRun,
    status: number,
    declaredLength: string,
    body: AsyncIterable<Uint8Array>,
  ): Promise<CheckResult> {
    if (!this.okStatus(status))
      return run.fail(`status ${status}, expected ${this.options.expectStatus}`);
    run.step(`status ${status}`);
    const reading = new BodyReading(this.options);
    try {
      for await (const chunk of body) if (!reading.add(chunk)) break; // the rest is not read
    } catch (error) {
      return this.conclude(run, reading, declaredLength, error);
    }
    return this.conclude(run, reading, declaredLength, undefined);
  }

  /** The verdict on a body read (or cut short by `error`): the digest, then the regexes. */
  private conclude(
    run: ProbeRun,
    reading: BodyReading,
    declaredLength: string,
    error: unknown,
  ): CheckResult {
    const o = this.options;
    if (error !== undefined) {
      if (run.aborted) return run.failWith(error, 'reading the body');
      const declared = /^\d+$/.exec(declaredLength)?.[0];
      return run.fail(
        `body cut short after ${reading.read}${declared ? ` of ${declared}` : ''} bytes: ${describeError(error)}`,
      );
    }
    if (reading.md5) {
      const limit = o.maxDigestBody;
      if (reading.over && o.digest !== undefined)
        return run.fail(`body longer than max_digest_body (${limit} bytes): no md5`);
      if (reading.over) run.step(`no md5: body longer than max_digest_body (${limit} bytes)`);
      else {
        const hex = reading.md5.digest('hex');
        if (o.digest !== undefined && hex !== o.digest)
          return run.fail(`body of ${reading.read} bytes has md5 ${hex}, expected ${o.digest}`);
        run.step(`md5 ${hex}`);
      }
    }
    if (o.bodyMatch || o.bodyNotMatch) {
      const text = Buffer.concat(reading.kept).toString('utf8');
      if (o.bodyMatch && !o.bodyMatch.test(text))
        return run.fail(`body does not match ${String(o.bodyMatch)}`);
      if (o.bodyNotMatch?.test(text)) return run.fail(`body matches ${String(o.bodyNotMatch)}`);
    }
    return run.ok();
  }

  /**
   * One request on a fresh connection, closed after the reply (the default, as ldirectord and
   * keepalived check): the request written as pre-built bytes (from C where native.ts has its
   * engine), the reply read straight from the socket's data events: whole by quickReply when it
   * comes in one read and is plain, else by an HTTP/1.1 parser (http-parser-js). Node's client
   * around the same exchange (ClientRequest, IncomingMessage, their streams, llhttp) cost 0.22
   * CPU-ms per check against 0.15 with the parser alone, where a bare TCP connect and close cost
   * 0.09 (side by side against nginx, 2026-12-01): what decides whether 10,000 targets a second
   * fit.
   */
  private checkFresh(target: CheckTarget, run: ProbeRun): Promise<CheckResult> {
    if (run.aborted) return Promise.resolve(run.failWith(run.reason, 'waiting for the connection'));
    const head = this.requestHead;
    const text = head.hostFixed ? head.before : `${head.before}${hostPort(target)}${head.after}`;
    const { bindAddress, tls } = this.options;
    // The connection writes the request itself once connected (in C where it can).
    const request = { text, body: this.body };
    const open = (events: ProbeEvents): ProbeConnection =>
      openProbeConnection(target, bindAddress, tls, events, request);
    return new Promise((resolve) => new Exchange(this.exchange, run, open, resolve));
  }

  /**
   * HTTP/1.0, which undici cannot send: one request on a fresh connection, a reply whose body
   * ends at its Content-Length or at the close. A chunked reply (which HTTP/1.1 forbids to a
   * 1.0 request) fails.
   */
  private async check10(target: CheckTarget, run: ProbeRun): Promise<CheckResult> {
    const o = this.options;
    let stage = 'waiting for the connection';
    if (run.signal.aborted) return run.failWith(run.signal.reason, stage);
    const tls = o.tls;
    const socket = openConnection(target, o.bindAddress, tls);
    // Errors reach the code below through once() and the reading iterator; this one only keeps
    // an error between the two from being an uncaught 'error' event.
    socket.on('error', () => undefined);
    const onAbort = (): void => void socket.destroy(run.signal.reason as Error);
    run.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await once(socket, tls ? 'secureConnect' : 'connect');
      run.step('connected');
      run.connected = true;
      if ('getProtocol' in socket) run.step(`TLS ${socket.getProtocol() ?? ''}`.trim());
      const lines = [`${o.method} ${this.requestTarget} HTTP/1.0`];
      for (const [name, value] of Object.entries(this.headers(target)))
        lines.push(`${name}: ${value}`);
      if (this.body) lines.push(`content-length: ${this.body.length}`);
      socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
      if (this.body) socket.write(this.body);
      stage = 'waiting for the response';
      const reply = await readReply10(socket, o.method === 'HEAD');
      return await this.judge(run, reply.status, reply.length ?? '', reply.body);
    } catch (error) {
      if (error instanceof ReplyError) return run.fail(error.message);
      return run.failWith(error, stage);
    } finally {
      run.signal.removeEventListener('abort', onAbort);
      socket.destroy();
    }
  }

  /** A client whose connector records how far the connection got in the current check. */
  private client(lib: Undici, origin: string, target: CheckTarget): Holder {
    const tls = this.options.tls;
    const connector = lib.buildConnector({
      ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
      ...(tls
        ? {
            rejectUnauthorized: tls.verify,
            ...(tls.servername ? { servername: tls.servername } : {}),
            ...(tls.ca ? { ca: tls.ca } : {}),
            ...(tls.cert ? { cert: tls.cert } : {}),
            ...(tls.key ? { key: tls.key } : {}),
          }
        : {}),
    });
    const holder: Holder = {
      run: undefined,
      client: new lib.Client(origin, {
        pipelining: 1,
        connect: (opts, callback) => {
          if (target.dataPath) {
            this.connectDataPath(target, holder, callback);
            return;
          }
          connector(
            { ...opts, ...(tls?.servername ? { servername: tls.servername } : {}) },
            (err, socket) => {
              const run = holder.run;
              if (!err && socket && run) {
                run.step('connected');
                run.connected = true;
                if ('getProtocol' in socket) run.step(`TLS ${socket.getProtocol() ?? ''}`.trim());
              }
              if (err) callback(err, null);
              else callback(null, socket);
            },
          );
        },
      }),
    };
    return holder;
  }

  /**
   * undici's connect, through the data path (src/health/datapath.ts). The socket ends with the
   * check's deadline: undici's destroy() would otherwise wait on a SYN nobody answers (a server
   * that lost the VIP) for as long as the kernel retries it.
   */
  private connectDataPath(
    target: CheckTarget,
    holder: Holder,
    callback: buildConnector.Callback,
  ): void {
    const tls = this.options.tls;
    const socket = openConnection(target, this.options.bindAddress, tls);
    const signal = holder.run?.signal;
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      callback(err, null);
    };
    const onAbort = (): void =>
      fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      const run = holder.run;
      if (run) {
        run.step('connected');
        run.connected = true;
        if ('getProtocol' in socket) run.step(`TLS ${socket.getProtocol() ?? ''}`.trim());
      }
      callback(null, socket);
    });
  }
}

/**
 * A body as it is read: the first maxBody bytes kept for the regexes, all of it hashed when a
 * digest is asked for (up to maxDigestBody), the rest left unread.
 */
class BodyReading {
  readonly kept: Buffer[] = [];
  readonly md5: Hash | undefined;
  read = 0;
  /** Past maxDigestBody: no digest. */
  over = false;
  private readonly maxBody: number;
  private readonly limit: number;

  constructor(o: {
    readonly digest?: string | undefined;
    readonly showDigest: boolean;
    readonly maxBody: number;
    readonly maxDigestBody: number;
  }) {
    this.md5 = o.digest !== undefined || o.showDigest ? createHash('md5') : undefined;
    this.maxBody = o.maxBody;
    this.limit = this.md5 ? o.maxDigestBody : o.maxBody;
  }

  /** Takes a chunk; false once no more is wanted. */
  add(chunk: Uint8Array): boolean {
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.read < this.maxBody) this.kept.push(bytes.subarray(0, this.maxBody - this.read));
    this.read += bytes.length;
    if (!this.md5) return this.read < this.limit;
    // Hashed as it comes, never kept: past the cap, no digest at all.
    if (this.read > this.limit) {
      this.over = true;
      return false;
    }
    this.md5.update(bytes);
    return true;
  }
}

/** What a fresh-connection exchange needs from its check, made once per check. */
interface ExchangeSpec {
  readonly okStatus: (status: number) => boolean;
  readonly expectStatus: string;
  /** HEAD: a reply without a body, whatever its headers say. */
  readonly head: boolean;
  readonly options: ConstructorParameters<typeof BodyReading>[0];
  readonly conclude: (
    run: ProbeRun,
    reading: BodyReading,
    declared: string,
    error: unknown,
  ) => CheckResult;
}

/** A reply the parser (or a guard of ours on what it parsed) refuses, with the reason. */
class ParseRefusal extends Error {}

/**
 * The reasons for the codes (or, without one, the messages) http-parser-js refuses with;
 * llhttp's words where it had them.
 */
const PARSE_REASONS: Readonly<Record<string, string>> = {
  // http-parser-js says this of a reply whose first line is not an HTTP status line.
  HPE_INVALID_CONSTANT: 'not a status line',
  HPE_LF_EXPECTED: 'Missing expected LF after header value',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'Duplicate Content-Length',
  'max header size exceeded': 'Header overflow',
};

interface ReplyHead {
  versionMajor: number;
  versionMinor: number;
  headers: string[];
  statusCode: number;
}

/**
 * One fresh-connection HTTP/1.1 exchange, driven by the connection's events: connected (the
 * request written), a first chunk that is the whole reply judged at once (quickReply), else each
 * chunk fed to the parser, and one result (the first of: a verdict,
 * an error, the close, the deadline). What http-parser-js lets through that Node's llhttp
 * refused is refused here too: a Content-Length that is not digits, headers past 16 KiB, a
 * version other than HTTP/1.x.
 */
class Exchange {
  private stage = 'waiting for the connection';
  private finished = false;
  /** Made for the first chunk that quickReply leaves to it (most replies need none). */
  private parser: InstanceType<typeof HTTPParser> | undefined;
  /** A 1xx reply came before the final one. */
  private sawInterim = false;
  /** Bytes before the final headers ended (interim replies included), against MAX_HEADERS. */
  private received = 0;
  /** The first chunk of the reply, to show when it ends in its headers. */
  private first: Buffer | undefined;
  /** Set once the final status is healthy: the body is read into it. */
  private reading: BodyReading | undefined;
  private declared = '';
  /** A 1xx reply is being parsed: its end is not the reply's. */
  private interim = false;
  private readonly connection: ProbeConnection;

  constructor(
    private readonly spec: ExchangeSpec,
    private readonly run: ProbeRun,
    open: (events: ProbeEvents) => ProbeConnection,
    private readonly resolve: (result: CheckResult) => void,
  ) {
    run.watch(this.onAbort);
    this.connection = open({
      connected: this.onConnect,
      data: this.onData,
      ended: this.onEnd,
      failed: this.onError,
    });
  }

  private parse(): InstanceType<typeof HTTPParser> {
    if (this.parser) return this.parser;
    const p = new HTTPParser(HTTPParser.RESPONSE);
    this.parser = p;
    p.maxHeaderSize = MAX_HEADERS;
    // http-parser-js calls back with one info object, or (once anything in the process reads
    // HTTPParser.kOnExecute) with its fields as arguments: both are taken.
    p[HTTPParser.kOnHeadersComplete] = (...args: unknown[]) =>
      this.onHead(
        typeof args[0] === 'object'
          ? (args[0] as ReplyHead)
          : {
              versionMajor: args[0] as number,
              versionMinor: args[1] as number,
              headers: args[2] as string[],
              statusCode: args[5] as number,
            },
      );
    p[HTTPParser.kOnBody] = this.onBody;
    p[HTTPParser.kOnMessageComplete] = this.onComplete;
    return p;
  }

  private readonly onConnect = (): void => {
    const { run, connection } = this;
    run.step('connected');
    run.connected = true;
    const tls = connection.tlsProtocol();
    if (tls !== undefined) run.step(`TLS ${tls}`.trim());
    // The request is written (the connection did it before telling this).
    this.stage = 'waiting for the response';
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return;
    if (this.first === undefined) {
      this.first = chunk;
      // A whole, plain reply in one read (the usual one): judged without the parser.
      const quick = quickReply(chunk, this.spec.head);
      if (quick) return this.judge(quick);
    }
    let outcome: number | Error;
    try {
      outcome = this.parse().execute(chunk);
    } catch (error) {
      // A guard in onHead throws through the parser.
      outcome = error as Error;
    }
    if (this.finished) return;
    if (outcome instanceof Error) return this.refused(outcome, chunk);
    if (!this.reading) {
      this.received += chunk.length;
      if (this.received > MAX_HEADERS) this.refused(new ParseRefusal('Header overflow'), chunk);
    }
  };

  private onHead(head: ReplyHead): number {
    if (this.finished) return 1;
    const { run, spec } = this;
    const status = head.statusCode;
    // 1xx before the reply (101 is a final answer: the server switched away from HTTP).
    this.interim = status < 200 && status !== 101;
    if (this.interim) {
      this.sawInterim = true;
      return 0;
    }
    // http-parser-js reads "HTTP/1.1 2000 OK" as 200 (the space after the code is optional to
    // it). The first line is checked when it is the final reply's and came whole.
    const line = this.sawInterim ? '' : (this.first?.toString('latin1', 0, 13) ?? '');
    if (line.length === 13 && !/^HTTP\/\d\.\d \d{3}[ \r\n]$/.test(line))
      throw new ParseRefusal('not a status line');
    if (head.versionMajor !== 1)
      throw new ParseRefusal(`HTTP/${head.versionMajor}.${head.versionMinor} reply`);
    let size = 0;
    let declared = '';
    for (let i = 0; i + 1 < head.headers.length; i += 2) {
      const name = head.headers[i] ?? '';
      const value = head.headers[i + 1] ?? '';
      size += name.length + value.length + 4;
      if (name.length === 14 && name.toLowerCase() === 'content-length') {
        if (!/^\d{1,15}$/.test(value))
          throw new ParseRefusal('Invalid character in Content-Length');
        declared = value;
      }
    }
    if (size > MAX_HEADERS) throw new ParseRefusal('Header overflow');
    if (!spec.okStatus(status)) {
      this.end(run.fail(`status ${status}, expected ${spec.expectStatus}`));
      return 1;
    }
    run.step(`status ${status}`);
    this.stage = 'reading the body';
    this.declared = declared;
    this.reading = new BodyReading(spec.options);
    return spec.head ? 1 : 0;
  }

  /** A reply quickReply read: what onHead, onBody and onComplete would make of it. */
  private judge(reply: QuickReply): void {
    const { run, spec } = this;
    if (!spec.okStatus(reply.status))
      return this.end(run.fail(`status ${reply.status}, expected ${spec.expectStatus}`));
    run.step(`status ${reply.status}`);
    this.declared = reply.declared;
    this.reading = new BodyReading(spec.options);
    if (reply.body.length > 0) this.reading.add(reply.body);
    this.conclude(undefined);
  }

  private readonly onBody = (chunk: Buffer): void => {
    if (this.finished || this.interim || !this.reading) return;
    // Enough read (the rest is not wanted): the verdict now, the connection closed.
    if (!this.reading.add(chunk)) this.conclude(undefined);
  };

  private readonly onComplete = (): void => {
    if (this.interim) this.interim = false;
    else if (!this.finished && this.reading) this.conclude(undefined);
  };

  /** The peer closed its side: the end of a body that runs to the close, or a reply cut short. */
  private readonly onEnd = (): void => {
    if (this.finished) return;
    // A body that runs to the close ends here (the parser calls onComplete); any other is cut.
    this.parser?.finish();
    if (this.finished) return;
    if (this.reading) this.conclude(new ReplyError('connection closed before the end of the body'));
    else if (!this.first) {
      this.end(this.run.fail('connection closed without a reply'));
    } else {
      const got = printable(this.first.toString('latin1'));
      this.end(this.run.fail(`connection closed in the reply's headers: ${got}`));
    }
  };

  private readonly onError = (error: Error): void => {
    if (this.finished) return;
    if (this.reading) this.conclude(error);
    else this.end(this.run.failWith(error, this.stage));
  };

  private readonly onAbort = (): void => {
    if (!this.finished) this.end(this.run.failWith(this.run.reason, this.stage));
  };

  /** The parser refused the reply: said with its reason and the chunk it refused. */
  private refused(error: Error, chunk: Buffer): void {
    const code = (error as { code?: unknown }).code;
    const why = PARSE_REASONS[typeof code === 'string' ? code : error.message] ?? error.message;
    const text = `not a valid HTTP reply (${why}): ${printable(chunk.toString('latin1'))}`;
    if (this.reading) this.conclude(new ReplyError(text));
    else this.end(this.run.fail(text));
  }

  private conclude(error: unknown): void {
    if (this.reading) this.end(this.spec.conclude(this.run, this.reading, this.declared, error));
  }

  private end(result: CheckResult): void {
    this.finished = true;
    this.run.unwatch(this.onAbort);
    // The reply is read (or given up on): a reset leaves no TIME_WAIT here when the server has
    // not closed first.
    this.connection.reset();
    this.resolve(result);
  }
}

/** A reply read whole by quickReply: its status, its Content-Length as given, and its body. */
export interface QuickReply {
  readonly status: number;
  readonly declared: string;
  readonly body: Buffer;
}

/** RFC 9110 tchar, by byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;
/** Bytes of a status line's reason or a header value: tab and visible ASCII with space. */
const isText = (b: number): boolean => b === 0x09 || (b >= 0x20 && b < 0x7f);
/** A byte of `chunk`, or -1 past its end (which every test below refuses). */
const byteAt = (chunk: Buffer, i: number): number => chunk[i] ?? -1;
/** A header name's bytes, lower-cased letters, against `name` (lower case). */
function named(chunk: Buffer, at: number, end: number, name: string): boolean {
  if (end - at !== name.length) return false;
  for (let i = 0; i < name.length; i++)
    if ((byteAt(chunk, at + i) | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * A reply that came whole in one chunk and is plain, read without the parser; undefined for
 * anything else, which the parser reads as before. Plain is: `HTTP/1.0` or `1.1`, a final status
 * of 200 to 599, CRLF lines of token names and printable ASCII values without folding, headers
 * under 8 KiB, no Transfer-Encoding, at most one Content-Length of digits, and the body exactly
 * that long (none after HEAD, 204 and 304). Every such reply the parser reads the same way and
 * none fails onHead's guards (a table test holds the two side by side), so the verdict is the
 * parser's, without its objects (a parser, a header array, a string a line: the GC's share of
 * a check).
 */
export function quickReply(chunk: Buffer, head: boolean): QuickReply | undefined {
  const n = chunk.length;
  // "HTTP/1.x NNN" and a space or the line's end.
  if (n < 17 || chunk.toString('latin1', 0, 7) !== 'HTTP/1.') return undefined;
  const minor = byteAt(chunk, 7);
  const d0 = byteAt(chunk, 9) - 0x30;
  const d1 = byteAt(chunk, 10) - 0x30;
  const d2 = byteAt(chunk, 11) - 0x30;
  if ((minor !== 0x30 && minor !== 0x31) || byteAt(chunk, 8) !== 0x20) return undefined;
  if (d0 < 2 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return undefined;
  if (byteAt(chunk, 12) !== 0x20 && byteAt(chunk, 12) !== 0x0d) return undefined;
  const status = d0 * 100 + d1 * 10 + d2;
  let at = 12;
  while (at < n && byteAt(chunk, at) !== 0x0d) if (!isText(byteAt(chunk, at++))) return undefined;
  if (byteAt(chunk, at + 1) !== 0x0a) return undefined;
  at += 2;
  let declared: string | undefined;
  const limit = Math.min(n, 8192);
  for (;;) {
    if (at + 1 >= limit) return undefined;
    if (byteAt(chunk, at) === 0x0d) {
      if (byteAt(chunk, at + 1) !== 0x0a) return undefined;
      at += 2;
      break;
    }
    const name = at;
    while (at < limit && TCHAR[byteAt(chunk, at)] === 1) at++;
    if (at === name || byteAt(chunk, at) !== 0x3a) return undefined;
    const nameEnd = at++;
    while (byteAt(chunk, at) === 0x20 || byteAt(chunk, at) === 0x09) at++;
    const value = at;
    while (at < limit && byteAt(chunk, at) !== 0x0d)
      if (!isText(byteAt(chunk, at++))) return undefined;
    if (at + 1 >= limit || byteAt(chunk, at + 1) !== 0x0a) return undefined;
    let valueEnd = at;
    while (
      valueEnd > value &&
      (byteAt(chunk, valueEnd - 1) === 0x20 || byteAt(chunk, valueEnd - 1) === 0x09)
    )
      valueEnd--;
    at += 2;
    if (named(chunk, name, nameEnd, 'transfer-encoding')) return undefined;
    if (named(chunk, name, nameEnd, 'content-length')) {
      if (declared !== undefined || valueEnd === value || valueEnd - value > 15) return undefined;
      for (let i = value; i < valueEnd; i++)
        if (byteAt(chunk, i) < 0x30 || byteAt(chunk, i) > 0x39) return undefined;
      declared = chunk.toString('latin1', value, valueEnd);
    }
  }
  const none = head || status === 204 || status === 304;
  const length = none ? 0 : declared === undefined ? -1 : Number(declared);
  if (n - at !== length) return undefined;
  return { status, declared: declared ?? '', body: chunk.subarray(at) };
}

interface Holder {
  readonly client: Client;
  run: ProbeRun | undefined;
}

/** Reply headers a fresh or HTTP/1.0 exchange reads at most (undici's and Node's limit too). */
const MAX_HEADERS = 16 * 1024;

/** A reply that is not HTTP, or not one this client reads: an unhealthy result, said so. */
class ReplyError extends Error {}

/** An HTTP/1.0 reply's status line and headers, and its body as it comes. */
async function readReply10(
  socket: Socket,
  head: boolean,
): Promise<{ status: number; length: string | undefined; body: AsyncIterable<Buffer> }> {
  const it = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let got = Buffer.alloc(0);
  let end = -1;
  while (end < 0) {
    const next = await it.next();
    if (next.done)
      throw new ReplyError(
        got.length === 0
          ? 'connection closed without a reply'
          : `connection closed in the reply's headers: ${printable(got.toString('latin1'))}`,
      );
    got = Buffer.concat([got, next.value]);
    if (!'HTTP/'.startsWith(got.subarray(0, 5).toString('latin1')))
      throw new ReplyError(`not an HTTP reply: ${printable(got.toString('latin1'))}`);
    end = got.indexOf('\r\n\r\n');
    if (end < 0 && got.length > MAX_HEADERS)
      throw new ReplyError(`reply headers longer than ${MAX_HEADERS} bytes`);
  }
  const [statusLine = '', ...fields] = got.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] ([1-9]\d\d)(?:[ \t]|$)/.exec(statusLine);
  if (!m) throw new ReplyError(`not an HTTP/1.x status line: ${printable(statusLine)}`);
  const status = Number(m[1]);
  let length: string | undefined;
  for (const field of fields) {
    const at = field.indexOf(':');
    if (at <= 0) continue;
    const name = field.slice(0, at).toLowerCase();
    const value = field.slice(at + 1).trim();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== value))
        throw new ReplyError(`bad Content-Length: ${printable(value)}`);
      length = value;
    } else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity')
      throw new ReplyError(`a ${printable(value)} reply to an HTTP/1.0 request`);
  }
  const none = head || status < 200 || status === 204 || status === 304;
  return {
    status,
    length,
    body: body10(
      got.subarray(end + 4),
      it,
      none ? 0 : length === undefined ? undefined : Number(length),
    ),
  };
}

/** The body after the headers: `length` bytes, or (none declared) up to the close. */
async function* body10(
  first: Buffer,
  it: AsyncIterator<Buffer>,
  length: number | undefined,
): AsyncGenerator<Buffer> {
  let left = length ?? Infinity;
  let chunk = first;
  for (;;) {
    if (chunk.length > 0 && left > 0) {
      const part = chunk.subarray(0, left);
      left -= part.length;
      yield part;
    }
    if (left <= 0) return;
    const next = await it.next();
    if (next.done) {
      if (length === undefined) return;
      throw new Error('connection closed before the end of the body');
    }
    chunk = next.value;
  }
}

const SUMMARY =
  "a request; healthy on an expected status and, when configured, a body that matches (read up to max_body) and whose MD5 is keepalived's digest";
const validate = (
  o: OptionsOf<typeof HTTP_OPTIONS>,
  report: (option: keyof typeof HTTP_OPTIONS, problem: string) => void,
): void => {
  if (o.reuse === true && (o.httpVersion === '1.0' || o.httpVersion === '1'))
    report('reuse', 'HTTP/1.0 closes the connection after each reply: no reuse');
  if (o.proxyUrl !== undefined && o.path !== undefined)
    report('proxyUrl', 'give path or proxy_url, not both');
};
export const http = defineCheck({
  kind: 'http',
  summary: SUMMARY,
  options: HTTP_OPTIONS,
  validate,
  create: (o) => new HttpChecker(o),
});
export const https = defineCheck({
  kind: 'https',
  summary: `${SUMMARY}, over TLS`,
  options: HTTPS_OPTIONS,
  validate,
  create: (o) => new HttpChecker({ ...o, tls: o.tls ?? {} }),
});
