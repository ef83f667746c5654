// Reading the files a config names (the config itself, PEM files): regular files only, up to a
// bound, so /dev/zero, a FIFO or a huge file is a problem and not a frozen or exhausted process.
// The async reader runs off the event loop under a deadline, for the daemon's reload.
import { constants, fstatSync, openSync, closeSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { formatMs } from './reader.js';

const MiB = 2 ** 20;
/**
 * A config's bound. yaml holds about 100 bytes of memory per byte it parses (a 16 MiB file of
 * servers measured 1.5 GB and 18 s on a 2-core host): 64 MiB would pass Node's default heap of
 * about 4 GB. 16 MiB is four times a config of 100,000 real servers (the most one may have).
 */
export const CONFIG_MAX_BYTES = 16 * MiB;
/** A PEM file's bound: a whole system CA bundle is about 220 KiB. */
export const PEM_MAX_BYTES = 1 * MiB;
/** How long the async loader waits for its reads (a file on a hung network mount never ends). */
export const READ_TIMEOUT_MS = 10_000;

/** A file's text, or what kept it from being read ("ENOENT", "not a regular file (a FIFO)"). */
export type FileRead = { readonly text: string } | { readonly problem: string };

/** One deadline for all the reads of a load. */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  readonly signal = this.controller.signal;
  constructor(readonly ms: number) {
    this.timer = setTimeout(() => this.controller.abort(), ms);
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

/** O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it does not wait. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

function formatBytes(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`;
}

/** What is wrong with a file of these stats (symlinks resolved), or null if it may be read. */
function statProblem(st: Stats, limit: number, what: string): string | null {
  if (!st.isFile()) return `not a regular file (${kind(st)})`;
  if (st.size > limit) return `${st.size} bytes, more than the ${formatBytes(limit)} ${what}`;
  return null;
}

function errnoProblem(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** A file's bytes as they are read, in chunks, refused once past the limit. */
class Text {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {}
  /** Room for the next read: 64 KiB, or one byte past the limit, whichever is less. */
  space(): Buffer {
    return Buffer.allocUnsafe(Math.min(64 * 1024, this.limit + 1 - this.length));
  }
  add(chunk: Buffer, n: number): FileRead | null {
    this.chunks.push(chunk.subarray(0, n));
    this.length += n;
    return this.length > this.limit
      ? { problem: `more than the ${formatBytes(this.limit)} ${this.what}` }
      : null;
  }
  done(): FileRead {
    return { text: Buffer.concat(this.chunks, this.length).toString('utf8') };
  }
}

/**
 * Reads a regular file of at most `limit` bytes. The size is checked before reading and again
 * while reading, since a file in /proc says 0 and a file may grow. `what` ends the size problem:
 * "a config may be".
 */
export function readFileBoundedSync(path: string, limit: number, what: string): FileRead {
  try {
    // stat first: a device is never opened (opening one can have effects, a tape rewinds).
    const problem = statProblem(statSync(path), limit, what);
    if (problem) return { problem };
    const fd = openSync(path, OPEN_FLAGS);
    try {
      const again = statProblem(fstatSync(fd), limit, what);
      if (again) return { problem: again };
      const text = new Text(limit, what);
      for (;;) {
        const chunk = text.space();
        const n = readSync(fd, chunk, 0, chunk.length, null);
        if (n === 0) return text.done();
        const over = text.add(chunk, n);
        if (over) return over;
      }
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    return { problem: errnoProblem(e) };
  }
}

/** readFileBoundedSync's rules, read off the event loop; gives up at the deadline. */
export async function readFileBounded(
  path: string,
  limit: number,
  what: string,
  deadline: Deadline,
): Promise<FileRead> {
  const signal = deadline.signal;
  const read = async (): Promise<FileRead> => {
    const problem = statProblem(await stat(path), limit, what);
    if (problem) return { problem };
    const handle = await open(path, OPEN_FLAGS);
    try {
      const again = statProblem(await handle.stat(), limit, what);
      if (again) return { problem: again };
      const text = new Text(limit, what);
      while (!signal.aborted) {
        const chunk = text.space();
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) return text.done();
        const over = text.add(chunk, bytesRead);
        if (over) return over;
      }
      return { problem: 'read abandoned' };
    } finally {
      await handle.close();
    }
  };
  const late = new Promise<FileRead>((resolve) => {
    const give = (): void => resolve({ problem: `not read within ${formatMs(deadline.ms)}` });
    if (signal.aborted) give();
    else signal.addEventListener('abort', give, { once: true });
  });
  // A read stuck in the kernel (a hung mount) keeps its thread, not the loader: the deadline wins.
  return Promise.race([read().catch((e: unknown) => ({ problem: errnoProblem(e) })), late]);
}

/** The files a config names, read once each per load. */
export interface ConfigFiles {
  /** Relative paths resolve from here: the config file's directory. */
  readonly baseDir: string;
  /** The PEM file at `path` (absolute), within PEM_MAX_BYTES. */
  readPem(path: string): FileRead;
  /** `make()`, once per load for each key: a file named by 100,000 servers is parsed once. */
  once<T>(key: string, make: () => T): T;
}

/** Files read on demand, synchronously (still bounded, and never a FIFO or a device). */
export function filesReadOnDemand(
  baseDir: string,
  read: ReadonlyMap<string, FileRead> = new Map(),
): ConfigFiles {
  const cache = new Map(read);
  const made = new Map<string, unknown>();
  return {
    baseDir,
    once<T>(key: string, make: () => T): T {
      if (!made.has(key)) made.set(key, make());
      return made.get(key) as T;
    },
    readPem(path) {
      let r = cache.get(path);
      if (!r) {
        r = readFileBoundedSync(path, PEM_MAX_BYTES, 'a PEM file may be');
        cache.set(path, r);
      }
      return r;
    },
  };
}
