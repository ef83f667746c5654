// `ipvs-warden role`: writes the director's role to STATE_DIR/role for the daemon to read (by
// hand, or as keepalived's notify script), or prints it. Exit 0 when done, 1 when the file
// cannot be written or read (or the config has problems), 2 on a usage error. keepalived runs it
// on every VRRP transition, so main.ts runs it before loading the rest of the program (only
// --config loads the config reader), and it prints its own errors.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRoleArgs, parseRoleText, ROLE_FILE, roleText } from '../director/role.js';
import { parseStateDirArgs, writeFlagFile } from '../director/statedir.js';

export class RoleUsageError extends Error {}

export const ROLE_USAGE = `  role [master|backup|fault] [--config FILE | --state-dir DIR]
                             Tell the daemon this director's VRRP role (written to
                             STATE_DIR/role, read every maintenance_poll; with
                             daemon.sync.state: follow-role, master runs the master sync
                             daemon, anything else the backup one). Without a role, print
                             it. Takes keepalived's notify arguments too:
                             notify "/usr/bin/ipvs-warden role" (INSTANCE NAME STATE PRIO)`;

export interface RoleOptions {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  /** daemon.state_dir of a config file (throws ConfigError on a bad one). */
  readonly stateDirOf: (configFile: string) => Promise<string>;
}

/** The command as main.ts runs it: every error said in one line, the exit code returned. */
export async function roleCommand(argv: string[]): Promise<number> {
  const o: RoleOptions = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stateDirOf: async (file) => {
      const { loadConfigFile } = await import('../checkers.js');
      return (await loadConfigFile(file, process.env)).daemon.stateDir;
    },
  };
  try {
    return await role(argv, o);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof RoleUsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      o.stderr.write(`ipvs-warden: ${err.message}\n\nUsage: ipvs-warden\n${ROLE_USAGE}\n`);
      return 2;
    }
    // A config's problems (ConfigError) are the operator's to fix, never a trace.
    o.stderr.write(
      err.name === 'ConfigError' ? `${err.message}\n` : `ipvs-warden: ${err.message}\n`,
    );
    return 1;
  }
}

export async function role(argv: string[], o: RoleOptions): Promise<number> {
  const parsed = parseStateDirArgs('role', argv, (m) => new RoleUsageError(m));
  if (parsed.help) {
    o.stdout.write(`Usage: ipvs-warden\n${ROLE_USAGE}\n`);
    return 0;
  }
  const args = parseRoleArgs([...parsed.positionals]);
  if (args.kind === 'error') throw new RoleUsageError(args.message);
  const dir = await parsed.dir(o.stateDirOf, o.env);
  const file = join(dir, ROLE_FILE);
  if (args.kind === 'show') {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return failed(o, 'read', file, e);
      o.stdout.write(`none (no ${file}: the daemon takes the backup side)\n`);
      return 0;
    }
    const current = parseRoleText(text);
    if (!current) {
      o.stdout.write(
        `${file} holds ${JSON.stringify(text.slice(0, 40))}, not a role: write one with "ipvs-warden role master|backup|fault"\n`,
      );
      return 1;
    }
    o.stdout.write(`${current}\n`);
    return 0;
  }
  try {
    await writeFlagFile(dir, ROLE_FILE, roleText(args.role));
  } catch (e) {
    return failed(o, 'write', file, e);
  }
  o.stdout.write(`role ${args.role} written to ${file} (from ${args.from})\n`);
  return 0;
}

function failed(o: RoleOptions, what: string, file: string, e: unknown): number {
  const err = e as NodeJS.ErrnoException;
  o.stderr.write(`ipvs-warden: cannot ${what} ${file}: ${err.code ?? err.message}\n`);
  return 1;
}
