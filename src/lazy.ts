// A library loaded on first use. undici, nodemailer and dns-packet cost 10, 5 and 2 MiB of RSS
// once loaded (measured on Node 20); a daemon whose config has no kept-alive HTTP check, no alert
// and no DNS check never needs them, and neither does each probe worker (a heap of its own).
// pg and mysql2 are loaded by a database check's first login.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A loader of a CommonJS package: `require`d on the first call, then kept. require, not
 * import(): node keeps a failed import() failed for the life of the process. A failed require
 * throws and the next call tries again, which mends a module file that could not be read; but a
 * package resolved while the process was out of descriptors stays MODULE_NOT_FOUND for good
 * (node caches what it could not read; pgsql.test.ts). So a caller that can `preload` at a
 * calm moment (a checker made, a config put in force) does, and the first use is not the first
 * load.
 */
// T is the caller's word for what require() returns, as with a typed import: said once.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function onFirstUse<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}

/** Loads now, for a caller that will need the library soon; its own call reports a failure. */
export function preload(loader: () => unknown): void {
  try {
    loader();
  } catch {
    // Said by the caller's own call, which tries again.
  }
}
