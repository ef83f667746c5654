// What each check type takes: its options, their defaults and normalised form, and the constants
// and parsers the config validates them with. A leaf (it imports nothing of the project): the
// config and the probes both read it, so the config never loads a probe, and a probe never
// reaches into the config.

export interface TlsOptions {
  /** SNI and the name verified; defaults to none (an address is not a server name). */
  readonly servername?: string;
  /** Verify the server's certificate (default true). */
  readonly verify?: boolean;
  /** Trusted CA certificates (PEM), client certificate and key (PEM). */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface TcpCheckOptions {
  /** Sent after connecting; C-style escapes (\r \n \t \\ \xHH \0) are understood. */
  readonly send?: string;
  /** A reply that contains this string (escapes understood) or matches this regex. */
  readonly expect?: string | RegExp;
  readonly tls?: TlsOptions;
  /** Source address to bind. */
  readonly bindAddress?: string;
  /** Bytes of reply kept for matching; more is an unhealthy result (default 64 KiB). */
  readonly maxReply?: number;
}

export interface HttpCheckOptions {
  readonly method?: string;
  readonly path?: string;
  /** Host header (virtual host); defaults to the target's address and port. */
  readonly host?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Statuses that are healthy: "200-299", "200,301-302" (default "200-299"). */
  readonly expectStatus?: string;
  /** Healthy only if the body matches; and only if it does not match `bodyNotMatch`. */
  readonly bodyMatch?: RegExp;
  readonly bodyNotMatch?: RegExp;
  /** HTTPS with these settings. */
  readonly tls?: TlsOptions;
  /** Keep the connection between checks (default false: a fresh one per check, like ldirectord and keepalived). */
  readonly reuse?: boolean;
  readonly bindAddress?: string;
  /** Body bytes read for matching (default 64 KiB); the rest is cancelled. */
  readonly maxBody?: number;
}

/** "200-299,301" -> a predicate; throws on a malformed set (config validation calls this). */
export function parseStatusSet(text: string): (status: number) => boolean {
  const ranges = text.split(',').map((part) => {
    const m = /^\s*(\d{3})(?:\s*-\s*(\d{3}))?\s*$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a status or a range like 200-299`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (hi < lo) throw new Error(`range ${part} runs backwards`);
    return [lo, hi] as const;
  });
  return (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi);
}

export type DnsRecordType = 'A' | 'AAAA' | 'CNAME' | 'MX' | 'NS' | 'SOA' | 'TXT' | 'PTR' | 'SRV';
export const DNS_TYPES: readonly DnsRecordType[] = [
  'A',
  'AAAA',
  'CNAME',
  'MX',
  'NS',
  'SOA',
  'TXT',
  'PTR',
  'SRV',
];

export interface DnsCheckOptions {
  readonly name: string;
  readonly type?: DnsRecordType;
  readonly transport?: 'udp' | 'tcp';
  /** Healthy rcodes (default NOERROR). */
  readonly expectRcode?: readonly string[];
  /** Healthy only when an answer of the asked type, as text, matches. */
  readonly expectAnswer?: RegExp;
  readonly recursionDesired?: boolean;
  readonly bindAddress?: string;
}

export interface ExecCheckOptions {
  /** Program and arguments; {address}, {port} and {family} are replaced by the target's. */
  readonly command: readonly string[];
  /** keepalived's convention: exit 1 unhealthy, 2..255 healthy with weight = code - 2. */
  readonly dynamicWeight?: boolean;
  /** Bytes of output (stdout and stderr) kept for the message: the last ones (default 4096). */
  readonly maxOutput?: number;
  /** More environment for the command (PATH and WARDEN_ADDRESS/PORT/FAMILY are always set). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run the command as this user (a name or uid) with its supplementary groups, as keepalived's
   * MISC_CHECK `user` does; the daemon's own user when unset. Needs a daemon that may change
   * user (root, or CAP_SETUID and CAP_SETGID; and CAP_KILL to kill it at the deadline).
   */
  readonly user?: string;
  /** The group (a name or gid) for `user`; the user's own primary group when unset. */
  readonly group?: string;
}

// Which options are secret, declared here beside their types: each check type's table names
// every option (the compiler holds it to the type), so an option added later must say. A secret
// never leaves the process unless the operator asks (`check-config --show-secrets`): not in
// check-config's output (which systemd's ExecStartPre sends to the journal), not in a check's
// description (logs, /status, the `check` metric label), not in a result message.

/**
 * How an option's value is shown:
 *   public  as it is
 *   secret  not at all (REDACTED)
 *   values  a map whose names are shown and whose values are not (headers, environment)
 *   query   a request path whose query values are not (`/healthz?token=…`)
 * A nested table (tls) says it for each option of its own.
 */
export type Secrecy = 'public' | 'secret' | 'values' | 'query';
export interface SecrecyTable {
  readonly [option: string]: Secrecy | SecrecyTable;
}
export type SecrecyOf<O> = { readonly [K in keyof Required<O>]: Secrecy | SecrecyTable };

/** What a secret value is shown as. */
export const REDACTED = '<redacted>';
/** What a secret query value is shown as (a path stays one line, and readable). */
export const REDACTED_QUERY_VALUE = '…';

export const TLS_SECRECY: SecrecyOf<TlsOptions> = {
  servername: 'public',
  verify: 'public',
  // Certificates are public; the key is not. (check-config names the files, never their content.)
  ca: 'public',
  cert: 'public',
  key: 'secret',
};
export const TCP_SECRECY: SecrecyOf<TcpCheckOptions> = {
  // What a check sends may log in: Redis's AUTH, an SMTP or POP3 password.
  send: 'secret',
  expect: 'public',
  tls: TLS_SECRECY,
  bindAddress: 'public',
  maxReply: 'public',
};
export const HTTP_SECRECY: SecrecyOf<HttpCheckOptions> = {
  method: 'public',
  path: 'query',
  host: 'public',
  // Authorization, cookies, API keys: every value, since a name does not say which is which.
  headers: 'values',
  expectStatus: 'public',
  bodyMatch: 'public',
  bodyNotMatch: 'public',
  tls: TLS_SECRECY,
  reuse: 'public',
  bindAddress: 'public',
  maxBody: 'public',
};
export const DNS_SECRECY: SecrecyOf<DnsCheckOptions> = {
  name: 'public',
  type: 'public',
  transport: 'public',
  expectRcode: 'public',
  expectAnswer: 'public',
  recursionDesired: 'public',
  bindAddress: 'public',
};
export const EXEC_SECRECY: SecrecyOf<ExecCheckOptions> = {
  // The program and its arguments are shown: a secret belongs in env, where it is not.
  command: 'public',
  dynamicWeight: 'public',
  maxOutput: 'public',
  env: 'values',
  user: 'public',
  group: 'public',
};

/** "/healthz?token=abc&verbose" -> "/healthz?token=…&…": names kept, values (or bare words) not. */
export function redactQuery(path: string): string {
  const at = path.indexOf('?');
  if (at < 0) return path;
  const query = path
    .slice(at + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? REDACTED_QUERY_VALUE : `${part.slice(0, eq)}=${REDACTED_QUERY_VALUE}`;
    });
  return `${path.slice(0, at)}?${query.join('&')}`;
}

function redactValue(value: unknown, secrecy: Secrecy | SecrecyTable): unknown {
  if (value === undefined || secrecy === 'public') return value;
  if (typeof secrecy === 'object') return redactTable(value as object, secrecy);
  if (secrecy === 'secret') return REDACTED;
  if (secrecy === 'query') return typeof value === 'string' ? redactQuery(value) : REDACTED;
  return Object.fromEntries(Object.keys(value as object).map((k) => [k, REDACTED]));
}

function redactTable(options: object, secrecy: SecrecyTable): object {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [
      k,
      // An option with no entry (only if a table was cast around the compiler) is hidden.
      redactValue(v, secrecy[k] ?? 'secret'),
    ]),
  );
}

/** The options as they may be shown: each secret replaced as its table says. */
export function redactOptions<O extends object>(options: O, secrecy: SecrecyOf<O>): O {
  return redactTable(options, secrecy) as O;
}

// Each check's options with the defaults applied. A checker reads only these, and makes its
// merge key from all of them (checkKey), so an explicit default is the same check as an
// omitted one, and an option cannot do something the key does not show.

type WithDefaults<O, D extends keyof O> = Omit<O, D> & {
  readonly [K in D]-?: Exclude<O[K], undefined>;
};

export type NormalTlsOptions = WithDefaults<TlsOptions, 'verify'>;
export type NormalTcpOptions = WithDefaults<Omit<TcpCheckOptions, 'tls'>, 'maxReply'> & {
  readonly tls?: NormalTlsOptions;
};
export type NormalHttpOptions = WithDefaults<
  Omit<HttpCheckOptions, 'tls'>,
  'method' | 'path' | 'headers' | 'expectStatus' | 'reuse' | 'maxBody'
> & { readonly tls?: NormalTlsOptions };
export type NormalDnsOptions = WithDefaults<
  DnsCheckOptions,
  'type' | 'transport' | 'expectRcode' | 'recursionDesired'
>;
export type NormalExecOptions = WithDefaults<
  ExecCheckOptions,
  'dynamicWeight' | 'maxOutput' | 'env'
>;

export const TLS_DEFAULTS = { verify: true } as const;
export const TCP_DEFAULTS = { maxReply: 64 * 1024 } as const;
export const HTTP_DEFAULTS = {
  method: 'GET',
  path: '/',
  headers: {},
  expectStatus: '200-299',
  reuse: false,
  maxBody: 64 * 1024,
} as const;
export const DNS_DEFAULTS = {
  type: 'A',
  transport: 'udp',
  expectRcode: ['NOERROR'],
  recursionDesired: true,
} as const;
export const EXEC_DEFAULTS = { dynamicWeight: false, maxOutput: 4096, env: {} } as const;

export function normalTls(o: TlsOptions): NormalTlsOptions {
  return { ...o, verify: o.verify ?? TLS_DEFAULTS.verify };
}

export function normalTcp(o: TcpCheckOptions): NormalTcpOptions {
  const { tls, ...rest } = o;
  return {
    ...rest,
    maxReply: o.maxReply ?? TCP_DEFAULTS.maxReply,
    ...(tls ? { tls: normalTls(tls) } : {}),
  };
}

export function normalHttp(o: HttpCheckOptions): NormalHttpOptions {
  const { tls, ...rest } = o;
  return {
    ...rest,
    method: o.method ?? HTTP_DEFAULTS.method,
    path: o.path ?? HTTP_DEFAULTS.path,
    headers: o.headers ?? HTTP_DEFAULTS.headers,
    expectStatus: o.expectStatus ?? HTTP_DEFAULTS.expectStatus,
    reuse: o.reuse ?? HTTP_DEFAULTS.reuse,
    maxBody: o.maxBody ?? HTTP_DEFAULTS.maxBody,
    ...(tls ? { tls: normalTls(tls) } : {}),
  };
}

export function normalDns(o: DnsCheckOptions): NormalDnsOptions {
  return {
    ...o,
    type: o.type ?? DNS_DEFAULTS.type,
    transport: o.transport ?? DNS_DEFAULTS.transport,
    // Rcodes are names; the reply's is compared in capitals.
    expectRcode: (o.expectRcode ?? DNS_DEFAULTS.expectRcode).map((r) => r.toUpperCase()),
    recursionDesired: o.recursionDesired ?? DNS_DEFAULTS.recursionDesired,
  };
}

export function normalExec(o: ExecCheckOptions): NormalExecOptions {
  return {
    ...o,
    dynamicWeight: o.dynamicWeight ?? EXEC_DEFAULTS.dynamicWeight,
    maxOutput: o.maxOutput ?? EXEC_DEFAULTS.maxOutput,
    env: o.env ?? EXEC_DEFAULTS.env,
  };
}
