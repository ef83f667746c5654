// keepalived.conf's load-balancing part (virtual_server, virtual_server_group, SSL and every
// checker) translated into the native config's plain data, with the line each value came from;
// VRRP and global settings are keepalived's own and are left to it. keepalived's defaults are
// written out, so a converted file keeps keepalived's behaviour. Pure, apart from `include`.
import {
  addressFromBytes,
  addressToBytes,
  canonicalAddress,
  familyOf,
  prefixFromMask,
} from '../ipvs/address.js';
import type { Family } from '../ipvs/model.js';
import { HOOK_PLACEHOLDERS } from './hooks.js';
import type { SourceNote, SourceProblem, Translation } from './foreign.js';
import { formatMs, type Path } from './reader.js';

/** Files a pattern names, relative to the including file `from` (glob expansion is the caller's). */
export type IncludeFn = (pattern: string, from: string) => { file: string; text: string }[];

// ---------------------------------------------------------------------------------------------
// Words and blocks

interface Where {
  readonly line: number;
  readonly file: string;
}

interface Word extends Where {
  readonly text: string;
  /** An unquoted `{` or `}`. */
  readonly brace?: '{' | '}';
}

interface SourceLine extends Where {
  readonly words: readonly Word[];
}

/** One statement: a keyword, its arguments and, when it opens one, its block. */
interface Stmt extends Where {
  readonly key: string;
  readonly args: string[];
  block?: Stmt[];
}

/** Nested includes deeper than this are a loop (keepalived gives up too). */
const MAX_INCLUDE_DEPTH = 16;
const INCLUDES = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);
/** Variants that make a pattern matching no file an error (keepalived's include_check match). */
const MUST_MATCH = new Set(['includem', 'includew', 'includeb', 'includea']);

const ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

class Sink {
  readonly notes: SourceNote[] = [];
  readonly problems: SourceProblem[] = [];
  readonly left: SourceNote[] = [];
  constructor(readonly main: string) {}

  private file(at: Where): { file?: string } {
    return at.file === this.main ? {} : { file: at.file };
  }
  problem(at: Where, directive: string, message: string): void {
    this.problems.push({ line: at.line, ...this.file(at), directive, message });
  }
  note(path: Path, at: Where, text?: string): void {
    this.notes.push({ path, line: at.line, ...this.file(at), ...(text ? { text } : {}) });
  }
  leave(path: Path, at: Where, text: string): void {
    this.left.push({ path, line: at.line, ...this.file(at), text });
  }
}

/** Splits one line into words as keepalived does: quotes join, `#` and `!` start a comment. */
function lexLine(text: string, at: Where, sink: Sink): Word[] {
  const words: Word[] = [];
  let cur = '';
  let has = false;
  let quote: string | null = null;
  const flush = (): void => {
    if (has) words.push({ ...at, text: cur });
    cur = '';
    has = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === '\\' && i + 1 < text.length) {
        const n = text[++i] ?? '';
        if (ESCAPES[n] !== undefined) cur += ESCAPES[n];
        else if (/[0-7]/.test(n)) {
          const m = /^[0-7]{1,3}/.exec(text.slice(i)) ?? [n];
          cur += String.fromCharCode(parseInt(m[0], 8) & 0xff);
          i += m[0].length - 1;
        } else if (n === 'x' && /[0-9a-fA-F]/.test(text[i + 1] ?? '')) {
          const m = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 1)) ?? ['0'];
          cur += String.fromCharCode(parseInt(m[0], 16));
          i += m[0].length;
        } else if (n === 'c' && i + 1 < text.length) {
          cur += String.fromCharCode((text.charCodeAt(++i) & 0x1f) >>> 0);
        } else cur += n;
      } else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t') flush();
    else if (c === '#' || c === '!') break;
    else if (c === '{' || c === '}') {
      flush();
      words.push({ ...at, text: c, brace: c });
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote !== null) sink.problem(at, quote, `a ${quote} quote is not closed on this line`);
  flush();
  return words;
}

/** The lines of a file and, spliced in where they are named, of the files it includes. */
function lexFile(
  text: string,
  file: string,
  include: IncludeFn,
  sink: Sink,
  depth: number,
  out: SourceLine[],
): void {
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const at: Where = { line: i + 1, file };
    const trimmed = raw.trimStart();
    if (trimmed.startsWith('@')) {
      sink.problem(
        at,
        trimmed.split(/\s/)[0] ?? '@',
        'conditional configuration (@config-id) is not supported: write the lines this director uses',
      );
      return;
    }
    if (/^\$[A-Za-z_]\w*=/.test(trimmed)) {
      sink.problem(
        at,
        trimmed.slice(0, trimmed.indexOf('=')),
        'parameter definitions ($NAME=) are not supported: write the values out',
      );
      return;
    }
    if (/^~(SEQx?|LST)\(/.test(trimmed)) {
      sink.problem(
        at,
        trimmed.slice(0, trimmed.indexOf('(')),
        'sequence and list blocks (~SEQ, ~LST) are not supported: write the lines out',
      );
      return;
    }
    const words = lexLine(raw, at, sink);
    const first = words[0];
    if (first && !first.brace && INCLUDES.has(first.text)) {
      const pattern = words[1]?.text;
      if (pattern === undefined || words[1]?.brace) {
        sink.problem(at, first.text, 'needs a file name or pattern');
        return;
      }
      if (depth >= MAX_INCLUDE_DEPTH) {
        sink.problem(at, first.text, `includes nest deeper than ${MAX_INCLUDE_DEPTH}: a loop?`);
        return;
      }
      let found: { file: string; text: string }[];
      try {
        found = include(pattern, file);
      } catch (e) {
        sink.problem(at, first.text, `cannot read ${pattern}: ${(e as Error).message}`);
        return;
      }
      if (found.length === 0) {
        if (MUST_MATCH.has(first.text)) sink.problem(at, first.text, `${pattern} matches no file`);
        else sink.note([], at, `${first.text} ${pattern} matches no file (keepalived ignores it)`);
      }
      for (const f of found) lexFile(f.text, f.file, include, sink, depth + 1, out);
      return;
    }
    if (words.length > 0) out.push({ line: i + 1, file, words });
  });
}

/** Statements and blocks; a `{` may open on the keyword's line or the next. */
function parse(lines: readonly SourceLine[], sink: Sink): Stmt[] {
  const root: Stmt[] = [];
  const stack: { list: Stmt[]; opener?: Stmt }[] = [{ list: root }];
  let waiting: Stmt | undefined;
  for (const line of lines) {
    let cur: Stmt | undefined;
    for (const w of line.words) {
      const top = stack[stack.length - 1] ?? { list: root };
      if (w.brace === '{') {
        const opener = cur ?? waiting;
        if (!opener || opener.block) {
          sink.problem(w, '{', 'a block with no keyword before it');
          stack.push({ list: [] });
        } else {
          opener.block = [];
          stack.push({ list: opener.block, opener });
        }
        cur = undefined;
        waiting = undefined;
      } else if (w.brace === '}') {
        if (stack.length === 1) sink.problem(w, '}', 'closes no block');
        else stack.pop();
        cur = undefined;
        waiting = undefined;
      } else if (!cur) {
        cur = { key: w.text, args: [], line: w.line, file: w.file };
        top.list.push(cur);
      } else cur.args.push(w.text);
    }
    if (cur) waiting = cur;
  }
  for (const open of stack.slice(1)) {
    if (open.opener) sink.problem(open.opener, open.opener.key, 'its block is not closed');
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Values with their origin

/** A native value and the line that set it; `byDefault` when it is keepalived's default. */
interface Val {
  readonly value: unknown;
  readonly at: Where;
  readonly byDefault?: boolean;
  readonly text?: string;
}

type Fields = Map<string, Val>;

function set(
  fields: Fields,
  key: string,
  value: unknown,
  at: Where,
  text?: string,
  byDefault = false,
): void {
  fields.set(key, { value, at, ...(byDefault ? { byDefault } : {}), ...(text ? { text } : {}) });
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const BOOLS: Record<string, boolean> = {
  on: true,
  true: true,
  yes: true,
  off: false,
  false: false,
  no: false,
};

// ---------------------------------------------------------------------------------------------
// Checker settings keepalived inherits virtual server -> real server -> checker

interface Timing {
  delayLoop?: Val;
  timeout?: Val;
  retry?: Val;
  delayBeforeRetry?: Val;
  alpha?: Val;
  warmup?: Val;
  virtualhost?: Val;
}

const TIMING_KEYS: Record<string, keyof Timing> = {
  delay_loop: 'delayLoop',
  connect_timeout: 'timeout',
  retry: 'retry',
  nb_get_retry: 'retry',
  delay_before_retry: 'delayBeforeRetry',
  alpha: 'alpha',
  warmup: 'warmup',
  virtualhost: 'virtualhost',
};

/** keepalived's `delay_loop` default: 60 s. */
const DELAY_LOOP_MS = 60_000;
/** `connect_timeout`: 5 s. */
const CONNECT_TIMEOUT_MS = 5000;

/** Per checker kind: keepalived's retry and delay_before_retry defaults (ms; null: delay_loop). */
const KIND_DEFAULTS: Record<string, { retry: number; delayBeforeRetryMs: number | null }> = {
  HTTP_GET: { retry: 1, delayBeforeRetryMs: 3000 },
  SSL_GET: { retry: 1, delayBeforeRetryMs: 3000 },
  TCP_CHECK: { retry: 1, delayBeforeRetryMs: 1000 },
  SMTP_CHECK: { retry: 1, delayBeforeRetryMs: 1000 },
  DNS_CHECK: { retry: 3, delayBeforeRetryMs: null },
  MISC_CHECK: { retry: 0, delayBeforeRetryMs: 1000 },
  UDP_CHECK: { retry: 1, delayBeforeRetryMs: 1000 },
  PING_CHECK: { retry: 1, delayBeforeRetryMs: 1000 },
};

/** The native config's own defaults for keys the keepalived defaults below do not set. */
const NATIVE_DEFAULTS: Record<string, unknown> = { weight: 1, fwd: 'masq' };

/** keepalived's behaviour where it differs from the native defaults, written out in `defaults:`. */
const KA_DEFAULTS: readonly (readonly [key: string, value: unknown, text: string])[] = [
  ['scheduler', 'wlc', "keepalived's default lvs_sched"],
  ['interval', formatMs(DELAY_LOOP_MS), "keepalived's default delay_loop (60 s)"],
  [
    'down_interval',
    formatMs(DELAY_LOOP_MS),
    'keepalived checks a failed server every delay_loop too',
  ],
  [
    'fast_interval',
    '1s',
    "keepalived's default delay_before_retry (1 s; 3 s for HTTP_GET and SSL_GET, delay_loop for DNS_CHECK)",
  ],
  ['timeout', formatMs(CONNECT_TIMEOUT_MS), "keepalived's default connect_timeout (5 s)"],
  ['rise', 1, 'keepalived brings a failed server back on one good check'],
  [
    'fall',
    2,
    "keepalived's default retry 1 (3 for DNS_CHECK, 0 for MISC_CHECK): down after retry + 1 failures",
  ],
  ['jitter', 0, 'keepalived does not spread its checks after the first (warmup)'],
  [
    'initial',
    'down',
    'keepalived starts real servers up unless alpha; here a server is in once its checks pass (a deliberate difference: no dead server in the pool at start)',
  ],
  ['on_failure', 'remove', 'keepalived removes a failed server unless inhibit_on_failure'],
  [
    'drain_timeout',
    '0s',
    'keepalived deletes a failed server at once (its connections are not drained)',
  ],
];

// ---------------------------------------------------------------------------------------------
// The translation

interface CheckOut {
  readonly fields: Fields;
  readonly timing: Timing;
  readonly kind: string;
  readonly at: Where;
}

interface RsOut {
  readonly at: Where;
  readonly fields: Fields;
  readonly checks: CheckOut[];
  readonly inhibit: Val;
}

interface VsOut {
  readonly at: Where;
  readonly stmt: Stmt;
  readonly fields: Fields;
  fallback?: Fields;
  readonly servers: RsOut[];
}

/** A virtual_server_group entry, expanded. */
type GroupEntry =
  | { kind: 'address'; family: Family; address: string; port: number; at: Where }
  | { kind: 'fwmark'; fwmark: number; family?: Family; at: Where };

const LEFT_TOP: Record<string, string> = {
  global_defs: 'global settings',
  vrrp_instance: 'VRRP',
  vrrp_sync_group: 'VRRP',
  vrrp_script: 'VRRP',
  vrrp_track_process: 'VRRP',
  vrrp_garp_interface: 'VRRP',
  garp_group: 'VRRP',
  static_ipaddress: 'static addresses',
  static_routes: 'static routes',
  static_rules: 'static rules',
  linkbeat_interfaces: 'link beat',
  linkbeat_use_polling: 'link beat',
  track_file: 'tracked files (VRRP)',
  track_group: 'track groups (VRRP)',
  bfd_instance: 'BFD',
  instance: 'process settings',
  use_pid_dir: 'process settings',
  child_wait_time: 'process settings',
  namespace_with_ipsets: 'process settings',
};

export function translateKeepalived(text: string, file: string, include: IncludeFn): Translation {
  const sink = new Sink(file);
  const lines: SourceLine[] = [];
  lexFile(text, file, include, sink, 0, lines);
  const tree = parse(lines, sink);
  const t = new Translator(sink, file);
  t.top(tree);
  return t.result();
}

class Translator {
  private readonly groups = new Map<string, { at: Where; entries: GroupEntry[] }>();
  private readonly services: { stmt: Stmt }[] = [];
  private ssl: { fields: Record<string, string>; at: Where } | undefined;
  private cleanstop: Val;
  /** daemon.sync from lvs_sync_daemon, each value with its line. */
  private sync: Fields | undefined;
  private readonly out: VsOut[] = [];

  constructor(
    private readonly sink: Sink,
    private readonly main: string,
  ) {
    this.cleanstop = {
      value: true,
      at: { line: 0, file: main },
      byDefault: true,
      text: 'keepalived removes its virtual servers when it stops (unless run with --dont-release-ipvs)',
    };
  }

  private problem(at: Where, directive: string, message: string): void {
    this.sink.problem(at, directive, message);
  }

  /** Notes of the virtual server being read: given its path when it is written out. */
  private pending: { at: Where; text: string }[] = [];
  private vsNote(at: Where, text: string): void {
    this.pending.push({ at, text });
  }

  // ---- top level

  top(tree: readonly Stmt[]): void {
    for (const st of tree) {
      if (st.key === 'virtual_server') this.services.push({ stmt: st });
      else if (st.key === 'virtual_server_group') this.group(st);
      else if (st.key === 'SSL') this.sslBlock(st);
      else if (st.key === 'global_defs') this.globalDefs(st);
      else if (st.key === 'net_namespace' || st.key === 'net_namespace_ipvs')
        this.problem(
          st,
          st.key,
          'IPVS in another network namespace is not supported: run ipvs-warden in that namespace',
        );
      else if (LEFT_TOP[st.key] !== undefined || st.key.startsWith('vrrp_'))
        this.sink.leave(
          [st.key, ...st.args.slice(0, 1)],
          st,
          `left to keepalived (${LEFT_TOP[st.key] ?? 'VRRP'})`,
        );
      else this.problem(st, st.key, 'unknown keyword (keepalived reports it too)');
    }
    for (const { stmt } of this.services) this.virtualServer(stmt);
  }

  private globalDefs(st: Stmt): void {
    for (const g of st.block ?? []) {
      const path = ['global_defs', g.key];
      switch (g.key) {
        case 'lvs_timeouts':
          this.problem(
            g,
            g.key,
            'connection timeouts are not set by ipvs-warden: set them at boot with `ipvsadm --set TCP TCPFIN UDP` and remove this line',
          );
          break;
        case 'lvs_notify_fifo':
        case 'lvs_notify_fifo_script':
          this.problem(g, g.key, 'notify hooks are not supported yet');
          break;
        case 'lvs_sync_daemon':
          this.syncDaemon(g);
          break;
        case 'lvs_flush':
          this.sink.leave(
            path,
            g,
            'not done: ipvs-warden does not flush the table at start; it changes only the services it configures',
          );
          break;
        case 'lvs_flush_on_stop':
          this.cleanstop = {
            value: true,
            at: g,
            text: 'lvs_flush_on_stop: the configured services are removed on stop (not the whole table)',
          };
          break;
        case 'script_user':
        case 'enable_script_security':
          this.sink.leave(
            path,
            g,
            "left to keepalived: exec checks run as ipvs-warden's own user unless MISC_CHECK names a user",
          );
          break;
        default:
          this.sink.leave(path, g, 'left to keepalived (global settings)');
      }
    }
  }

  /**
   * `lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`: keepalived
   * runs the master sync daemon while INSTANCE is MASTER, else the backup one. ipvs-warden does
   * the same with `follow-role`, told the role by keepalived's notify script.
   */
  private syncDaemon(g: Stmt): void {
    const [iface, instance, ...rest] = g.args;
    if (iface === undefined || instance === undefined)
      return this.problem(g, g.key, 'needs an interface and a VRRP instance');
    const follow =
      `the sync daemon follows the VRRP role of ${instance}: in keepalived.conf, remove ` +
      `lvs_sync_daemon and give vrrp_instance ${instance} the line ` +
      `notify "/usr/bin/ipvs-warden role" (ipvs-warden role reads keepalived's notify arguments)`;
    const fields: Fields = new Map<string, Val>([
      ['state', { value: 'follow-role', at: g, text: follow }],
      ['interface', { value: iface, at: g }],
    ]);
    const OPTIONS: Record<string, [key: string, min: number, max: number]> = {
      id: ['sync_id', 0, 255],
      maxlen: ['max_packet_length', 1, 65507],
      port: ['port', 1, 65535],
      ttl: ['ttl', 1, 255],
    };
    for (let i = 0; i < rest.length; i += 2) {
      const word = rest[i] ?? '';
      const value = rest[i + 1];
      if (word === 'group') {
        if (value === undefined) this.problem(g, 'group', 'needs a multicast address');
        else fields.set('group', { value, at: g });
        continue;
      }
      const option = OPTIONS[word];
      if (option === undefined) {
        this.problem(g, word, 'unknown option of lvs_sync_daemon (id, maxlen, port, ttl, group)');
        continue;
      }
      const n = this.int(g, value, word, option[1], option[2]);
      if (n !== undefined) fields.set(option[0], { value: n, at: g });
    }
    this.sync = fields;
  }

  private sslBlock(st: Stmt): void {
    const fields: Record<string, string> = {};
    for (const s of st.block ?? []) {
      const v = s.args[0];
      const key = { ca: 'ca_file', certificate: 'cert_file', key: 'key_file' }[s.key];
      if (s.key === 'password')
        this.problem(
          s,
          s.key,
          'an encrypted key is not supported: decrypt it (openssl pkey) and remove the password',
        );
      else if (key === undefined) this.problem(s, s.key, 'unknown keyword of SSL');
      else if (v === undefined) this.problem(s, s.key, 'needs a file name');
      else fields[key] = v;
    }
    this.ssl = { fields, at: st };
  }

  // ---- virtual_server_group

  private group(st: Stmt): void {
    const name = st.args[0];
    if (name === undefined) return this.problem(st, st.key, 'needs a name');
    const entries: GroupEntry[] = [];
    for (const e of st.block ?? []) {
      if (e.key === 'fwmark') {
        const mark = this.int(e, e.args[0], 'fwmark', 1, 0xffffffff);
        const fam = e.args[1];
        if (mark === undefined) continue;
        if (fam !== undefined && fam !== 'inet' && fam !== 'inet6') {
          this.problem(e, 'fwmark', `family must be inet or inet6, got ${fam}`);
          continue;
        }
        entries.push({
          kind: 'fwmark',
          fwmark: mark,
          ...(fam ? { family: fam === 'inet' ? (4 as const) : (6 as const) } : {}),
          at: e,
        });
        continue;
      }
      const port = e.args[0] === undefined ? 0 : this.int(e, e.args[0], 'port', 0, 65535);
      if (port === undefined) continue;
      const addresses = this.range(e, e.key);
      for (const a of addresses ?? []) entries.push({ kind: 'address', ...a, port, at: e });
    }
    this.groups.set(name, { at: st, entries });
  }

  /** `10.0.0.1`, `10.0.0.1-10` (last part), `10.0.0.250-10.0.1.10`; at most 1024 addresses. */
  private range(at: Where, text: string): { family: Family; address: string }[] | undefined {
    if (text.includes('/')) {
      this.problem(
        at,
        text,
        'an address block (/nn) in a virtual_server_group is not supported: write it as a range FIRST-LAST',
      );
      return undefined;
    }
    const dash = text.indexOf('-');
    const first = dash < 0 ? text : text.slice(0, dash);
    const family = familyOf(first);
    const start = family && canonicalAddress(family, first);
    if (!family || !start) {
      this.problem(at, text, 'not an IPv4 or IPv6 address or range');
      return undefined;
    }
    if (dash < 0) return [{ family, address: start }];
    const tail = text.slice(dash + 1);
    let endText: string;
    if (familyOf(tail) === family) endText = tail;
    else if (family === 4 && /^\d{1,3}$/.test(tail)) endText = first.replace(/\d+$/, tail);
    else if (family === 6 && /^[0-9a-fA-F]{1,4}$/.test(tail))
      endText = first.replace(/[0-9a-fA-F]*$/, tail);
    else {
      this.problem(
        at,
        text,
        `range end ${tail} is not an address or a last ${family === 4 ? 'byte' : 'group'}`,
      );
      return undefined;
    }
    const big = (a: string): bigint =>
      addressToBytes(family, a)
        .subarray(0, family === 4 ? 4 : 16)
        .reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
    const lo = big(start);
    const hi = canonicalAddress(family, endText) === null ? -1n : big(endText);
    if (hi < lo) {
      this.problem(at, text, 'the range ends before it starts');
      return undefined;
    }
    if (hi - lo >= 1024n) {
      this.problem(at, text, 'a range of more than 1024 addresses is not expanded');
      return undefined;
    }
    const out: { family: Family; address: string }[] = [];
    const size = family === 4 ? 4 : 16;
    for (let n = lo; n <= hi; n++) {
      const bytes = new Uint8Array(size);
      let v = n;
      for (let i = size - 1; i >= 0; i--) {
        bytes[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      out.push({ family, address: addressFromBytes(family, bytes) });
    }
    return out;
  }

  // ---- small readers

  private int(at: Where, text: string | undefined, what: string, min: number, max: number) {
    if (text === undefined) {
      this.problem(at, what, 'needs a value');
      return undefined;
    }
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problem(at, what, `must be a whole number ${min}..${max}, got ${text}`);
      return undefined;
    }
    return n;
  }

  /** A <TIMER>: seconds with an optional fraction, in ms. */
  private timer(st: Stmt): number | undefined {
    const v = st.args[0];
    if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) {
      this.problem(st, st.key, `must be a number of seconds, got ${v ?? 'nothing'}`);
      return undefined;
    }
    return Math.round(Number(v) * 1000);
  }

  /** A <BOOL>, true when not given. */
  private bool(st: Stmt): boolean | undefined {
    const v = st.args[0];
    if (v === undefined) return true;
    const b = BOOLS[v.toLowerCase()];
    if (b === undefined)
      this.problem(st, st.key, `must be on, off, true, false, yes or no, got ${v}`);
    return b;
  }

  private address(
    st: Stmt,
    text: string | undefined,
  ): { family: Family; address: string } | undefined {
    const family = text === undefined ? null : familyOf(text);
    const address = family && text !== undefined ? canonicalAddress(family, text) : null;
    if (!family || !address) {
      this.problem(st, st.key, `needs an IPv4 or IPv6 address, got ${text ?? 'nothing'}`);
      return undefined;
    }
    return { family, address };
  }

  /** `NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` */
  private method(st: Stmt): { fwd: string; tunnel?: Record<string, unknown> } | undefined {
    const [m, ...rest] = st.args;
    const fwd = { NAT: 'masq', DR: 'route', TUN: 'tunnel' }[(m ?? '').toUpperCase()];
    if (!fwd) {
      this.problem(st, st.key, `must be NAT, DR or TUN, got ${m ?? 'nothing'}`);
      return undefined;
    }
    if (fwd !== 'tunnel' || rest.length === 0) return { fwd };
    const tunnel: Record<string, unknown> = {};
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i];
      if (w === 'type') {
        const type = rest[++i];
        if (type !== 'ipip' && type !== 'gue' && type !== 'gre') {
          this.problem(
            st,
            st.key,
            `tunnel type must be ipip, gue or gre, got ${type ?? 'nothing'}`,
          );
          return undefined;
        }
        tunnel.type = type;
      } else if (w === 'port') {
        const port = this.int(st, rest[++i], 'port', 1, 65535);
        if (port === undefined) return undefined;
        tunnel.port = port;
      } else if (w === 'csum') tunnel.csum = true;
      else if (w === 'remcsum') tunnel.remcsum = true;
      else if (w !== 'nocsum') {
        this.problem(st, st.key, `unknown tunnel option ${w ?? ''}`);
        return undefined;
      }
    }
    return { fwd, tunnel };
  }

  // ---- virtual_server

  private virtualServer(st: Stmt): void {
    this.pending = [];
    const [first, second] = st.args;
    const fields: Fields = new Map();
    const timing: Timing = {};
    const vs: VsOut = { at: st, stmt: st, fields, servers: [] };
    let keys: GroupEntry[] | undefined;
    let groupName: string | undefined;
    if (first === 'fwmark') {
      const mark = this.int(st, second, 'fwmark', 1, 0xffffffff);
      if (mark !== undefined) keys = [{ kind: 'fwmark', fwmark: mark, at: st }];
    } else if (first === 'group') {
      groupName = second;
      const g = second === undefined ? undefined : this.groups.get(second);
      if (!g) this.problem(st, st.key, `group ${second ?? '(no name)'} is not defined`);
      else keys = g.entries;
    } else {
      const a = this.address(st, first);
      const port = second === undefined ? 0 : this.int(st, second, 'port', 0, 65535);
      if (a && port !== undefined) keys = [{ kind: 'address', ...a, port, at: st }];
    }
    let protocol: Val | undefined;
    let persistent = false;
    let family: Family | undefined;
    let quorum: Stmt | undefined;
    let hysteresis: Stmt | undefined;
    const quorumHooks: Record<string, unknown> = {};
    let sorry: Stmt | undefined;
    let sorryMethod: Stmt | undefined;
    let sorryInhibit: Stmt | undefined;
    let inhibit: Val = { value: false, at: st, byDefault: true };
    let fwd: Val | undefined;
    let tunnel: Val | undefined;
    const flags: string[] = [];
    const realServers: Stmt[] = [];
    for (const s of st.block ?? []) {
      const k = s.key;
      const timingKey = TIMING_KEYS[k];
      if (timingKey) {
        this.timingValue(s, timingKey, timing);
        continue;
      }
      switch (k) {
        case 'lvs_sched':
        case 'lb_algo':
          if (s.args[0] === undefined) this.problem(s, k, 'needs a scheduler name');
          else set(fields, 'scheduler', s.args[0], s);
          break;
        case 'flag-1':
        case 'flag-2':
        case 'flag-3':
        case 'sh-port':
        case 'sh-fallback':
        case 'mh-port':
        case 'mh-fallback':
          flags.push(k);
          set(fields, 'sched_flags', [...flags], s);
          break;
        case 'ops':
          set(fields, 'one_packet', true, s);
          break;
        case 'lvs_method':
        case 'lb_kind': {
          const m = this.method(s);
          if (m) {
            fwd = { value: m.fwd, at: s };
            tunnel = m.tunnel ? { value: m.tunnel, at: s } : undefined;
          }
          break;
        }
        case 'persistence_engine':
          set(fields, 'pe', s.args[0] ?? '', s);
          break;
        case 'persistence_timeout': {
          if (s.args[0] === undefined) {
            set(fields, 'persistent', '6m', s, 'persistence_timeout without a value: 6 minutes');
          } else {
            const n = this.int(s, s.args[0], k, 1, 0xffffffff);
            if (n !== undefined) set(fields, 'persistent', formatMs(n * 1000), s);
          }
          persistent = true;
          break;
        }
        case 'persistence_granularity': {
          const prefix = this.granularity(s);
          if (prefix !== undefined) set(fields, 'netmask', prefix, s);
          break;
        }
        case 'protocol': {
          const p = (s.args[0] ?? '').toLowerCase();
          if (p !== 'tcp' && p !== 'udp' && p !== 'sctp')
            this.problem(s, k, `must be TCP, UDP or SCTP, got ${s.args[0] ?? 'nothing'}`);
          else protocol = { value: p, at: s };
          break;
        }
        case 'ip_family': {
          const f = s.args[0];
          if (f === 'inet') family = 4;
          else if (f === 'inet6') family = 6;
          else this.problem(s, k, `must be inet or inet6, got ${f ?? 'nothing'}`);
          break;
        }
        case 'ha_suspend':
          this.vsNote(
            s,
            "ha_suspend: not done: checks run whether or not this director holds the address (VRRP is keepalived's)",
          );
          break;
        case 'smtp_alert':
          this.vsNote(s, 'smtp_alert: no e-mail alerts; alert on the metrics instead');
          break;
        case 'snmp_name':
          if (s.args[0] !== undefined) set(fields, 'name', s.args[0], s, 'snmp_name');
          break;
        case 'omega':
          this.vsNote(s, 'omega: nothing to do: there are no notify scripts to run at shutdown');
          break;
        case 'quorum':
          quorum = s;
          break;
        case 'hysteresis':
          hysteresis = s;
          break;
        case 'quorum_up':
        case 'quorum_down':
          this.notify(
            s,
            k,
            fields,
            quorumHooks,
            'on a change of quorum, not for its first decision after a start',
          );
          break;
        case 'sorry_server':
          sorry = s;
          break;
        case 'sorry_server_lvs_method':
          sorryMethod = s;
          break;
        case 'sorry_server_inhibit':
          sorryInhibit = s;
          break;
        case 'inhibit_on_failure': {
          const b = this.bool(s);
          if (b !== undefined) inhibit = { value: b, at: s };
          break;
        }
        case 'real_server':
          realServers.push(s);
          break;
        default:
          this.problem(s, k, 'not a virtual_server keyword this translator knows');
      }
    }
    if (fwd) set(fields, 'fwd', fwd.value, fwd.at);
    if (tunnel) set(fields, 'tunnel', tunnel.value, tunnel.at);
    const isFwmark = keys?.some((k) => k.kind === 'fwmark') ?? false;
    const isAddress = keys?.some((k) => k.kind === 'address') ?? false;
    if (protocol && isFwmark && !isAddress)
      this.vsNote(protocol.at, 'protocol: ignored for a fwmark service, as keepalived does');
    if (!protocol && isAddress)
      this.problem(
        st,
        'protocol',
        'no protocol: keepalived reports this and uses UDP (2.2.7); write protocol TCP (or UDP)',
      );
    for (const k of keys ?? []) {
      if (k.kind === 'address' && k.port === 0 && !persistent)
        this.problem(
          k.at,
          'port',
          'port 0 (none given) needs persistence_timeout (keepalived reports this too)',
        );
    }
    for (const r of realServers) {
      const rs = this.realServer(r, timing, inhibit);
      if (rs) vs.servers.push(rs);
    }
    // on_failure is the virtual service's: its real servers must agree.
    const firstInhibit = vs.servers[0]?.inhibit ?? inhibit;
    for (const rs of vs.servers.slice(1)) {
      if (rs.inhibit.value !== firstInhibit.value)
        this.problem(
          rs.inhibit.byDefault || rs.inhibit.at === inhibit.at ? rs.at : rs.inhibit.at,
          'inhibit_on_failure',
          'real servers of one virtual server differ in inhibit_on_failure: on_failure is per virtual service here; give all of them the same',
        );
    }
    if (firstInhibit.value === true)
      set(
        fields,
        'on_failure',
        'quiesce',
        firstInhibit.at,
        'inhibit_on_failure: a failed server stays in the table with weight 0',
      );
    this.quorum(fields, quorum, hysteresis, sorry);
    if (sorry) {
      const fb: Fields = new Map();
      const a = this.address(sorry, sorry.args[0]);
      if (a) set(fb, 'address', a.address, sorry);
      const portText = sorry.args[1];
      if (portText !== undefined) {
        const port = this.int(sorry, portText, 'port', 0, 65535);
        if (port !== undefined) set(fb, 'port', port, sorry);
      }
      const m = sorryMethod ? this.method(sorryMethod) : undefined;
      if (m && sorryMethod) {
        if (
          m.tunnel &&
          Object.keys(m.tunnel).some((k) => k !== 'type' || m.tunnel?.type !== 'ipip')
        )
          this.problem(
            sorryMethod,
            sorryMethod.key,
            'a sorry server tunnel other than plain ipip is not supported',
          );
        set(fb, 'fwd', m.fwd, sorryMethod);
      } else if (fwd) {
        if (tunnel && !same(tunnel.value, { type: 'ipip' }))
          this.problem(
            sorry,
            'sorry_server',
            `the virtual server's tunnel settings (line ${tunnel.at.line}) cannot be given to a sorry server: say sorry_server_lvs_method`,
          );
        set(fb, 'fwd', fwd.value, fwd.at);
      }
      vs.fallback = fb;
      if (sorryInhibit)
        this.vsNote(
          sorryInhibit,
          'sorry_server_inhibit: the fallback is taken out of the table when a real server is healthy again, not kept at weight 0',
        );
    }
    for (const key of keys ?? []) this.emit(vs, key, protocol, family, groupName);
  }

  private quorum(fields: Fields, quorum?: Stmt, hysteresis?: Stmt, sorry?: Stmt): void {
    // keepalived reads both as unsigned; a healthy weight above 2^31 - 1 cannot exist (IPVS
    // weights are 32-bit signed), so larger values are refused rather than quietly capped.
    const q = quorum ? this.int(quorum, quorum.args[0], 'quorum', 1, 0x7fffffff) : 1;
    const h = hysteresis
      ? this.int(hysteresis, hysteresis.args[0], 'hysteresis', 0, 0x7fffffff)
      : 0;
    if (q === undefined || h === undefined) return;
    if (q === 1 && h === 0) {
      if (sorry)
        this.vsNote(
          sorry,
          'sorry_server: the fallback is in while no real server is healthy (keepalived: while their total weight is below quorum 1; a healthy server of weight 0 counts here)',
        );
      return;
    }
    const at = quorum ?? hysteresis;
    if (!at) return;
    set(
      fields,
      'quorum',
      { weight: q, hysteresis: h },
      at,
      `quorum ${q}${h ? `, hysteresis ${h}` : ''}: lost below a healthy weight of ${Math.max(q - h, 1)}, gained again at ${q + h}${sorry ? '; while lost the sorry server serves and the healthy servers leave, as keepalived does' : ''}`,
    );
  }

  /** `255.255.255.0` or a prefix length. */
  private granularity(s: Stmt): number | undefined {
    const v = s.args[0];
    if (v !== undefined && /^\d{1,3}$/.test(v) && Number(v) <= 128) return Number(v);
    if (v !== undefined && familyOf(v) === 4 && canonicalAddress(4, v) !== null) {
      const prefix = prefixFromMask(addressToBytes(4, v).readUInt32BE(0));
      if (prefix !== null) return prefix;
    }
    this.problem(
      s,
      s.key,
      `must be a netmask (255.255.255.0) or a prefix length, got ${v ?? 'nothing'}`,
    );
    return undefined;
  }

  private timingValue(s: Stmt, key: keyof Timing, timing: Timing): void {
    if (key === 'virtualhost') {
      if (s.args[0] === undefined) this.problem(s, s.key, 'needs a host name');
      else timing.virtualhost = { value: s.args[0], at: s };
    } else if (key === 'alpha') {
      const b = this.bool(s);
      if (b !== undefined) timing.alpha = { value: b, at: s };
    } else if (key === 'retry') {
      const n = this.int(s, s.args[0], s.key, 0, 999);
      if (n !== undefined) timing.retry = { value: n, at: s };
    } else {
      const ms = this.timer(s);
      if (ms !== undefined) timing[key] = { value: ms, at: s };
    }
  }

  // ---- real_server

  private realServer(st: Stmt, upper: Timing, vsInhibit: Val): RsOut | undefined {
    const fields: Fields = new Map();
    const timing: Timing = { ...upper };
    let inhibit = vsInhibit;
    const a = this.address(st, st.args[0]);
    if (!a) return undefined;
    set(fields, 'address', a.address, st);
    if (st.args[1] !== undefined) {
      const port = this.int(st, st.args[1], 'port', 0, 65535);
      if (port !== undefined) set(fields, 'port', port, st);
    }
    const checkers: Stmt[] = [];
    const hooks: Record<string, unknown> = {};
    for (const s of st.block ?? []) {
      const k = s.key;
      const timingKey = TIMING_KEYS[k];
      if (timingKey) {
        this.timingValue(s, timingKey, timing);
        continue;
      }
      switch (k) {
        case 'weight': {
          const w = this.int(s, s.args[0], k, 0, 0x7fffffff);
          if (w !== undefined) set(fields, 'weight', w, s);
          break;
        }
        case 'lvs_method':
        case 'lb_kind': {
          const m = this.method(s);
          if (m) {
            set(fields, 'fwd', m.fwd, s);
            if (m.tunnel) set(fields, 'tunnel', m.tunnel, s);
          }
          break;
        }
        case 'uthreshold':
        case 'lthreshold': {
          const n = this.int(s, s.args[0], k, 0, 0x7fffffff);
          if (n !== undefined)
            set(fields, k === 'uthreshold' ? 'upper_threshold' : 'lower_threshold', n, s);
          break;
        }
        case 'notify_up':
        case 'notify_down':
          this.notify(
            s,
            k === 'notify_up' ? 'server_up' : 'server_down',
            fields,
            hooks,
            'on a change between up and down, not for the first result after a start',
          );
          break;
        case 'smtp_alert':
          this.vsNote(s, 'smtp_alert: no e-mail alerts; alert on the metrics instead');
          break;
        case 'snmp_name':
          if (s.args[0] !== undefined) set(fields, 'name', s.args[0], s, 'snmp_name');
          break;
        case 'inhibit_on_failure': {
          const b = this.bool(s);
          if (b !== undefined) inhibit = { value: b, at: s };
          break;
        }
        default:
          if (KIND_DEFAULTS[k] !== undefined || k === 'FILE_CHECK' || k === 'BFD_CHECK')
            checkers.push(s);
          else this.problem(s, k, 'not a real_server keyword this translator knows');
      }
    }
    const checks: CheckOut[] = [];
    for (const c of checkers) checks.push(...this.checker(c, timing));
    this.serverTiming(st, fields, timing, checks);
    return { at: st, fields, checks, inhibit };
  }

  /** The real server's timing from its checkers': the native config times them alike. */
  private serverTiming(st: Stmt, fields: Fields, rsTiming: Timing, checks: CheckOut[]): void {
    if (checks.length === 0) {
      set(fields, 'checks', [], st, 'no checker: always up, as in keepalived');
      const alpha = rsTiming.alpha;
      if (alpha?.value === true)
        this.vsNote(alpha.at, 'alpha: no checker, so the server is up from the start');
      return;
    }
    type Pick = { ms: number; val?: Val; kind: string; at: Where };
    const pick = (
      key: string,
      list: Pick[],
      take: 'min' | 'max',
      toValue: (ms: number) => unknown,
      what: string,
    ): number => {
      const best = list.reduce((a, b) => ((take === 'min' ? b.ms < a.ms : b.ms > a.ms) ? b : a));
      const differ = list.some((x) => x.ms !== best.ms);
      const text = differ
        ? `${what}: the checkers differ (${list.map((x) => `${x.kind} line ${x.at.line}: ${x.ms}`).join(', ')}); the native config times a server's checks alike: took the ${take === 'min' ? 'lowest' : 'highest'}`
        : best.val?.text;
      // A choice between checkers is the translation's: written out, whatever the value.
      if (differ || (best.val && !best.val.byDefault))
        set(fields, key, toValue(best.ms), best.val?.at ?? best.at, text);
      else
        set(fields, key, toValue(best.ms), best.val?.at ?? best.at, text ?? best.val?.text, true);
      return best.ms;
    };
    const per = (get: (c: CheckOut) => Val | undefined): Pick[] =>
      checks.map((c) => {
        const v = get(c);
        return { ms: Number(v?.value ?? 0), ...(v ? { val: v } : {}), kind: c.kind, at: c.at };
      });
    const interval = pick(
      'interval',
      per((c) => c.timing.delayLoop),
      'min',
      formatMs,
      'delay_loop',
    );
    pick(
      'down_interval',
      per((c) => c.timing.delayLoop),
      'min',
      formatMs,
      'delay_loop',
    );
    pick(
      'fast_interval',
      per((c) => c.timing.delayBeforeRetry),
      'min',
      formatMs,
      'delay_before_retry',
    );
    pick(
      'fall',
      per((c) => c.timing.retry),
      'min',
      (n) => n + 1,
      'retry',
    );
    const timeout = pick(
      'timeout',
      per((c) => c.timing.timeout),
      'max',
      formatMs,
      'connect_timeout',
    );
    if (timeout > interval) {
      const v = fields.get('timeout');
      set(
        fields,
        'timeout',
        formatMs(interval),
        v?.at ?? st,
        `keepalived waits ${formatMs(timeout)} but the native timeout is at most the interval (delay_loop ${formatMs(interval)}): a reply slower than that fails here`,
        v?.byDefault ?? true,
      );
    }
    const alphas = checks.filter((c) => c.timing.alpha?.value === true);
    const anyAlpha = alphas[0]?.timing.alpha;
    if (anyAlpha)
      set(
        fields,
        'initial',
        'down',
        anyAlpha.at,
        checks.length > alphas.length
          ? 'alpha on one checker: the server starts down until every check passes'
          : 'alpha: the server starts down until its checks pass',
      );
    set(fields, 'rise', 1, st, undefined, true);
    for (const c of checks) {
      const w = c.timing.warmup;
      if (w && !same(w.value, c.timing.delayLoop?.value))
        this.vsNote(
          w.at,
          'warmup: not kept: the first check lands anywhere in the first interval (jitter)',
        );
    }
    set(
      fields,
      'checks',
      checks.map((c) => c.fields),
      st,
    );
  }

  // ---- checkers

  /** One checker block: its native checks (HTTP_GET: one per url) and its timing. */
  private checker(st: Stmt, rsTiming: Timing): CheckOut[] {
    const kind = st.key;
    if (kind === 'FILE_CHECK') {
      this.problem(
        st,
        kind,
        'not supported: put the server in maintenance with a flag file (daemon.maintenance_dir) instead, or an exec check that reads the file',
      );
      return [];
    }
    if (kind === 'BFD_CHECK') {
      this.problem(st, kind, "not supported: BFD is keepalived's; use a ping or tcp check");
      return [];
    }
    const timing: Timing = { ...rsTiming };
    const common: Fields = new Map();
    const own: Stmt[] = [];
    for (const s of st.block ?? []) {
      const timingKey = TIMING_KEYS[s.key];
      if (timingKey) this.timingValue(s, timingKey, timing);
      else if (s.key === 'connect_ip') {
        const a = this.address(s, s.args[0]);
        if (a) set(common, 'address', a.address, s);
      } else if (s.key === 'connect_port') {
        const p = this.int(s, s.args[0], s.key, 1, 65535);
        if (p !== undefined) set(common, 'port', p, s);
      } else if (s.key === 'bindto') {
        const a = this.address(s, s.args[0]);
        if (a) set(common, 'bind', a.address, s);
      } else if (s.key === 'bind_if' || s.key === 'bind_port' || s.key === 'fwmark') {
        this.problem(
          s,
          s.key,
          {
            bind_if: 'a probe bound to an interface is not supported: give bindto an address',
            bind_port: 'a fixed source port for probes is not supported',
            fwmark: 'marking probes with a fwmark is not supported',
          }[s.key],
        );
      } else if (s.key === 'log_all_failures') {
        this.vsNote(s, 'log_all_failures: every failed check is logged at debug level');
      } else own.push(s);
    }
    const defaults = KIND_DEFAULTS[kind] ?? { retry: 1, delayBeforeRetryMs: 1000 };
    const at: Where = st;
    timing.delayLoop ??= {
      value: DELAY_LOOP_MS,
      at,
      byDefault: true,
      text: "keepalived's default delay_loop (60 s)",
    };
    timing.retry ??= {
      value: defaults.retry,
      at,
      byDefault: true,
      text: `keepalived's default retry for ${kind}: ${defaults.retry}`,
    };
    timing.delayBeforeRetry ??= {
      value: defaults.delayBeforeRetryMs ?? timing.delayLoop.value,
      at,
      byDefault: true,
      text: `keepalived's default delay_before_retry for ${kind}${defaults.delayBeforeRetryMs === null ? ': delay_loop' : ''}`,
    };
    timing.timeout ??= {
      value: CONNECT_TIMEOUT_MS,
      at,
      byDefault: true,
      text: "keepalived's default connect_timeout (5 s)",
    };
    const make = (fields: Fields): CheckOut => ({ fields, timing, kind, at });
    const withCommon = (type: string, typeAt: Where = st): Fields => {
      const f: Fields = new Map();
      set(f, 'type', type, typeAt);
      for (const [k, v] of common) f.set(k, v);
      return f;
    };
    switch (kind) {
      case 'HTTP_GET':
      case 'SSL_GET':
        return this.http(st, own, timing, withCommon).map(make);
      case 'TCP_CHECK':
        for (const s of own) this.problem(s, s.key, 'not an option of TCP_CHECK');
        return [make(withCommon('tcp'))];
      case 'PING_CHECK': {
        for (const s of own) this.problem(s, s.key, 'not an option of PING_CHECK');
        if (common.has('port'))
          this.problem(common.get('port')?.at ?? st, 'connect_port', 'a ping has no port');
        return [make(withCommon('ping'))];
      }
      case 'SMTP_CHECK': {
        const f = withCommon('smtp');
        set(
          f,
          'helo_name',
          'smtpchecker.keepalived.org',
          st,
          "keepalived's default helo_name",
          true,
        );
        for (const s of own) {
          if (s.key === 'helo_name' && s.args[0] !== undefined) set(f, 'helo_name', s.args[0], s);
          else if (s.key === 'host')
            this.problem(
              s,
              s.key,
              'SMTP_CHECK host blocks are not supported: write one SMTP_CHECK per host, with connect_ip',
            );
          else this.problem(s, s.key, 'not an option of SMTP_CHECK');
        }
        return [make(f)];
      }
      case 'DNS_CHECK': {
        const f = withCommon('dns');
        set(f, 'name', '.', st, "keepalived's default name", true);
        set(f, 'record_type', 'SOA', st, "keepalived's default type", true);
        set(f, 'transport', 'udp', st, undefined, true);
        set(
          f,
          'expect_rcode',
          ['NOERROR'],
          st,
          'keepalived: healthy on a reply with rcode 0',
          true,
        );
        for (const s of own) {
          if (s.key === 'name' && s.args[0] !== undefined) set(f, 'name', s.args[0], s);
          else if (s.key === 'type') {
            const type = (s.args[0] ?? '').toUpperCase();
            if (['A', 'AAAA', 'CNAME', 'MX', 'NS', 'SOA', 'TXT', 'PTR', 'SRV'].includes(type))
              set(f, 'record_type', type, s);
            else
              this.problem(
                s,
                s.key,
                `type ${s.args[0] ?? '(none)'} is not supported: A, AAAA, CNAME, MX, NS, SOA, TXT, PTR or SRV`,
              );
          } else this.problem(s, s.key, 'not an option of DNS_CHECK');
        }
        return [make(f)];
      }
      case 'MISC_CHECK':
        return this.misc(st, own, timing, withCommon).map(make);
      case 'UDP_CHECK':
        return this.udp(st, own, withCommon).map(make);
      default:
        return [];
    }
  }

  private http(
    st: Stmt,
    own: readonly Stmt[],
    timing: Timing,
    withCommon: (type: string, at?: Where) => Fields,
  ): Fields[] {
    const tls = st.key === 'SSL_GET';
    let version: Val = {
      value: '1.0',
      at: st,
      byDefault: true,
      text: 'keepalived asks in HTTP/1.0 unless http_protocol',
    };
    let sni: Stmt | undefined;
    const urls: Stmt[] = [];
    for (const s of own) {
      if (s.key === 'url') urls.push(s);
      else if (s.key === 'http_protocol') {
        const v = s.args[0];
        if (v === '1.0' || v === '1.1') version = { value: v, at: s };
        else if (v === '1.0C')
          version = { value: '1.0', at: s, text: '1.0C: HTTP/1.0 on a fresh connection each time' };
        else this.problem(s, s.key, `must be 1.0, 1.0C or 1.1, got ${v ?? 'nothing'}`);
      } else if (s.key === 'fast_recovery')
        this.vsNote(
          s,
          'fast_recovery: every url is checked at every interval here, so a server comes up as soon as all pass',
        );
      else if (s.key === 'enable_sni' && tls) sni = s;
      else this.problem(s, s.key, `not an option of ${st.key}`);
    }
    if (urls.length === 0) {
      this.problem(
        st,
        st.key,
        'no url: keepalived ignores this checker (and the server would be always up)',
      );
      return [];
    }
    const out: Fields[] = [];
    for (const u of urls) {
      const f = withCommon(tls ? 'https' : 'http', u);
      const path = u.block?.find((s) => s.key === 'path');
      if (!path || path.args[0] === undefined) {
        this.problem(u, 'url', 'no path: keepalived ignores this url');
        continue;
      }
      set(f, 'path', path.args[0], path);
      let host = timing.virtualhost;
      let regex: Stmt | undefined;
      let noMatch: Stmt | undefined;
      let flags = '';
      let bad = false;
      set(f, 'expect_status', '200-299', u, "keepalived's default status_code", true);
      for (const s of u.block ?? []) {
        switch (s.key) {
          case 'path':
            break;
          case 'digest':
            if (s.args[0] === undefined) this.problem(s, s.key, 'needs an MD5 digest');
            else set(f, 'digest', s.args[0].toLowerCase(), s);
            break;
          case 'status_code':
            if (s.args.length === 0 || s.args.some((a) => !/^\d{3}(-\d{3})?$/.test(a)))
              this.problem(
                s,
                s.key,
                `must be codes or ranges (200 200-299), got ${s.args.join(' ') || 'nothing'}`,
              );
            else set(f, 'expect_status', s.args.join(','), s);
            break;
          case 'virtualhost':
            if (s.args[0] !== undefined) host = { value: s.args[0], at: s };
            break;
          case 'regex':
            regex = s;
            break;
          case 'regex_no_match':
            noMatch = s;
            break;
          case 'regex_options':
            for (const o of s.args) {
              const flag = { caseless: 'i', multiline: 'm', dotall: 's', utf: 'u' }[o];
              if (flag) flags += flags.includes(flag) ? '' : flag;
              else {
                this.problem(
                  s,
                  s.key,
                  `regex option ${o} is not supported (caseless, multiline, dotall, utf are)`,
                );
                bad = true;
              }
            }
            break;
          case 'regex_stack':
            this.vsNote(s, 'regex_stack: not needed: the regex runs in JavaScript');
            break;
          case 'regex_min_offset':
          case 'regex_max_offset':
            this.problem(
              s,
              s.key,
              'matching from an offset is not supported: anchor the regex instead',
            );
            break;
          default:
            this.problem(s, s.key, 'not an option of url');
        }
      }
      if (host) set(f, 'host', host.value, host.at);
      set(f, 'http_version', version.value, version.at, version.text, version.byDefault);
      if (regex) {
        const pattern = regex.args[0] ?? '';
        try {
          new RegExp(pattern, flags);
        } catch (e) {
          this.problem(
            regex,
            'regex',
            `not a JavaScript regular expression: ${(e as Error).message}`,
          );
          bad = true;
        }
        if (!bad)
          set(
            f,
            noMatch ? 'body_not_match' : 'body_match',
            flags ? { pattern, flags } : pattern,
            regex,
            'a PCRE2 pattern, read as a JavaScript regular expression (the same for common patterns)',
          );
      } else if (noMatch) this.problem(noMatch, noMatch.key, 'regex_no_match without a regex');
      if (tls) {
        const settings: Record<string, unknown> = { verify: false };
        if (sni) {
          if (host) settings.sni = host.value;
          else this.problem(sni, sni.key, 'enable_sni sends the virtualhost: give a virtualhost');
        }
        for (const [k, v] of Object.entries(this.ssl?.fields ?? {})) settings[k] = v;
        set(
          f,
          'tls',
          settings,
          sni ?? this.ssl?.at ?? st,
          'verify: false: keepalived does not verify the server certificate; give ca_file and verify: true to',
        );
      }
      out.push(f);
    }
    if (urls.length > 1)
      this.vsNote(
        st,
        `${st.key} with ${urls.length} urls: one check each, and the server is up only while all pass (keepalived: the checker fails when any url fails); each url is checked at every interval, not one per delay_loop in turn`,
      );
    return out;
  }

  private misc(
    st: Stmt,
    own: readonly Stmt[],
    timing: Timing,
    withCommon: (type: string) => Fields,
  ): Fields[] {
    const f = withCommon('exec');
    let path: Stmt | undefined;
    let miscTimeout: Val | undefined;
    for (const s of own) {
      switch (s.key) {
        case 'misc_path':
          path = s;
          break;
        case 'misc_timeout': {
          const ms = this.timer(s);
          if (ms !== undefined) miscTimeout = { value: ms, at: s };
          break;
        }
        case 'misc_dynamic':
          set(
            f,
            'dynamic_weight',
            true,
            s,
            'misc_dynamic: exit 2..255 sets the weight to the code less 2',
          );
          break;
        case 'user':
          if (s.args[0] === undefined) this.problem(s, s.key, 'needs a user name');
          else {
            set(
              f,
              'user',
              s.args[0],
              s,
              'running as another user needs CAP_SETUID and CAP_SETGID, which the shipped unit does not give',
            );
            if (s.args[1] !== undefined) set(f, 'group', s.args[1], s);
          }
          break;
        default:
          this.problem(s, s.key, 'not an option of MISC_CHECK');
      }
    }
    // connect_timeout is not MISC_CHECK's: its timeout is misc_timeout, delay_loop by default.
    timing.timeout = miscTimeout ?? {
      value: timing.delayLoop?.value ?? DELAY_LOOP_MS,
      at: st,
      byDefault: true,
      text: "keepalived's default misc_timeout: delay_loop",
    };
    if (!path || path.args[0] === undefined) {
      this.problem(st, st.key, 'no misc_path: keepalived ignores this checker');
      return [];
    }
    const command = this.splitCommand(path, path.args.join(' '));
    if (!command) return [];
    set(
      f,
      'command',
      command,
      path,
      "run without a shell, as ipvs-warden's user (keepalived: keepalived_script or root)",
    );
    return [f];
  }

  /**
   * notify_up/notify_down/quorum_up/quorum_down: `SCRIPT [username [groupname]]`, the script a
   * line of words as misc_path's, into `hooks` (one level's) as `hook`. The user and group are
   * the level's: two scripts of one level run as different users are refused.
   */
  private notify(
    s: Stmt,
    hook: string,
    fields: Fields,
    hooks: Record<string, unknown>,
    when: string,
  ): void {
    const [script, user, group] = s.args;
    if (script === undefined) {
      this.problem(s, s.key, 'needs a script');
      return;
    }
    const words = this.splitCommand(s, script, HOOK_PLACEHOLDERS);
    if (!words) return;
    if (!words[0]?.startsWith('/')) {
      this.problem(s, s.key, `${words[0]}: give the script's absolute path`);
      return;
    }
    const prior = Object.keys(hooks).some((k) => k !== 'user' && k !== 'group');
    if (prior && (hooks.user !== user || hooks.group !== group)) {
      const who = (u: unknown, g: unknown): string =>
        typeof u !== 'string'
          ? "ipvs-warden's user"
          : `${u}${typeof g === 'string' ? `:${g}` : ''}`;
      this.problem(
        s,
        s.key,
        `runs as ${who(user, group)}, another script here as ${who(hooks.user, hooks.group)}: the hooks of one server (or service) run as one user and group; give them the same`,
      );
      return;
    }
    hooks[hook] = words;
    if (user !== undefined) hooks.user = user;
    if (group !== undefined) hooks.group = group;
    const as =
      user === undefined
        ? "as ipvs-warden's user with no capability (keepalived: keepalived_script or root)"
        : `as ${user}${group === undefined ? '' : `:${group}`} with no capability (ipvs-warden needs CAP_SETUID and CAP_SETGID for it)`;
    set(
      fields,
      'hooks',
      { ...hooks },
      s,
      `${s.key}: run without a shell (as keepalived execs it), ${as}, killed after 10 s (keepalived sets no limit); ${when}`,
    );
  }

  /**
   * misc_path split as keepalived splits it: spaces separate words, '...' keeps one together.
   * Anything a shell would read otherwise is refused: no guess at what was meant.
   */
  private splitCommand(
    at: Stmt,
    text: string,
    placeholders: readonly string[] = ['address', 'port', 'family'],
  ): string[] | undefined {
    const words: string[] = [];
    let cur = '';
    let has = false;
    let quoted = false;
    for (const c of text) {
      if (quoted) {
        if (c === "'") quoted = false;
        else cur += c;
      } else if (c === "'") {
        quoted = true;
        has = true;
      } else if (c === ' ' || c === '\t') {
        if (has) words.push(cur);
        cur = '';
        has = false;
      } else if (/["\\$`|&;<>()*?[\]~]/.test(c)) {
        this.problem(
          at,
          at.key,
          `cannot split ${JSON.stringify(text)} safely (${c}): the command runs without a shell; put it in a script`,
        );
        return undefined;
      } else {
        cur += c;
        has = true;
      }
    }
    if (quoted) {
      this.problem(at, at.key, `a ' quote is not closed in ${JSON.stringify(text)}`);
      return undefined;
    }
    if (has) words.push(cur);
    const named = new RegExp(`\\{(${placeholders.join('|')})\\}`);
    if (words.some((w) => named.test(w))) {
      this.problem(
        at,
        at.key,
        `${placeholders.map((n) => `{${n}}`).join(', ')} would be replaced here: rename them in the script`,
      );
      return undefined;
    }
    if (words.length === 0) {
      this.problem(at, at.key, 'an empty command');
      return undefined;
    }
    return words;
  }

  private udp(st: Stmt, own: readonly Stmt[], withCommon: (type: string) => Fields): Fields[] {
    const f = withCommon('udp');
    let requireReply = false;
    let replyAt: Where = st;
    let max: Stmt | undefined;
    let payloadSet = false;
    for (const s of own) {
      switch (s.key) {
        case 'payload': {
          const hex = this.hex(s, false);
          if (hex !== undefined) set(f, 'payload_hex', hex, s);
          payloadSet = true;
          break;
        }
        case 'require_reply': {
          requireReply = true;
          replyAt = s;
          if (s.args.length > 0) {
            const hex = this.hex(s, true);
            if (hex !== undefined)
              set(
                f,
                'expect_hex',
                hex,
                s,
                'the reply must begin with these bytes (keepalived compares only as far as a shorter reply goes)',
              );
          }
          break;
        }
        case 'min_reply_length': {
          const n = this.int(s, s.args[0], s.key, 0, 65535);
          if (n) this.problem(s, s.key, 'a least reply length is not supported');
          break;
        }
        case 'max_reply_length':
          max = s;
          break;
        default:
          this.problem(s, s.key, 'not an option of UDP_CHECK');
      }
    }
    if (!payloadSet)
      this.vsNote(
        st,
        'UDP_CHECK without payload: keepalived sends random bytes; an empty datagram is sent here',
      );
    set(
      f,
      'require_reply',
      requireReply,
      replyAt,
      requireReply
        ? undefined
        : 'without require_reply keepalived counts silence as healthy; only ICMP unreachable fails',
      !requireReply,
    );
    if (requireReply) {
      const n = max ? this.int(max, max.args[0], max.key, 1, 65535) : 255;
      if (n !== undefined)
        set(
          f,
          'max_reply',
          n,
          max ?? st,
          max ? undefined : "keepalived's default max_reply_length",
          !max,
        );
    } else if (max)
      this.vsNote(max, 'max_reply_length: only read with require_reply, as keepalived does');
    return [f];
  }

  /** keepalived's free hex ("Ab12f 3 456" is AB 12 0F 03 45 06) as "ab 12 0f 03 45 06". */
  private hex(s: Stmt, wildcards: boolean): string | undefined {
    const bytes: string[] = [];
    for (const word of s.args) {
      if (!/^[0-9a-fA-FxX]+$/.test(word)) {
        this.problem(s, s.key, `not hex: ${word}`);
        return undefined;
      }
      if (/[xX]/.test(word)) {
        this.problem(
          s,
          s.key,
          wildcards ? 'X (any nibble) in require_reply is not supported' : `not hex: ${word}`,
        );
        return undefined;
      }
      for (let i = 0; i < word.length; i += 2)
        bytes.push(
          word
            .slice(i, i + 2)
            .padStart(2, '0')
            .toLowerCase(),
        );
    }
    if (bytes.length === 0) {
      this.problem(s, s.key, 'needs hex bytes');
      return undefined;
    }
    return bytes.join(' ');
  }

  // ---- output

  /** One native virtual service for one key (a group gives several). */
  private emit(
    vs: VsOut,
    key: GroupEntry,
    protocol: Val | undefined,
    ipFamily: Family | undefined,
    group: string | undefined,
  ): void {
    for (const n of this.pending)
      this.sink.note(['virtual_services', this.out.length], n.at, n.text);
    const fields: Fields = new Map();
    const groupText = group ? `one of virtual_server_group ${group}'s services` : undefined;
    if (key.kind === 'address') {
      if (protocol) set(fields, 'protocol', protocol.value, protocol.at);
      set(fields, 'address', key.address, key.at, groupText);
      set(fields, 'port', key.port, key.at);
    } else {
      set(fields, 'fwmark', key.fwmark, key.at, groupText);
      const rsFamily = vs.servers
        .map((r) => r.fields.get('address')?.value)
        .map((a) => (typeof a === 'string' ? familyOf(a) : null))
        .find((f) => f !== null);
      const family = key.family ?? ipFamily ?? rsFamily ?? 4;
      set(fields, 'family', family, key.at);
    }
    for (const [k, v] of vs.fields) fields.set(k, v);
    const vsPort = key.kind === 'address' ? key.port : 0;
    if (vs.fallback) {
      const fb = new Map(vs.fallback);
      const fbFwd = fb.get('fwd')?.value ?? 'masq';
      const fbPort = fb.get('port');
      if (fbPort && fbFwd !== 'masq' && key.kind === 'address' && fbPort.value !== vsPort)
        set(
          fb,
          'port',
          vsPort,
          fbPort.at,
          `keepalived resets ${String(fbPort.value)} to the virtual server's port: direct routing and tunnels cannot change it`,
        );
      if (!fb.has('port'))
        set(
          fb,
          'port',
          vsPort,
          fb.get('address')?.at ?? vs.at,
          vsPort ? "no port given: the virtual server's" : undefined,
        );
      fields.set('fallback', { value: fb, at: vs.at });
    }
    const vsFwd = vs.fields.get('fwd')?.value ?? 'masq';
    const servers = vs.servers.map((rs) => {
      const f = new Map(rs.fields);
      const written = f.get('port');
      const fwd = f.get('fwd')?.value ?? vsFwd;
      if (key.kind === 'fwmark' && written) {
        // keepalived clears a fwmark service's real server ports; its checks keep the port.
        set(f, 'port', 0, written.at, 'keepalived clears the port of a fwmark real server');
        const checks = f.get('checks')?.value as Fields[] | undefined;
        for (const c of checks ?? []) {
          if (!c.has('port') && c.get('type')?.value !== 'ping')
            set(c, 'port', written.value, written.at, 'the port written on real_server');
        }
      } else if (!written)
        set(f, 'port', vsPort, rs.at, vsPort ? "no port given: the virtual server's" : undefined);
      else if (fwd !== 'masq' && key.kind === 'address' && written.value !== vsPort)
        set(
          f,
          'port',
          vsPort,
          written.at,
          `keepalived resets ${String(written.value)} to the virtual server's port: direct routing and tunnels cannot change it`,
        );
      return f;
    });
    const own = new Set((vs.stmt.block ?? []).map((s) => `${s.file}:${s.line}`));
    this.hoist(fields, servers, own);
    fields.set('real_servers', { value: servers, at: vs.at });
    this.out.push({ at: vs.at, stmt: vs.stmt, fields, servers: [] });
  }

  /**
   * Settings every real server has from one line of the virtual server (or, when there are
   * several servers, by default) go on the service; `own` holds the virtual server's lines.
   */
  private hoist(vs: Fields, servers: Fields[], own: ReadonlySet<string>): void {
    const keys = [
      'fwd',
      'tunnel',
      'weight',
      'rise',
      'fall',
      'initial',
      'interval',
      'fast_interval',
      'down_interval',
      'timeout',
    ];
    for (const key of keys) {
      const vals = servers.map((s) => s.get(key));
      const first = vals[0];
      if (!first || (vs.has(key) && !same(vs.get(key)?.value, first.value))) continue;
      const all = vals.every(
        (v) =>
          v !== undefined &&
          same(v.value, first.value) &&
          (v.byDefault && first.byDefault
            ? servers.length > 1
            : !v.byDefault &&
              !first.byDefault &&
              v.at.line === first.at.line &&
              v.at.file === first.at.file &&
              own.has(`${v.at.file}:${v.at.line}`)),
      );
      if (!all) continue;
      vs.set(key, first);
      for (const s of servers) s.delete(key);
    }
    // What is keepalived's default and already in `defaults:` is not written again.
    const base = new Map<string, unknown>(KA_DEFAULTS.map(([k, v]) => [k, v]));
    for (const [k, v] of Object.entries(NATIVE_DEFAULTS)) base.set(k, v);
    for (const [k, v] of [...vs]) {
      if (v.byDefault && base.has(k) && same(base.get(k), v.value)) vs.delete(k);
    }
    for (const s of servers) {
      for (const [k, v] of [...s]) {
        if (!v.byDefault || k === 'checks') continue;
        const inherited = vs.has(k) ? vs.get(k)?.value : base.get(k);
        if (base.has(k) || vs.has(k)) if (same(inherited, v.value)) s.delete(k);
      }
    }
  }

  result(): Translation {
    const raw: Record<string, unknown> = {};
    // keepalived's own defaults: no line wrote them.
    const at1: Where = { line: 0, file: this.main };
    raw.daemon = {
      cleanstop: this.cleanstop.value,
      ...(this.sync ? { sync: this.plain(this.sync, ['daemon', 'sync']) } : {}),
    };
    this.sink.note(['daemon', 'cleanstop'], this.cleanstop.at, this.cleanstop.text);
    const defaults: Record<string, unknown> = {};
    for (const [k, v, text] of KA_DEFAULTS) {
      defaults[k] = v;
      this.sink.note(['defaults', k], at1, text);
    }
    raw.defaults = defaults;
    raw.virtual_services = this.out.map((vs, i) => this.plain(vs.fields, ['virtual_services', i]));
    return {
      raw,
      notes: this.sink.notes,
      problems: [...this.sink.problems].sort(
        (a, b) => (a.file ?? '').localeCompare(b.file ?? '') || a.line - b.line,
      ),
      left: this.sink.left,
    };
  }

  /** Fields to plain data, a note per value at its path. */
  private plain(fields: Fields, path: Path): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of fields) {
      const here = [...path, k];
      if (v.value instanceof Map) {
        out[k] = this.plain(v.value as Fields, here);
        continue;
      }
      if (Array.isArray(v.value) && v.value.every((x) => x instanceof Map)) {
        out[k] = (v.value as Fields[]).map((x, i) => this.plain(x, [...here, i]));
        if (v.text) this.sink.note(here, v.at, v.text);
        continue;
      }
      out[k] = v.value;
      this.sink.note(here, v.at, v.text);
    }
    return out;
  }
}
