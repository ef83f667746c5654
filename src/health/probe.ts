// What every probe needs: one signal for "stop now" (the caller's or the deadline's), a
// message built step by step so a failure says how far the probe got, and the one list of
// errors that come from this director rather than the server (a local result, not a failure).
import { type AbortWatch, unwatchAbort, watchAbort } from './abort.js';
import type { CheckContext, CheckResult, CheckTarget } from './checker.js';

export function hostPort(target: CheckTarget): string {
  return target.family === 6
    ? `[${target.address}]:${target.port}`
    : `${target.address}:${target.port}`;
}

/**
 * Where a probe went, for its message and its run id: address and port, or the address alone
 * (port 0: ping); through the data path, the VIP and the one real server it reaches.
 */
export function destination(target: CheckTarget): string {
  const to = target.port === 0 ? target.address : hostPort(target);
  const via = target.dataPath;
  return via ? `${to} via ${via.server} (mark 0x${via.mark.toString(16)})` : to;
}

/** What a check's messages start with: "HTTP GET /healthz -> 10.0.0.5:8080". */
export function checkLine(description: string, target: CheckTarget): string {
  return `${description} -> ${destination(target)}`;
}

/** The result of a check that threw instead of returning one: a failure, never a crash. */
export function thrownResult(
  description: string,
  target: CheckTarget,
  error: unknown,
): CheckResult {
  return {
    healthy: false,
    durationMs: 0,
    message: `${checkLine(description, target)}: check failed: ${String(error)}`,
  };
}

export class ProbeRun {
  /** Set once the connection is up (a probe's connector may learn it late). */
  connected = false;
  private readonly started = performance.now();
  private readonly steps: string[] = [];
  // Not AbortSignal.any/timeout: on Node 20 every signal made by AbortSignal.any from a
  // long-lived one (the scheduler's) stays reachable for good: 24 MiB and rising CPU per
  // 20,000 checks. A controller, a timer and a listener removed at the end leave nothing behind.
  // The controller is made only when a probe asks for `signal` (undici, DNS, a spawned
  // command): the plain TCP and HTTP probes wait through `watch`, and a signal, its map of
  // listeners and a listener were an eighth of the garbage of an HTTP check.
  private controller: AbortController | undefined;
  /** Why the probe was stopped (the deadline, or the caller), once it was. */
  private stopped: { reason: unknown } | undefined;
  private waiters: (() => void)[] | undefined;
  private readonly timer: NodeJS.Timeout;
  /** The deadline's verdict, put off until the I/O already waiting has been read. */
  private verdict: NodeJS.Immediate | undefined;
  private timedOut = false;
  /** The caller stopped it (its signal, or its cancel hook): the result says "cancelled". */
  private cancelled = false;
  private readonly onCallerAbort = (): void => this.stopByCaller(this.context.signal.reason);
  /** Its wait on the caller's signal, until the result. */
  private callerWatch: AbortWatch | undefined;

  constructor(
    private readonly description: string,
    private readonly target: CheckTarget,
    private readonly context: CheckContext,
  ) {
    // Timers run before the loop reads I/O: on a loop late by more than the timeout (a busy
    // director), a reply that came in time would lose to its own deadline and a healthy server
    // would flap out for our lateness. The deadline aborts only after this turn's I/O is read.
    this.timer = setTimeout(() => {
      this.verdict = setImmediate(() => {
        this.timedOut = true;
        this.abort(new DOMException('check timed out', 'TimeoutError'));
      });
    }, context.timeoutMs);
    // The caller's signal is usually shared by every check in flight (the scheduler's stop).
    const cancel = context.cancel;
    if (cancel) cancel.stop = (reason) => this.stopByCaller(reason);
    if (context.signal.aborted) this.onCallerAbort();
    else this.callerWatch = watchAbort(context.signal, this.onCallerAbort);
    if (cancel?.early) this.stopByCaller(cancel.early.reason);
  }

  /** Aborted at the deadline or when the caller's signal aborts, whichever comes first. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.stopped.reason);
    }
    return this.controller.signal;
  }

  /** The probe has been stopped: its deadline passed, or the caller stopped it. */
  get aborted(): boolean {
    return this.stopped !== undefined;
  }

  /** Why, once `aborted`. */
  get reason(): unknown {
    return this.stopped?.reason;
  }

  /**
   * Calls `fn` once when the probe is stopped, unless `unwatch` comes first: `signal` without
   * making one. The caller looks at `aborted` first.
   */
  watch(fn: () => void): void {
    (this.waiters ??= []).push(fn);
  }

  unwatch(fn: () => void): void {
    const i = this.waiters?.indexOf(fn) ?? -1;
    if (i >= 0) this.waiters?.splice(i, 1);
  }

  private stopByCaller(reason: unknown): void {
    this.cancelled = true;
    this.abort(reason);
  }

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.stopped = { reason };
    this.controller?.abort(reason);
    const waiters = this.waiters;
    this.waiters = undefined;
    for (const fn of waiters ?? []) fn();
  }

  /** Records how far the exchange got ("connected", "TLS TLSv1.3"). */
  step(text: string): void {
    this.steps.push(text);
  }

  ok(text?: string): CheckResult {
    return this.result(true, text);
  }

  fail(text: string): CheckResult {
    return this.result(false, text);
  }

  /**
   * The failure for an error or an abort, named as an operator reads it; a local result when
   * the error is this director's own (`localErrno`).
   */
  failWith(error: unknown, waitingFor: string): CheckResult {
    const ending = this.timedOut ? 'timeout' : this.cancelled ? 'cancelled' : { error };
    const { text, local } = endingText(ending, this.context.timeoutMs, waitingFor);
    return local ? { ...this.fail(text), local: true } : this.fail(text);
  }

  /** The probe could not run here (`errno` from LOCAL_ERRNOS): nothing said about the server. */
  local(errno: string): CheckResult {
    return { ...this.result(false, localMessage(errno)), local: true };
  }

  withWeight(result: CheckResult, weight: number): CheckResult {
    return { ...result, weight };
  }

  /** Every result goes through here, and so the timer and the listener end with the probe. */
  private result(healthy: boolean, text?: string): CheckResult {
    clearTimeout(this.timer);
    if (this.verdict) clearImmediate(this.verdict);
    if (this.callerWatch) unwatchAbort(this.callerWatch);
    if (this.context.cancel) this.context.cancel.stop = undefined;
    const steps = text === undefined ? this.steps : [...this.steps, text];
    return {
      healthy,
      durationMs: durationSince(this.started),
      message: checkMessage(this.description, this.target, steps.join('; ') || 'no reply'),
    };
  }
}

/**
 * Errors that say this director ran out of something (descriptors, memory, local ports, buffer
 * space, processes), whether from a socket or from spawning a command: the probe never reached
 * the server. One list, for every probe. Not here: ENOENT or EACCES of a command (a config
 * fault, a failure like any other).
 */
const LOCAL_ERRNOS: Readonly<Record<string, string>> = {
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files on this system',
  ENOBUFS: 'no buffer space',
  ENOMEM: 'out of memory',
  EADDRNOTAVAIL: 'no local address or port free',
  EAGAIN: 'resource temporarily unavailable',
  // connect(2) says EPERM when this director's own firewall drops the SYN; setsockopt(SO_MARK)
  // when the daemon lacks CAP_NET_ADMIN for a data-path probe.
  EPERM: 'not permitted on this director (its firewall, or no CAP_NET_ADMIN to mark a probe)',
  // A library loaded on first use (src/lazy.ts) that node could not find: not installed, or
  // unreadable when first needed (out of descriptors), which node remembers until a restart.
  MODULE_NOT_FOUND:
    'a library of ipvs-warden could not be loaded (restart the daemon; reinstall the package if that does not mend it)',
};

/** The errno of `error` (or of an error it wraps) when it is one of LOCAL_ERRNOS. */
export function localErrno(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 4) return undefined;
  const e = error as { code?: unknown; errno?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && Object.hasOwn(LOCAL_ERRNOS, e.code)) return e.code;
  // undici wraps a socket's error (UND_ERR_SOCKET) with the errno in its cause.
  return e.cause === error ? undefined : localErrno(e.cause, depth + 1);
}

function localText(errno: string): string {
  return `${LOCAL_ERRNOS[errno] ?? 'resource unavailable'} (${errno})`;
}

function localMessage(errno: string): string {
  return `local error on this director, not the server's: ${localText(errno)}`;
}

/** A probe's duration from `startedMs` (performance.now()) until now, to a tenth of a ms. */
export function durationSince(startedMs: number): number {
  return Math.round((performance.now() - startedMs) * 10) / 10;
}

/**
 * A check's message: its line, then what it found. join, not a template: one flat string. A
 * template's is a rope of its pieces, and a server keeps its last message until the next check:
 * at 10,000 servers the ropes were 4.8 MiB of a 57 MiB heap, and V8 lets the old generation grow
 * to about four times that.
 */
export function checkMessage(description: string, target: CheckTarget, text: string): string {
  return [checkLine(description, target), ': ', text].join('');
}

/** How a probe was stopped: its deadline, its caller, or an error. */
export type Ending = 'timeout' | 'cancelled' | { readonly error: unknown };

/**
 * The result of a probe that ended at `waitingFor` before any step (a connect check the probe
 * engine runs whole: native.ts, checks/tcp.ts), in ProbeRun's words for the same ending.
 */
export function endedResult(
  description: string,
  target: CheckTarget,
  startedMs: number,
  ending: Ending,
  timeoutMs: number,
  waitingFor: string,
): CheckResult {
  const { text, local } = endingText(ending, timeoutMs, waitingFor);
  const result = {
    healthy: false,
    durationMs: durationSince(startedMs),
    message: checkMessage(description, target, text),
  };
  return local ? { ...result, local: true } : result;
}

/**
 * What a probe stopped while `waitingFor` says of it, and whether the fault is this director's
 * own (a local result): ProbeRun's failWith and endedResult say the same. Pure.
 */
function endingText(
  ending: Ending,
  timeoutMs: number,
  waitingFor: string,
): { readonly text: string; readonly local: boolean } {
  if (ending === 'timeout')
    return { text: `timed out after ${timeoutMs} ms ${waitingFor}`, local: false };
  if (ending === 'cancelled') return { text: `cancelled ${waitingFor}`, local: false };
  const errno = localErrno(ending.error);
  if (errno) return { text: localMessage(errno), local: true };
  return { text: describeError(ending.error), local: false };
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'timed out (kernel)',
};

export function describeError(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: unknown };
  if (e.code && ERRNO_TEXT[e.code]) return `${ERRNO_TEXT[e.code]} (${e.code})`;
  if (e.cause && e.cause !== error) return describeError(e.cause);
  if (e.code) return `${e.message ?? e.code} (${e.code})`;
  return e.message ?? String(error);
}

/** Understands \r \n \t \0 \\ \xHH, as in ldirectord's and keepalived's send strings. */
export function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[rnt0\\])/g, (_m, e: string) => {
    if (e.startsWith('x')) return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ r: '\r', n: '\n', t: '\t', '0': '\0', '\\': '\\' } as Record<string, string>)[e] ?? e;
  });
}

/** A reply or pattern as an operator can read it in a log line: ASCII, escapes, at most `max` chars. */
export function printable(text: string, max = 60): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  const escaped = cut.replace(/[^\x20-\x7e]|["\\]/g, (c) => {
    const special: Record<string, string> = {
      '\r': '\\r',
      '\n': '\\n',
      '\t': '\\t',
      '"': '\\"',
      '\\': '\\\\',
    };
    return special[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return `"${escaped}"`;
}
