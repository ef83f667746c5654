// What each check type takes: its options, and the constants and parsers the config validates
// them with. A leaf (it imports nothing of the project): the config and the probes both read it,
// so the config never loads a probe, and a probe never reaches into the config.

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
}
