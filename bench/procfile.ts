// A /proc file opened once and read again from its start (pread) at each call. A benchmark that
// fills the process's descriptors (a bare loop of 50,000 targets, a target server with every
// check's connection open) could not open the file any more: EMFILE ended the run. Open it
// before the load starts.
import { openSync, readSync } from 'node:fs';

/** A reader of `path`, opened now; each call returns the file's whole text (up to `size` bytes). */
export function procReader(path: string, size = 8192): () => string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(size);
  return () => buf.toString('utf8', 0, readSync(fd, buf, 0, size, 0));
}
