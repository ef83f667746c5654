// The pid file, and the daemon it names. The daemon opens it without following a link, holds a
// lock on it for its whole life (a second daemon with the same file is refused), writes its pid
// and start time, and at its stop removes it only if the file is still the one it wrote.
// `ipvs-warden reload` signals a process only once it has shown to be that daemon.
//
// The lock: Node has no flock(2), so util-linux's flock(1) takes it, on our own open file
// description handed to it as its fd 3. A flock lock belongs to the open file description, not to
// the process that asked, so it stays ours after flock(1) exits, and the kernel drops it when we
// die, even by SIGKILL: there is never a stale lock to judge, and two daemons starting at once
// cannot both win (a pid-and-liveness check alone would have to read, judge and write in steps).
//
// Identity: the pid and the process's start time (/proc/PID/stat, field 22), which a reused pid
// does not share, plus the command line: a program named ipvs-warden (or this very main.js) run
// with `run`. Reload also waits until the process catches SIGHUP (/proc/PID/status SigCgt):
// before that (Node still booting, or systemd's child not yet exec'd) a SIGHUP would end it.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';

/** A refusal to go on, said in one line (the command exits 1). */
export class PidFileError extends Error {
  override readonly name = 'PidFileError';
}

const SIGHUP_BIT = 1n; // SigCgt is a mask with bit n-1 for signal n; SIGHUP is 1.

/** The start time of process `pid` (clock ticks since boot), or null if there is none. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The pid and start time a pid file names (the start time is absent in a file from elsewhere). */
export function readPidFile(path: string): { pid: number; startTime: string | null } {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(128);
      text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString();
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PidFileError(
      code === 'ELOOP'
        ? `pid file ${path} is a symbolic link: not read`
        : `cannot read the pid file ${path}: ${code ?? String(e)} (is the daemon running?)`,
    );
  }
  const [pid = '', start] = text.split('\n');
  if (!/^[1-9]\d*$/.test(pid.trim())) {
    throw new PidFileError(`pid file ${path} does not name a process: ${JSON.stringify(text)}`);
  }
  return { pid: Number(pid.trim()), startTime: start && /^\d+$/.test(start) ? start : null };
}

/** Whether `arg` of process `pid`'s command line is ipvs-warden: by name, or this very file. */
function sameProgram(arg: string, pid: number): boolean {
  if (basename(arg) === 'ipvs-warden') return true;
  const ours = process.argv[1];
  if (!ours) return false;
  try {
    const path = isAbsolute(arg) ? arg : resolve(readlinkSync(`/proc/${pid}/cwd`), arg);
    const [a, b] = [statSync(path), statSync(ours)];
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** Why process `pid` is not a running ipvs-warden daemon that takes SIGHUP, or null if it is. */
function notOurDaemon(pid: number): string | null {
  let argv: string[];
  let status: string;
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return `there is no process ${pid}`;
  }
  const program = argv.findIndex((a, i) => i > 0 && sameProgram(a, pid));
  if (program < 0 || !argv.slice(program + 1).includes('run')) {
    return `process ${pid} is not an ipvs-warden daemon: its command is \`${argv.join(' ').slice(0, 200)}\``;
  }
  const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (caught === undefined || (BigInt(`0x${caught}`) & SIGHUP_BIT) === 0n) {
    return `process ${pid} does not catch SIGHUP yet (still starting?)`;
  }
  return null;
}

/**
 * Sends SIGHUP to the daemon: `pid` as given (systemd's $MAINPID), or the one the pid file names.
 * Waits up to `timeoutMs` for it to be a daemon that catches SIGHUP; a pid file whose start time
 * is not the process's is refused at once (the pid was reused). Returns the pid signalled.
 */
export async function signalReload(
  target: { pid: number } | { pidFile: string },
  timeoutMs: number,
): Promise<number> {
  const named =
    'pid' in target ? { pid: target.pid, startTime: null } : readPidFile(target.pidFile);
  const { pid } = named;
  // The monotonic clock: a wall clock stepped by NTP meanwhile would cut the wait or stretch it.
  const end = performance.now() + timeoutMs;
  for (;;) {
    const started = startTime(pid);
    if (started === null)
      throw new PidFileError(`there is no process ${pid}; nothing was signalled`);
    if (named.startTime !== null && started !== named.startTime) {
      const file = 'pidFile' in target ? target.pidFile : '';
      throw new PidFileError(
        `process ${pid} is not the process that wrote ${file} (it started at another time): a stale pid file; nothing was signalled`,
      );
    }
    const problem = notOurDaemon(pid);
    if (problem === null) break;
    if (performance.now() >= end) {
      throw new PidFileError(`${problem} after ${timeoutMs} ms; nothing was signalled`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(pid, 'SIGHUP');
  return pid;
}

/** The daemon's pid file, locked and written; `release` at the stop. */
export class PidFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * Opens (creating it, mode 0644 less the umask) and locks `path`, then writes this process's
   * pid and start time. Throws a PidFileError for a link, a file that is not a plain file, or
   * a file another daemon holds.
   */
  static claim(path: string): PidFile {
    // A daemon that is releasing the file as we open it leaves us an unlinked inode: try again.
    for (let attempt = 0; ; attempt++) {
      const fd = openPidFile(path);
      try {
        lock(fd, path);
        const [held, named] = [fstatSync(fd), lstatSafe(path)];
        if (named && named.dev === held.dev && named.ino === held.ino) {
          const start = startTime(process.pid) ?? '';
          ftruncateSync(fd, 0);
          writeSync(fd, `${process.pid}\n${start}\n`, 0);
          return new PidFile(path, fd);
        }
        if (attempt >= 3) throw new PidFileError(`pid file ${path} keeps being replaced`);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      closeSync(fd);
    }
  }

  /** Removes the file if it is still the one we hold and still names us; then lets go of it. */
  release(): void {
    const fd = this.fd;
    if (fd === null) return;
    this.fd = null;
    try {
      const [held, named] = [fstatSync(fd), lstatSafe(this.path)];
      const buf = Buffer.alloc(32);
      const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString();
      const ours = text.split('\n')[0] === String(process.pid);
      if (ours && named && named.dev === held.dev && named.ino === held.ino) {
        unlinkSync(this.path);
      }
    } catch {
      // Gone already, or unreadable: nothing of ours to remove.
    } finally {
      closeSync(fd);
    }
  }
}

function lstatSafe(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function openPidFile(path: string): number {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted there must not hang the start.
    fd = openSync(
      path,
      constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      0o644,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PidFileError(
      code === 'ELOOP'
        ? `pid file ${path} is a symbolic link: refusing to follow it (remove it, or set another daemon.pid_file)`
        : `cannot open the pid file ${path}: ${code ?? String(e)}`,
    );
  }
  const st = fstatSync(fd);
  const problem = !st.isFile()
    ? 'is not a plain file'
    : st.nlink !== 1
      ? `has ${st.nlink} links (a hard link to another file?)`
      : null;
  if (problem) {
    closeSync(fd);
    throw new PidFileError(`pid file ${path} ${problem}: refusing to write it`);
  }
  return fd;
}

/** Takes the lock with flock(1) on `fd` (see the header); throws if another process holds it. */
function lock(fd: number, path: string): void {
  const r = spawnSync('flock', ['--nonblock', '--exclusive', '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    encoding: 'utf8',
  });
  if (r.status === 0) return;
  if (r.error) {
    throw new PidFileError(
      `cannot lock the pid file ${path}: flock(1) (util-linux) could not run: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`,
    );
  }
  if (r.status === 1) {
    let holder = 'another process';
    try {
      holder = `another ipvs-warden (pid ${readPidFile(path).pid})`;
    } catch {
      // Not written yet: it is starting right now.
    }
    throw new PidFileError(
      `${holder} holds the pid file ${path}: a daemon with this config is running already (stop it first, or give this one another daemon.pid_file)`,
    );
  }
  throw new PidFileError(`cannot lock the pid file ${path}: ${r.stderr.trim()}`);
}
