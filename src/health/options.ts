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
