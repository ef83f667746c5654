// A command of a VM lane, run to its end: its stdout, or an error that names it. Bounded, so one
// command that never returns (a sync daemon that does not stop, an `ip netns exec` left waiting)
// fails its own test by name instead of holding the whole lane until the lane's own limit.
import { execFileSync } from 'node:child_process';

/** Far above any command the lanes run (`ipvs-warden table`, the slowest, takes seconds there). */
export const COMMAND_TIMEOUT_MS = 120_000;

export function sh(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    ...(input === undefined ? {} : { input }),
  });
}

/**
 * A shell script (`sh -ec`) run to its end, bounded as `sh` is: its output dropped, its errors
 * shown. The lanes build their topologies so.
 */
export function script(text: string): void {
  execFileSync('sh', ['-ec', text], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: COMMAND_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
}
