// `ipvs-warden director drain|undrain|status`: this director's own state, left as a flag file in
// daemon.state_dir for the daemon, which reads it every maintenance_poll. Drained, it withdraws
// every VIP it announces (existing flows keep going: the table is untouched). Exit 0 when done
// (status: 0 not drained, 3 drained), 1 on a failure, 2 on a usage error.
import { mkdir, rename, stat, unlink, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export class DirectorUsageError extends Error {}

export const DIRECTOR_USAGE = `  director drain|undrain|status [--config FILE | --state-dir DIR]
                             Drain this director: the daemon withdraws every VIP it
                             announces (daemon.announce), so the routers send new flows
                             to the other directors; undrain brings them back. The flag
                             is DIR/drained (daemon.state_dir, default /run/ipvs-warden)`;

export const DEFAULT_STATE_DIR = '/run/ipvs-warden';

export interface DirectorOptions {
  readonly stdout: NodeJS.WritableStream;
  /** daemon.state_dir of a config file. */
  readonly stateDirOf: (file: string) => Promise<string>;
  readonly env: NodeJS.ProcessEnv;
}

/** The flag file of a state directory. */
export const drainedFile = (dir: string): string => join(dir, 'drained');

export async function director(argv: string[], o: DirectorOptions): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    o.stdout.write(`Usage: ipvs-warden\n${DIRECTOR_USAGE}\n`);
    return 0;
  }
  const [action, extra] = positionals;
  if (action !== 'drain' && action !== 'undrain' && action !== 'status')
    throw new DirectorUsageError(
      action === undefined
        ? 'director needs drain, undrain or status'
        : `director takes drain, undrain or status, got "${action}"`,
    );
  if (extra !== undefined) throw new DirectorUsageError(`director ${action} takes no "${extra}"`);
  if (values.config !== undefined && values['state-dir'] !== undefined)
    throw new DirectorUsageError('director takes --config FILE or --state-dir DIR, not both');
  const dir =
    values['state-dir'] ??
    (values.config !== undefined
      ? await o.stateDirOf(values.config)
      : (o.env.WARDEN_STATE_DIR ?? DEFAULT_STATE_DIR));
  if (!dir.startsWith('/'))
    throw new DirectorUsageError(`--state-dir must be an absolute path, got "${dir}"`);
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
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const there = await stat(file).then(
    () => true,
    () => false,
  );
  if (!there) {
    // Written aside, then renamed: the daemon never sees a half-written flag.
    const tmp = join(dir, `.drained.${process.pid}`);
    await writeFile(tmp, `since ${new Date().toISOString()} (pid ${process.pid})\n`, {
      mode: 0o644,
    });
    await rename(tmp, file);
  }
  o.stdout.write(
    `${there ? 'already drained' : 'drained'}: ${file}; the daemon withdraws its VIPs within maintenance_poll\n`,
  );
  return 0;
}
