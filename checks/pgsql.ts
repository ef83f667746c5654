// PostgreSQL check (ldirectord's `pgsql`): connect, then either log in and run a query (with
// `user`) or ask for TLS (SSLRequest) and judge the one-byte answer (without one).
//
// ldirectord's check_pgsql (check_sql in /usr/sbin/ldirectord) needs a login and a request: it
// connects with DBI (DBD::Pg; `database` as dbname, `login`, `passwd`), runs the request and is
// up when it returns at least one row; no timeout of its own, no look at what the row says.
// Here: `user`, `password`, `database` (default: the user's name, as libpq) and `query`
// (default `SELECT 1`) are the same, no row is down as there, and `expect` can judge the first
// row (its columns as text, joined with tabs, NULL as `NULL`, so `^1$` for SELECT 1). Login and
// query go through the `pg` package on a socket of ours: the one deadline covers connect, TLS,
// login and query, and at the deadline the socket is destroyed (pg's connectionTimeoutMillis
// covers the connect only).
//
// Without `user` (ldirectord refuses that), the check sends an SSLRequest: a PostgreSQL
// server answers 'S' (TLS offered) or 'N' (no TLS) at once, and closing then leaves nothing in
// its log (the backend ignores a client that goes before its startup packet). It says the
// postmaster accepts and forks a backend; it cannot see "the database system is starting up",
// "too many clients" or a database it cannot open: those need a login (`user`).
//
// `tls` (off by default): TLS is required (an 'N' is unhealthy: "server up, no TLS") and the
// certificate verified as the tcp check does (`verify: false` to skip, `ca` to trust a private
// CA, `servername` for SNI and the name checked; without it, the address is checked). Without
// `tls` the login goes in clear (pg's ssl: false), and the handshake-only check completes the
// TLS handshake the server offers (unverified) and closes it with a close_notify: closing at
// the 'S' would leave "could not accept SSL connection" in the server's log.
//
// A refused login (28P01 password, 28000 pg_hba or role) and an unknown database (3D000) read
// as "server up, login refused" and "server up, database unknown", not like a server down.
import { connect as netConnect, Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
// pg is loaded when a check first logs in (see checks/mysql.ts for why).
import type pg from 'pg';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import { onFirstUse, preload } from '../src/lazy.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';
import { MAX_ROW_TEXT, judgeFirstRow, rowText } from '../src/health/sqlrow.js';
import type { TlsOptions } from '../src/health/options.js';

const pgLib = onFirstUse<typeof pg>('pg');

export const PGSQL_OPTIONS = {
  user: opt.text({
    doc: 'log in as this user and run `query`; without it: an SSLRequest answered S or N',
  }),
  password: opt.secret({ doc: "the user's password" }),
  database: opt.text({ doc: "the database (default: the user's name); unknown is unhealthy" }),
  query: opt.text({
    default: 'SELECT 1',
    doc: 'run after login; healthy when it returns a row (that matches `expect`)',
  }),
  expect: opt.regex({
    doc: "healthy when the first row matches: its columns as text joined with tabs, NULL as 'NULL'",
  }),
  tls: opt.tls({ doc: 'require TLS (SSLRequest), verified unless `verify: false`' }),
} as const;
export type PgsqlCheckOptions = OptionsOf<typeof PGSQL_OPTIONS>;

/** SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/** An ErrorResponse to an SSLRequest is short; more is not PostgreSQL. */
const MAX_REPLY = 16 * 1024;

const LOGIN_REFUSED = new Set(['28P01', '28000']);
const INVALID_CATALOG_NAME = '3D000';

class BadReply extends Error {}

/** How far the probe got; for the login, the first bytes the server sent. */
interface Stage {
  now: string;
  reply?: Buffer;
}

/** How long a connection closed politely may take to go before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * Ends the exchange politely (`end` sends what the protocol wants: FIN, close_notify,
 * Terminate) and takes `sockets` out of what the probe destroys at once; they are destroyed
 * after CLOSE_GRACE_MS if the server has not closed them by then.
 */
function closeGently(owned: { destroy(): void }[], end: () => void, ...sockets: Socket[]): void {
  for (const s of sockets) {
    const i = owned.indexOf(s);
    if (i >= 0) owned.splice(i, 1);
    setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
  }
  end();
}

/** The fields of an ErrorResponse ('E', length, then code-letter + text + NUL pairs). */
export function parseErrorResponse(reply: Buffer): { code?: string; message?: string } {
  const out: { code?: string; message?: string } = {};
  for (const field of reply.subarray(5).toString('utf8').split('\0')) {
    if (field.startsWith('C')) out.code = field.slice(1);
    if (field.startsWith('M')) out.message = field.slice(1);
  }
  return out;
}

function tlsSettings(tls: TlsOptions): {
  rejectUnauthorized: boolean;
  servername?: string;
  ca?: string;
  cert?: string;
  key?: string;
} {
  return {
    rejectUnauthorized: tls.verify ?? true,
    ...(tls.servername ? { servername: tls.servername } : {}),
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
}

export class PgsqlChecker implements Checker {
  readonly kind = 'pgsql';
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof PGSQL_OPTIONS>;

  constructor(options: PgsqlCheckOptions = {}) {
    this.options = normalOptions(PGSQL_OPTIONS, options);
    const o = this.options;
    const over = o.tls ? ' over TLS' : '';
    this.description =
      o.user === undefined
        ? `PostgreSQL SSLRequest${over}`
        : `PostgreSQL ${printable(o.query, 40)} as ${o.user}@${o.database ?? o.user}${over}`;
    this.key = keyOf(this.kind, PGSQL_OPTIONS, options);
    // Loaded when the checker is made (config load; a worker's first check of the kind), not at
    // the first login: node remembers a package it could not read (out of descriptors) as not
    // there for the life of the process, which no retry undoes.
    if (o.user !== undefined) preload(pgLib);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    if (run.signal.aborted) return run.failWith(run.signal.reason, 'before connecting');
    const stage: Stage = { now: 'waiting for the connection' };
    // Every socket and client opened, torn down on the abort and at the end.
    const owned: { destroy(): void }[] = [];
    const onAbort = (): void => owned.forEach((s) => s.destroy());
    run.signal.addEventListener('abort', onAbort, { once: true });
    try {
      return this.options.user === undefined
        ? await this.sslRequest(target, run, stage, owned)
        : await this.login(target, this.options.user, run, stage, owned);
    } catch (error) {
      if (run.signal.aborted) return run.failWith(run.signal.reason, stage.now);
      if (error instanceof BadReply) return run.fail(error.message);
      const e = error as { code?: unknown; message?: unknown; severity?: unknown };
      if (typeof e.severity === 'string' && typeof e.code === 'string')
        return run.fail(serverErrorText(e.code, String(e.message), stage.now));
      if (String(e.message) === 'The server does not support SSL connections')
        return run.fail('server up, no TLS (SSLRequest answered N)');
      // A server speaks first with R (authentication), E, or S/N to an SSLRequest.
      const first = stage.reply?.[0];
      if (first !== undefined && ![0x52, 0x45, 0x53, 0x4e].includes(first))
        return run.fail(
          `not PostgreSQL: answered ${printable(stage.reply?.subarray(0, 80).toString('latin1') ?? '')}`,
        );
      return run.failWith(error, stage.now);
    } finally {
      run.signal.removeEventListener('abort', onAbort);
      onAbort();
    }
  }

  private async sslRequest(
    target: CheckTarget,
    run: ProbeRun,
    stage: Stage,
    owned: { destroy(): void }[],
  ): Promise<CheckResult> {
    const socket = netConnect({ host: target.address, port: target.port, family: target.family });
    owned.push(socket);
    socket.on('error', () => undefined);
    const reply = new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const done = (): void => {
        socket.off('data', onData);
        socket.pause();
        resolve(got);
      };
      const onData = (chunk: Buffer): void => {
        got = Buffer.concat([got, chunk]);
        if (got[0] !== 0x45 /* E */ || got.length > MAX_REPLY) done();
        else if (got.length >= 5 && got.length >= 1 + got.readUInt32BE(1)) done();
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('close', () => (got.length ? done() : reject(new Error('closed'))));
      socket.once('end', () =>
        got.length ? done() : reject(new BadReply('connection closed without a reply')),
      );
    });
    reply.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed')));
    });
    run.step('connected');
    socket.write(SSL_REQUEST);
    stage.now = 'waiting for the answer to the SSLRequest';
    const got = await reply;
    const first = got[0];
    if (first === 0x45) {
      const e = parseErrorResponse(got);
      throw new BadReply(
        `SSLRequest answered with an error: ${printable(e.message ?? got.toString('latin1'), 200)}${e.code ? ` (${e.code})` : ''}`,
      );
    }
    if ((first !== 0x53 && first !== 0x4e) || got.length !== 1)
      throw new BadReply(
        `not PostgreSQL: SSLRequest answered ${printable(got.toString('latin1'))}`,
      );
    const tls = this.options.tls;
    if (first === 0x4e) {
      if (tls) return run.fail('server up, no TLS (SSLRequest answered N)');
      closeGently(owned, () => socket.end(), socket);
      return run.ok('SSLRequest answered N (no TLS)');
    }
    run.step('SSLRequest answered S');
    stage.now = 'waiting for the TLS handshake';
    const secure: TLSSocket = tlsConnect({
      socket,
      ...tlsSettings(tls ?? { verify: false }),
    });
    owned.push(secure);
    secure.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed')));
    });
    run.step(`TLS ${secure.getProtocol() ?? ''}${tls?.verify ? ', verified' : ''}`);
    // A close_notify, then the server closes: nothing in its log.
    closeGently(owned, () => secure.end(), socket, secure);
    return run.ok();
  }

  private async login(
    target: CheckTarget,
    user: string,
    run: ProbeRun,
    stage: Stage,
    owned: { destroy(): void }[],
  ): Promise<CheckResult> {
    const o = this.options;
    const pgm = pgLib();
    // pg connects it (and wraps it in TLS); it is ours to destroy.
    const socket = new Socket();
    owned.push(socket);
    socket.on('error', () => undefined);
    socket.once('data', (chunk: Buffer) => (stage.reply = chunk));
    socket.once('connect', () => {
      run.step('connected');
      stage.now = `logging in as ${user}`;
    });
    const client = new pgm.Client({
      host: target.address,
      port: target.port,
      user,
      ...(o.password === undefined ? {} : { password: o.password }),
      database: o.database ?? user,
      ssl: o.tls ? tlsSettings(o.tls) : false,
      stream: () => socket,
      application_name: 'ipvs-warden',
    });
    const endClient = { destroy: () => void client.end().catch(() => undefined) };
    owned.push(endClient);
    client.on('error', () => undefined);
    // pg never settles connect() for a client ended while connecting (the abort does that):
    // each wait is raced against the abort.
    const aborted = new Promise<never>((_resolve, reject) =>
      run.signal.addEventListener('abort', () => reject(run.signal.reason as Error), {
        once: true,
      }),
    );
    aborted.catch(() => undefined);
    await Promise.race([client.connect(), aborted]);
    const tls = (client as unknown as { connection?: { stream?: Partial<TLSSocket> } }).connection
      ?.stream;
    if (o.tls && tls?.getProtocol)
      run.step(`TLS ${tls.getProtocol() ?? ''}${o.tls.verify ? ', verified' : ''}`);
    run.step(`logged in as ${user}`);
    stage.now = 'waiting for the query';
    const { first, rows } = await Promise.race([
      aborted,
      new Promise<{ first?: string; rows: number }>((resolve, reject) => {
        let first: string | undefined;
        let rows = 0;
        const q = new pgm.Query({
          text: o.query,
          rowMode: 'array',
          // Every value as the server sent it (text format), NULL as null.
          types: { getTypeParser: () => (value: string) => value },
        } as pg.QueryConfig);
        // A 'row' listener: pg hands each row over and keeps none (no accumulation).
        q.on('row', (row: unknown) => {
          rows++;
          first ??= rowText(row as (string | null)[]).slice(0, MAX_ROW_TEXT);
        });
        q.on('error', reject);
        q.on('end', () => resolve(first === undefined ? { rows } : { first, rows }));
        void client.query(q);
      }),
    ]);
    // A Terminate message, then the server closes.
    owned.splice(owned.indexOf(endClient), 1);
    closeGently(owned, () => endClient.destroy(), socket);
    return judgeFirstRow(run, first, rows, o.expect, (t) => printable(t));
  }
}

/** A server's error, said as what it means for the check: login refused, unknown database. */
function serverErrorText(code: string, message: string, stage: string): string {
  const text = `${printable(message, 200)} (${code})`;
  if (LOGIN_REFUSED.has(code)) return `server up, login refused: ${text}`;
  if (code === INVALID_CATALOG_NAME) return `server up, database unknown: ${text}`;
  if (stage.startsWith('logging in')) return `server up, login failed: ${text}`;
  return `query failed: ${text}`;
}

export const pgsql = defineCheck({
  kind: 'pgsql',
  summary:
    'PostgreSQL: log in and run a query (healthy on a row, optionally matching); without a user, an SSLRequest answered S or N',
  options: PGSQL_OPTIONS,
  validate(o, report) {
    if (o.user === undefined) {
      if (o.password !== undefined) report('password', 'a password needs a user');
      if (o.database !== undefined) report('database', 'a database needs a user');
      if (o.expect !== undefined) report('expect', 'expect needs a user (and a query)');
    }
  },
  create: (o) => new PgsqlChecker(o),
});
