// The director's state directory (daemon.state_dir), shared by the commands that leave a flag
// there for the daemon (`role`, `director`) and the daemon that reads them. Only node's own
// modules: `role` runs as keepalived's notify script before the rest of the program loads.
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

/** daemon.state_dir's default. */
export const DEFAULT_STATE_DIR = '/run/ipvs-warden';
/** The flag `director drain` leaves (the role's is ROLE_FILE, in role.ts). */
export const DRAINED_FILE = 'drained';

/** What a state-dir command was given: its words, and where the directory comes from. */
export interface StateDirArgs {
  readonly help: boolean;
  readonly positionals: readonly string[];
  /** --state-dir, else --config's daemon.state_dir, else WARDEN_STATE_DIR, else the default. */
  readonly dir: (
    stateDirOf: (file: string) => Promise<string>,
    env: NodeJS.ProcessEnv,
  ) => Promise<string>;
}

/**
 * The arguments `role` and `director` share: `[WORDS] [--config FILE | --state-dir DIR]`. A
 * mistake throws `usage(message)`; parseArgs' own errors are ERR_PARSE_ARGS_*.
 */
export function parseStateDirArgs(
  command: string,
  argv: readonly string[],
  usage: (message: string) => Error,
): StateDirArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const config = values.config;
  const given = values['state-dir'];
  if (config !== undefined && given !== undefined)
    throw usage(`${command} takes --config FILE or --state-dir DIR, not both`);
  if (given !== undefined && !given.startsWith('/'))
    throw usage(`--state-dir must be an absolute path (as daemon.state_dir), got "${given}"`);
  return {
    help: values.help,
    positionals,
    dir: async (stateDirOf, env) =>
      given ??
      (config !== undefined
        ? await stateDirOf(config)
        : (env.WARDEN_STATE_DIR ?? DEFAULT_STATE_DIR)),
  };
}

/**
 * Writes DIR/NAME whole or not at all (aside, then renamed: the daemon reads the old file or the
 * new one), readable by a daemon that is not root. Modes are set outright, not through the
 * umask: keepalived runs notify scripts under umask 077.
 */
export async function writeFlagFile(dir: string, name: string, text: string): Promise<void> {
  const temp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    const made = await mkdir(dir, { recursive: true, mode: 0o755 });
    if (made !== undefined)
      for (let d = dir; d.length >= made.length; d = dirname(d)) await chmod(d, 0o755);
    await writeFile(temp, text);
    await chmod(temp, 0o644);
    await rename(temp, join(dir, name));
  } catch (e) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
}
