// What checks share: TLS settings, the status-set parser, and how a secret option is shown
// (redaction). A leaf (it imports nothing of the project). Each check's own options are declared
// in its file in checks/ (src/health/schema.ts is the vocabulary).

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

// Which options are secret: each option's declaration says (schema.ts, `secrecy`). A secret
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

/** What a redaction found: whether it replaced any value. */
interface Redaction {
  hidden: boolean;
}

function redactValue(value: unknown, secrecy: Secrecy | SecrecyTable, r?: Redaction): unknown {
  if (value === undefined || secrecy === 'public') return value;
  if (typeof secrecy === 'object') return redactTable(value as object, secrecy, r);
  if (secrecy === 'secret') return hide(r, REDACTED);
  if (secrecy === 'query') {
    const shown = typeof value === 'string' ? redactQuery(value) : REDACTED;
    return shown === value ? value : hide(r, shown);
  }
  const keys = Object.keys(value as object);
  return keys.length === 0 ? value : hide(r, Object.fromEntries(keys.map((k) => [k, REDACTED])));
}

/** `shown` in place of a value, noted in `r`. */
function hide<T>(r: Redaction | undefined, shown: T): T {
  if (r) r.hidden = true;
  return shown;
}

function redactTable(options: object, secrecy: SecrecyTable, r?: Redaction): object {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [
      k,
      // An option with no entry (only if a table was cast around the compiler) is hidden.
      redactValue(v, secrecy[k] ?? 'secret', r),
    ]),
  );
}

/** The options as they may be shown: each secret replaced as its table says. */
export function redactOptions<O extends object>(options: O, secrecy: SecrecyTable): O {
  return redactTable(options, secrecy) as O;
}

/** Whether `redactOptions` hides anything of these options (a value it replaces). */
export function hasSecrets(options: object, secrecy: SecrecyTable): boolean {
  const r = { hidden: false };
  redactTable(options, secrecy, r);
  return r.hidden;
}
