// Exec check: an external command (no shell) with the target in its arguments and environment,
// like ldirectord's `external` and keepalived's MISC_CHECK. Exit 0 is healthy. It runs in its
// own process group, and the whole group is killed at the deadline and after the command exits,
// so nothing it forked outlives the check (what leaves the group with setsid is out of reach).
import { spawn, type ChildProcess } from 'node:child_process';
import pLimit from 'p-limit';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { checkKey } from '../src/health/canonical.js';
import {
  normalExec,
  type ExecCheckOptions,
  type NormalExecOptions,
} from '../src/health/options.js';
import { ProbeRun, localErrno } from '../src/health/probe.js';
import { printable } from './tcp.js';

/** Commands running at once, for all exec checks of the process (one limiter, never replaced). */
const slots = pLimit(32);

/** Sets the process-wide cap (an integer >= 1); checks already waiting follow the new one. */
export function setExecConcurrency(n: number): void {
  slots.concurrency = n;
}

export function execConcurrency(): number {
  return slots.concurrency;
}

/** After the command exits, how long its output may take to reach end of file (see below). */
const CLOSE_GRACE_MS = 100;

const SPAWN_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ENOEXEC: 'not an executable format',
  ENOTDIR: 'not a directory',
  E2BIG: 'argument list too long',
};

/**
 * A spawn that failed: the director's own shortage (EAGAIN, ENOMEM, EMFILE: no process or
 * pipe to be had) is a local result; anything else (ENOENT, EACCES) is the config's fault and
 * a failure.
 */
function cannotRun(run: ProbeRun, error: unknown): CheckResult {
  const errno = localErrno(error);
  if (errno) return run.local(errno);
  const e = error as { code?: string; message?: string };
  const text = e.code ? SPAWN_ERRORS[e.code] : undefined;
  if (e.code && text) return run.fail(`cannot run: ${e.code} (${text})`);
  return run.fail(`cannot run: ${e.message ?? String(error)}`);
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** The last `max` bytes written to it, held in at most `max` bytes. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    if (this.max <= 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.max)
      this.size -= this.chunks.shift()?.length ?? 0;
    const first = this.chunks[0];
    if (first && this.size > this.max) {
      // A copy, so the rest of a large read buffer is not kept alive by a view into it.
      this.chunks[0] = Buffer.from(first.subarray(this.size - this.max));
      this.size = this.max;
    }
  }

  /** The last non-blank line. */
  lastLine(): string {
    const text = Buffer.concat(this.chunks).toString('utf8').trimEnd();
    return text.split(/\r?\n/).at(-1) ?? '';
  }
}

export class ExecChecker implements Checker {
  readonly kind = 'exec';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalExecOptions;
  /** The process cap: a check waits for it in `check`, so the scheduler holds no slot meanwhile. */
  readonly limiter = slots;

  constructor(options: ExecCheckOptions) {
    if (options.command.length === 0 || !options.command[0])
      throw new Error('exec check needs a command');
    this.options = normalExec(options);
    this.description = `exec ${options.command[0]}`;
    this.key = checkKey(this.kind, this.options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const done = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        run.signal.removeEventListener('abort', onWaitAbort);
        resolve(result);
      };
      // Waiting for a slot counts against the check's own deadline.
      const onWaitAbort = (): void =>
        done(run.failWith(run.signal.reason, 'waiting for a process slot'));
      if (run.signal.aborted) {
        onWaitAbort();
        return;
      }
      run.signal.addEventListener('abort', onWaitAbort, { once: true });
      // The slot is held until the process is gone, not merely until the result is known.
      void slots(() => {
        if (settled) return undefined; // gave up while waiting: the slot goes straight on
        run.signal.removeEventListener('abort', onWaitAbort);
        return this.execute(target, run, done);
      }).catch((error: unknown) => done(cannotRun(run, error)));
    });
  }

  /** Runs the command, reports through `done`; resolves once the process has exited. */
  private execute(
    target: CheckTarget,
    run: ProbeRun,
    done: (result: CheckResult) => void,
  ): Promise<void> {
    const fill = (s: string): string =>
      s
        .replaceAll('{address}', target.address)
        .replaceAll('{port}', String(target.port))
        .replaceAll('{family}', String(target.family));
    const [program = '', ...args] = this.options.command.map(fill);
    const output = new Tail(this.options.maxOutput);
    return new Promise<void>((gone) => {
      let child: ChildProcess;
      try {
        child = spawn(program, args, {
          detached: true, // its own process group, killed whole
          stdio: ['ignore', 'pipe', 'pipe'],
          env: {
            PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
            ...this.options.env,
            WARDEN_ADDRESS: target.address,
            WARDEN_PORT: String(target.port),
            WARDEN_FAMILY: String(target.family),
          },
        });
      } catch (error) {
        // Synchronous refusals: a NUL byte in an argument, say.
        done(cannotRun(run, error));
        gone();
        return;
      }
      const pid = child.pid;
      let exited = false;
      let finished = false;
      let grace: NodeJS.Timeout | undefined;
      /** Set at the exit: the result its status (and output) make. */
      let verdict: (() => CheckResult) | undefined;

      const finish = (result: () => CheckResult): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        clearTimeout(grace);
        // After the exit the group was killed already, and the pid may be someone else's now.
        if (!exited) killGroup(pid);
        child.stdout?.destroy();
        child.stderr?.destroy();
        done(result());
      };
      // Once it has exited the verdict is known; only the end of its output was awaited.
      const onAbort = (): void =>
        finish(
          verdict ?? (() => run.failWith(run.signal.reason, 'waiting for the command to exit')),
        );
      run.signal.addEventListener('abort', onAbort, { once: true });

      const keep = (chunk: Buffer): void => output.push(chunk);
      child.stdout?.on('data', keep).on('error', () => undefined);
      child.stderr?.on('data', keep).on('error', () => undefined);

      child.on('error', (error) => {
        // Spawning failed (ENOENT, EACCES): there is no process. Other errors (a failed kill
        // or send) are not ours to have: this check never signals through the handle.
        if (pid !== undefined) return;
        finish(() => cannotRun(run, error));
        gone();
      });

      child.on('exit', (code, signal) => {
        exited = true;
        gone();
        // Killed whole at the deadline or on cancel: the result is out already.
        if (finished) return;
        // Children it left behind go with it; their ends of its pipes close, the output ends.
        killGroup(pid);
        const report = (): CheckResult => {
          const last = output.lastLine();
          const said = last ? `; output: ${printable(last)}` : '';
          if (signal) return run.fail(`killed by ${signal}${said}`);
          if (code === 0) return run.ok('exited 0');
          if (this.options.dynamicWeight && code !== null && code >= 2)
            return run.withWeight(run.ok(`exited ${code} (weight ${code - 2})`), code - 2);
          return run.fail(`exited ${code ?? '?'}${said}`);
        };
        verdict = report;
        // A process that left the group (setsid) may hold its output open: the exit status
        // is the verdict, so the output gets a moment to end and is then cut off.
        grace = setTimeout(() => finish(report), CLOSE_GRACE_MS);
        child.once('close', () => finish(report));
      });
    });
  }
}
