// HTTP(S) check (undici): a request to the real server, healthy on an expected status, a body
// that ends cleanly (read up to maxBody; what is beyond is cancelled) and, when configured, a
// body that matches (or does not match) a regex. The deadline covers the whole exchange.
import { Client, buildConnector } from 'undici';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { parseStatusSet, redactOptions } from '../src/health/options.js';
import { ProbeRun, describeError, hostPort } from '../src/health/probe.js';
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
    doc: 'body bytes read for matching; the rest is not read',
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
  /** Kept-alive clients by origin (reuse mode only), with the check now using each. */
  private readonly clients = new Map<string, Holder>();

  constructor(options: HttpCheckOptions = {}) {
    this.kind = options.tls ? 'https' : 'http';
    this.options = normalOptions(options.tls ? HTTPS_OPTIONS : HTTP_OPTIONS, options);
    const o = this.options;
    this.okStatus = parseStatusSet(o.expectStatus);
    // Logs, /status, a metric label and every result message show it: no query value.
    const shown = redactOptions(o, HTTP_SECRECY);
    this.description = `${o.tls ? 'HTTPS' : 'HTTP'} ${shown.method} ${shown.path}`;
    this.key = keyOf(this.kind, options.tls ? HTTPS_OPTIONS : HTTP_OPTIONS, options);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const origin = `${this.options.tls ? 'https' : 'http'}://${hostPort(target)}`;
    const reuse = this.options.reuse;
    let holder = reuse ? this.clients.get(origin) : undefined;
    if (!holder) {
      holder = this.client(origin);
      if (reuse) this.clients.set(origin, holder);
    }
    holder.run = run;
    const client = holder.client;
    let stage = 'waiting for the connection';
    try {
      const res = await client.request({
        method: this.options.method,
        path: this.options.path,
        headers: {
          host: this.options.host ?? hostPort(target),
          'user-agent': 'ipvs-warden',
          ...this.options.headers,
        },
        signal: run.signal,
        // The run's signal is the deadline; undici's own timers would only race it.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      stage = 'reading the body';
      // Cancelling the body makes undici emit an abort error on it: expected, and never fatal.
      res.body.on('error', () => undefined);
      const status = res.statusCode;
      if (!this.okStatus(status)) {
        res.body.destroy();
        return run.fail(`status ${status}, expected ${this.options.expectStatus}`);
      }
      run.step(`status ${status}`);
      // The body is read to its end, even for a status-only check: a server that dies half-way
      // through a response (headers, part of the body, a reset) is not healthy.
      const max = this.options.maxBody;
      const kept: Buffer[] = [];
      let read = 0;
      try {
        for await (const chunk of res.body) {
          const bytes = chunk as Buffer;
          if (read < max) kept.push(bytes.subarray(0, max - read));
          read += bytes.length;
          // Beyond maxBody the rest is cancelled unread: a huge or endless body costs nothing.
          if (read >= max) break;
        }
      } catch (error) {
        if (run.signal.aborted) return run.failWith(error, stage);
        const declared = /^\d+$/.exec(String(res.headers['content-length'] ?? ''))?.[0];
        return run.fail(
          `body cut short after ${read}${declared ? ` of ${declared}` : ''} bytes: ${describeError(error)}`,
        );
      } finally {
        res.body.destroy();
      }
      const body = Buffer.concat(kept).toString('utf8');
      if (this.options.bodyMatch && !this.options.bodyMatch.test(body)) {
        return run.fail(`body does not match ${String(this.options.bodyMatch)}`);
      }
      if (this.options.bodyNotMatch?.test(body)) {
        return run.fail(`body matches ${String(this.options.bodyNotMatch)}`);
      }
      return run.ok();
    } catch (error) {
      if (reuse) {
        // A broken kept-alive connection is not reused.
        this.clients.delete(origin);
        void client.destroy().catch(() => undefined);
      }
      if (stage === 'waiting for the connection' && run.connected)
        stage = 'waiting for the response';
      return run.failWith(error, stage);
    } finally {
      if (!reuse) await client.destroy().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((h) => h.client.destroy().catch(() => undefined)));
  }

  /** A client whose connector records how far the connection got in the current check. */
  private client(origin: string): Holder {
    const tls = this.options.tls;
    const connector = buildConnector({
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
      client: new Client(origin, {
        pipelining: 1,
        connect: (opts, callback) => {
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
}

interface Holder {
  readonly client: Client;
  run: ProbeRun | undefined;
}

const SUMMARY =
  'a request; healthy on an expected status and, when configured, a body that matches (read up to max_body)';
export const http = defineCheck({
  kind: 'http',
  summary: SUMMARY,
  options: HTTP_OPTIONS,
  create: (o) => new HttpChecker(o),
});
export const https = defineCheck({
  kind: 'https',
  summary: `${SUMMARY}, over TLS`,
  options: HTTPS_OPTIONS,
  create: (o) => new HttpChecker({ ...o, tls: o.tls ?? {} }),
});
