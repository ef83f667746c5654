// MySQL/MariaDB check: connect, read the server's greeting, then either log in and run a query
// (with `user`) or answer the greeting as a login nobody can pass (without one).
//
// ldirectord's check_mysql (check_sql in /usr/sbin/ldirectord) needs a login and a request: it
// connects with DBI (`database`, `login`, `passwd` of the virtual service), runs the request
// and is up when the statement returns at least one row; it has no timeout of its own and does
// not look at what the row says. Here: `user`, `password`, `database` and `query` (default
// `SELECT 1`) are the same, a query that returns no row is down as there, and `expect` can
// also judge the first row (its columns as text, joined with tabs, NULL as `NULL`: the mysql
// client's batch output, so `^1$` for SELECT 1). The one deadline covers connect, greeting,
// login and query; at the deadline the socket is destroyed (mysql2's connectTimeout is not
// used: the socket is ours and handed to mysql2 after the greeting).
//
// Without `user` (ldirectord refuses that), the check reads the greeting (protocol 10 and a
// server version: the server accepts connections and its threads answer) and then sends a
// login for the user `ipvs-warden` with no password, and is up when the server answers it
// with "access denied" (or lets it in, then it quits). It does not just close after the
// greeting: MariaDB and MySQL count a connection closed during the handshake as a connection
// error of the client's host, and after max_connect_errors (default 100) of them without a
// good login in between the server refuses the host ("Host is blocked because of many
// connection errors", until FLUSH HOSTS): a director that checks every few seconds would block
// itself within minutes (tested against MariaDB 10.11; connections over loopback are exempt).
// A refused login does not count. Each check still leaves "Access denied for user
// 'ipvs-warden'" in the server's error log at log_warnings >= 2 (the default); to keep the log
// quiet, create that user with no password and no privileges, or configure `user`.
//
// A refused login (1045) or an unknown database (1049) reads "server up, login refused" or
// "server up, database unknown", not like a server that is down. No TLS (yet).
import { connect as netConnect, type Socket } from 'node:net';
// mysql2 is loaded when a check first logs in (src/lazy.ts): every start of the daemon (and
// every CLI command) reads the catalog, and most directors check no database.
import type * as Mysql2 from 'mysql2';
import type { Connection, QueryError } from 'mysql2';
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

const mysql2Lib = onFirstUse<typeof Mysql2>('mysql2');

export const MYSQL_OPTIONS = {
  user: opt.text({
    doc: 'log in as this user and run `query`; without it: greeting and a refused login only',
  }),
  password: opt.secret({ doc: "the user's password" }),
  database: opt.text({ doc: 'the database to use; unknown is unhealthy' }),
  query: opt.text({
    default: 'SELECT 1',
    doc: 'run after login; healthy when it returns a row (that matches `expect`)',
  }),
  expect: opt.regex({
    doc: "healthy when the first row matches: its columns as text joined with tabs, NULL as 'NULL'",
  }),
} as const;
export type MysqlCheckOptions = OptionsOf<typeof MYSQL_OPTIONS>;

/** The user a check without `user` offers the server: refused (or let in and quit at once). */
export const PROBE_USER = 'ipvs-warden';
/** A greeting or login reply is a few hundred bytes; a packet claiming more is not MySQL. */
const MAX_PACKET = 16 * 1024;

// Capability flags (mysql_com.h).
const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const COM_QUIT = 0x01;

/** Errors that say the server is up and refuses these credentials. */
const LOGIN_REFUSED = new Set([1045, 1698, 1251]);
const ER_DBACCESS_DENIED_ERROR = 1044;
const ER_BAD_DB_ERROR = 1049;

/** A reply that is not what a MySQL server says: a failure with this text. */
class BadReply extends Error {}

interface Greeting {
  readonly version: string;
  readonly capabilities: number;
  readonly plugin: string | undefined;
}

interface ErrPacket {
  readonly code: number;
  readonly message: string;
}

/** An ERR packet (0xff, code, optional '#' and SQLSTATE, message), or undefined. */
export function parseErr(payload: Buffer): ErrPacket | undefined {
  if (payload[0] !== 0xff || payload.length < 3) return undefined;
  let at = 3;
  if (payload[3] === 0x23 && payload.length >= 9) at = 9; // '#' + 5-char SQLSTATE
  return { code: payload.readUInt16LE(1), message: payload.subarray(at).toString('utf8') };
}

/** The initial handshake packet, protocol 10 (or an ERR packet: thrown as BadReply text). */
export function parseGreeting(payload: Buffer): Greeting {
  const err = parseErr(payload);
  if (err)
    throw new BadReply(
      `server up, refused the connection: ${printable(err.message, 200)} (${err.code})`,
    );
  if (payload[0] !== 10)
    throw new BadReply(
      `not a MySQL greeting (protocol ${payload[0]}): ${printable(latin(payload))}`,
    );
  const nul = payload.indexOf(0, 1);
  // version NUL, connection id 4, scramble 8, filler 1, capabilities (low) 2
  if (nul < 0 || payload.length < nul + 16)
    throw new BadReply(`truncated MySQL greeting: ${printable(latin(payload))}`);
  const version = payload.subarray(1, nul).toString('latin1');
  if (!/^[\x20-\x7e]{1,100}$/.test(version))
    throw new BadReply(`not a MySQL greeting: version ${printable(version)}`);
  let at = nul + 1 + 4 + 8 + 1;
  let capabilities = payload.readUInt16LE(at);
  at += 2;
  let plugin: string | undefined;
  // charset 1, status 2, capabilities (high) 2, scramble length 1, reserved 10
  if (payload.length >= at + 16) {
    capabilities |= payload.readUInt16LE(at + 3) << 16;
    const scrambleLength = payload[at + 5] ?? 0;
    at += 16;
    if (capabilities & CLIENT_SECURE_CONNECTION) at += Math.max(13, scrambleLength - 8);
    if (capabilities & CLIENT_PLUGIN_AUTH && at < payload.length) {
      const end = payload.indexOf(0, at);
      plugin = payload.subarray(at, end < 0 ? undefined : end).toString('latin1');
    }
  }
  // MariaDB announces itself as 5.5.5-<version> for old clients.
  return { version: version.replace(/^5\.5\.5-/, ''), capabilities: capabilities >>> 0, plugin };
}

/** A HandshakeResponse41 for `user` with an empty password and no database. */
function loginPacket(greeting: Greeting, user: string): Buffer {
  const flags =
    CLIENT_LONG_PASSWORD |
    CLIENT_PROTOCOL_41 |
    CLIENT_SECURE_CONNECTION |
    (greeting.capabilities & CLIENT_PLUGIN_AUTH);
  const head = Buffer.alloc(32);
  head.writeUInt32LE(flags >>> 0, 0);
  head.writeUInt32LE(16 << 20, 4); // max packet
  head[8] = 33; // utf8_general_ci
  const parts = [head, Buffer.from(`${user}\0`), Buffer.from([0])]; // empty auth response
  if (flags & CLIENT_PLUGIN_AUTH)
    parts.push(Buffer.from(`${greeting.plugin ?? 'mysql_native_password'}\0`));
  return Buffer.concat(parts);
}

function latin(b: Buffer): string {
  return b.subarray(0, 80).toString('latin1');
}

function frame(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = seq & 0xff;
  return Buffer.concat([head, payload]);
}

/** Reads MySQL packets off a socket, none bigger than MAX_PACKET. */
class PacketReader {
  /** Every byte received, until detached (the greeting is handed on to mysql2 whole). */
  private received = Buffer.alloc(0);
  private offset = 0;
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.received = Buffer.concat([this.received, chunk]);
    this.wake();
  };
  private readonly onEnd = (): void => this.fail(new BadReply('connection closed by the server'));
  private readonly onError = (e: Error): void => this.fail(e);
  // A socket destroyed by the probe's abort ends with 'close' alone.
  private readonly onClose = (): void => this.fail(new BadReply('connection closed'));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  async packet(): Promise<{ seq: number; payload: Buffer }> {
    for (;;) {
      const left = this.received.length - this.offset;
      if (left >= 4) {
        const length = this.received.readUIntLE(this.offset, 3);
        if (length > MAX_PACKET)
          throw new BadReply(
            `not MySQL: a packet of ${length} bytes: ${printable(latin(this.received.subarray(this.offset)))}`,
          );
        if (left >= 4 + length) {
          const seq = this.received[this.offset + 3] ?? 0;
          const payload = this.received.subarray(this.offset + 4, this.offset + 4 + length);
          this.offset += 4 + length;
          return { seq, payload };
        }
      }
      if (this.failure !== undefined) {
        const partial = this.received.subarray(this.offset);
        if (this.failure instanceof BadReply && partial.length > 0)
          throw new BadReply(`connection closed after ${printable(latin(partial))}`);
        throw this.failure;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Stops reading; the socket is paused with everything received pushed back into it. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    this.socket.pause();
    this.socket.unshift(this.received);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

function connected(socket: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onClose = (): void => reject(new Error('connection closed'));
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.off('close', onClose);
      resolve();
    });
    socket.once('error', reject);
    // A socket destroyed by the probe's abort ends with 'close' alone.
    socket.once('close', onClose);
  });
}

export class MysqlChecker implements Checker {
  readonly kind = 'mysql';
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof MYSQL_OPTIONS>;

  constructor(options: MysqlCheckOptions = {}) {
    this.options = normalOptions(MYSQL_OPTIONS, options);
    const o = this.options;
    this.description =
      o.user === undefined
        ? 'MySQL handshake'
        : `MySQL ${printable(o.query, 40)} as ${o.user}${o.database === undefined ? '' : `@${o.database}`}`;
    this.key = keyOf(this.kind, MYSQL_OPTIONS, options);
    // Loaded when the checker is made (config load; a worker's first check of the kind), not at
    // the first login: node remembers a package it could not read (out of descriptors) as not
    // there for the life of the process, which no retry undoes.
    if (o.user !== undefined) preload(mysql2Lib);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    if (run.signal.aborted) return run.failWith(run.signal.reason, 'before connecting');
    const socket = netConnect({ host: target.address, port: target.port, family: target.family });
    let conn: Connection | undefined;
    let stage = 'waiting for the connection';
    // Set when the exchange ends with a QUIT: the socket then closes after it is sent.
    let quitting = false;
    const onAbort = (): void => {
      conn?.destroy();
      socket.destroy();
    };
    run.signal.addEventListener('abort', onAbort, { once: true });
    // Errors after the end (a reset while quitting) have no one to tell.
    socket.on('error', () => undefined);
    try {
      const reader = new PacketReader(socket);
      await connected(socket);
      run.step('connected');
      stage = 'waiting for the greeting';
      const { payload } = await reader.packet();
      const greeting = parseGreeting(payload);
      run.step(`greeting: protocol 10, ${printable(greeting.version)}`);
      if ((greeting.capabilities & CLIENT_PROTOCOL_41) === 0)
        return run.fail('server older than MySQL 4.1 (no protocol 4.1)');
      const user = this.options.user;
      if (user === undefined) {
        stage = 'waiting for the answer to the login';
        const result = await this.probeLogin(run, socket, reader, greeting);
        quitting = true;
        return result;
      }
      reader.detach();
      stage = `logging in as ${user}`;
      conn = await this.login(socket, user);
      run.step(`logged in as ${user}`);
      stage = 'waiting for the query';
      const { first, rows } = await query(conn, this.options.query);
      conn.end();
      quitting = true;
      return judgeFirstRow(run, first, rows, this.options.expect, (t) => printable(t));
    } catch (error) {
      if (run.signal.aborted) return run.failWith(run.signal.reason, stage);
      if (error instanceof BadReply) return run.fail(error.message);
      if (isServerError(error)) return run.fail(serverErrorText(error, stage));
      return run.failWith(error, stage);
    } finally {
      run.signal.removeEventListener('abort', onAbort);
      if (quitting) socket.destroySoon();
      else {
        conn?.destroy();
        socket.destroy();
      }
    }
  }

  /** Answers the greeting with a login for PROBE_USER (see the header): up when answered. */
  private async probeLogin(
    run: ProbeRun,
    socket: Socket,
    reader: PacketReader,
    greeting: Greeting,
  ): Promise<CheckResult> {
    let seq = 1;
    socket.write(frame(seq, loginPacket(greeting, PROBE_USER)));
    // An auth switch (0xfe) is answered with an empty password once or twice; then OK or ERR.
    for (let round = 0; round < 3; round++) {
      const reply = await reader.packet();
      seq = reply.seq + 1;
      const p = reply.payload;
      if (p[0] === 0x00) {
        socket.write(frame(0, Buffer.from([COM_QUIT])));
        return run.ok(`login as ${PROBE_USER} (no password) accepted; quit`);
      }
      const err = parseErr(p);
      if (err) {
        if (LOGIN_REFUSED.has(err.code))
          return run.ok(`login as ${PROBE_USER} refused, as expected (${err.code})`);
        return run.fail(`login answered with ${printable(err.message, 200)} (${err.code})`);
      }
      if (p[0] === 0xfe) {
        socket.write(frame(seq, Buffer.alloc(0)));
        continue;
      }
      if (p[0] === 0x01) return run.ok(`login as ${PROBE_USER} answered (more auth data)`);
      throw new BadReply(`unexpected answer to the login: ${printable(latin(p))}`);
    }
    return run.fail('the server keeps switching the authentication method');
  }

  /** mysql2 on our socket: it reads the greeting again (pushed back) and logs in. */
  private async login(socket: Socket, user: string): Promise<Connection> {
    const o = this.options;
    const mysql2 = mysql2Lib();
    return new Promise<Connection>((resolve, reject) => {
      const conn = mysql2.createConnection({
        stream: socket,
        user,
        ...(o.password === undefined ? {} : { password: o.password }),
        ...(o.database === undefined ? {} : { database: o.database }),
        // The probe's deadline covers this; 0 turns mysql2's own timer off.
        connectTimeout: 0,
      });
      // After the handshake, errors (a reset while quitting) have no one to tell.
      conn.on('error', () => undefined);
      conn.once('connect', () => resolve(conn));
      conn.once('error', (e) => {
        conn.destroy();
        reject(e);
      });
      socket.resume();
    });
  }
}

/** Runs `sql`; rows are counted as they arrive, the first kept as text, none accumulated. */
function query(conn: Connection, sql: string): Promise<{ first?: string; rows: number }> {
  return new Promise((resolve, reject) => {
    let first: string | undefined;
    let rows = 0;
    const q = conn.query({
      sql,
      rowsAsArray: true,
      // Every value as the server sent it (text protocol), NULL as null.
      typeCast: (field) => field.string(),
    });
    q.on('result', (row: unknown) => {
      // A statement without a result set reports an OK packet here (not a row).
      if (!Array.isArray(row)) return;
      rows++;
      first ??= rowText(row as (string | null)[]).slice(0, MAX_ROW_TEXT);
    });
    q.on('error', (e: QueryError) => reject(e));
    q.on('end', () => resolve(first === undefined ? { rows } : { first, rows }));
  });
}

interface ServerError {
  readonly errno: number;
  readonly sqlMessage: string;
}

function isServerError(e: unknown): e is ServerError {
  const x = e as Partial<ServerError> | null;
  return typeof x?.errno === 'number' && typeof x.sqlMessage === 'string' && x.errno >= 1000;
}

/** A server's error, said as what it means for the check: login refused, unknown database. */
function serverErrorText(e: ServerError, stage: string): string {
  const text = `${printable(e.sqlMessage, 200)} (${e.errno})`;
  if (LOGIN_REFUSED.has(e.errno)) return `server up, login refused: ${text}`;
  if (e.errno === ER_BAD_DB_ERROR) return `server up, database unknown: ${text}`;
  if (e.errno === ER_DBACCESS_DENIED_ERROR) return `server up, database refused: ${text}`;
  if (stage.startsWith('logging in')) return `server up, login failed: ${text}`;
  return `query failed: ${text}`;
}

export const mysql = defineCheck({
  kind: 'mysql',
  summary:
    'MySQL/MariaDB: greeting, then log in and run a query (healthy on a row, optionally matching); without a user, greeting and a refused login',
  options: MYSQL_OPTIONS,
  validate(o, report) {
    if (o.user === undefined) {
      if (o.password !== undefined) report('password', 'a password needs a user');
      if (o.database !== undefined) report('database', 'a database needs a user');
      if (o.expect !== undefined) report('expect', 'expect needs a user (and a query)');
    }
  },
  create: (o) => new MysqlChecker(o),
});
