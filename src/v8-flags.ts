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
export const V8_FLAGS: readonly string[] = [
  '--no-allocation-site-pretenuring',
  /*
   * After a mark-compact V8 lets the old generation grow by a factor it picks, up to four times
   * what was left alive on a machine with this much memory, before the next; with this, by a
   * quarter. At 10,000 HTTP checks a second the old generation gains about 1 MiB a second, so
   * that is a mark-compact of a 45 MiB heap every ten seconds or so, for a RSS median of 142-149
   * MiB instead of 174-177 (`npm run bench:memory`). From the start: set once the daemon ran, it
   * took effect only at the next mark-compact, minutes later, and the garbage of start-up stayed
   * until then. Reading 100,000 real servers takes 4-7 % longer with it (bench:config's process
   * does not set it).
   */
  '--heap-growing-percent=25',
];

/**
 * Sets V8_FLAGS through `set` (node's `v8.setFlagsFromString`), but not one the operator gave
 * node on its command line (`execArgv`; V8 reads `_` and `-` alike): theirs is in force and
 * stays (`--x` or `--no-x` alike). Returns what it set.
 */
export function setV8Flags(
  set: (flag: string) => void = setFlagsFromString,
  execArgv: readonly string[] = process.execArgv,
): string[] {
  const given = new Set(execArgv.map(flagName));
  const out = V8_FLAGS.filter((flag) => !given.has(flagName(flag)));
  for (const flag of out) set(flag);
  return out;
}

/** A flag's name as V8 matches it: no value, `_` as `-`, `--no-x` as `--x`. */
function flagName(arg: string): string {
  return (arg.split('=')[0] ?? '').replaceAll('_', '-').replace(/^--no-/, '--');
}
