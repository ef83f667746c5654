// The V8 flags the process sets on itself. node takes only a few V8 flags from NODE_OPTIONS and
// the packaged command starts node with none, so they are set here, before the work starts. V8
// reads these ones each time it decides, so setting them at run time takes effect.

import { setFlagsFromString } from 'node:v8';

/**
 * Allocation-site pretenuring off. Once most objects from one object or array literal have
 * survived a scavenge, V8 allocates that literal's later objects in the old generation. Checks
 * in flight survive a scavenge, and the per-check literals of the daemon were tenured that way.
 * A dead object in the old generation keeps every young object it points to alive through each
 * scavenge until the next mark-compact, so the rest of each check was copied into the old
 * generation too. At 3,000 HTTP checks a second, the old generation grew by 11 MiB a second
 * with pretenuring and by 3.2 with it off, and each check cost a tenth less CPU
 * (`npm run bench:memory`).
 */
export const V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

/** Sets V8_FLAGS through `set` (node's `v8.setFlagsFromString`). */
export function setV8Flags(set: (flag: string) => void = setFlagsFromString): void {
  for (const flag of V8_FLAGS) set(flag);
}
