// Throwaway database servers for the SQL check tests, from Debian's packages: MariaDB
// (mariadb-server) and PostgreSQL 15 (postgresql), each in a temp dir on a free loopback port,
// with a user `warden` (password `warden-pw`) and a database `wdb`. Slow to start: one per
// test file. Nothing of the Debian services is used or touched.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, selfSigned } from './servers.js';

const run = promisify(execFile);

export const DB_USER = 'warden';
export const DB_PASSWORD = 'warden-pw';
export const DB_NAME = 'wdb';

export interface DbServer {
  readonly port: number;
  /** The server's log so far. */
  log(): string;
  /** Runs SQL as the superuser (over the unix socket). */
  sql(statements: string): Promise<string>;
  stop(): Promise<void>;
}

/** Polls `probe` until it succeeds, for at most `ms`; throws with the last error. */
async function ready(probe: () => Promise<unknown>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await probe();
      return;
    } catch (error) {
      if (Date.now() > end)
        throw new Error(`${what} not ready after ${ms} ms: ${String(error)}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** MariaDB on 127.0.0.1 (and `alsoBind`, an address of this machine, when given). */
export async function startMariadb(
  extra: { alsoBind?: string; args?: string[] } = {},
): Promise<DbServer> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-mariadb-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'sock');
  const logFile = join(dir, 'error.log');
  await run('mariadb-install-db', [
    '--no-defaults',
    `--datadir=${data}`,
    '--auth-root-authentication-method=normal',
    '--user=root',
    '--skip-test-db',
  ]);
  const port = await freePort();
  const bind = extra.alsoBind ? `127.0.0.1,${extra.alsoBind}` : '127.0.0.1';
  const child = spawn(
    'mariadbd',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--port=${port}`,
      `--bind-address=${bind}`,
      `--socket=${socket}`,
      `--pid-file=${join(dir, 'pid')}`,
      `--log-error=${logFile}`,
      '--user=root',
      // Name resolution on, as by default: the host cache (max_connect_errors) works only then.
      '--innodb-buffer-pool-size=16M',
      ...(extra.args ?? []),
    ],
    { stdio: 'ignore' },
  );
  const sql = async (statements: string): Promise<string> =>
    (await run('mariadb', ['--no-defaults', '-S', socket, '-uroot', '-N', '-B', '-e', statements]))
      .stdout;
  try {
    await ready(() => sql('SELECT 1'), 90_000, 'mariadbd');
    await sql(
      `CREATE USER '${DB_USER}'@'%' IDENTIFIED BY '${DB_PASSWORD}'; CREATE DATABASE ${DB_NAME}; GRANT ALL ON ${DB_NAME}.* TO '${DB_USER}'@'%';`,
    );
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    log: () => readFileSync(logFile, 'utf8'),
    sql,
    stop: async () => {
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
/** Runs a command as the postgres user (PostgreSQL refuses root). */
const AS_POSTGRES = ['--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

/** PostgreSQL 15 on 127.0.0.1 with TLS (a self-signed certificate for warden.test). */
export async function startPostgres(): Promise<DbServer & { cert: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const data = join(dir, 'data');
  const { key, cert } = selfSigned();
  const pgUser = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const pgGroup = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  chownSync(dir, pgUser, pgGroup);
  writeFileSync(join(dir, 'server.crt'), cert);
  writeFileSync(join(dir, 'server.key'), key);
  for (const f of ['server.crt', 'server.key']) chownSync(join(dir, f), pgUser, pgGroup);
  chmodSync(join(dir, 'server.key'), 0o600);
  await run('setpriv', [
    ...AS_POSTGRES,
    join(PG_BIN, 'initdb'),
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--no-sync',
  ]);
  const port = await freePort();
  const logFile = join(dir, 'server.log');
  const logFd = openSync(logFile, 'a');
  chownSync(logFile, pgUser, pgGroup);
  const child = spawn(
    'setpriv',
    [
      ...AS_POSTGRES,
      join(PG_BIN, 'postgres'),
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${join(dir, 'server.crt')}`,
      '-c',
      `ssl_key_file=${join(dir, 'server.key')}`,
      '-c',
      'fsync=off',
      '-c',
      'log_connections=on',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const sql = async (statements: string): Promise<string> =>
    (
      await run('setpriv', [
        ...AS_POSTGRES,
        join(PG_BIN, 'psql'),
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-tA',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        statements,
      ])
    ).stdout;
  try {
    await ready(() => sql('SELECT 1'), 90_000, 'postgres');
    await sql(`CREATE ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASSWORD}'`);
    await sql(`CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}`);
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    cert,
    log: () => readFileSync(logFile, 'utf8'),
    sql,
    stop: async () => {
      // SIGINT: a fast shutdown (setpriv execs, so the child is the postmaster itself).
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
