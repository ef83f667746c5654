// Runs the hooks hooksFor() decides, off the loop: `run` returns at once and nothing a tick
// awaits ever waits on a hook. Each runs as exec checks do (src/health/spawn.ts): under setpriv
// with every capability dropped, in its own process group killed whole at its deadline and
// after it exits, under the shared process cap (daemon.exec_concurrency), its output kept in a
// bounded tail. Runs of one server (or one service's fallback) run one after another, in order;
// at most `maxQueued` wait, more are dropped. Every outcome is logged and counted.
import { spawn, type ChildProcess } from 'node:child_process';
import type { LimitFunction } from 'p-limit';
import { processSlots } from '../health/processes.js';
import { printable } from '../health/probe.js';
import { ChildOutput, killGroup, setpriv, setprivOptions } from '../health/spawn.js';
import type { Logger } from '../log.js';
import type { HookName, HookRun } from './decide.js';

/** `failure`: ran and exited non-zero or was killed; `error`: could not be run. */
export type HookResult = 'success' | 'failure' | 'timeout' | 'error' | 'dropped';
export const HOOK_RESULTS: readonly HookResult[] = [
  'success',
  'failure',
  'timeout',
  'error',
  'dropped',
];

export interface HookRunnerOptions {
  readonly log: Logger;
  /** Called once per run with its outcome (the metric). */
  readonly onResult?: (hook: HookName, result: HookResult) => void;
  /** The process cap; default the one exec checks share. */
  readonly slots?: LimitFunction;
  /** Runs waiting or running at most; one more is dropped (logged and counted). */
  readonly maxQueued?: number;
  /** Bytes of output (the last ones) kept for the log. */
  readonly maxOutput?: number;
}

interface Outcome {
  readonly result: HookResult;
  readonly message: string;
}

/** After the command exits, how long its output may take to reach end of file. */
const CLOSE_GRACE_MS = 100;

export class HookRunner {
  private readonly log: Logger;
  private readonly onResult: (hook: HookName, result: HookResult) => void;
  private readonly slots: LimitFunction;
  private readonly maxQueued: number;
  private readonly maxOutput: number;
  /** The last run of each key: the next one of that key starts after it. */
  private readonly chains = new Map<string, Promise<void>>();
  private pending = 0;
  private stopping = false;
  private readonly all = new Set<Promise<void>>();
  /** Each `user`'s own group, looked up once. */
  private readonly userGroups = new Map<string, string>();

  constructor(options: HookRunnerOptions) {
    this.log = options.log;
    this.onResult = options.onResult ?? (() => undefined);
    this.slots = options.slots ?? processSlots;
    this.maxQueued = options.maxQueued ?? 1000;
    this.maxOutput = options.maxOutput ?? 4096;
  }

  /** Starts the runs and returns at once; never throws. */
  run(runs: readonly HookRun[]): void {
    for (const r of runs) {
      if (this.stopping) {
        this.report(r, { result: 'dropped', message: 'the daemon is stopping' }, 0);
        continue;
      }
      if (this.pending >= this.maxQueued) {
        this.report(
          r,
          { result: 'dropped', message: `${this.maxQueued} hooks already waiting` },
          0,
        );
        continue;
      }
      this.pending++;
      const before = this.chains.get(r.key) ?? Promise.resolve();
      const next = before.then(() => this.one(r));
      this.chains.set(r.key, next);
      this.all.add(next);
      void next.finally(() => {
        this.pending--;
        this.all.delete(next);
        if (this.chains.get(r.key) === next) this.chains.delete(r.key);
      });
    }
  }

  /**
   * At stop: no run starts any more (those waiting are dropped, logged and counted); resolves
   * when the running ones have ended, each within its deadline.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.idle();
  }

  /** Resolves when no run is waiting or running (tests, and a stop that wants them done). */
  async idle(): Promise<void> {
    while (this.all.size > 0) await Promise.allSettled([...this.all]);
  }

  private async one(r: HookRun): Promise<void> {
    if (this.stopping) {
      this.report(r, { result: 'dropped', message: 'the daemon is stopping' }, 0);
      return;
    }
    let started = 0;
    const outcome = await this.slots((): Promise<Outcome> | Outcome => {
      if (this.stopping) return { result: 'dropped', message: 'the daemon is stopping' };
      started = performance.now();
      return this.execute(r);
    }).catch((e: unknown): Outcome => ({
      result: 'error',
      message: `cannot run: ${e instanceof Error ? e.message : String(e)}`,
    }));
    this.report(r, outcome, started ? performance.now() - started : 0);
  }

  private report(r: HookRun, o: Outcome, ms: number): void {
    this.onResult(r.hook, o.result);
    const fields = {
      hook: r.hook,
      service: r.service,
      ...(r.server !== undefined ? { server: r.server } : {}),
      program: r.program,
      result: o.result,
      message: o.message,
      duration_ms: Math.round(ms),
    };
    if (o.result === 'success') this.log.log('debug', 'hook.ran', fields);
    else this.log.log('warn', 'hook.failed', fields);
  }

  /** Runs the command; resolves once it has exited (the slot is held until then). */
  private async execute(r: HookRun): Promise<Outcome> {
    const wrapper = setpriv();
    // Never run a command with the daemon's capabilities.
    if (!wrapper)
      return {
        result: 'error',
        message: 'cannot run: setpriv (util-linux) is not installed; it drops capabilities',
      };
    const options = await setprivOptions(r, AbortSignal.timeout(r.timeoutMs), this.userGroups);
    if (!('args' in options)) return { result: 'error', message: `cannot run: ${options.said}` };
    return new Promise<Outcome>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(wrapper, [...options.args, '--', r.program, ...r.args], {
          detached: true, // its own process group, killed whole
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...r.env },
        });
      } catch (e) {
        resolve({ result: 'error', message: `cannot run: ${(e as Error).message}` });
        return;
      }
      const pid = child.pid;
      const output = new ChildOutput(this.maxOutput);
      let timedOut = false;
      let finished = false;
      const finish = (o: Outcome): void => {
        if (finished) return;
        finished = true;
        clearTimeout(deadline);
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(o);
      };
      const deadline = setTimeout(() => {
        timedOut = true;
        killGroup(pid);
      }, r.timeoutMs);
      output.attach(child);
      child.on('error', (e) => {
        // Spawning setpriv failed (EAGAIN, EMFILE): there is no process.
        if (pid === undefined) finish({ result: 'error', message: `cannot run: ${e.message}` });
      });
      child.on('exit', (code, signal) => {
        clearTimeout(deadline);
        // What it left behind in its group goes with it.
        killGroup(pid);
        const outcome = (): Outcome => {
          const last = output.tail.lastLine();
          const said = last ? `; output: ${printable(last)}` : '';
          if (timedOut)
            return { result: 'timeout', message: `killed after ${r.timeoutMs} ms${said}` };
          const refused = output.setprivFailure(code);
          if (refused) return { result: 'error', message: `cannot run: ${refused.message}` };
          if (signal) return { result: 'failure', message: `killed by ${signal}${said}` };
          if (code === 0) return { result: 'success', message: `exited 0${said}` };
          return { result: 'failure', message: `exited ${code ?? '?'}${said}` };
        };
        const grace = setTimeout(() => finish(outcome()), CLOSE_GRACE_MS);
        child.once('close', () => {
          clearTimeout(grace);
          finish(outcome());
        });
      });
    });
  }
}
