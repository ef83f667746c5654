// Exec check: an external command (no shell) with the target in its arguments and environment,
// like ldirectord's `external` and keepalived's MISC_CHECK. Exit 0 is healthy. It runs in its
// own process group, and the whole group is killed at the deadline and after the command exits,
// so nothing it forked outlives the check.
import { spawn } from 'node:child_process';
import pLimit, { type LimitFunction } from 'p-limit';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { ProbeRun } from '../src/health/probe.js';
import { printable } from './tcp.js';

export interface ExecCheckOptions {
  /** Program and arguments; {address}, {port} and {family} are replaced by the target's. */
  readonly command: readonly string[];
  /** keepalived's convention: exit 2..255 is healthy with weight = code - 2. */
  readonly dynamicWeight?: boolean;
  /** Bytes of output (stdout and stderr) kept for the message; the rest is dropped (default 4096). */
  readonly maxOutput?: number;
  /** More environment for the command (PATH and WARDEN_ADDRESS/PORT/FAMILY are always set). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Commands running at once, for all exec checks of the process. */
let slots: LimitFunction = pLimit(32);
export function setExecConcurrency(n: number): void {
  slots = pLimit(n);
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

export class ExecChecker implements Checker {
  readonly kind = 'exec';
  readonly description: string;
  readonly key: string;

  constructor(private readonly options: ExecCheckOptions) {
    if (options.command.length === 0 || !options.command[0])
      throw new Error('exec check needs a command');
    this.description = `exec ${options.command[0]}`;
    this.key = `exec:${JSON.stringify([options.command, options.dynamicWeight, options.env])}`;
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    // Waiting for a slot counts against the check's own deadline.
    let started = false;
    const waiting = new Promise<CheckResult>((resolve) => {
      const onAbort = (): void => {
        if (!started) resolve(run.failWith(run.signal.reason, 'waiting for a process slot'));
      };
      if (run.signal.aborted) onAbort();
      else run.signal.addEventListener('abort', onAbort, { once: true });
    });
    const execute = (): Promise<CheckResult> => {
      if (run.signal.aborted) return waiting;
      started = true;
      return this.execute(target, run);
    };
    return Promise.race([slots(execute), waiting]);
  }

  private execute(target: CheckTarget, run: ProbeRun): Promise<CheckResult> {
    const fill = (s: string): string =>
      s
        .replaceAll('{address}', target.address)
        .replaceAll('{port}', String(target.port))
        .replaceAll('{family}', String(target.family));
    const [program = '', ...args] = this.options.command.map(fill);
    const max = this.options.maxOutput ?? 4096;
    return new Promise<CheckResult>((resolve) => {
      let output = '';
      let settled = false;
      const child = spawn(program, args, {
        detached: true, // its own process group, killed whole
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
          WARDEN_ADDRESS: target.address,
          WARDEN_PORT: String(target.port),
          WARDEN_FAMILY: String(target.family),
          ...this.options.env,
        },
      });
      const keep = (chunk: Buffer): void => {
        if (output.length < max) output += chunk.toString('utf8').slice(0, max - output.length);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const finish = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        run.signal.removeEventListener('abort', onAbort);
        killGroup(child.pid);
        resolve(result);
      };
      const onAbort = (): void => {
        killGroup(child.pid);
        finish(run.failWith(run.signal.reason, 'waiting for the command to exit'));
      };
      run.signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', (error) =>
        finish(
          run.fail(
            `cannot run: ${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`.trim(),
          ),
        ),
      );
      child.on('exit', (code, signal) => {
        // Children it left behind go with it; their pipes then close and the output is complete.
        killGroup(child.pid);
        child.on('close', () => {
          const last = output.trim().split('\n').at(-1) ?? '';
          const said = last ? `; output: ${printable(last)}` : '';
          if (signal) {
            finish(run.fail(`killed by ${signal}${said}`));
          } else if (code === 0) {
            finish(run.ok('exited 0'));
          } else if (this.options.dynamicWeight && code !== null && code >= 2) {
            finish(run.withWeight(run.ok(`exited ${code} (weight ${code - 2})`), code - 2));
          } else {
            finish(run.fail(`exited ${code ?? '?'}${said}`));
          }
        });
      });
    });
  }
}
