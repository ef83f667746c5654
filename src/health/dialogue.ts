// A line-based dialogue with a server, for the text protocols (SMTP, FTP, POP3, IMAP, NNTP):
// connect in the clear or over TLS, read replies with a bounded line reader, send commands,
// upgrade the connection to TLS in place (STARTTLS, STLS, AUTH TLS). Everything runs under one
// ProbeRun's signal: on abort or deadline the socket is destroyed and the pending read rejects.
// The server's faults (closed early, a line too long, a reply not in the protocol) reject with
// a ServerFault, whose message a check hands to run.fail; anything else goes to run.failWith.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { CheckResult, CheckTarget } from './checker.js';
import type { TlsOptions } from './options.js';
import { printable, type ProbeRun } from './probe.js';
import { keyOf, normalOptions, type NormalOf, type OptionsOf, type Schema } from './schema.js';

/** A fault of the server's: the check fails with this message as it stands. */
export class ServerFault extends Error {
  override readonly name: string = 'ServerFault';
}

/** The server closed the connection (or reset it) before the reply the check waited for. */
export class ServerClosed extends ServerFault {
  override readonly name = 'ServerClosed';
  constructor() {
    super('connection closed by the server');
  }
}

export interface DialogueOptions {
  /** TLS from the first byte (implicit TLS: smtps, pop3s, imaps). */
  readonly tls?: TlsOptions | undefined;
  /** Source address of the probe. */
  readonly bindAddress?: string | undefined;
  /** Longest line accepted, in bytes (without CRLF); default 8 KiB. */
  readonly maxLine?: number;
  /** Most bytes buffered from the server and not yet read as replies; default 64 KiB. */
  readonly maxPending?: number;
}

export const DEFAULT_MAX_LINE = 8 * 1024;
const DEFAULT_MAX_PENDING = 64 * 1024;

/** The TLS options Node takes for a check's TLS settings, as checks/tcp.ts verifies. */
export function tlsConnectionOptions(tls: TlsOptions): ConnectionOptions {
  return {
    rejectUnauthorized: tls.verify ?? true,
    ...(tls.servername ? { servername: tls.servername } : {}),
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
}

/** A reply read line by line: the lines (without CRLF), in order. */
export type ReplyLines = readonly string[];

/** A numbered reply (SMTP, FTP, NNTP): its code and its lines' text after the code. */
export interface NumericReply {
  readonly code: number;
  readonly lines: readonly string[];
  /** The first line as the server sent it, for messages. */
  readonly first: string;
}

export class Dialogue {
  private socket: Socket | TLSSocket;
  private buffer = '';
  private readonly lines: string[] = [];
  /** Bytes in `lines`, not yet read. */
  private queued = 0;
  /** Set once the stream cannot give more: closed, errored, aborted, or a fault of ours. */
  private ended: unknown;
  private waiter: (() => void) | undefined;
  private readonly maxLine: number;
  private readonly maxPending: number;
  private readonly onData = (chunk: Buffer): void => this.take(chunk);
  private readonly onEnd = (): void => this.stop(new ServerClosed());
  private readonly onError = (error: Error): void => this.stop(error);
  private readonly onAbort = (): void => {
    this.stop(this.run.signal.reason);
    this.socket.destroy();
  };

  private constructor(
    private readonly run: ProbeRun,
    private readonly target: CheckTarget,
    socket: Socket | TLSSocket,
    options: DialogueOptions,
  ) {
    this.socket = socket;
    this.maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.listen(socket);
    run.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Connects (and, with `tls`, completes the handshake). Records "connected" and "TLS TLSv1.3"
   * as steps. Rejects with the connection's error or the abort's reason.
   */
  static open(
    run: ProbeRun,
    target: CheckTarget,
    options: DialogueOptions = {},
  ): Promise<Dialogue> {
    return new Promise<Dialogue>((resolve, reject) => {
      if (run.signal.aborted) {
        reject(run.signal.reason);
        return;
      }
      const base = {
        host: target.address,
        port: target.port,
        family: target.family,
        ...(options.bindAddress ? { localAddress: options.bindAddress } : {}),
      };
      const tls = options.tls;
      const socket = tls ? tlsConnect({ ...base, ...tlsConnectionOptions(tls) }) : netConnect(base);
      const dialogue = new Dialogue(run, target, socket, options);
      const onAbort = (): void => onFail(run.signal.reason);
      const onUp = (): void => {
        socket.off('error', onFail);
        run.signal.removeEventListener('abort', onAbort);
        run.connected = true;
        run.step('connected');
        if (tls) run.step(`TLS ${(socket as TLSSocket).getProtocol() ?? ''}`.trim());
        resolve(dialogue);
      };
      const onFail = (error: unknown): void => {
        socket.off(tls ? 'secureConnect' : 'connect', onUp);
        socket.off('error', onFail);
        run.signal.removeEventListener('abort', onAbort);
        dialogue.close();
        reject(error);
      };
      socket.once(tls ? 'secureConnect' : 'connect', onUp);
      socket.once('error', onFail);
      run.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The next line (without CR LF), latin1. Rejects once the stream has ended. */
  async readLine(): Promise<string> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        this.queued -= line.length;
        return line;
      }
      // The abort's reason or the socket's error, passed on as it is for run.failWith.
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      if (this.ended !== undefined) throw this.ended;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /**
   * A numbered reply: `NNN text`, or `NNN-text` lines up to the one that starts `NNN ` (SMTP,
   * FTP; FTP allows lines in between that are not numbered). At most `maxLines` lines.
   */
  async readNumeric(maxLines = 200): Promise<NumericReply> {
    const first = await this.readLine();
    const m = /^(\d{3})([ -]|$)/.exec(first);
    if (!m) throw new ServerFault(`reply is not in the protocol: ${printable(first)}`);
    const code = Number(m[1]);
    const lines = [first.slice(4)];
    if (m[2] === '-') {
      for (;;) {
        if (lines.length >= maxLines)
          throw new ServerFault(
            `reply ${code} has more than ${maxLines} line${maxLines === 1 ? '' : 's'}`,
          );
        const line = await this.readLine();
        lines.push(line.replace(/^\d{3}[ -]?/, ''));
        if (line.startsWith(`${m[1]} `) || line === m[1]) break;
      }
    }
    return { code, lines, first };
  }

  /**
   * The reply to a farewell (QUIT, LOGOUT), or undefined when the server just closes: either
   * ends the session well. Only the deadline or another fault fails it.
   */
  async farewell<T>(reply: Promise<T>): Promise<T | undefined> {
    try {
      return await reply;
    } catch (error) {
      if (error instanceof ServerClosed) return undefined;
      if ((error as { code?: unknown }).code === 'ECONNRESET' && !this.run.signal.aborted)
        return undefined;
      throw error;
    }
  }

  /** Sends one command line; CRLF is added. */
  send(line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.ended !== undefined) {
        reject(this.ended);
        return;
      }
      this.socket.write(`${line}\r\n`, 'latin1', (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Upgrades the connection to TLS in place, once the server has said yes to STARTTLS (or STLS,
   * or AUTH TLS). Anything the server sent after that yes and before the handshake is refused
   * (a plaintext injection, CVE-2011-0411). Resolves with the protocol ("TLSv1.3").
   */
  startTls(tls: TlsOptions): Promise<string> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    if (this.lines.length > 0 || this.buffer.length > 0)
      return Promise.reject(new ServerFault('server sent data before the TLS handshake'));
    const plain = this.socket;
    this.unlisten(plain);
    // The TLS socket reads and reports from here on; an error the plain one still emits must
    // not go unheard (an 'error' without a listener would take the process down).
    plain.on('error', () => undefined);
    return new Promise<string>((resolve, reject) => {
      const secure = tlsConnect({
        socket: plain,
        host: this.target.address,
        ...tlsConnectionOptions(tls),
      });
      this.socket = secure;
      const onFail = (error: unknown): void => {
        secure.off('secureConnect', onUp);
        secure.off('error', onError);
        this.run.signal.removeEventListener('abort', onAbortHandshake);
        this.stop(error);
        secure.destroy();
        reject(error);
      };
      const onError = (error: Error): void => onFail(error);
      const onUp = (): void => {
        secure.off('error', onError);
        this.run.signal.removeEventListener('abort', onAbortHandshake);
        this.listen(secure);
        resolve(secure.getProtocol() ?? 'TLS');
      };
      const onAbortHandshake = (): void => onFail(this.run.signal.reason);
      secure.once('secureConnect', onUp);
      secure.on('error', onError);
      this.run.signal.addEventListener('abort', onAbortHandshake, { once: true });
    });
  }

  /** Destroys the connection (idempotent); every path of a check ends here. */
  close(): void {
    this.run.signal.removeEventListener('abort', this.onAbort);
    if (this.ended === undefined) this.ended = new ServerFault('dialogue closed');
    this.socket.destroy();
    this.wake();
  }

  private listen(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
  }

  private unlisten(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('error', this.onError);
  }

  private take(chunk: Buffer): void {
    if (this.ended !== undefined) return;
    this.buffer += chunk.toString('latin1');
    let at: number;
    while ((at = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, at).replace(/\r$/, '');
      this.buffer = this.buffer.slice(at + 1);
      if (line.length > this.maxLine) {
        this.fault(`a reply line longer than ${this.maxLine} bytes`);
        return;
      }
      this.lines.push(line);
      this.queued += line.length;
    }
    if (this.buffer.length > this.maxLine)
      this.fault(`a reply line longer than ${this.maxLine} bytes`);
    else if (this.queued + this.buffer.length > this.maxPending)
      this.fault(`more than ${this.maxPending} bytes of replies`);
    else this.wake();
  }

  /** The server broke the protocol: no more reading, the connection goes. */
  private fault(text: string): void {
    this.stop(new ServerFault(text));
    this.socket.destroy();
  }

  private stop(reason: unknown): void {
    if (this.ended === undefined) this.ended = reason;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/** How a check uses STARTTLS (STLS, AUTH TLS): not at all, when offered, or always. */
export const STARTTLS_MODES = ['off', 'opportunistic', 'required'] as const;
export type StartTlsMode = (typeof STARTTLS_MODES)[number];

/**
 * A protocol with a kind that speaks TLS from the first byte (smtps, pop3s, imaps) beside one
 * that may upgrade with STARTTLS: the options read by the kind's own schema, its merge key, and
 * its STARTTLS mode ('off' for the implicit kind, which has none).
 */
export function tlsVariant<P extends Schema, I extends Schema>(
  kind: string,
  implicit: boolean,
  schemas: { readonly plain: P; readonly implicit: I },
  options: OptionsOf<P> | OptionsOf<I>,
): { options: NormalOf<P> | NormalOf<I>; key: string; starttls: StartTlsMode } {
  if (implicit) {
    const given = options as OptionsOf<I>;
    return {
      options: normalOptions(schemas.implicit, given),
      key: keyOf(kind, schemas.implicit, given),
      starttls: 'off',
    };
  }
  const given = options as OptionsOf<P>;
  const normal = normalOptions(schemas.plain, given);
  const mode = (normal as { readonly starttls?: StartTlsMode }).starttls ?? 'off';
  return { options: normal, key: keyOf(kind, schemas.plain, given), starttls: mode };
}

/** The failure for what ended a dialogue: the server's fault as it stands, else run.failWith. */
export function dialogueFailure(run: ProbeRun, error: unknown, stage: string): CheckResult {
  if (error instanceof ServerFault && !run.signal.aborted)
    return run.fail(`${error.message}, ${stage}`);
  return run.failWith(error, stage);
}

/** A credential as it goes on the wire: its UTF-8 bytes, as the latin1 string `send` writes. */
export function wire(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * The rule between a login's user and password, for the checks that log in (POP3, IMAP, FTP):
 * both or neither. `anonymous` names a user that needs no password (FTP).
 */
export function validateLogin(
  o: { readonly user?: string | undefined; readonly password?: string | undefined },
  report: (option: 'password', problem: string) => void,
  anonymous: readonly string[] = [],
): void {
  if (o.password !== undefined && o.user === undefined)
    report('password', 'a password needs a user to log in as');
  if (o.user !== undefined && o.password === undefined && !anonymous.includes(o.user.toLowerCase()))
    report('password', 'logging in needs a password (password, password_file or password_env)');
}
