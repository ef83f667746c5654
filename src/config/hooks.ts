// `hooks:` on a virtual service, under `defaults:` and (server_up/server_down only) on a real
// server: commands run when a real server goes up or down, when a service enters or leaves
// fallback, and when it gains or loses quorum. Read like the rest of the config, every mistake at its path; inherited key by key
// (defaults -> virtual service -> real server, the nearest one written wins).
import type { HookCommand, ServerHooks, ServiceHooks } from './model.js';
import { checkKeys, describe, isObj, readDuration, type Path, type Problems } from './reader.js';

export const HOOK_KEYS = [
  'server_up',
  'server_down',
  'fallback_on',
  'fallback_off',
  'quorum_up',
  'quorum_down',
  'timeout',
  'user',
  'group',
];
/** What a real server may set of its own. */
export const SERVER_HOOK_KEYS = ['server_up', 'server_down', 'timeout', 'user', 'group'];
/** What an argument may name; the same facts are in WARDEN_<NAME> variables. */
export const HOOK_PLACEHOLDERS = [
  'service',
  'server',
  'address',
  'port',
  'protocol',
  'state',
  'from',
  'healthy',
  'servers',
  'weight',
  'quorum',
] as const;
export const HOOK_TIMEOUT_MS = 10_000;
const HOUR = 3_600_000;
/** A command line longer than this is a mistake, not a command. */
const MAX_ARGS = 256;

/** Hooks as one level wrote them (nothing inherited yet). */
export interface HookSettings {
  readonly serverUp?: HookCommand;
  readonly serverDown?: HookCommand;
  readonly fallbackOn?: HookCommand;
  readonly fallbackOff?: HookCommand;
  readonly quorumUp?: HookCommand;
  readonly quorumDown?: HookCommand;
  readonly timeoutMs?: number;
  readonly user?: string;
  readonly group?: string;
}

const FIELDS: Record<string, Exclude<keyof HookSettings, 'timeoutMs' | 'user' | 'group'>> = {
  server_up: 'serverUp',
  server_down: 'serverDown',
  fallback_on: 'fallbackOn',
  fallback_off: 'fallbackOff',
  quorum_up: 'quorumUp',
  quorum_down: 'quorumDown',
};

function readCommand(raw: unknown, path: Path, p: Problems): HookCommand | undefined {
  if (Array.isArray(raw)) {
    const before = p.list.length;
    if (raw.length === 0 || raw.length > MAX_ARGS)
      p.add(path, `must be a program and its arguments (1..${MAX_ARGS} strings)`);
    raw.forEach((a: unknown, i) => {
      const at = [...path, i];
      if (typeof a !== 'string' && typeof a !== 'number') {
        p.add(at, `must be a string, got ${describe(a)}`);
        return;
      }
      const text = String(a);
      if (text.includes('\0')) p.add(at, 'must not contain a NUL byte');
      for (const m of text.matchAll(/\{([a-z_]+)\}/g)) {
        if (!(HOOK_PLACEHOLDERS as readonly string[]).includes(m[1] ?? ''))
          p.add(
            at,
            `unknown placeholder {${m[1]}}: one of ${HOOK_PLACEHOLDERS.map((n) => `{${n}}`).join(' ')}`,
          );
      }
    });
    const program: unknown = raw[0];
    if (typeof program === 'string' && !program.startsWith('/'))
      p.add(
        [...path, 0],
        'must be an absolute path (no PATH search: the program is the one named)',
      );
    if (p.list.length > before) return undefined;
    return { argv: raw.map(String) };
  }
  if (isObj(raw)) {
    checkKeys(raw, ['shell'], path, p);
    const line = raw.shell;
    if (typeof line !== 'string' || line.trim() === '') {
      p.add([...path, 'shell'], `must be a shell command line, got ${describe(line ?? null)}`);
      return undefined;
    }
    if (line.includes('\0')) {
      p.add([...path, 'shell'], 'must not contain a NUL byte');
      return undefined;
    }
    // Pasting facts into a shell line would let a name become shell syntax: variables only.
    const m = /\{([a-z_]+)\}/.exec(line);
    if (m && (HOOK_PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')) {
      p.add(
        [...path, 'shell'],
        `placeholders are not replaced in a shell line: use "$WARDEN_${(m[1] ?? '').toUpperCase()}"`,
      );
      return undefined;
    }
    return { shell: line };
  }
  p.add(
    path,
    `must be a list (program and arguments, no shell) or {shell: "..."}, got ${describe(raw)}`,
  );
  return undefined;
}

/** One level's `hooks:`; `allowed` the keys it may set (a real server: SERVER_HOOK_KEYS). */
export function readHooks(
  raw: unknown,
  allowed: readonly string[],
  path: Path,
  p: Problems,
): HookSettings {
  if (raw === undefined) return {};
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of ${allowed.join(', ')}, got ${describe(raw)}`);
    return {};
  }
  checkKeys(raw, allowed, path, p);
  const out: { -readonly [K in keyof HookSettings]: HookSettings[K] } = {};
  for (const [key, field] of Object.entries(FIELDS)) {
    if (raw[key] === undefined || !allowed.includes(key)) continue;
    const c = readCommand(raw[key], [...path, key], p);
    if (c) out[field] = c;
  }
  const timeout = readDuration(raw.timeout, { min: 10, max: HOUR }, [...path, 'timeout'], p);
  if (timeout !== undefined) out.timeoutMs = timeout;
  for (const key of ['user', 'group'] as const) {
    const v = readAccount(raw[key], key, [...path, key], p);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** A user or group name as useradd(8) allows one, or a numeric id. */
const ACCOUNT = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;

function readAccount(raw: unknown, what: 'user' | 'group', path: Path, p: Problems) {
  if (raw === undefined) return undefined;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string' || !ACCOUNT.test(text)) {
    p.add(path, `must be a ${what} name or numeric id, got ${describe(raw)}`);
    return undefined;
  }
  return text;
}

/** Whom the hooks of a level run as, when set. */
function runAs(h: HookSettings): { user?: string; group?: string } {
  return {
    ...(h.user !== undefined ? { user: h.user } : {}),
    ...(h.group !== undefined ? { group: h.group } : {}),
  };
}

/** `own` over `upper`, key by key. */
export function inheritHooks(upper: HookSettings, own: HookSettings): HookSettings {
  return { ...upper, ...own };
}

/** A real server's hooks as the model has them: absent when it runs none. */
export function serverHooks(h: HookSettings): ServerHooks | undefined {
  if (!h.serverUp && !h.serverDown) return undefined;
  return {
    ...(h.serverUp ? { serverUp: h.serverUp } : {}),
    ...(h.serverDown ? { serverDown: h.serverDown } : {}),
    timeoutMs: h.timeoutMs ?? HOOK_TIMEOUT_MS,
    ...runAs(h),
  };
}

export function serviceHooks(h: HookSettings): ServiceHooks | undefined {
  if (!h.fallbackOn && !h.fallbackOff && !h.quorumUp && !h.quorumDown) return undefined;
  return {
    ...(h.fallbackOn ? { fallbackOn: h.fallbackOn } : {}),
    ...(h.fallbackOff ? { fallbackOff: h.fallbackOff } : {}),
    ...(h.quorumUp ? { quorumUp: h.quorumUp } : {}),
    ...(h.quorumDown ? { quorumDown: h.quorumDown } : {}),
    timeoutMs: h.timeoutMs ?? HOOK_TIMEOUT_MS,
    ...runAs(h),
  };
}

/** A command as the file writes it (check-config). */
export function hookCommandText(c: HookCommand): unknown {
  return 'shell' in c ? { shell: c.shell } : [...c.argv];
}
