// `ipvs-warden director drain|undrain|status`: this director's own state, left as a flag file in
// daemon.state_dir for the daemon, which reads it every maintenance_poll. Drained, it withdraws
// every VIP it announces (existing flows keep going: the table is untouched). Exit 0 when done
// (status: 0 not drained, 3 drained), 1 on a failure, 2 on a usage error.
import { readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DRAINED_FILE, parseStateDirArgs, writeFlagFile } from '../director/statedir.js';

export class DirectorUsageError extends Error {}

export const DIRECTOR_USAGE = `  director drain|undrain|status [--config FILE | --state-dir DIR]
                             Drain this director: the daemon withdraws every VIP it
                             announces (daemon.announce), so the routers send new flows
                             to the other directors; undrain brings them back. The flag
                             is DIR/drained (daemon.state_dir, default /run/ipvs-warden)`;

export interface DirectorOptions {
  readonly stdout: NodeJS.WritableStream;
  /** daemon.state_dir of a config file. */
  readonly stateDirOf: (file: string) => Promise<string>;
  readonly env: NodeJS.ProcessEnv;
}

/** The flag file of a state directory. */
export const drainedFile = (dir: string): string => join(dir, DRAINED_FILE);

export async function director(argv: string[], o: DirectorOptions): Promise<number> {
  const parsed = parseStateDirArgs('director', argv, (m) => new DirectorUsageError(m));
  if (parsed.help) {
    o.stdout.write(`Usage: ipvs-warden\n${DIRECTOR_USAGE}\n`);
    return 0;
  }
  const [action, extra] = parsed.positionals;
  if (action !== 'drain' && action !== 'undrain' && action !== 'status')
    throw new DirectorUsageError(
      action === undefined
        ? 'director needs drain, undrain or status'
        : `director takes drain, undrain or status, got "${action}"`,
    );
  if (extra !== undefined) throw new DirectorUsageError(`director ${action} takes no "${extra}"`);
  const dir = await parsed.dir(o.stateDirOf, o.env);
  const file = drainedFile(dir);
  if (action === 'status') {
    const since = await readFile(file, 'utf8').then(
      (t) => t.trim(),
      (e: unknown) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? null : Promise.reject(e)),
    );
    o.stdout.write(
      since === null ? `not drained (${file} absent)\n` : `drained: ${since} (${file})\n`,
    );
    return since === null ? 0 : 3;
  }
  if (action === 'undrain') {
    await unlink(file).catch((e: unknown) =>
      (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : Promise.reject(e),
    );
    o.stdout.write(
      `undrained: removed ${file}; the daemon announces again within maintenance_poll\n`,
    );
    return 0;
  }
  const there = await stat(file).then(
    () => true,
    () => false,
  );
  if (!there)
    await writeFlagFile(
      dir,
      DRAINED_FILE,
      `since ${new Date().toISOString()} (pid ${process.pid})\n`,
    );
  o.stdout.write(
    `${there ? 'already drained' : 'drained'}: ${file}; the daemon withdraws its VIPs within maintenance_poll\n`,
  );
  return 0;
}
