// `ipvs-warden` as a process for the tests of its lifetime (signals, pid file): the daemon spawned
// as it runs for real, its JSON log lines collected, and the command line run once.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
/** This checkout's program: node and main.js. */
const checkout: readonly string[] = [process.execPath, main];

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Daemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly events: Record<string, unknown>[];
  /** What it wrote to stderr. */
  readonly errors: string[];
  readonly exited: Promise<Exit>;
}

export function exitOf(proc: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * `ipvs-warden run --config FILE`; `stdout` a descriptor to log to instead of a pipe. `stopped`:
 * the process stops itself (SIGSTOP) before node starts, whatever the machine's load; SIGCONT
 * lets it go on (the pid stays the same through the exec). `program`: the command that is
 * ipvs-warden (an installed one), this checkout's by default.
 */
export function spawnDaemon(
  file: string,
  stdout?: number,
  stopped = false,
  program: readonly string[] = checkout,
): Daemon {
  // Without tap's NODE_OPTIONS, whose process-info hook catches SIGHUP in every child and
  // re-raises it (tap puts it back into any env given to spawn, so env(1) takes it out, then
  // execs the program in the same process).
  const argv = ['/usr/bin/env', '-u', 'NODE_OPTIONS', ...program, 'run', '--config', file];
  const proc = stopped
    ? spawn('/bin/sh', ['-c', 'kill -STOP $$; exec "$@"', 'sh', ...argv], {
        stdio: ['ignore', stdout ?? 'pipe', 'pipe'],
      })
    : spawn(argv[0] ?? '', argv.slice(1), { stdio: ['ignore', stdout ?? 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  const errors: string[] = [];
  if (proc.stdout) {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
    });
  }
  proc.stderr?.on('data', (c: Buffer) => errors.push(c.toString()));
  return { proc, pid: proc.pid ?? 0, events, errors, exited: exitOf(proc) };
}

/** One command, to its end: exit status and everything it printed. */
export function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [main, ...args], (error, out, err) =>
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, out: out + err }),
    ),
  );
}

export const names = (d: { events: Record<string, unknown>[] }): unknown[] =>
  d.events.map((e) => e.event);

/** Its exit, or 'still running' after `ms` (a test's bound, not a margin it depends on). */
export async function exitWithin(d: Daemon, ms = 20_000): Promise<Exit | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  try {
    return await Promise.race([d.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}
