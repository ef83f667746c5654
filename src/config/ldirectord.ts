// ldirectord.cf -> the native config's plain data, read as ldirectord 4.x's read_config and
// ld_setup read it (/usr/sbin/ldirectord: its code, where its man page differs), with a source
// line for every value and a note wherever the meaning shifts. Pure: no DNS, no /etc/services,
// no file is looked at; a directive that cannot be honoured is a problem naming its line.
//
// Decisions, directive by directive (ldirectord's defaults are written out explicitly, so the
// converted file keeps ldirectord's behaviour):
//
// | directive                        | becomes                                                         |
// | -------------------------------- | --------------------------------------------------------------- |
// | virtual=ADDR:PORT, virtual6=[..] | address + port (+ protocol); a service name by a static table   |
// |                                  | of /etc/services names; host names refused (need DNS)           |
// | virtual=N                        | fwmark N (family 6 for virtual6=N)                              |
// | real=A[->B][:P] FWD [W] ["q","r"] [l:N] [u:N]                                                      |
// |                                  | one real server per address; gate/masq/ipip -> route/masq/      |
// |                                  | tunnel; weight; per-real request/receive -> its own checks;     |
// |                                  | l:/u: -> lower_/upper_threshold. IPv6 ranges refused (as ld)    |
// | checktype=negotiate (default)    | the check of `service` (below)                                  |
// | checktype=connect                | tcp; on a UDP service ping (as ld: check_ping)                  |
// | checktype=N                      | negotiate, with a note (N connects between negotiates dropped)  |
// | checktype=ping                   | ping, count = checkcount                                        |
// | checktype=external(-perl)        | exec [cmd, VIP, VPORT, {address}, {port}] (perl runs the file)  |
// | checktype=on / service=none      | checks: [] (always up)                                          |
// | checktype=off                    | checks: [], every real server state: maintenance               |
// | service=http/https/http_proxy    | http / https (tls verify off, as LWP) / http with proxy_url     |
// | service=pop/pops/imap/imaps      | pop3 / pop3s / imap / imaps, login+passwd -> user+password      |
// | service=smtp/submission/nntp     | smtp / submission / nntp                                        |
// | service=ldap/ldaps               | ldap/ldaps: base = request, expect_dn = receive, bind = login  |
// | service=dns                      | dns: name = request (PTR for an address), expect_answer=receive |
// | service=mysql/pgsql              | mysql/pgsql: user, password, database, query = request          |
// | service=radius/sip               | radius (secret, user, password) / sip (uri sip:LOGIN)           |
// | service=simpletcp                | tcp send/expect_regex (udp payload on a UDP service)            |
// | service=ftp                      | ftp login; request/receive: download and match                 |
// | service=oracle                   | refused: no oracle check                                        |
// | checktimeout/negotiatetimeout    | timeout: each check kind takes the one ldirectord uses for it,  |
// |                                  | with ld_setup's mutual defaults (5 s / 30 s); at most interval |
// | connecttimeout, timeout          | refused, with ldirectord's own message (4.x refuses them too)   |
// | checkinterval                    | interval = fast_interval = down_interval (per virtual: only     |
// |                                  | with fork=yes, as ldirectord; noted otherwise)                  |
// | failurecount                     | fall (rise 1: one success brings a server back)                 |
// | checkcount                       | ping's count (4.x reads it nowhere else); noted otherwise       |
// | scheduler/persistent/netmask     | scheduler / persistent (s) / netmask (prefix length)            |
// | schedflags/ops/protocol          | sched_flags / one_packet (UDP only, as ld) / protocol           |
// | quiescent (global, per virtual)  | on_failure quiesce/remove; remove deletes at once (drain 0s)    |
// | readdquiescent                   | noted: a quiesced server is always kept in the table here       |
// | fallback, fallback6              | each virtual service's fallback (fwd gate by default, weight 1) |
// | cleanstop                        | daemon.cleanstop; a per-virtual value unlike the rest refused   |
// | maintenancedir                   | daemon.maintenance_dir (host-name flag files noted)             |
// | servicename / comment            | name / a note                                                   |
// | autoreload, logfile, supervised, | noted and left: the daemon reloads on SIGHUP (`ipvs-warden      |
// | fork, monitorfile                | reload`), logs to stdout/journal, runs every check concurrently |
// | fallbackcommand                  | hooks fallback_on / fallback_off: "start"/"stop" vip:port proto |
// | emailalert, emailalertfrom,      | alerts.email: to (comma-separated), from, repeat (s), on (the   |
// | emailalertfreq, emailalertstatus,| daemon states), smtp (host, port 25, as Net::SMTP); no smtp:    |
// | smtp (global)                    | localhost:25 where ldirectord hands mail to the local mailer    |
// | emailalert, emailalertfreq,      | the service's alerts.email: to, repeat, on, smtp (over the      |
// | emailalertstatus, smtp (virtual) | global ones; `to: []` at the top carries settings only)         |
// | callback, execute, load          | refused: not supported                                          |
//
// Perl regexes (receive) are used as JavaScript ones: the common subset reads the same.
import { canonicalAddress, prefixFromMask } from '../ipvs/address.js';
import type { SourceNote, SourceProblem, Translation } from './foreign.js';
import type { Path } from './reader.js';

type Family = 4 | 6;
type Proto = 'tcp' | 'udp' | 'fwm';
type Raw = Record<string, unknown>;

/** A value with the line it was written on. */
interface At<T> {
  readonly value: T;
  readonly line: number;
}

/** ldirectord's set_defaults. */
const LD = {
  checkinterval: 10,
  checktimeout: 5,
  negotiatetimeout: 30,
  failurecount: 1,
  checkcount: 1,
  quiescent: 'no',
  cleanstop: 'yes',
} as const;

/** The /etc/services names an ldirectord.cf may use (Debian's file), by protocol. */
const SERVICES: Record<string, readonly [port: number, protos: 'tcp' | 'udp' | 'both']> = {
  'ftp-data': [20, 'tcp'],
  ftp: [21, 'tcp'],
  ssh: [22, 'tcp'],
  telnet: [23, 'tcp'],
  smtp: [25, 'tcp'],
  mail: [25, 'tcp'],
  domain: [53, 'both'],
  tftp: [69, 'udp'],
  http: [80, 'tcp'],
  www: [80, 'tcp'],
  kerberos: [88, 'both'],
  pop3: [110, 'tcp'],
  'pop-3': [110, 'tcp'],
  nntp: [119, 'tcp'],
  ntp: [123, 'udp'],
  imap2: [143, 'tcp'],
  imap: [143, 'tcp'],
  snmp: [161, 'both'],
  ldap: [389, 'both'],
  https: [443, 'both'],
  'microsoft-ds': [445, 'tcp'],
  submissions: [465, 'tcp'],
  ssmtp: [465, 'tcp'],
  smtps: [465, 'tcp'],
  syslog: [514, 'udp'],
  rtsp: [554, 'both'],
  submission: [587, 'tcp'],
  ldaps: [636, 'both'],
  rsync: [873, 'tcp'],
  imaps: [993, 'tcp'],
  pop3s: [995, 'tcp'],
  openvpn: [1194, 'both'],
  'ms-sql-s': [1433, 'tcp'],
  radius: [1812, 'both'],
  'radius-acct': [1813, 'both'],
  radacct: [1813, 'both'],
  nfs: [2049, 'both'],
  mysql: [3306, 'tcp'],
  sip: [5060, 'both'],
  'sip-tls': [5061, 'both'],
  postgresql: [5432, 'tcp'],
  postgres: [5432, 'tcp'],
  redis: [6379, 'tcp'],
  'http-alt': [8080, 'tcp'],
  webcache: [8080, 'tcp'],
};

/** ld_port_to_service / ld_service_to_port. */
const LD_SERVICE_PORTS: Record<string, number> = {
  ftp: 21,
  smtp: 25,
  dns: 53,
  http: 80,
  pop: 110,
  nntp: 119,
  imap: 143,
  ldap: 389,
  https: 443,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pops: 995,
  oracle: 1521,
  radius: 1812,
  http_proxy: 3128,
  mysql: 3306,
  sip: 5060,
  pgsql: 5432,
};

const LD_SERVICES = [
  'dns',
  'ftp',
  'http',
  'https',
  'http_proxy',
  'imap',
  'imaps',
  'ldap',
  'ldaps',
  'nntp',
  'mysql',
  'none',
  'oracle',
  'pop',
  'pops',
  'radius',
  'pgsql',
  'sip',
  'smtp',
  'submission',
  'simpletcp',
];

const CHECKTYPES = ['connect', 'negotiate', 'ping', 'off', 'on', 'external', 'external-perl'];
const FWD: Record<string, string> = { gate: 'route', masq: 'masq', ipip: 'tunnel' };

/** Not supported. */
const NOT_YET: Record<string, string> = {
  callback:
    'not supported yet: ipvs-warden runs no command when the config changes (remove the line to run without it)',
  execute:
    'not supported: run one ipvs-warden per config file (or merge the files) instead of ldirectord starting another instance',
  load: 'not supported: ldirectord parses it but never uses it; remove the line',
};

/** Perl's system(STRING) uses /bin/sh -c when the string has one of these, else splits on spaces. */
const PERL_SHELL_CHARS = /[$&*(){}[\]'";\\|?<>~`\n]/;

/**
 * ldirectord's fallbackcommand with its arguments (constants of the service) appended, as
 * do_fallback_command builds the line: a list when Perl would exec it directly and its
 * program is an absolute path, else a shell line.
 */
function fallbackHook(command: string, args: readonly string[]): unknown {
  const words = command.trim().split(/\s+/);
  if (!PERL_SHELL_CHARS.test(command) && words[0]?.startsWith('/')) return [...words, ...args];
  return { shell: `${command} ${args.join(' ')}` };
}

/** A virtual block as read: the directives' last values, with their lines. */
interface VirtualRead {
  readonly line: number;
  readonly family: Family;
  /** Address and the port as written (a number or a service name), or a fwmark. */
  readonly host?: string | undefined;
  readonly portText?: string | undefined;
  readonly fwm?: number;
  readonly reals: At<string>[];
  readonly set: Map<string, At<string>>;
  fallback?: At<FallbackRead>;
  /** Lines of directives that only make notes (comment, monitorfile). */
  readonly noted: { line: number; text: string }[];
}

interface FallbackRead {
  readonly server: string;
  readonly port: string | undefined;
  readonly fwd: string;
}

interface RealRead {
  readonly address: string;
  readonly port: number | undefined;
  readonly fwd: string;
  readonly weight: number | undefined;
  readonly request?: string;
  readonly receive?: string;
  readonly lower?: number;
  readonly upper?: number;
}

class Out {
  readonly notes: SourceNote[] = [];
  readonly problems: SourceProblem[] = [];
  constructor(readonly file: string) {}
  problem(line: number, directive: string, message: string): void {
    // A real server's check and the service's are built alike: one problem said once.
    if (this.problems.some((p) => p.line === line && p.message === message)) return;
    this.problems.push({ line, directive, message });
  }
  note(path: Path, line: number, text?: string): void {
    this.notes.push(text === undefined ? { path, line } : { path, line, text });
  }
}

/** Perl's `$x =~ /(\d+)/ && $1`: the first run of digits, if it is not 0. */
function firstCount(text: string): number | undefined {
  const m = /(\d+)/.exec(text);
  if (!m?.[1]) return undefined;
  const n = Number(m[1]);
  return n > 0 ? n : undefined;
}

/** ld_getservbyname: a number 0..65535, or a name of the table for the protocol. */
function servicePort(text: string, proto: 'tcp' | 'udp' | ''): number | undefined {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    return n < 65536 ? n : undefined;
  }
  const entry = SERVICES[text];
  if (!entry) return undefined;
  const [port, protos] = entry;
  return proto === '' || protos === 'both' || protos === proto ? port : undefined;
}

const PORT_HINT =
  'write the port number (service names are read from a table of the common /etc/services names, not the file)';

/** ld_gethostbyname for a literal: the address, or why not. */
function literalAddress(text: string, family: Family): string | { problem: string } {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const address = canonicalAddress(family, bare);
  if (address) return address;
  const other = canonicalAddress(family === 4 ? 6 : 4, bare);
  if (other)
    return {
      problem: `${text} is an IPv${family === 4 ? 6 : 4} address in an IPv${family} service (ldirectord cannot resolve it either)`,
    };
  return {
    problem: `${text} is a host name: resolving it needs DNS, which a config is not read with; write its address`,
  };
}

function seconds(n: number): string {
  return `${n}s`;
}

/** The directive name at the start of a line, for problems. */
function directiveOf(text: string): string {
  return /^\s*([A-Za-z0-9_-]+)/.exec(text)?.[1] ?? text.trim().slice(0, 20);
}

const ALERT_STATES = ['starting', 'running', 'stopping', 'reloading'];

/**
 * An email directive's value as ldirectord reads it (read_emailalert, parse_emailalertstatus,
 * the emailalertfreq and smtp patterns), or undefined after a problem.
 */
function readEmailDirective(
  name: string,
  text: string,
  line: number,
  out: Out,
): string | undefined {
  switch (name) {
    case 'emailalert': {
      const addr = text.replace(/^"([^"]*)"$/, '$1');
      if (addr === '') out.problem(line, name, 'no email address specified');
      return addr === '' ? undefined : addr;
    }
    case 'emailalertfreq': {
      const d = /^(\d+)/.exec(text)?.[1];
      if (d === undefined) out.problem(line, name, 'invalid email alert frequency');
      return d;
    }
    case 'emailalertstatus': {
      const words = text.split(/\s*,\s*/);
      for (const w of words) {
        if (w === 'none' || w === 'all' || ALERT_STATES.includes(w)) continue;
        out.problem(line, name, `invalid email alert status at: "${w}"`);
        return undefined;
      }
      if (words.includes('none') && words.length > 1) {
        out.problem(line, name, 'invalid email alert status: "none" specified with others');
        return undefined;
      }
      return words.join(',');
    }
    case 'emailalertfrom':
      if (text === '') out.problem(line, name, 'no email from address specified');
      return text === '' ? undefined : text;
    default: {
      // smtp: a host name or address; Net::SMTP connects to its port 25.
      const host = /^([0-9A-Za-z._+-]+)/.exec(text)?.[1];
      if (host === undefined) out.problem(line, name, 'invalid SMTP server address');
      return host === undefined
        ? undefined
        : `${host}${text.slice(host.length) ? `\0${text}` : ''}`;
    }
  }
}

/** emailalertstatus as `on`: the states, or none. */
function alertStates(text: string): string[] | 'none' {
  const words = text.split(',');
  if (words.includes('none')) return 'none';
  if (words.includes('all')) return [...ALERT_STATES];
  return ALERT_STATES.filter((w) => words.includes(w));
}

/** The email settings one level (global, or a virtual block) writes, with their notes. */
function emailSettings(get: (name: string) => At<string> | undefined, path: Path, out: Out): Raw {
  const e: Raw = {};
  const put = (key: string, value: unknown, at: At<string>, note?: string): void => {
    e[key] = value;
    out.note([...path, key], at.line, note);
  };
  const to = get('emailalert');
  if (to)
    put(
      'to',
      to.value.split(',').map((a) => a.trim()),
      to,
    );
  const from = get('emailalertfrom');
  if (from) put('from', from.value, from);
  const freq = get('emailalertfreq');
  if (freq)
    put(
      'repeat',
      seconds(Number(freq.value)),
      freq,
      Number(freq.value) > 0
        ? 'mailed again while a real server stays down ("Inaccessible real server"), on a timer of its own rather than after a check round'
        : undefined,
    );
  const status = get('emailalertstatus');
  if (status) put('on', alertStates(status.value), status);
  const smtp = get('smtp');
  if (smtp) {
    const [host = '', written] = smtp.value.split('\0');
    put(
      'smtp',
      `${host}:25`,
      smtp,
      written === undefined
        ? undefined
        : `ldirectord reads the host name alone (${host}) and Net::SMTP connects to port 25; so does this`,
    );
  }
  return e;
}

/** Reads the file as ldirectord's read_config does: globals, and virtual blocks. */
function read(text: string, out: Out) {
  const globals = new Map<string, At<string>>();
  const fallbacks: { 4?: At<FallbackRead>; 6?: At<FallbackRead> } = {};
  const virtuals: VirtualRead[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let i = 0;
  const next = (): At<string> | undefined => {
    const t = lines[i];
    if (t === undefined) return undefined;
    i++;
    return { value: t, line: i };
  };
  let pending = next();
  while (pending) {
    const { value: linedata, line } = pending;
    pending = undefined;
    const vm = /^virtual(6)?\s*=\s*(.*)/s.exec(linedata);
    if (vm) {
      const v = readVirtualHeader(vm[1] ? 6 : 4, vm[2] ?? '', line, out);
      virtuals.push(v);
      for (let l = next(); l; l = next()) {
        if (/^\s*#/.test(l.value)) continue;
        const stripped = l.value.replace(/#.*/s, '').replace(/\t/g, '    ');
        const m = /^ {4,}(.+)/s.exec(stripped);
        if (!m?.[1]) {
          pending = l;
          break;
        }
        readVirtualDirective(v, m[1], l.line, l.value, out);
      }
      continue;
    }
    if (!/^\s*$/.test(linedata) && !/^\s*#/.test(linedata))
      readGlobal(linedata, line, globals, fallbacks, out);
    pending = next();
  }
  return { globals, fallbacks, virtuals };
}

function readVirtualHeader(family: Family, vattr: string, line: number, out: Out): VirtualRead {
  const base = { line, family, reals: [], set: new Map<string, At<string>>(), noted: [] };
  let m: RegExpExecArray | null;
  if (family === 4 && (m = /^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)/.exec(vattr)))
    return { ...base, host: m[1], portText: m[2] };
  if ((m = /^([0-9A-Za-z._+-]+):([0-9A-Za-z_-]+)/.exec(vattr)))
    return { ...base, host: m[1], portText: m[2] };
  if ((m = /^(\d+)/.exec(vattr))) return { ...base, fwm: Number(m[1]) };
  if ((m = /^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z_-]+)/.exec(vattr))) {
    if (family === 4) {
      out.problem(
        line,
        'virtual',
        'cannot specify an IPv6 address here. please use "virtual6" instead.',
      );
      return base;
    }
    if (!canonicalAddress(6, m[1] ?? '')) {
      out.problem(line, 'virtual6', 'invalid ipv6 address for virtual server');
      return base;
    }
    return { ...base, host: `[${m[1]}]`, portText: m[2] };
  }
  out.problem(line, family === 4 ? 'virtual' : 'virtual6', 'invalid address for virtual server');
  return base;
}

/** parse_fallback: `host[:port] [gate|masq|ipip]`. */
function parseFallback(
  text: string,
  line: number,
  directive: string,
  out: Out,
): FallbackRead | undefined {
  let parse = text;
  let fwd: string | undefined;
  const m = /(\S+)(\s+(\S+))?\s*$/s.exec(parse);
  if (m) {
    fwd = m[3];
    parse = m[1] ?? '';
  }
  const pm = /(:(\d+|[A-Za-z0-9_-]+))?$/.exec(parse);
  const port = pm?.[2];
  const server = parse.replace(/(:(\d+|[A-Za-z0-9_-]+))?$/, '');
  if (fwd !== undefined && !(fwd in FWD)) {
    out.problem(line, directive, 'forward method must be gate, masq or ipip');
    return undefined;
  }
  return { server, port, fwd: fwd ?? 'gate' };
}

const YES_NO = new Set(['yes', 'no']);

function readGlobal(
  linedata: string,
  line: number,
  g: Map<string, At<string>>,
  fallbacks: { 4?: At<FallbackRead>; 6?: At<FallbackRead> },
  out: Out,
): void {
  const set = (name: string, value: string): void => void g.set(name, { value, line });
  const counts: Record<string, string> = {
    checktimeout: 'invalid check timeout value',
    negotiatetimeout: 'invalid negotiate timeout value',
    checkinterval: 'invalid check interval value',
    checkcount: 'invalid check count value',
    failurecount: 'invalid failure count value',
  };
  const yesNo = ['autoreload', 'fork', 'quiescent', 'readdquiescent', 'cleanstop'];
  let m: RegExpExecArray | null;
  for (const [name, message] of Object.entries(counts)) {
    if ((m = new RegExp(`^${name}\\s*=\\s*(.*)`, 's').exec(linedata))) {
      const n = firstCount(m[1] ?? '');
      if (n === undefined) out.problem(line, name, message);
      else set(name, String(n));
      return;
    }
  }
  if (/^connecttimeout\s*=\s*(.*)/s.test(linedata))
    return out.problem(
      line,
      'connecttimeout',
      'connecttimeout directive deprecated in favour of negotiatetimeout (ldirectord refuses it too: write negotiatetimeout)',
    );
  if ((m = /^fallback(6)?\s*=\s*(.*)/s.exec(linedata))) {
    const directive = m[1] ? 'fallback6' : 'fallback';
    const fb = parseFallback(m[2] ?? '', line, directive, out);
    if (fb) fallbacks[m[1] ? 6 : 4] = { value: fb, line };
    return;
  }
  // As ldirectord: the global value is taken as written, quotes and all (its shell reads them).
  if ((m = /^fallbackcommand\s*=\s*(.*)/s.exec(linedata))) {
    if (!m[1]) return out.problem(line, 'fallbackcommand', 'invalid fallback command');
    return set('fallbackcommand', m[1]);
  }
  for (const name of yesNo) {
    if ((m = new RegExp(`^${name}\\s*=\\s*(.*)`, 's').exec(linedata))) {
      if (!YES_NO.has(m[1] ?? '')) out.problem(line, name, `${name} must be 'yes' or 'no'`);
      else set(name, m[1] ?? '');
      return;
    }
  }
  if (/^callback\s*=\s*"(.*)"/s.test(linedata))
    return out.problem(line, 'callback', NOT_YET.callback ?? '');
  if ((m = /^logfile\s*=\s*"(.*)"/s.exec(linedata))) return set('logfile', m[1] ?? '');
  if (/^execute\s*=\s*(.*)/s.test(linedata))
    return out.problem(line, 'execute', NOT_YET.execute ?? '');
  if (/^supervised/.test(linedata)) {
    m = /^supervised\s*=\s*(.*)/s.exec(linedata);
    if (m && YES_NO.has(m[1] ?? '')) return set('supervised', m[1] ?? '');
    if (/^supervised\s*$/.test(linedata)) return set('supervised', 'yes');
    return out.problem(line, 'supervised', "supervised must be 'yes' or 'no'");
  }
  if ((m = /^(emailalert(?:freq|status|from)?|smtp)\s*=\s*(.*)/s.exec(linedata))) {
    const value = readEmailDirective(m[1] ?? '', m[2] ?? '', line, out);
    if (value !== undefined) set(m[1] ?? '', value);
    return;
  }
  if ((m = /^maintenancedir\s*=\s*(.*)/s.exec(linedata))) {
    if (!m[1]) return out.problem(line, 'maintenancedir', 'maintenance directory not specified');
    return set('maintenancedir', m[1]);
  }
  if (/^timeout\s*=\s*(.*)/s.test(linedata))
    return out.problem(
      line,
      'timeout',
      'timeout directive deprecated in favour of checktimeout and negotiatetimeout (ldirectord refuses it too)',
    );
  const indented = /^\s+\S/.test(linedata)
    ? ' (an indented line outside a virtual block: a blank line ends the block before it)'
    : '';
  out.problem(line, directiveOf(linedata), `Unknown command ${linedata.trim()}${indented}`);
}

function readVirtualDirective(
  v: VirtualRead,
  rcmd: string,
  line: number,
  linedata: string,
  out: Out,
): void {
  const set = (name: string, value: string): void => void v.set.set(name, { value, line });
  const fail = (name: string, message: string): void => out.problem(line, name, message);
  let m: RegExpExecArray | null;
  if ((m = /^(real(6)?)\s*=\s*(.*)/s.exec(rcmd))) {
    if ((v.family === 4) === (m[2] !== undefined))
      return fail(
        m[1] ?? 'real',
        `cannot specify "${m[1]}" here.  please use "real${v.family === 4 ? '' : '6'}" instead`,
      );
    v.reals.push({ value: m[3] ?? '', line });
    return;
  }
  const quoted: Record<string, string> = {
    request: 'no request string specified',
    receive: 'invalid receive string',
    login: 'invalid login string',
    passwd: 'invalid password',
    database: 'invalid database',
    secret: 'invalid secret',
    load: 'invalid string for load testing',
  };
  for (const [name, message] of Object.entries(quoted)) {
    if ((m = new RegExp(`^${name}\\s*=\\s*"(.*)"`, 's').exec(rcmd))) {
      if (!m[1]) return fail(name, message);
      if (name === 'load') return fail(name, NOT_YET.load ?? '');
      const value = name === 'request' && !m[1].startsWith('/') ? `/${m[1]}` : m[1];
      return set(name, value);
    }
  }
  if ((m = /^checktype\s*=\s*(.*)/s.exec(rcmd))) {
    const value = m[1] ?? '';
    const digits = /(\d+)/.exec(value);
    if (digits) return set('checktype', digits[1] ?? '0');
    const word = /([\w-]+)/.exec(value)?.[1];
    if (word && CHECKTYPES.includes(word)) return set('checktype', word);
    return fail(
      'checktype',
      'checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number',
    );
  }
  if ((m = /^checkcommand\s*=\s*"(.*)"/s.exec(rcmd) ?? /^checkcommand\s*=\s*(.*)/s.exec(rcmd))) {
    if (!m[1]) return fail('checkcommand', 'invalid check command');
    return set('checkcommand', m[1]);
  }
  const counts: Record<string, string> = {
    checktimeout: 'invalid check timeout',
    negotiatetimeout: 'invalid negotiate timeout',
    checkcount: 'invalid check count',
    failurecount: 'invalid failure count',
    checkinterval: 'invalid checkinterval',
  };
  for (const [name, message] of Object.entries(counts)) {
    if ((m = new RegExp(`^${name}\\s*=\\s*(.*)`, 's').exec(rcmd))) {
      const n = firstCount(m[1] ?? '');
      return n === undefined ? fail(name, message) : set(name, String(n));
    }
  }
  if (/^connecttimeout\s*=/.test(rcmd))
    return fail(
      'connecttimeout',
      'connecttimeout directive deprecated in favour of negotiatetimeout (ldirectord refuses it too: write negotiatetimeout)',
    );
  if ((m = /^checkport\s*=\s*(.*)/s.exec(rcmd))) {
    const d = /(\d+)/.exec(m[1] ?? '')?.[1];
    if (d === undefined) return fail('checkport', 'invalid port');
    if (Number(d) < 1 || Number(d) > 65535)
      return fail('checkport', 'checkport must be in range 1..65536');
    return set('checkport', d);
  }
  if ((m = /^scheduler\s*=\s*(.*)/s.exec(rcmd))) {
    const s = /([a-z]+)/.exec(m[1] ?? '')?.[1];
    if (!s) return fail('scheduler', 'invalid scheduler, should be only lowercase letters (a-z)');
    return set('scheduler', s);
  }
  if ((m = /^persistent\s*=\s*(.*)/s.exec(rcmd))) {
    const d = /(\d+)/.exec(m[1] ?? '')?.[1];
    return d === undefined
      ? fail('persistent', 'invalid persistent timeout')
      : set('persistent', d);
  }
  if ((m = /^schedflags\s*=\s*(.*)/s.exec(rcmd))) {
    const f = /(\S+)/.exec(m[1] ?? '')?.[1];
    return f === undefined ? fail('schedflags', 'invalid sched-flags') : set('schedflags', f);
  }
  if ((m = /^netmask\s*=\s*(.*)/s.exec(rcmd))) {
    const val = m[1] ?? '';
    if (v.family === 6) {
      if (!/^\d+$/.test(val) || Number(val) < 1 || Number(val) > 128)
        return fail('netmask', 'invalid netmask: a prefix length between 1 and 128 is required');
    } else if (!/^\d+\.\d+\.\d+\.\d+$/.test(val))
      return fail('netmask', 'invalid netmask: dotted quad notation is required');
    return set('netmask', val);
  }
  if ((m = /^protocol\s*=\s*(.*)/s.exec(rcmd))) {
    const p = /(\w+)/.exec(m[1] ?? '')?.[1];
    if (!p) return fail('protocol', 'invalid protocol');
    if (v.fwm !== undefined) {
      if (p !== 'fwm')
        return fail(
          'protocol',
          'protocol must be fwm if the virtual service is a fwmark (a number)',
        );
      return;
    }
    if (p !== 'tcp' && p !== 'udp')
      return fail(
        'protocol',
        'protocol must be tcp or udp if the virtual service is an address and port',
      );
    return set('protocol', p);
  }
  if ((m = /^ops\s*=\s*(.*)/s.exec(rcmd))) {
    if (!YES_NO.has(m[1] ?? '')) return fail('ops', "ops must be 'yes' or 'no'");
    return set('ops', m[1] ?? '');
  }
  if ((m = /^service\s*=\s*(.*)/s.exec(rcmd))) {
    const s = /(\w+)/.exec(m[1] ?? '')?.[1];
    if (!s || !LD_SERVICES.includes(s))
      return fail(
        'service',
        'service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission',
      );
    return set('service', s);
  }
  if ((m = /^httpmethod\s*=\s*(.*)/s.exec(rcmd))) {
    const w = /(\w+)/.exec(m[1] ?? '')?.[1]?.toUpperCase();
    if (w !== 'GET' && w !== 'HEAD') return fail('httpmethod', 'httpmethod must be GET or HEAD');
    return set('httpmethod', w);
  }
  if ((m = /^virtualhost\s*=\s*(.*)/s.exec(rcmd)))
    return set('virtualhost', /"?([^"]*)"?/.exec(m[1] ?? '')?.[1] ?? '');
  if ((m = /^(fallback(6)?)\s*=\s*(.*)/s.exec(rcmd))) {
    const directive = m[1] ?? 'fallback';
    if ((v.family === 4) === (m[2] !== undefined))
      return fail(
        directive,
        `cannot specify "${directive}" here.  please use "fallback${v.family === 4 ? '' : '6'}" instead`,
      );
    const fb = parseFallback(m[3] ?? '', line, directive, out);
    if (fb) v.fallback = { value: fb, line };
    return;
  }
  if (
    (m = /^fallbackcommand\s*=\s*"(.*)"/s.exec(rcmd) ?? /^fallbackcommand\s*=\s*(.*)/s.exec(rcmd))
  ) {
    if (!m[1]) return fail('fallbackcommand', 'invalid fallback command');
    return set('fallbackcommand', m[1]);
  }
  if ((m = /^(quiescent|cleanstop)\s*=\s*(.*)/s.exec(rcmd))) {
    const name = m[1] ?? '';
    if (!YES_NO.has(m[2] ?? '')) return fail(name, `${name} must be 'yes' or 'no'`);
    return set(name, m[2] ?? '');
  }
  // As ldirectord: a virtual block may not set emailalertfrom (an unknown command there).
  if ((m = /^(emailalert(?:freq|status)?|smtp)\s*=\s*(.*)/s.exec(rcmd))) {
    const value = readEmailDirective(m[1] ?? '', m[2] ?? '', line, out);
    if (value !== undefined) set(m[1] ?? '', value);
    return;
  }
  if ((m = /^monitorfile\s*=\s*"(.*)"/s.exec(rcmd) ?? /^monitorfile\s*=\s*(.*)/s.exec(rcmd))) {
    v.noted.push({
      line,
      text: `monitorfile ${m[1] ?? ''} is not written: each check result is in the debug log (daemon.log_level: debug) and /events`,
    });
    return;
  }
  if ((m = /^servicename\s*=\s*(.*)/s.exec(rcmd))) return set('servicename', m[1] ?? '');
  if ((m = /^comment\s*=\s*(.*)/s.exec(rcmd))) {
    v.noted.push({ line, text: `comment: ${m[1] ?? ''}` });
    return;
  }
  fail(directiveOf(rcmd), `Unknown command "${linedata.trim()}"`);
}

/** _ld_read_config_real_resolve + add_real_server(_range): the servers a `real=` line makes. */
function parseReal(text: string, line: number, family: Family, out: Out): RealRead[] {
  const directive = family === 4 ? 'real' : 'real6';
  const m =
    /(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\])(->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\]))?(:(\d+|[A-Za-z0-9_-]+))?\s+(.*)/s.exec(
      text,
    );
  if (!m) {
    out.problem(line, directive, 'invalid address for real server (wrong format)');
    return [];
  }
  const [, ip1 = '', , ip2, , portText, flagsText = ''] = m;
  const first = literalAddress(ip1, family);
  if (typeof first !== 'string') {
    out.problem(line, directive, `invalid address (${ip1}) for real server: ${first.problem}`);
    return [];
  }
  let port: number | undefined;
  if (portText !== undefined) {
    port = servicePort(portText, '');
    if (port === undefined) {
      out.problem(line, directive, `invalid port (${portText}) for real server: ${PORT_HINT}`);
      return [];
    }
    if (port === 0) port = undefined;
  }
  const flags = parseRealFlags(flagsText, line, directive, out);
  if (!flags) return [];
  if (ip2 === undefined) return [{ address: first, port, ...flags }];
  if (family === 6) {
    out.problem(line, directive, 'Address range for IPv6 is not supported yet (as in ldirectord)');
    return [];
  }
  const last = literalAddress(ip2, family);
  if (typeof last !== 'string') {
    out.problem(line, directive, `invalid address (${ip2}) for real server: ${last.problem}`);
    return [];
  }
  const toInt = (a: string): number => a.split('.').reduce((n, part) => n * 256 + Number(part), 0);
  const from = toInt(first);
  const to = toInt(last);
  if (from > to) {
    out.problem(
      line,
      directive,
      `Invalid Range: ${first}-${last}: First value must be greater than or equal to the second value`,
    );
    return [];
  }
  if (to - from >= 65536) {
    out.problem(line, directive, `range ${first}->${last} holds more than 65536 addresses`);
    return [];
  }
  const servers: RealRead[] = [];
  for (let n = from; n <= to; n++) {
    const address = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    servers.push({ address, port, ...flags });
  }
  return servers;
}

function parseRealFlags(
  text: string,
  line: number,
  directive: string,
  out: Out,
): Omit<RealRead, 'address' | 'port'> | undefined {
  const m = /(\w+)(.*)/s.exec(text);
  if (!m?.[1] || !(m[1] in FWD)) {
    out.problem(line, directive, 'forward method must be gate, masq or ipip');
    return undefined;
  }
  const fwd = m[1];
  let flags = m[2] ?? '';
  let weight: number | undefined;
  let request: string | undefined;
  let receive: string | undefined;
  let lower: number | undefined;
  let upper: number | undefined;
  let f: RegExpExecArray | null;
  if ((f = /\s+(\d+)(.*)/s.exec(flags))) {
    weight = Number(f[1]);
    flags = f[2] ?? '';
  }
  if ((f = /\s+"(.*)"[, ]\s*"(.*)"(.*)/s.exec(flags))) {
    request = f[1]?.startsWith('/') ? f[1] : `/${f[1] ?? ''}`;
    receive = f[2] ?? '';
    flags = f[3] ?? '';
  }
  if ((f = /\s+l:(\d+)(.*)/s.exec(flags))) {
    lower = Number(f[1]);
    flags = f[2] ?? '';
  }
  if ((f = /\s+u:(\d+)(.*)/s.exec(flags))) {
    upper = Number(f[1]);
    flags = f[2] ?? '';
  }
  if (/\S/.test(flags)) {
    out.problem(line, directive, `Invalid real server line, around "${flags}"`);
    return undefined;
  }
  const r: { -readonly [K in keyof RealRead]?: RealRead[K] } = { fwd, weight };
  if (request !== undefined) r.request = request;
  if (receive !== undefined) r.receive = receive;
  if (lower !== undefined) r.lower = lower;
  if (upper !== undefined) r.upper = upper;
  return r as Omit<RealRead, 'address' | 'port'>;
}

/** The translation of one virtual block's effective settings. */
interface Effective {
  readonly v: VirtualRead;
  readonly index: number;
  readonly path: Path;
  readonly proto: Proto;
  readonly service: string;
  readonly serviceLine: number | undefined;
  readonly checktype: string;
  readonly checktypeLine: number | undefined;
  readonly address?: string;
  readonly port: number;
  readonly get: (name: string) => At<string> | undefined;
}

/** A check and the lines its options came from (for notes). */
interface CheckOut {
  readonly check: Raw | null;
  /** Options to their source lines. */
  readonly lines: Record<string, number>;
  /** Which of checktimeout/negotiatetimeout the check runs under; min: both bound it. */
  readonly timeout: 'check' | 'negotiate' | 'min' | 'none';
  readonly notes: { line: number; text: string }[];
}

/** A Perl `s/\\n/\n/g` string as a tcp check's `send` (only `\n` was an escape for ldirectord). */
function sendText(request: string): string {
  return request
    .split('\\n')
    .map((part) => part.replace(/\\/g, '\\\\'))
    .join('\\n');
}

function buildCheck(
  e: Effective,
  request: string,
  receive: string,
  rport: number | undefined,
  reqLine: number | undefined,
  out: Out,
): CheckOut {
  const lines: Record<string, number> = {};
  const notes: { line: number; text: string }[] = [];
  const checkport = e.get('checkport');
  const ctLine = e.checktypeLine ?? e.v.line;
  const svcLine = e.serviceLine ?? e.v.line;
  // ld_checkport: checkport, else the real server's port, else the service's own port.
  const portFor = (kind: string): Raw | undefined => {
    if (checkport) {
      lines.port = checkport.line;
      return { port: Number(checkport.value) };
    }
    if (rport !== undefined) return {};
    const own = LD_SERVICE_PORTS[e.service];
    if (own !== undefined && (e.proto === 'fwm' || own !== e.port)) {
      lines.port = svcLine;
      notes.push({
        line: svcLine,
        text: `the real server has no port: ldirectord checks ${kind} on service ${e.service}'s port ${own}`,
      });
      return { port: own };
    }
    if (own === undefined && e.proto === 'fwm') {
      out.problem(
        e.v.line,
        'real',
        `a real server of fwmark ${e.v.fwm} has no port and service ${e.service} has none: ldirectord's ${kind} check had no port to reach; give the real server a port or write checkport`,
      );
      return undefined;
    }
    return {};
  };
  const login = e.get('login');
  const passwd = e.get('passwd');
  const withLogin = (c: Raw, userKey = 'user'): Raw => {
    if (login) {
      c[userKey] = login.value;
      lines[userKey] = login.line;
      if (passwd) {
        c.password = passwd.value;
        lines.password = passwd.line;
      }
    } else if (passwd)
      notes.push({ line: passwd.line, text: 'passwd without login: ldirectord does not log in' });
    return c;
  };
  const stripped = request.replace(/^\//, '');
  const receiveLine = e.get('receive')?.line ?? reqLine;
  const requestLine = reqLine ?? e.get('request')?.line;
  const result = (check: Raw | null, timeout: CheckOut['timeout']): CheckOut => ({
    check,
    lines,
    timeout,
    notes,
  });
  const failed: CheckOut = result(null, 'none');

  const ct = e.checktype;
  if (ct === 'on' || ct === 'off') return result(null, 'none');
  if (ct === 'connect' && e.proto === 'udp') {
    notes.push({ line: ctLine, text: 'connect on a UDP service is a ping in ldirectord' });
    return pingCheck();
  }
  if (ct === 'ping') return pingCheck();
  if (ct === 'connect') {
    const port = portFor('connect');
    return port ? result({ type: 'tcp', ...port }, 'check') : failed;
  }
  if (ct === 'external' || ct === 'external-perl') {
    const cmd = e.get('checkcommand');
    const program = cmd?.value ?? '/bin/true';
    if (!cmd)
      notes.push({
        line: ctLine,
        text: 'no checkcommand: ldirectord runs /bin/true (always up)',
      });
    else if (/\s/.test(program) && ct === 'external')
      notes.push({
        line: cmd.line,
        text: 'ldirectord runs checkcommand without a shell, as one program name with spaces in it: it never ran (so nor does this)',
      });
    const vip =
      e.proto === 'fwm' ? String(e.v.fwm) : e.v.family === 6 ? `[${e.address}]` : e.address;
    const rip = e.v.family === 6 ? '[{address}]' : '{address}';
    const args = [vip ?? '', String(e.port), rip, rport === undefined ? '0' : '{port}'];
    const command = ct === 'external' ? [program, ...args] : ['/usr/bin/perl', program, ...args];
    if (ct === 'external-perl')
      notes.push({
        line: ctLine,
        text: 'external-perl ran the file inside ldirectord; here /usr/bin/perl runs it with the same @ARGV, and its exit code is the verdict',
      });
    if (cmd) lines.command = cmd.line;
    else lines.command = ctLine;
    return result({ type: 'exec', command }, 'check');
  }
  // negotiate, or N connects then a negotiate.
  if (/^\d+$/.test(ct))
    notes.push({
      line: ctLine,
      text: `checktype ${ct}: ldirectord made ${ct} connect checks between negotiate checks; every check here is the negotiate check`,
    });
  const svc = e.service;
  const port = (kind: string): Raw | undefined => portFor(kind);
  switch (svc) {
    case 'none':
      notes.push({
        line: svcLine,
        text: 'service none: ldirectord checks nothing (negotiate with no service is always up): checks: []',
      });
      return result(null, 'none');
    case 'http':
    case 'https':
    case 'http_proxy': {
      const p = port(svc);
      if (!p) return failed;
      const c: Raw = { type: svc === 'https' ? 'https' : 'http', ...p };
      const method = e.get('httpmethod');
      if (method) {
        c.method = method.value;
        lines.method = method.line;
      }
      if (svc === 'http_proxy') {
        if (!/^http:\/\//.test(stripped)) {
          out.problem(
            requestLine ?? svcLine,
            'request',
            'service http_proxy needs request="http://…" (the absolute URL each proxy is asked for)',
          );
          return failed;
        }
        c.proxy_url = stripped;
        if (requestLine) lines.proxy_url = requestLine;
      } else {
        if (new RegExp(`^/?${svc}://`).test(request) && reqLine !== undefined) {
          out.problem(
            reqLine,
            'real',
            "an absolute URL as a real server's request: ldirectord fetches it from the host it names, not the real server; write the path",
          );
          return failed;
        }
        c.path = request;
        if (requestLine) lines.path = requestLine;
        const vh = e.get('virtualhost');
        if (vh) {
          c.host = vh.value;
          lines.host = vh.line;
        }
      }
      if (receive) {
        c.body_match = receive;
        if (receiveLine) lines.body_match = receiveLine;
      }
      if (svc === 'https') {
        c.tls = { verify: false };
        notes.push({
          line: svcLine,
          text: "ldirectord's https check does not verify the certificate (LWP verify_hostname 0): tls verify false",
        });
      }
      notes.push({
        line: svcLine,
        text: 'ldirectord (LWP) follows redirects and is up on a 2xx at the end; this check does not follow them: a 3xx is down unless expect_status lists it',
      });
      return result(c, 'negotiate');
    }
    case 'pop':
    case 'pops':
    case 'imap':
    case 'imaps': {
      const p = port(svc);
      if (!p) return failed;
      const type = { pop: 'pop3', pops: 'pop3s', imap: 'imap', imaps: 'imaps' }[svc];
      const c = withLogin({ type, ...p });
      if (svc === 'pops' || svc === 'imaps') c.tls = { verify: false };
      return result(c, 'negotiate');
    }
    case 'smtp':
    case 'submission':
    case 'nntp': {
      const p = port(svc);
      return p ? result({ type: svc, ...p }, 'negotiate') : failed;
    }
    case 'ldap':
    case 'ldaps': {
      const p = port(svc);
      if (!p) return failed;
      const c: Raw = { type: svc, ...p, base: stripped };
      if (requestLine) lines.base = requestLine;
      if (login && passwd) withLogin(c, 'bind_dn');
      else if (login || passwd)
        notes.push({
          line: (login ?? passwd)?.line ?? svcLine,
          text: 'ldirectord binds as login only with a passwd too: an anonymous bind',
        });
      if (receive) {
        c.expect_dn = receive;
        if (receiveLine) lines.expect_dn = receiveLine;
      }
      if (svc === 'ldaps') c.tls = { verify: false };
      return result(c, 'min');
    }
    case 'dns': {
      const p = port('dns');
      if (!p) return failed;
      if (!stripped || !receive) {
        out.problem(
          (stripped ? receiveLine : requestLine) ?? svcLine,
          stripped ? 'receive' : 'request',
          'service dns needs request="NAME" and receive="ANSWER": without either ldirectord counts every server down',
        );
        return failed;
      }
      const v4 = canonicalAddress(4, stripped);
      const c: Raw = v4
        ? {
            type: 'dns',
            ...p,
            name: `${v4.split('.').reverse().join('.')}.in-addr.arpa`,
            record_type: 'PTR',
          }
        : { type: 'dns', ...p, name: stripped };
      c.expect_answer = receive;
      if (e.proto === 'tcp') c.transport = 'tcp';
      if (requestLine) lines.name = requestLine;
      if (receiveLine) lines.expect_answer = receiveLine;
      return result(c, 'negotiate');
    }
    case 'mysql':
    case 'pgsql': {
      const p = port(svc);
      if (!p) return failed;
      if (!login || !stripped) {
        out.problem(
          (login ? requestLine : undefined) ?? svcLine,
          login ? 'request' : 'login',
          `service ${svc} needs login="USER" and request="QUERY": without them ldirectord counts every server down`,
        );
        return failed;
      }
      const c = withLogin({ type: svc, ...p });
      const db = e.get('database');
      if (db) {
        c.database = db.value;
        lines.database = db.line;
      }
      c.query = stripped;
      if (requestLine) lines.query = requestLine;
      if (receive && receiveLine)
        notes.push({ line: receiveLine, text: `ldirectord's ${svc} check does not read receive` });
      notes.push({
        line: svcLine,
        text: `ldirectord's ${svc} check had no timeout; here negotiatetimeout bounds it`,
      });
      return result(c, 'negotiate');
    }
    case 'radius': {
      const p = port('radius');
      if (!p) return failed;
      const secret = e.get('secret');
      if (!secret) {
        out.problem(svcLine, 'secret', 'service radius needs secret="…" (the shared secret)');
        return failed;
      }
      const c: Raw = { type: 'radius', ...p, secret: secret.value };
      lines.secret = secret.line;
      if (login) withLogin(c);
      else if (passwd) withLogin(c);
      return result(c, 'min');
    }
    case 'sip': {
      const p = port('sip');
      if (!p) return failed;
      const c: Raw = { type: 'sip', ...p, transport: e.proto === 'tcp' ? 'tcp' : 'udp' };
      if (login) {
        c.uri = `sip:${login.value}`;
        lines.uri = login.line;
      } else
        notes.push({
          line: svcLine,
          text: 'ldirectord asks for sip:ldirectord@HOSTNAME; this check asks for sip:ADDRESS:PORT (write login= to name the URI)',
        });
      return result(c, 'negotiate');
    }
    case 'simpletcp': {
      const p = port('simpletcp');
      if (!p) return failed;
      const udp = e.proto === 'udp';
      const c: Raw = { type: udp ? 'udp' : 'tcp', ...p };
      if (stripped) {
        c[udp ? 'payload' : 'send'] = sendText(stripped);
        if (requestLine) lines[udp ? 'payload' : 'send'] = requestLine;
      }
      if (receive) {
        c.expect_regex = receive;
        if (receiveLine) lines.expect_regex = receiveLine;
      } else
        notes.push({
          line: svcLine,
          text: 'simpletcp without receive: healthy once connected (and sent)',
        });
      return result(c, 'negotiate');
    }
    case 'ftp': {
      const p = port('ftp');
      if (!p) return failed;
      const c: Raw = { type: 'ftp', ...p };
      if (login) withLogin(c);
      else c.user = 'anonymous';
      // check_ftp: login, cwd /, binary, pasv, get request, then receive must match the file.
      if (receive) {
        c.request = request.startsWith('/') ? request : `/${request}`;
        if (requestLine) lines.request = requestLine;
        c.expect = receive;
        if (receiveLine) lines.expect = receiveLine;
      } else
        notes.push({
          line: svcLine,
          text: 'no receive: ldirectord counted the server up whatever the download gave; here the login is checked',
        });
      notes.push({
        line: svcLine,
        text: 'ldirectord ignored a refused ftp login; here a refused login is down',
      });
      return result(c, 'negotiate');
    }
    case 'oracle':
      out.problem(
        svcLine,
        'service',
        'service oracle: there is no oracle check (use checktype=connect, or an external check)',
      );
      return failed;
    default:
      return failed;
  }

  function pingCheck(): CheckOut {
    const count = e.get('checkcount');
    const c: Raw = { type: 'ping' };
    if (count) {
      if (Number(count.value) > 10) {
        out.problem(count.line, 'checkcount', 'a ping check sends at most 10 echo requests');
        return failed;
      }
      c.count = Number(count.value);
      lines.count = count.line;
    }
    // A ping needs no port (the check declares it portless): a fwmark real server without one is fine.
    return result(c, 'check');
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The translation. */
export function translateLdirectord(text: string, file: string): Translation {
  const out = new Out(file);
  const { globals, fallbacks, virtuals } = read(text, out);
  const g = (name: string): At<string> | undefined => globals.get(name);
  const num = (a: At<string> | undefined): number | undefined =>
    a === undefined ? undefined : Number(a.value);

  // daemon: cleanstop, maintenance_dir
  const daemon: Raw = {};
  const cleanGlobal = g('cleanstop');
  const maint = g('maintenancedir');
  if (maint) {
    daemon.maintenance_dir = maint.value;
    out.note(
      ['daemon', 'maintenance_dir'],
      maint.line,
      'a flag file is matched by the address, address:port ([v6]:port) or the server name; ldirectord also matched reverse-DNS host names, which are not looked up here',
    );
  }
  for (const name of ['autoreload', 'logfile', 'supervised', 'fork', 'readdquiescent'] as const) {
    const a = g(name);
    if (!a) continue;
    const text = {
      autoreload:
        a.value === 'yes'
          ? 'autoreload: the file is not watched; reload with `ipvs-warden reload` (SIGHUP)'
          : 'autoreload=no: as here, the file is read at start and on reload (SIGHUP)',
      logfile: `logfile ${a.value}: logs go to stdout (the journal under systemd)`,
      supervised: 'supervised: run under systemd (deploy/); the daemon never forks itself',
      fork: 'fork: every check runs concurrently here, each on its own timer',
      readdquiescent:
        'readdquiescent: a quiesced server is always kept in the table (re-added at weight 0 if deleted by hand), as readdquiescent=yes',
    }[name];
    out.note([], a.line, text);
  }

  // defaults: timing and policy from the globals, with ldirectord's defaults written out.
  const defaults: Raw = {};
  const interval = num(g('checkinterval')) ?? LD.checkinterval;
  const intervalLine = g('checkinterval')?.line;
  const setDefault = (key: string, value: unknown, line: number | undefined, note?: string) => {
    defaults[key] = value;
    if (line !== undefined) out.note(['defaults', key], line, note);
  };
  for (const key of ['interval', 'fast_interval', 'down_interval'])
    setDefault(key, seconds(interval), intervalLine);
  setDefault('rise', 1, undefined);
  const failurecount = g('failurecount');
  setDefault('fall', num(failurecount) ?? LD.failurecount, failurecount?.line);
  setDefault('initial', 'down', undefined);
  const quiescent = g('quiescent');
  setDefault(
    'on_failure',
    (quiescent?.value ?? LD.quiescent) === 'yes' ? 'quiesce' : 'remove',
    quiescent?.line,
  );
  setDefault('drain_timeout', '0s', undefined);
  const checkcountG = g('checkcount');
  if (checkcountG)
    out.note(
      [],
      checkcountG.line,
      'checkcount (deprecated in ldirectord): ldirectord 4.x reads it only for ping checks (echo requests per check); failurecount is the count of failures',
    );
  const fork = g('fork')?.value === 'yes';

  // virtual services
  const services: Raw[] = [];
  const seen = new Map<string, number>();
  const cleanstops: { value: string; line: number | undefined }[] = [];
  virtuals.forEach((v) => {
    const index = services.length;
    const path: Path = ['virtual_services', index];
    const vs = translateVirtual(v, index, path);
    if (vs) services.push(vs);
  });

  function translateVirtual(v: VirtualRead, index: number, path: Path): Raw | undefined {
    const get = (name: string): At<string> | undefined => v.set.get(name);
    const vs: Raw = {};
    const put = (key: string, value: unknown, line: number, note?: string): void => {
      vs[key] = value;
      out.note([...path, key], line, note);
    };
    out.note(path, v.line);
    const name = get('servicename');
    if (name) put('name', name.value, name.line);
    for (const n of v.noted) out.note(path, n.line, n.text);

    // the key: protocol + address + port, or fwmark
    let proto: Proto;
    let address: string | undefined;
    let port = 0;
    const protoSet = get('protocol');
    if (v.fwm !== undefined) {
      proto = 'fwm';
      put('fwmark', v.fwm, v.line);
      put('family', v.family, v.line);
    } else if (v.host !== undefined && v.portText !== undefined) {
      const protocol =
        (protoSet?.value as 'tcp' | 'udp' | undefined) ??
        (v.portText === '53' || v.portText === 'domain' ? 'udp' : 'tcp');
      proto = protocol;
      const a = literalAddress(v.host, v.family);
      const directive = v.family === 4 ? 'virtual' : 'virtual6';
      if (typeof a !== 'string') {
        out.problem(v.line, directive, `invalid address for virtual service: ${a.problem}`);
        return undefined;
      }
      const p = servicePort(v.portText, protocol);
      if (p === undefined) {
        out.problem(
          v.line,
          directive,
          `invalid port ${v.portText} for a ${proto} virtual service: ${PORT_HINT}`,
        );
        return undefined;
      }
      address = a;
      port = p;
      put(
        'protocol',
        proto,
        protoSet?.line ?? v.line,
        !protoSet && proto === 'udp' ? 'ldirectord makes a service on port 53 UDP' : undefined,
      );
      put('address', a, v.line);
      put('port', p, v.line);
    } else return undefined;
    const id = `${proto}${v.family}:${address ?? ''}:${v.fwm ?? port}`;
    const dup = seen.get(id);
    if (dup !== undefined) {
      out.problem(
        v.line,
        v.family === 4 ? 'virtual' : 'virtual6',
        `duplicate virtual server (as the one on line ${dup})`,
      );
      return undefined;
    }
    seen.set(id, v.line);

    // service settings
    const sched = get('scheduler');
    put('scheduler', sched?.value ?? 'wrr', sched?.line ?? v.line);
    const flags = get('schedflags');
    if (flags) put('sched_flags', flags.value.split(','), flags.line);
    const persistent = get('persistent');
    const netmask = get('netmask');
    if (persistent) {
      const s = Number(persistent.value);
      put(
        'persistent',
        s > 0 ? seconds(s) : false,
        persistent.line,
        s > 0
          ? undefined
          : 'persistent=0: ipvsadm -p 0 takes its default of 300 s... written as not persistent',
      );
      if (netmask) {
        let prefix: number | null;
        if (v.family === 6) prefix = Number(netmask.value);
        else {
          const octets = netmask.value.split('.').map(Number);
          prefix = octets.some((o) => o > 255)
            ? null
            : prefixFromMask(octets.reduce((n, o) => n * 256 + o, 0) >>> 0);
        }
        if (prefix === null)
          out.problem(netmask.line, 'netmask', `${netmask.value} is not a contiguous netmask`);
        else put('netmask', prefix, netmask.line);
      }
    } else if (netmask)
      out.note(path, netmask.line, 'netmask without persistent: ldirectord does not use it');
    const ops = get('ops');
    if (ops) {
      if (proto === 'udp') put('one_packet', ops.value === 'yes', ops.line);
      else
        out.note(path, ops.line, 'ops: ldirectord sets one-packet scheduling on UDP services only');
    }
    const q = get('quiescent');
    if (q) put('on_failure', q.value === 'yes' ? 'quiesce' : 'remove', q.line);
    const clean = get('cleanstop');
    cleanstops.push(
      clean
        ? { value: clean.value, line: clean.line }
        : { value: cleanGlobal?.value ?? LD.cleanstop, line: undefined },
    );

    // timing
    const ownInterval = get('checkinterval');
    if (ownInterval) {
      if (fork)
        for (const key of ['interval', 'fast_interval', 'down_interval'])
          put(key, seconds(Number(ownInterval.value)), ownInterval.line);
      else
        out.note(
          path,
          ownInterval.line,
          'checkinterval in a virtual service: ldirectord ignores it when fork=no (its default), so does this translation',
        );
    }
    const vInterval = fork && ownInterval ? Number(ownInterval.value) : interval;
    const fc = get('failurecount');
    if (fc) put('fall', Number(fc.value), fc.line);
    const cc = get('checkcount');
    if (cc)
      out.note(
        path,
        cc.line,
        'checkcount (deprecated in ldirectord): ldirectord 4.x reads it only for ping checks',
      );

    // checks
    const svcSet = get('service');
    const service =
      svcSet?.value ??
      (proto === 'fwm'
        ? 'none'
        : (Object.entries(LD_SERVICE_PORTS).find(([, p]) => p === port)?.[0] ?? 'none'));
    const ct = get('checktype');
    const checktype = ct?.value ?? 'negotiate';
    const e: Effective = {
      v,
      index,
      path,
      proto,
      service,
      serviceLine: svcSet?.line,
      checktype,
      checktypeLine: ct?.line,
      ...(address === undefined ? {} : { address }),
      port,
      get: (n) => v.set.get(n) ?? (n === 'checkcount' ? checkcountG : undefined),
    };
    if (
      !svcSet &&
      checktype !== 'on' &&
      checktype !== 'off' &&
      (checktype === 'negotiate' || /^\d+$/.test(checktype))
    )
      out.note(path, v.line, `no service: ldirectord takes ${service} from the port`);
    const vRequest = get('request')?.value ?? '/';
    const vReceive = get('receive')?.value ?? '';

    // timeouts (ld_setup)
    const vCheck = num(get('checktimeout'));
    const vNeg = num(get('negotiatetimeout'));
    const gCheck = num(g('checktimeout'));
    const gNeg = num(g('negotiatetimeout'));
    const checktimeout = vCheck ?? vNeg ?? gCheck ?? gNeg ?? LD.checktimeout;
    const negotiatetimeout = vNeg ?? vCheck ?? gNeg ?? gCheck ?? LD.negotiatetimeout;
    /** Which directive (and line) gave the timeout, in ld_setup's order. */
    const timeoutSource = (kind: 'check' | 'negotiate'): At<string> | undefined => {
      const order =
        kind === 'check'
          ? ['checktimeout', 'negotiatetimeout']
          : ['negotiatetimeout', 'checktimeout'];
      for (const n of order) {
        const a = get(n);
        if (a) return { value: n, line: a.line };
      }
      for (const n of order) {
        const a = g(n);
        if (a) return { value: `global ${n}`, line: a.line };
      }
      return undefined;
    };

    // real servers
    const reals: { r: RealRead; line: number }[] = [];
    for (const rl of v.reals)
      for (const r of parseReal(rl.value, rl.line, v.family, out)) reals.push({ r, line: rl.line });
    const off = checktype === 'off';
    const servers: Raw[] = [];
    const perServerChecks: (CheckOut | undefined)[] = [];
    reals.forEach(({ r, line }, j) => {
      const rsPath: Path = [...path, 'real_servers', j];
      const rs: Raw = { address: r.address };
      out.note(rsPath, line);
      if (r.port !== undefined) rs.port = r.port;
      rs.fwd = FWD[r.fwd];
      rs.weight = r.weight ?? 1;
      if (r.lower !== undefined) rs.lower_threshold = r.lower;
      if (r.upper !== undefined) rs.upper_threshold = r.upper;
      if (off) {
        rs.state = 'maintenance';
        out.note(
          [...rsPath, 'state'],
          ct?.line ?? line,
          'checktype=off: ldirectord never adds the real servers (the fallback, if any, serves)',
        );
      }
      servers.push(rs);
      const own = r.request !== undefined;
      perServerChecks.push(
        buildCheck(
          e,
          r.request ?? vRequest,
          r.receive ?? vReceive,
          r.port,
          own ? line : undefined,
          out,
        ),
      );
    });
    const vCheckOut = buildCheck(
      e,
      vRequest,
      vReceive,
      proto === 'fwm' ? undefined : port,
      undefined,
      out,
    );
    // The check most real servers share goes on the service; a real server with another
    // (its own request/receive, or no port of its own) gets its own.
    const counts = new Map<string, { c: CheckOut; n: number }>();
    for (const c of perServerChecks) {
      const k = JSON.stringify(c?.check);
      const entry = counts.get(k);
      if (entry) entry.n++;
      else if (c) counts.set(k, { c, n: 1 });
    }
    const common =
      [...counts.values()].sort((x, y) => y.n - x.n)[0]?.c ??
      (reals.length ? undefined : vCheckOut);
    const kind = common ? common.timeout : 'none';
    const placeChecks = (target: Path, c: CheckOut | undefined, holder: Raw): void => {
      if (!c) return;
      holder.checks = c.check ? [c.check] : [];
      out.note([...target, 'checks'], e.checktypeLine ?? e.serviceLine ?? v.line);
      if (c.check)
        for (const [k, line] of Object.entries(c.lines))
          out.note([...target, 'checks', 0, k], line);
      for (const n of c.notes) out.note([...target, 'checks'], n.line, n.text);
    };
    placeChecks(path, common, vs);
    perServerChecks.forEach((c, j) => {
      if (c && common && !sameJson(c.check, common.check))
        placeChecks([...path, 'real_servers', j], c, servers[j] ?? {});
    });

    // timeout: the one ldirectord runs this kind of check under, at most the interval.
    const t =
      kind === 'check'
        ? checktimeout
        : kind === 'min'
          ? Math.min(checktimeout, negotiatetimeout)
          : negotiatetimeout;
    const src = timeoutSource(
      kind === 'check' || (kind === 'min' && checktimeout <= negotiatetimeout)
        ? 'check'
        : 'negotiate',
    );
    const defaultName = kind === 'check' ? 'checktimeout' : 'negotiatetimeout';
    const said = src ? `${src.value}, line ${src.line}` : `ldirectord's default ${defaultName}`;
    if (t > vInterval)
      put(
        'timeout',
        seconds(vInterval),
        src?.line ?? intervalLine ?? v.line,
        `ldirectord waits up to ${t} s for this check (${said}) and then sleeps checkinterval (${vInterval} s); a timeout may not exceed interval here: a server slower than ${vInterval} s is down here, up in ldirectord (raise checkinterval to keep the longer wait)`,
      );
    else if (src) put('timeout', seconds(t), src.line);
    else put('timeout', seconds(t), v.line);

    // fallback: the service's own, else the global one of its family (fallback_find)
    const fb = v.fallback ?? fallbacks[v.family];
    const fbDirective = v.family === 4 ? 'fallback' : 'fallback6';
    if (fb && !v.fallback && proto === 'fwm') {
      out.note(
        path,
        fb.line,
        `the global ${fbDirective} does not reach a fwmark service in ldirectord (it is looked up by protocol): none here either`,
      );
    } else if (fb) {
      const a = literalAddress(fb.value.server, v.family);
      const fport =
        fb.value.port === undefined
          ? port
          : proto === 'fwm' && !/^\d+$/.test(fb.value.port)
            ? undefined
            : servicePort(fb.value.port, proto === 'fwm' ? '' : proto);
      if (typeof a !== 'string')
        out.problem(
          fb.line,
          fbDirective,
          `invalid IPv${v.family} address or could not resolve for fallback server: ${a.problem}`,
        );
      else if (fport === undefined)
        out.problem(fb.line, fbDirective, `invalid port for fallback server: ${PORT_HINT}`);
      else {
        const fallback: Raw = { address: a, port: fport, fwd: FWD[fb.value.fwd], weight: 1 };
        put(
          'fallback',
          fallback,
          fb.line,
          v.fallback
            ? undefined
            : `the global ${fbDirective}, for every IPv${v.family} virtual service without its own`,
        );
      }
    }
    // fallbackcommand: the service's own, else the global one (do_fallback_command)
    const fcmd = get('fallbackcommand') ?? g('fallbackcommand');
    if (fcmd) {
      const vip = proto === 'fwm' ? ':' : `${v.family === 6 ? `[${address}]` : address}:${port}`;
      const on = fallbackHook(fcmd.value, ['start', vip, proto]);
      const how = Array.isArray(on)
        ? 'without a shell, as Perl runs a line without shell characters'
        : 'with /bin/sh -c, as Perl runs a line with shell characters';
      put(
        'hooks',
        { fallback_on: on, fallback_off: fallbackHook(fcmd.value, ['stop', vip, proto]) },
        fcmd.line,
        `${get('fallbackcommand') ? '' : 'the global fallbackcommand: '}run with "start" when no real server is left and "stop" when the first comes back, then ${vip} ${proto}, as ldirectord does; ${how}`,
      );
    }
    // emailalert, emailalertfreq, emailalertstatus, smtp of its own, over the global ones
    const email = emailSettings(get, [...path, 'alerts', 'email'], out);
    if (Object.keys(email).length > 0) vs.alerts = { email };
    vs.real_servers = servers;
    return vs;
  }

  // cleanstop: one value for the daemon
  const values = new Set(cleanstops.map((c) => c.value));
  const clean = values.size === 1 ? [...values][0] : (cleanGlobal?.value ?? LD.cleanstop);
  daemon.cleanstop = clean === 'yes';
  if (cleanGlobal) out.note(['daemon', 'cleanstop'], cleanGlobal.line);
  else if (values.size <= 1 && cleanstops.every((c) => c.line === undefined))
    out.note(
      ['daemon', 'cleanstop'],
      0,
      "ldirectord's default cleanstop=yes: the services are removed on stop",
    );
  for (const c of cleanstops) {
    if (c.line === undefined) continue;
    if (values.size > 1)
      out.problem(
        c.line,
        'cleanstop',
        'cleanstop differs between virtual services: ipvs-warden has one cleanstop for the daemon (write it once, globally)',
      );
    else out.note(['daemon', 'cleanstop'], c.line);
  }
  out.note(
    ['defaults'],
    0,
    "ldirectord's behaviour written out: rise 1 (one good check brings a server back), failed servers deleted at once (drain_timeout 0s), fast_interval and down_interval = checkinterval",
  );

  // email alerts: the global directives; recipients of a virtual block's own take them too
  const email = emailSettings(g, ['alerts', 'email'], out);
  const ownTo = virtuals.find((v) => v.set.has('emailalert'))?.set.get('emailalert');
  let alerts: Raw | undefined;
  if (Object.keys(email).length > 0 || ownTo) {
    if (!email.to) {
      email.to = [];
      out.note(
        ['alerts', 'email'],
        ownTo?.line ?? 0,
        'no global emailalert: only the virtual services with their own recipients mail',
      );
    }
    if (!email.smtp) {
      email.smtp = 'localhost:25';
      out.note(
        ['alerts', 'email', 'smtp'],
        g('emailalert')?.line ?? ownTo?.line ?? 0,
        'no smtp: ldirectord hands the mail to the local mailer (sendmail); here it goes to the local MTA by SMTP on localhost:25',
      );
    }
    alerts = { email };
  }

  const raw: Raw = {
    daemon,
    defaults,
    virtual_services: services,
    ...(alerts ? { alerts } : {}),
  };
  return { raw, notes: out.notes, problems: out.problems, left: [] };
}
