// The V8 flags the process sets on itself, and the one it cannot. node takes only a few V8 flags
// from NODE_OPTIONS, so most are set here: some before the work starts, one only while the daemon
// runs. V8 reads these each time it decides, so setting them at run time takes effect. The young
// generation's size is read once, when the heap is made: that one is on node's command line
// (NODE_START_FLAGS).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

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

/**
 * While the daemon runs, not while it reads a config. After a mark-compact V8 lets the old
 * generation grow by a factor it picks, up to four times what was left alive on a machine with
 * this much memory, before the next; with this, by a quarter. At 10,000 HTTP checks a second the
 * old generation gains about 1 MiB a second, so that is a mark-compact of a 45 MiB heap every ten
 * seconds or so, for a RSS median of 142-149 MiB instead of 174-177 (`npm run bench:memory`).
 * Reading a config, whose live heap grows all along, it made seven mark-compacts of 100,000 real
 * servers instead of two (a fifth more wall time), so reading sets V8's own factor back (0).
 */
export const RUNNING_V8_FLAGS: readonly string[] = ['--heap-growing-percent=25'];
const READING_V8_FLAGS: readonly string[] = ['--heap-growing-percent=0'];

/**
 * On node's command line, where the package starts it (deploy/debian/ipvs-warden.sh) and where the
 * benchmarks start the daemon as the package does; set at run time it changes nothing. Each half
 * of the young generation grows up to 16 MiB on node's defaults, and does at 10,000 HTTP checks a
 * second (about 5 KiB allocated a check). Held to 4 MiB, V8 scavenges four times as often (17
 * a second instead of 4), each over about what is in flight then. At 10,000 HTTP servers the RSS
 * median went from 146-151 MiB to 122-126, and the CPU per check by 1.01-1.08 times, median 1.06
 * (seven pairs alternating, `npm run bench:memory`, 2026-12-06).
 */
export const NODE_START_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** The heap's two settings: one while a config is read, one while the daemon runs. */
export interface HeapModes {
  /** V8's own growth factor again (before a config is read). */
  reading(): void;
  /**
   * RUNNING_V8_FLAGS, then one full collection: V8 takes the factor when it sets the next limit,
   * after a mark-compact, and the one the read left could be minutes away, with the read's
   * garbage held until then. Returns the flags set (none: the operator gave node their own).
   */
  running(): readonly string[];
}

export function heapModes(
  set: (flag: string) => void = setFlagsFromString,
  execArgv: readonly string[] = process.execArgv,
  collect: () => void = fullCollection,
): HeapModes {
  const ours = (flags: readonly string[]): string[] => notGiven(flags, execArgv);
  return {
    reading: () => ours(READING_V8_FLAGS).forEach((flag) => set(flag)),
    running: () => {
      const out = ours(RUNNING_V8_FLAGS);
      for (const flag of out) set(flag);
      if (out.length > 0) collect();
      return out;
    },
  };
}

let gc: (() => void) | undefined;

/**
 * A full collection without --expose-gc on the command line: V8 gives a context made while the
 * flag is on a gc() of its own, which collects the whole isolate (the flag is then put back).
 */
export function fullCollection(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    try {
      gc = runInNewContext('gc') as () => void;
    } finally {
      if (!process.execArgv.some((a) => flagName(a) === '--expose-gc'))
        setFlagsFromString('--no-expose-gc');
    }
  }
  gc();
}

/**
 * Sets V8_FLAGS through `set` (node's `v8.setFlagsFromString`), but not one the operator gave
 * node on its command line (`execArgv`; V8 reads `_` and `-` alike): theirs is in force and
 * stays (`--x` or `--no-x` alike). Returns what it set.
 */
export function setV8Flags(
  set: (flag: string) => void = setFlagsFromString,
  execArgv: readonly string[] = process.execArgv,
): string[] {
  const out = notGiven(V8_FLAGS, execArgv);
  for (const flag of out) set(flag);
  return out;
}

/** Those of `flags` the operator did not give node on its command line. */
function notGiven(flags: readonly string[], execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return flags.filter((flag) => !given.has(flagName(flag)));
}

/** A flag's name as V8 matches it: no value, `_` as `-`, `--no-x` as `--x`. */
function flagName(arg: string): string {
  return (arg.split('=')[0] ?? '').replaceAll('_', '-').replace(/^--no-/, '--');
}
