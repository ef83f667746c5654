// LDAP check (ldap, with optional StartTLS, and ldaps): bind anonymously or as a DN, then
// optionally search a base and expect an entry, a DN or an attribute value. ldirectord's
// check_ldap is this with `base` from its request (minus the leading "/"), `expect_dn` from its
// receive, `bind_dn`/`password` from login/passwd; it also demands exactly one entry, which a
// scope-base search gives or not (here: at least one entry, and one that matches the expects).
// The LDAP protocol is ldapts's; the sockets are ours (its connect hooks), so the one deadline
// tears them down, and every byte the server sends passes a framing check first: a reply that is
// not a BER SEQUENCE (another protocol's greeting, garbage) fails at once, and more than
// MAX_REPLY bytes in all is unhealthy rather than buffered.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Client, FilterParser, ResultCodeError, type Entry } from 'ldapts';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import type { TlsOptions } from '../src/health/options.js';
import { hostPort, ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
  type Report,
} from '../src/health/schema.js';

/** All the bytes the server may send in one check (bind reply, search entries). */
export const MAX_REPLY = 1 << 20;
/** Entries a search asks for (sizeLimit); the expects are judged on these. */
export const MAX_ENTRIES = 100;

const SHARED = {
  bindDn: opt.text({ doc: 'DN of a simple bind; an anonymous bind when not given' }),
  password: opt.secret({ doc: 'password of bind_dn' }),
  base: opt.text({
    doc: 'search this DN after the bind (`""` is the root DSE); no search when not given',
  }),
  scope: opt.text({
    values: ['base', 'one', 'sub'],
    default: 'base',
    doc: 'scope of the search',
  }),
  filter: opt.text({
    example: '(uid=alice)',
    default: '(objectClass=*)',
    doc: 'filter of the search (RFC 4515)',
    check: (value: string, report: Report) => {
      try {
        FilterParser.parseString(value);
      } catch (error) {
        report(`not an LDAP filter: ${(error as Error).message}`);
      }
    },
  }),
  expectDn: opt.regex({
    doc: "healthy only when a found entry's DN matches (ldirectord's receive)",
  }),
  expectAttribute: opt.text({
    doc: 'healthy only when a found entry has this attribute (with a value matching expect_value, when given)',
  }),
  expectValue: opt.regex({ doc: 'a value of expect_attribute must match this' }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe (not an LDAP bind)' }),
} as const;

export const LDAP_OPTIONS = {
  starttls: opt.tls({
    doc: 'StartTLS before the bind (`true` or settings); verified unless `verify: false`',
  }),
  ...SHARED,
} as const;
export const LDAPS_OPTIONS = {
  tls: opt.tls({ on: true, doc: 'TLS settings; verified unless `verify: false`' }),
  ...SHARED,
} as const;

export type LdapCheckOptions = OptionsOf<typeof LDAP_OPTIONS>;
export type LdapsCheckOptions = OptionsOf<typeof LDAPS_OPTIONS>;
type Normal = NormalOf<typeof SHARED> & { readonly tls?: TlsOptions };

/** RFC 4511 appendix A: the result codes by name. */
const RESULT_NAMES: Readonly<Record<number, string>> = {
  1: 'operationsError',
  2: 'protocolError',
  3: 'timeLimitExceeded',
  4: 'sizeLimitExceeded',
  7: 'authMethodNotSupported',
  8: 'strongerAuthRequired',
  10: 'referral',
  11: 'adminLimitExceeded',
  12: 'unavailableCriticalExtension',
  13: 'confidentialityRequired',
  14: 'saslBindInProgress',
  16: 'noSuchAttribute',
  17: 'undefinedAttributeType',
  18: 'inappropriateMatching',
  19: 'constraintViolation',
  21: 'invalidAttributeSyntax',
  32: 'noSuchObject',
  33: 'aliasProblem',
  34: 'invalidDNSyntax',
  36: 'aliasDereferencingProblem',
  48: 'inappropriateAuthentication',
  49: 'invalidCredentials',
  50: 'insufficientAccessRights',
  51: 'busy',
  52: 'unavailable',
  53: 'unwillingToPerform',
  54: 'loopDetect',
  80: 'other',
};

/** A result as an operator reads it: "invalidCredentials (49)", and the server's words if any. */
function resultText(error: ResultCodeError): string {
  const name = RESULT_NAMES[error.code] ?? 'result code';
  // ldapts appends " Code: 0x31" to the server's diagnosticMessage (empty from slapd mostly).
  const said = error.message.replace(/\s*Code: 0x[0-9a-f]+$/i, '').trim();
  return `${name} (${error.code})${said ? `: ${printable(said)}` : ''}`;
}

/**
 * Watches what the server sends: a stream of LDAPMessages (RFC 4511 4.1.1), each a BER SEQUENCE
 * of definite length that opens with an INTEGER messageID and an APPLICATION-tagged protocolOp,
 * no more than MAX_REPLY bytes in all. Returns what is wrong, or undefined. What is inside the
 * protocolOp is ldapts's to parse.
 */
class Framing {
  /** Tag and length octets of the message being read. */
  private header: number[] = [];
  /** The first octets of its content: messageID and the protocolOp's tag. */
  private head: number[] = [];
  private headChecked = false;
  /** Content octets still to come. */
  private remaining = 0;
  private total = 0;

  feed(chunk: Buffer): string | undefined {
    this.total += chunk.length;
    if (this.total > MAX_REPLY) return `more than ${MAX_REPLY} bytes of replies`;
    for (let i = 0; i < chunk.length;) {
      if (this.remaining > 0 && this.headChecked) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.next();
        continue;
      }
      const byte = chunk[i++] ?? 0;
      if (this.remaining > 0) {
        this.head.push(byte);
        this.remaining--;
        const problem = this.checkHead(chunk.subarray(i));
        if (problem) return problem;
        if (this.remaining === 0) this.next();
        continue;
      }
      this.header.push(byte);
      const h = this.header;
      if (h[0] !== 0x30) return this.notLdap(chunk.subarray(i));
      if (h.length < 2) continue;
      const first = h[1] ?? 0;
      let length: number;
      if (first < 0x80) length = first;
      else {
        const n = first & 0x7f;
        if (n === 0 || n > 4) return this.notLdap(chunk.subarray(i));
        if (h.length < 2 + n) continue;
        length = h.slice(2).reduce((acc, b) => acc * 256 + b, 0);
        if (length > MAX_REPLY) return `a reply of ${length} bytes, more than ${MAX_REPLY}`;
      }
      if (length === 0) return this.notLdap(chunk.subarray(i));
      this.remaining = length;
    }
    return undefined;
  }

  /** A problem once the head is known bad (or ends too soon), else undefined. */
  private checkHead(rest: Buffer): string | undefined {
    const h = this.head;
    const short = this.remaining === 0;
    if (h[0] !== 0x02) return this.notLdap(rest);
    if (h.length < 2) return short ? this.notLdap(rest) : undefined;
    const idLength = h[1] ?? 0;
    if (idLength < 1 || idLength > 4) return this.notLdap(rest);
    if (h.length < 3 + idLength) return short ? this.notLdap(rest) : undefined;
    if (((h[2 + idLength] ?? 0) & 0xc0) !== 0x40) return this.notLdap(rest);
    this.headChecked = true;
    return undefined;
  }

  private next(): void {
    this.header = [];
    this.head = [];
    this.headChecked = false;
  }

  /** `rest`: what the chunk holds after the octets read so far. */
  private notLdap(rest: Buffer): string {
    const seen = Buffer.concat([Buffer.from([...this.header, ...this.head]), rest]).toString(
      'latin1',
    );
    return `not an LDAP reply: ${printable(seen, 40)}`;
  }
}

/** Attribute values as text (binary ones as UTF-8, lossy: good enough to match and to show). */
function valuesOf(entry: Entry, attribute: string): string[] | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  if (key === undefined || key === 'dn') return undefined;
  const v = entry[key];
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

export class LdapChecker implements Checker {
  readonly kind: 'ldap' | 'ldaps';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: Normal;
  /** TLS settings: of the connection (ldaps) or of StartTLS (ldap), or none. */
  private readonly tls: TlsOptions | undefined;

  constructor(kind: 'ldap', options: LdapCheckOptions);
  constructor(kind: 'ldaps', options: LdapsCheckOptions);
  constructor(kind: 'ldap' | 'ldaps', options: LdapCheckOptions | LdapsCheckOptions) {
    this.kind = kind;
    if (kind === 'ldaps') {
      const o = normalOptions(LDAPS_OPTIONS, options as LdapsCheckOptions);
      this.options = o;
      this.tls = o.tls;
      this.key = keyOf(kind, LDAPS_OPTIONS, options as LdapsCheckOptions);
    } else {
      const o = normalOptions(LDAP_OPTIONS, options as LdapCheckOptions);
      this.options = o;
      this.tls = o.starttls;
      this.key = keyOf(kind, LDAP_OPTIONS, options as LdapCheckOptions);
    }
    const o = this.options;
    const how = kind === 'ldaps' ? 'LDAPS' : this.tls ? 'LDAP+StartTLS' : 'LDAP';
    const search =
      o.base === undefined
        ? ''
        : `, search ${o.base === '' ? 'root DSE' : `"${o.base}"`} ${o.scope} ${o.filter}`;
    this.description = `${how} bind ${o.bindDn === undefined ? 'anonymous' : `as ${o.bindDn}`}${search}`;
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    const tls = this.tls;
    const sockets: Socket[] = [];
    const framing = new Framing();
    /** What the exchange waits for once the connection (and TLS) is up. */
    let stage = 'waiting for the bind reply';
    let link: 'connecting' | 'tls' | 'up' = 'connecting';
    const waitingFor = (): string =>
      link === 'up'
        ? stage
        : link === 'tls'
          ? 'waiting for the TLS handshake'
          : 'waiting for the connection';
    let settled = false;
    let client: Client | undefined;

    return new Promise<CheckResult>((resolve) => {
      const finish = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        run.signal.removeEventListener('abort', onAbort);
        // A polite unbind where the connection is still up (written at once: ldapts sends it
        // before its first await), then every socket goes, written or not.
        client?.unbind().catch(() => undefined);
        for (const s of sockets) {
          s.on('error', () => undefined);
          s.destroy();
        }
        resolve(result);
      };
      const onAbort = (): void => finish(run.failWith(run.signal.reason, waitingFor()));
      if (run.signal.aborted) {
        resolve(run.failWith(run.signal.reason, waitingFor()));
        return;
      }
      run.signal.addEventListener('abort', onAbort, { once: true });

      /** Our listeners first on each socket: they see errors, closes and bytes before ldapts. */
      const watch = (s: Socket): void => {
        sockets.push(s);
        s.on('error', (error) => finish(run.failWith(error, waitingFor())));
        s.on('close', () =>
          finish(
            s.errored
              ? run.failWith(s.errored, waitingFor())
              : run.fail(`connection closed by the server ${waitingFor()}`),
          ),
        );
        s.on('data', (chunk: Buffer) => {
          const problem = framing.feed(chunk);
          if (problem) finish(run.fail(problem));
        });
      };
      const tlsSettings = (t: TlsOptions): ConnectionOptions => ({
        rejectUnauthorized: t.verify ?? true,
        ...(t.servername ? { servername: t.servername } : {}),
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.cert ? { cert: t.cert } : {}),
        ...(t.key ? { key: t.key } : {}),
      });
      const base = {
        host: target.address,
        port: target.port,
        family: target.family,
        ...(o.bindAddress ? { localAddress: o.bindAddress } : {}),
      };
      const openTcp = (): Socket => {
        const s = netConnect(base);
        s.once('connect', () => {
          run.step('connected');
          run.connected = true;
          link = 'up';
        });
        watch(s);
        return s;
      };
      // ldapts calls this with (port, host, options) for ldaps and with ({socket, ...}) to
      // upgrade for StartTLS; either way the settings are ours.
      const openTls = (...args: unknown[]): TLSSocket => {
        const upgrade = args.length === 1 && typeof args[0] === 'object' && args[0] !== null;
        const settings = tlsSettings(tls ?? {});
        let s: TLSSocket;
        if (upgrade) {
          const plain = (args[0] as ConnectionOptions).socket as Socket;
          plain.removeAllListeners('data');
          link = 'tls';
          s = tlsConnect({ ...settings, socket: plain, host: target.address });
          s.once('secureConnect', () => {
            run.step(`StartTLS ${s.getProtocol() ?? ''}`.trim());
            link = 'up';
          });
        } else {
          s = tlsConnect({ ...base, ...settings });
          s.once('connect', () => {
            run.step('connected');
            run.connected = true;
            link = 'tls';
          });
          s.once('secureConnect', () => {
            run.step(`TLS ${s.getProtocol() ?? ''}`.trim());
            link = 'up';
          });
        }
        watch(s);
        return s;
      };
      client = new Client({
        url: `${this.kind}://${hostPort(target)}`,
        createConnection: openTcp,
        createSecureConnection: openTls,
      });
      const c = client;
      const exchange = async (): Promise<CheckResult> => {
        if (this.kind === 'ldap' && tls) {
          stage = 'waiting for the StartTLS reply';
          try {
            // ldapts connects on the first operation and upgrades through openTls.
            await c.startTLS({});
          } catch (error) {
            if (error instanceof ResultCodeError)
              return run.fail(`server up, StartTLS refused: ${resultText(error)}`);
            throw error;
          }
        }
        const who = o.bindDn === undefined ? 'anonymous' : `as ${o.bindDn}`;
        stage = 'waiting for the bind reply';
        try {
          await c.bind(o.bindDn ?? '', o.password ?? '');
        } catch (error) {
          if (error instanceof ResultCodeError)
            return run.fail(`server up, bind ${who} refused: ${resultText(error)}`);
          throw error;
        }
        run.step(`bound ${who}`);
        if (o.base === undefined) return run.ok();

        const what = `search ${o.base === '' ? 'root DSE' : printable(o.base)}`;
        stage = 'waiting for the search reply';
        let entries: Entry[];
        try {
          entries = (
            await c.search(o.base, {
              scope: o.scope,
              filter: o.filter,
              attributes: o.expectAttribute === undefined ? ['1.1'] : [o.expectAttribute],
              sizeLimit: MAX_ENTRIES,
            })
          ).searchEntries;
        } catch (error) {
          if (error instanceof ResultCodeError)
            return run.fail(`server up, ${what} failed: ${resultText(error)}`);
          throw error;
        }
        const found = `${entries.length}${entries.length === MAX_ENTRIES ? '+' : ''} entr${entries.length === 1 ? 'y' : 'ies'}`;
        if (entries.length === 0) return run.fail(`${what}: no entries match ${o.filter}`);
        run.step(`${what}: ${found}${entries[0] ? `, first ${printable(entries[0].dn)}` : ''}`);
        const dnOk = (e: Entry): boolean => o.expectDn === undefined || o.expectDn.test(e.dn);
        const attrOk = (e: Entry): boolean => {
          if (o.expectAttribute === undefined) return true;
          const values = valuesOf(e, o.expectAttribute);
          if (values === undefined || values.length === 0) return false;
          return o.expectValue === undefined || values.some((v) => o.expectValue?.test(v));
        };
        const match = entries.find((e) => dnOk(e) && attrOk(e));
        if (match) {
          if (o.expectAttribute === undefined) return run.ok();
          const v = valuesOf(match, o.expectAttribute) ?? [];
          return run.ok(
            `${o.expectAttribute}: ${v
              .slice(0, 3)
              .map((x) => printable(x))
              .join(', ')}`,
          );
        }
        const wanted = [
          o.expectDn ? `a DN matching ${String(o.expectDn)}` : '',
          o.expectAttribute
            ? `${o.expectAttribute}${o.expectValue ? ` matching ${String(o.expectValue)}` : ''}`
            : '',
        ]
          .filter(Boolean)
          .join(' and ');
        const first = entries[0];
        const shown =
          first && o.expectAttribute
            ? `; ${o.expectAttribute} of the first: ${
                (valuesOf(first, o.expectAttribute) ?? [])
                  .slice(0, 3)
                  .map((x) => printable(x))
                  .join(', ') || 'none'
              }`
            : '';
        return run.fail(`no entry has ${wanted}${shown}`);
      };
      exchange().then(finish, (error: unknown) => {
        // An error of a socket ldapts had taken over (it drops our error listener once
        // connected) is still on the socket; one that carries messageDetails is ldapts's parser's.
        const broken = sockets.find((s) => s.errored)?.errored;
        if (!broken && error instanceof Error && 'messageDetails' in error)
          finish(run.fail(`malformed LDAP reply: ${printable(error.message)}`));
        else finish(run.failWith(broken ?? error, waitingFor()));
      });
    });
  }
}

function validate(
  o: LdapCheckOptions | LdapsCheckOptions,
  report: (option: keyof typeof SHARED, problem: string) => void,
): void {
  if (o.password !== undefined && o.bindDn === undefined)
    report('password', 'a password needs bind_dn');
  if (o.bindDn !== undefined && o.password === undefined)
    report('password', 'bind_dn needs a password (an empty one is an unauthenticated bind)');
  if (o.expectValue !== undefined && o.expectAttribute === undefined)
    report('expectValue', 'expect_value needs expect_attribute');
  for (const k of ['expectDn', 'expectAttribute'] as const)
    if (o[k] !== undefined && o.base === undefined)
      report(k, 'an expect needs a search: give base');
}

export const ldap = defineCheck({
  kind: 'ldap',
  summary:
    'binds (anonymously or as bind_dn), optionally after StartTLS, and optionally searches base expecting an entry; healthy when all of it succeeds',
  options: LDAP_OPTIONS,
  validate,
  create: (o) => new LdapChecker('ldap', o),
});

export const ldaps = defineCheck({
  kind: 'ldaps',
  summary:
    'LDAP over TLS (implicit, port 636): binds and optionally searches as the ldap check does',
  options: LDAPS_OPTIONS,
  validate,
  create: (o) => new LdapChecker('ldaps', o),
});
