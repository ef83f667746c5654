// Running a command as the daemon's children must: without the daemon's capabilities (util-linux's
// setpriv drops them), in a process group of its own that is killed whole, its output kept in a
// bounded tail. Shared by exec checks (checks/exec.ts) and hooks (src/hooks/).
import { execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { localErrno } from './probe.js';

/** strerror(3) texts, as setpriv words a failure, back to the errno. */
const ERRNO_OF_TEXT: Record<string, string> = {
  'No such file or directory': 'ENOENT',
  'Permission denied': 'EACCES',
  'Exec format error': 'ENOEXEC',
  'Not a directory': 'ENOTDIR',
  'Argument list too long': 'E2BIG',
  'Too many open files': 'EMFILE',
  'Too many open files in system': 'ENFILE',
  'Cannot allocate memory': 'ENOMEM',
  'Resource temporarily unavailable': 'EAGAIN',
};

/**
 * Drops every capability the command could start with: inheritable and ambient (what an
 * unprivileged daemon with AmbientCapabilities= would pass on) and the bounding set (what a
 * root daemon's child would get back at exec). Without CAP_SETPCAP the bounding set cannot be
 * lowered and setpriv leaves it: with nothing inheritable or ambient, and the unit's
 * NoNewPrivileges, nothing in it can be regained.
 */
export const DROP_CAPS = ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all'];
const SETPRIV_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
let setprivPath: string | undefined;

/** Whom a command runs as: unset, the daemon's own user. */
export interface RunAs {
  /** A user name or uid. */
  readonly user?: string;
  /** A group name or gid; with `user` unset, the daemon's user in that group alone. */
  readonly group?: string;
}

/**
 * setpriv's options for `as`, every capability dropped. A user's own group is looked up with
 * id(1), which asks NSS as a login would (setpriv keeps the daemon's group unless told), once per
 * user in `known`. Fails with what id(1) said, or the error (EMFILE, an abort...).
 */
export async function setprivOptions(
  as: RunAs,
  signal: AbortSignal,
  known: Map<string, string>,
): Promise<{ args: string[] } | { error: unknown; said: string }> {
  const { user, group } = as;
  if (user === undefined)
    return {
      args: group === undefined ? DROP_CAPS : [`--regid=${group}`, '--clear-groups', ...DROP_CAPS],
    };
  let gid = group ?? known.get(user);
  if (gid === undefined) {
    const looked = await new Promise<{ gid: string } | { error: unknown; said: string }>(
      (resolve) =>
        execFile(
          'id',
          ['-g', '--', user],
          { signal, env: { PATH: '/usr/bin:/bin' } },
          (error, stdout, stderr) =>
            resolve(
              error
                ? { error, said: stderr.trim() || `cannot look up user ${user}` }
                : { gid: stdout.trim() },
            ),
        ),
    );
    if (!('gid' in looked)) return looked;
    gid = looked.gid;
    known.set(user, gid);
  }
  return { args: [`--reuid=${user}`, `--regid=${gid}`, '--init-groups', ...DROP_CAPS] };
}

/** Where setpriv is (found once); undefined when it is not installed. */
export function setpriv(): string | undefined {
  if (setprivPath) return setprivPath;
  for (const dir of SETPRIV_DIRS) {
    try {
      accessSync(`${dir}/setpriv`, constants.X_OK);
      return (setprivPath = `${dir}/setpriv`);
    } catch {
      // not there
    }
  }
  return undefined;
}

/**
 * setpriv's own complaint, when it failed before running the command: it exits 1, 126 or 127
 * having written one "setpriv: ..." line and nothing else. An exit code alone would not do:
 * with dynamic weight, 127 from a command that never ran would be healthy at weight 125.
 */
export function setprivFailure(
  code: number | null,
  stdoutBytes: number,
  stderr: string,
): { code?: string; message: string } | undefined {
  if (code !== 1 && code !== 126 && code !== 127) return undefined;
  const m = /^setpriv: ([^\n]*?)(?:: ([^:\n]+))?\n?$/.exec(stderr);
  if (stdoutBytes > 0 || !m) return undefined;
  const [line, what = '', why] = m;
  const message = line.trim().slice('setpriv: '.length);
  const errno = why === undefined ? undefined : ERRNO_OF_TEXT[why];
  // The command could not be executed: named as spawn would have (ENOENT, EACCES).
  if (errno && what.startsWith('failed to execute ')) return { code: errno, message };
  // setpriv itself short of memory or processes: local, like a spawn that failed so.
  if (errno && localErrno({ code: errno })) return { code: errno, message };
  return { message };
}

/** SIGKILL to a whole process group; one already gone is fine. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** The last `max` bytes written to it, held in at most `max` bytes. */
export class Tail {
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

/**
 * A child's output as a check or a hook reads it: the tail for the message, and enough besides
 * to tell setpriv's own failure from the command's output (stdout's size, stderr's head).
 */
export class ChildOutput {
  readonly tail: Tail;
  private stdoutBytes = 0;
  private stderrHead = '';
  constructor(max: number) {
    this.tail = new Tail(max);
  }

  /** Listens to the child's stdout and stderr (their errors are the child's, not ours). */
  attach(child: ChildProcess): void {
    child.stdout
      ?.on('data', (chunk: Buffer) => {
        this.stdoutBytes += chunk.length;
        this.tail.push(chunk);
      })
      .on('error', () => undefined);
    child.stderr
      ?.on('data', (chunk: Buffer) => {
        if (this.stderrHead.length <= 1024) this.stderrHead += chunk.toString('utf8', 0, 1025);
        this.tail.push(chunk);
      })
      .on('error', () => undefined);
  }

  /** setpriv's complaint, when it exited with `code` before running the command. */
  setprivFailure(code: number | null): ReturnType<typeof setprivFailure> {
    return setprivFailure(code, this.stdoutBytes, this.stderrHead);
  }
}
