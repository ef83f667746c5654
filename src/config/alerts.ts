// `alerts:` (top level) and a virtual service's `alerts:`: where transitions are announced, as
// ldirectord mails them (emailalert, emailalertfrom, emailalertfreq, emailalertstatus, smtp) and
// to webhooks (Alertmanager's v2 API, a chat service's incoming webhook, or our own JSON). Read
// like the rest of the config, every mistake at its path. A virtual service may override what
// ldirectord lets a virtual block override (emailalert, emailalertfreq, emailalertstatus, smtp):
// `to`, `repeat`, `on`, `smtp`; the rest is the top level's.
import { REDACTED } from '../health/options.js';
import { readSecret, type CheckReading } from './checks.js';
import type { SecretSource } from './model.js';
import {
  checkKeys,
  describe,
  isObj,
  readDuration,
  readEnum,
  readString,
  type Obj,
  type Path,
  type Problems,
} from './reader.js';

/** The daemon's state when an alert is made: ldirectord's emailalertstatus words. */
export type DaemonPhase = 'starting' | 'running' | 'reloading' | 'stopping';
export const PHASES: readonly DaemonPhase[] = ['starting', 'running', 'reloading', 'stopping'];

export type SmtpTls = 'auto' | 'starttls' | 'implicit' | 'none';
export type WebhookFormat = 'alertmanager' | 'slack' | 'json';

export interface SmtpServer {
  readonly host: string;
  readonly port: number;
}

export interface EmailAlerts {
  readonly to: readonly string[];
  /** The From header (and envelope sender); absent: user@hostname, as ldirectord. */
  readonly from?: string;
  readonly smtp: SmtpServer;
  /** auto: STARTTLS when offered; starttls: required; implicit: TLS from the start (465). */
  readonly tls: SmtpTls;
  readonly user?: string;
  readonly password?: string;
  readonly passwordSource?: SecretSource;
  /** While a real server stays down, mail again this often (0: once, ldirectord's default). */
  readonly repeatMs: number;
  /** The daemon states in which mail is sent (emailalertstatus). */
  readonly on: readonly DaemonPhase[];
  /** One message's deadline, connection to QUIT. */
  readonly timeoutMs: number;
}

export interface WebhookTarget {
  /** The target's name in logs and in ipvs_warden_alerts_total{target}. */
  readonly name: string;
  readonly url: string;
  readonly urlSource?: SecretSource;
  readonly format: WebhookFormat;
  readonly timeoutMs: number;
  /** Firing alerts sent again this often (alertmanager: always, so they do not end). */
  readonly repeatMs: number;
}

export interface AlertsConfig {
  readonly email?: EmailAlerts;
  readonly webhooks: readonly WebhookTarget[];
}

/** What a virtual service writes of its own (ldirectord's per-virtual emailalert*, smtp). */
export interface ServiceEmailOverride {
  /** Empty: this service sends no mail. */
  readonly to?: readonly string[];
  readonly repeatMs?: number;
  readonly on?: readonly DaemonPhase[];
  readonly smtp?: SmtpServer;
}

export interface ServiceAlerts {
  readonly email?: ServiceEmailOverride;
}

export const ALERT_KEYS = ['email', 'webhooks'];
const EMAIL_KEYS = [
  'to',
  'from',
  'smtp',
  'tls',
  'user',
  'password',
  'password_file',
  'password_env',
  'repeat',
  'on',
  'timeout',
];
const SERVICE_EMAIL_KEYS = ['to', 'smtp', 'repeat', 'on'];
const WEBHOOK_KEYS = ['name', 'url', 'url_file', 'url_env', 'format', 'timeout', 'repeat'];
/** Keys naming a file the loader reads ahead. */
export const ALERT_FILE_KEYS = ['password_file', 'url_file'];

export const SMTP_DEFAULT: SmtpServer = { host: 'localhost', port: 25 };
export const EMAIL_TIMEOUT_MS = 30_000;
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Alertmanager's resolve_timeout is 5m by default; re-sent every minute, with endsAt 4m on. */
export const ALERTMANAGER_REPEAT_MS = 60_000;
const HOUR = 3_600_000;
const REPEAT = { min: 0, max: 24 * HOUR };
const TIMEOUT = { min: 100, max: 10 * 60_000 };
const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;
const HOST =
  /^(?:[0-9A-Za-z](?:[0-9A-Za-z-]*[0-9A-Za-z])?)(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]*[0-9A-Za-z])?)*$/;

/** A list of addresses, or one string of comma-separated ones (emailalert's form). */
function readAddresses(raw: unknown, path: Path, p: Problems): string[] | undefined {
  if (raw === undefined) return undefined;
  const list: unknown[] =
    typeof raw === 'string' ? raw.split(',').map((a) => a.trim()) : Array.isArray(raw) ? raw : [];
  if (typeof raw !== 'string' && !Array.isArray(raw)) {
    p.add(path, `must be a list of email addresses, got ${describe(raw)}`);
    return undefined;
  }
  const out: string[] = [];
  list.forEach((a, i) => {
    const at = Array.isArray(raw) ? [...path, i] : path;
    if (typeof a !== 'string' || !ADDRESS.test(a)) {
      p.add(at, `must be an email address (user@domain), got ${describe(a)}`);
      return;
    }
    out.push(a);
  });
  return out.length === list.length ? out : undefined;
}

/** "host", "host:port", "[v6]:port", "v6": ldirectord's smtp, with a port. */
export function parseSmtp(text: string): SmtpServer | null {
  const t = text.trim();
  let host: string;
  let port = '25';
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(t);
  const named = /^([^:[\]]+)(?::(\d+))?$/.exec(t);
  if (v6) [host = '', port = '25'] = [v6[1], v6[2]];
  else if (/^[0-9A-Fa-f:.]+$/.test(t) && t.split(':').length > 2) host = t;
  else if (named && HOST.test(named[1] ?? '')) [host = '', port = '25'] = [named[1], named[2]];
  else return null;
  const n = Number(port);
  return n >= 1 && n <= 65535 ? { host, port: n } : null;
}

function readSmtp(raw: unknown, path: Path, p: Problems): SmtpServer | undefined {
  const text = readString(raw, path, p);
  if (text === undefined) return undefined;
  const s = parseSmtp(text);
  if (!s) p.add(path, `must be host, host:port or [IPv6]:port, got ${describe(raw)}`);
  return s ?? undefined;
}

function readPhases(raw: unknown, path: Path, p: Problems): DaemonPhase[] | undefined {
  if (raw === undefined) return undefined;
  const words: unknown[] =
    typeof raw === 'string' ? raw.split(',').map((w) => w.trim()) : Array.isArray(raw) ? raw : [];
  if (typeof raw !== 'string' && !Array.isArray(raw)) {
    p.add(path, `must be a list of ${PHASES.join(', ')} (or all, none), got ${describe(raw)}`);
    return undefined;
  }
  if (words.includes('none')) {
    if (words.length > 1) p.add(path, 'none stands alone (as in ldirectord)');
    return words.length > 1 ? undefined : [];
  }
  if (words.includes('all')) return [...PHASES];
  const out = new Set<DaemonPhase>();
  let ok = true;
  words.forEach((w, i) => {
    const at = Array.isArray(raw) ? [...path, i] : path;
    const phase = readEnum(w, PHASES, at, p);
    if (phase) out.add(phase);
    else ok = false;
  });
  return ok ? PHASES.filter((x) => out.has(x)) : undefined;
}

function readEmail(
  raw: unknown,
  path: Path,
  p: Problems,
  ctx: CheckReading,
): EmailAlerts | undefined {
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of ${EMAIL_KEYS.join(', ')}, got ${describe(raw)}`);
    return undefined;
  }
  checkKeys(raw, EMAIL_KEYS, path, p);
  const before = p.list.length;
  const at = (k: string): Path => [...path, k];
  const to = readAddresses(raw.to ?? null, at('to'), p);
  const from = readString(raw.from, at('from'), p);
  if (from !== undefined && (/[\r\n]/.test(from) || !/@/.test(from)))
    p.add(at('from'), 'must be an address, or "Name" <user@domain>, on one line');
  const smtp = readSmtp(raw.smtp, at('smtp'), p);
  const tls = readEnum<SmtpTls>(raw.tls, ['auto', 'starttls', 'implicit', 'none'], at('tls'), p);
  const user = readString(raw.user, at('user'), p);
  const password = readSecret(raw, 'password', path, p, ctx);
  if (password && user === undefined) p.add(at('password'), 'needs user');
  if (user !== undefined && !password)
    p.add(at('user'), 'needs password (or password_file, password_env)');
  const repeatMs = readDuration(raw.repeat, REPEAT, at('repeat'), p);
  const on = readPhases(raw.on, at('on'), p);
  const timeoutMs = readDuration(raw.timeout, TIMEOUT, at('timeout'), p);
  if (p.list.length > before || !to) return undefined;
  return {
    to,
    ...(from !== undefined ? { from } : {}),
    smtp: smtp ?? SMTP_DEFAULT,
    tls: tls ?? 'auto',
    ...(user !== undefined && password
      ? {
          user,
          password: password.value,
          ...(password.source ? { passwordSource: password.source } : {}),
        }
      : {}),
    repeatMs: repeatMs ?? 0,
    on: on ?? [...PHASES],
    timeoutMs: timeoutMs ?? EMAIL_TIMEOUT_MS,
  };
}

function readWebhook(
  raw: unknown,
  i: number,
  path: Path,
  p: Problems,
  ctx: CheckReading,
): WebhookTarget | undefined {
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of ${WEBHOOK_KEYS.join(', ')}, got ${describe(raw)}`);
    return undefined;
  }
  checkKeys(raw, WEBHOOK_KEYS, path, p);
  const before = p.list.length;
  const at = (k: string): Path => [...path, k];
  const format = readEnum<WebhookFormat>(
    raw.format ?? null,
    ['alertmanager', 'slack', 'json'],
    at('format'),
    p,
  );
  const name = readString(raw.name, at('name'), p);
  if (name !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(name))
    p.add(at('name'), 'must be 1..64 letters, digits, _ . : - (it is a metric label)');
  let url: string | undefined;
  const secret =
    raw.url === undefined && raw.url_file === undefined && raw.url_env === undefined
      ? (p.add(at('url'), 'required (or url_file, url_env: a URL that holds a token)'), undefined)
      : readSecret(raw, 'url', path, p, ctx);
  if (secret && secret.value !== REDACTED) {
    const where = secret.source?.file
      ? at('url_file')
      : secret.source?.env
        ? at('url_env')
        : at('url');
    let parsed: URL | undefined;
    try {
      parsed = new URL(secret.value);
    } catch {
      p.add(
        where,
        secret.source ? 'does not hold a URL' : `must be a URL, got ${describe(secret.value)}`,
      );
    }
    if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      p.add(where, `must be an http:// or https:// URL, got ${parsed.protocol}`);
    else if (parsed) {
      // Alertmanager's base URL is enough: its API path is added.
      if (format === 'alertmanager' && (parsed.pathname === '/' || parsed.pathname === ''))
        parsed.pathname = '/api/v2/alerts';
      url = parsed.href;
    }
  }
  const timeoutMs = readDuration(raw.timeout, TIMEOUT, at('timeout'), p);
  const repeatMs = readDuration(raw.repeat, REPEAT, at('repeat'), p);
  if (format === 'alertmanager' && repeatMs !== undefined && repeatMs < 1000)
    p.add(
      at('repeat'),
      'must be at least 1s for alertmanager: a firing alert not sent again ends (its endsAt passes)',
    );
  if (p.list.length > before || !format || url === undefined) return undefined;
  return {
    name: name ?? `webhooks[${i}]`,
    url,
    ...(secret?.source ? { urlSource: secret.source } : {}),
    format,
    timeoutMs: timeoutMs ?? WEBHOOK_TIMEOUT_MS,
    repeatMs: repeatMs ?? (format === 'alertmanager' ? ALERTMANAGER_REPEAT_MS : 0),
  };
}

/** The top-level `alerts:`; absent: no alerts. */
export function readAlerts(raw: unknown, p: Problems, ctx: CheckReading): AlertsConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const path: Path = ['alerts'];
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of ${ALERT_KEYS.join(', ')}, got ${describe(raw)}`);
    return undefined;
  }
  checkKeys(raw, ALERT_KEYS, path, p);
  const email =
    raw.email === undefined ? undefined : readEmail(raw.email, [...path, 'email'], p, ctx);
  const webhooks: WebhookTarget[] = [];
  const names = new Map<string, number>();
  if (raw.webhooks !== undefined) {
    if (!Array.isArray(raw.webhooks))
      p.add([...path, 'webhooks'], `must be a list of webhooks, got ${describe(raw.webhooks)}`);
    else
      raw.webhooks.forEach((w: unknown, i) => {
        const hook = readWebhook(w, i, [...path, 'webhooks', i], p, ctx);
        if (!hook) return;
        if (names.has(hook.name) || hook.name === 'email')
          p.add([...path, 'webhooks', i, 'name'], `"${hook.name}" is already a target's name`);
        names.set(hook.name, i);
        webhooks.push(hook);
      });
  }
  return { ...(email ? { email } : {}), webhooks };
}

/** A virtual service's `alerts:` (only `email:` with to, smtp, repeat, on). */
export function readServiceAlerts(
  raw: unknown,
  path: Path,
  p: Problems,
): ServiceAlerts | undefined {
  if (raw === undefined) return undefined;
  if (!isObj(raw)) {
    p.add(path, `must be a mapping with email, got ${describe(raw)}`);
    return undefined;
  }
  checkKeys(raw, ['email'], path, p);
  if (raw.email === undefined) return undefined;
  const at: Path = [...path, 'email'];
  if (!isObj(raw.email)) {
    p.add(at, `must be a mapping of ${SERVICE_EMAIL_KEYS.join(', ')}, got ${describe(raw.email)}`);
    return undefined;
  }
  const e: Obj = raw.email;
  checkKeys(e, SERVICE_EMAIL_KEYS, at, p);
  // `to: []` (or "") silences the service, as an empty emailalert would.
  const to =
    (Array.isArray(e.to) && e.to.length === 0) || e.to === ''
      ? []
      : readAddresses(e.to, [...at, 'to'], p);
  const smtp = readSmtp(e.smtp, [...at, 'smtp'], p);
  const repeatMs = readDuration(e.repeat, REPEAT, [...at, 'repeat'], p);
  const on = readPhases(e.on, [...at, 'on'], p);
  return {
    email: {
      ...(to ? { to } : {}),
      ...(smtp ? { smtp } : {}),
      ...(repeatMs !== undefined ? { repeatMs } : {}),
      ...(on ? { on } : {}),
    },
  };
}

/**
 * A service's email settings: its own over the top level's. Null when it mails no one. A
 * service that names recipients without a top-level `email:` takes its defaults.
 */
export function emailFor(
  global: EmailAlerts | undefined,
  own: ServiceAlerts | undefined,
): EmailAlerts | null {
  const o = own?.email;
  if (!global && !o?.to) return null;
  const base: EmailAlerts = global ?? {
    to: [],
    smtp: SMTP_DEFAULT,
    tls: 'auto',
    repeatMs: 0,
    on: [...PHASES],
    timeoutMs: EMAIL_TIMEOUT_MS,
  };
  const merged: EmailAlerts = { ...base, ...o };
  return merged.to.length > 0 ? merged : null;
}

const s = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
const smtpText = (x: SmtpServer): string =>
  `${x.host.includes(':') ? `[${x.host}]` : x.host}:${x.port}`;

function secretOut(
  key: string,
  value: string,
  source: SecretSource | undefined,
  show: boolean,
): Record<string, string> {
  if (source?.file !== undefined) return { [`${key}_file`]: source.file };
  if (source?.env !== undefined) return { [`${key}_env`]: source.env };
  return { [key]: show ? value : REDACTED };
}

/** check-config's `alerts:`, every default written out. */
export function effectiveAlerts(a: AlertsConfig, showSecrets: boolean): Record<string, unknown> {
  const e = a.email;
  return {
    ...(e
      ? {
          email: {
            to: [...e.to],
            ...(e.from !== undefined ? { from: e.from } : {}),
            smtp: smtpText(e.smtp),
            tls: e.tls,
            ...(e.user !== undefined
              ? {
                  user: e.user,
                  ...secretOut('password', e.password ?? '', e.passwordSource, showSecrets),
                }
              : {}),
            repeat: s(e.repeatMs),
            on: [...e.on],
            timeout: s(e.timeoutMs),
          },
        }
      : {}),
    webhooks: a.webhooks.map((w) => ({
      name: w.name,
      ...secretOut('url', w.url, w.urlSource, showSecrets),
      format: w.format,
      timeout: s(w.timeoutMs),
      repeat: s(w.repeatMs),
    })),
  };
}

/** check-config's `alerts:` of a virtual service (what it overrides). */
export function effectiveServiceAlerts(a: ServiceAlerts): Record<string, unknown> | undefined {
  const e = a.email;
  if (!e) return undefined;
  return {
    email: {
      ...(e.to ? { to: [...e.to] } : {}),
      ...(e.smtp ? { smtp: smtpText(e.smtp) } : {}),
      ...(e.repeatMs !== undefined ? { repeat: s(e.repeatMs) } : {}),
      ...(e.on ? { on: e.on.length ? [...e.on] : 'none' } : {}),
    },
  };
}

/**
 * A virtual service that sets mail settings but names no recipients, with no top-level
 * `email:` to take them from, would mail no one: said at its place.
 */
export function recipientProblems(rawAlerts: unknown, rawServices: unknown, p: Problems): void {
  if (isObj(rawAlerts) && rawAlerts.email !== undefined) return;
  if (!Array.isArray(rawServices)) return;
  rawServices.forEach((vs: unknown, i) => {
    if (!isObj(vs) || !isObj(vs.alerts) || !isObj(vs.alerts.email)) return;
    if (vs.alerts.email.to === undefined)
      p.add(
        ['virtual_services', i, 'alerts', 'email'],
        'names no recipients and there is no alerts.email to take them from: give to (here or in alerts.email)',
      );
  });
}
