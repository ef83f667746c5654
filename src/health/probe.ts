// What every probe needs: one signal for "stop now" (the caller's or the deadline's), and a
// message built step by step so a failure says how far the probe got.
import type { CheckContext, CheckResult, CheckTarget } from './checker.js';

export function hostPort(target: CheckTarget): string {
  return target.family === 6
    ? `[${target.address}]:${target.port}`
    : `${target.address}:${target.port}`;
}

export class ProbeRun {
  readonly signal: AbortSignal;
  /** Set once the connection is up (a probe's connector may learn it late). */
  connected = false;
  private readonly started = performance.now();
  private readonly steps: string[] = [];
  private readonly deadline: AbortSignal;

  constructor(
    private readonly description: string,
    private readonly target: CheckTarget,
    private readonly context: CheckContext,
  ) {
    this.deadline = AbortSignal.timeout(context.timeoutMs);
    this.signal = AbortSignal.any([context.signal, this.deadline]);
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

  /** The failure for an error or an abort, named as an operator reads it. */
  failWith(error: unknown, waitingFor: string): CheckResult {
    if (this.deadline.aborted)
      return this.fail(`timed out after ${this.context.timeoutMs} ms ${waitingFor}`);
    if (this.context.signal.aborted) return this.fail(`cancelled ${waitingFor}`);
    return this.fail(describeError(error));
  }

  withWeight(result: CheckResult, weight: number): CheckResult {
    return { ...result, weight };
  }

  private result(healthy: boolean, text?: string): CheckResult {
    const steps = text === undefined ? this.steps : [...this.steps, text];
    return {
      healthy,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
      message: `${this.description} -> ${hostPort(this.target)}: ${steps.join('; ') || 'no reply'}`,
    };
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'source address not available',
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
