// A probe's plain TCP connection on libuv's TCP handle itself, without net.Socket. A probe
// connects, writes a line or two, reads a short reply and resets: net.Socket builds a Duplex
// stream for that (two stream states, an emitter, nextTicks for every event), which was more
// than half of the user CPU of an HTTP check against nginx on loopback (README, Probe sockets).
// The handle is Node's own TCPWrap, the one net.Socket drives, reached through
// process.binding('tcp_wrap'): an internal interface (DEP0111, deprecated in the documentation
// only), so it is checked for every member used when this module loads, and
// anything missing (another Node), or IPVS_WARDEN_SOCKETS=node in the environment, leaves
// every probe on net.Socket. TLS and data-path probes always use net.Socket.
import { getSystemErrorName } from 'node:util';

/** What a connection tells its probe; nothing is told after the probe closes it. */
export interface LeanEvents {
  readonly connected: () => void;
  readonly data: (chunk: Buffer) => void;
  /** The peer closed its side (a FIN). */
  readonly ended: () => void;
  /** An error with its code (ECONNREFUSED...), as net.Socket's errors have one. */
  readonly failed: (error: Error) => void;
}

/** Functions, not methods: none uses `this`, and openProbeConnection passes them on alone. */
export interface LeanConnection {
  /** Sends a Latin-1 string (if not empty), then `body` if given. */
  readonly write: (text: string, body?: Buffer) => void;
  /** Ends with a reset once connected (no TIME_WAIT here); before that, a plain close. */
  readonly reset: () => void;
  /** Ends with a FIN: what was sent and not yet answered may still be read by the server. */
  readonly close: () => void;
}

// ---- Node's internal handles, as far as they are used here (lib/net.js drives them alike)

interface TcpHandle {
  /** Must be a function: Node asserts it (an abort, not an exception). */
  onread: (buffer: ArrayBuffer | undefined) => void;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  readStart(): number;
  writeLatin1String(req: WriteReq, text: string): number;
  writeBuffer(req: WriteReq, data: Buffer): number;
  /** Given no callback, Node calls nothing back once it is closed (one entry into JS less). */
  reset(callback?: () => void): number;
  close(callback?: () => void): void;
}
interface ConnectReq {
  oncomplete: (status: number) => void;
  address: string;
  port: number;
}
interface WriteReq {
  handle: TcpHandle;
  oncomplete: (status: number) => void;
  async: boolean;
}
interface Binding {
  readonly Tcp: new (type: number) => TcpHandle;
  readonly ConnectReq: new () => ConnectReq;
  readonly WriteReq: new () => WriteReq;
  readonly socketType: number;
  /** [bytes read or a negative errno, offset of the read in its ArrayBuffer, ...] */
  readonly state: Int32Array;
  readonly readBytesOrError: number;
  readonly arrayBufferOffset: number;
  readonly eof: number;
}

const TCP_METHODS = [
  'bind',
  'bind6',
  'connect',
  'connect6',
  'readStart',
  'writeLatin1String',
  'writeBuffer',
  'reset',
  'close',
] as const;

/** The handles, or why not (a Node without them, or the environment's choice). */
export function loadBinding(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Binding | string {
  if (env.IPVS_WARDEN_SOCKETS === 'node') return 'IPVS_WARDEN_SOCKETS=node';
  try {
    const node = process as unknown as { binding(name: string): Record<string, unknown> };
    const tcp = node.binding('tcp_wrap');
    const stream = node.binding('stream_wrap');
    const uv = node.binding('uv');
    const Tcp = tcp.TCP as Binding['Tcp'] | undefined;
    const constants = tcp.constants as { SOCKET?: unknown } | undefined;
    const state = stream.streamBaseState;
    const numbers = [constants?.SOCKET, stream.kReadBytesOrError, stream.kArrayBufferOffset];
    if (
      typeof Tcp !== 'function' ||
      typeof tcp.TCPConnectWrap !== 'function' ||
      typeof stream.WriteWrap !== 'function' ||
      !(state instanceof Int32Array) ||
      !numbers.every((n) => typeof n === 'number') ||
      typeof uv.UV_EOF !== 'number' ||
      !TCP_METHODS.every((m) => typeof (Tcp.prototype as Record<string, unknown>)[m] === 'function')
    )
      return 'this Node has no TCP handle as Node 20 has it';
    return {
      Tcp,
      ConnectReq: tcp.TCPConnectWrap as Binding['ConnectReq'],
      WriteReq: stream.WriteWrap as Binding['WriteReq'],
      socketType: constants?.SOCKET as number,
      state,
      readBytesOrError: stream.kReadBytesOrError as number,
      arrayBufferOffset: stream.kArrayBufferOffset as number,
      eof: uv.UV_EOF,
    };
  } catch (error) {
    return `process.binding: ${(error as Error).message}`;
  }
}

const binding = loadBinding();

/** Whether probes get lean connections here; if not, why not. */
export const leanSockets: { readonly on: boolean; readonly why: string } =
  typeof binding === 'string' ? { on: false, why: binding } : { on: true, why: '' };

/** A libuv status (a negative errno, -111) by its name (ECONNREFUSED), or `errno N`. */
export function errnoCode(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `errno ${-status}`;
  }
}

/** A libuv status as net.Socket would report it. */
export function uvError(status: number, syscall: string, address: string, port: number): Error {
  const code = errnoCode(status);
  return Object.assign(new Error(`${syscall} ${code} ${address}:${port}`), {
    code,
    errno: status,
    syscall,
    address,
    port,
  });
}

/**
 * A plain TCP connection to `address`:`port` (from `localAddress` if given), or undefined where
 * this Node has no lean handles (then use net.connect). Every outcome comes through `events`,
 * never synchronously from this call: a refused bind or connect is told on the next turn.
 */
export function leanConnect(
  family: 4 | 6,
  address: string,
  port: number,
  localAddress: string | undefined,
  events: LeanEvents,
): LeanConnection | undefined {
  if (typeof binding === 'string') return undefined;
  const b = binding;
  const handle = new b.Tcp(b.socketType);
  let closed = false;
  let connected = false;
  const fail = (status: number, syscall: string): void => {
    if (closed) return;
    shut(false);
    events.failed(uvError(status, syscall, address, port));
  };
  const shut = (reset: boolean): void => {
    if (closed) return;
    closed = true;
    handle.onread = noop;
    // A reset that cannot be made (not connected after all) is a close. Neither is given a
    // callback: nothing is left to do once the handle is closed, and a callback would cost a
    // second entry into JS per check (the connect's is the other).
    if (!reset || handle.reset() !== 0) handle.close();
  };

  handle.onread = (buffer) => {
    if (closed) return;
    const n = b.state[b.readBytesOrError] ?? 0;
    if (n > 0 && buffer) {
      events.data(Buffer.from(buffer, b.state[b.arrayBufferOffset] ?? 0, n));
    } else if (n === b.eof) {
      events.ended();
    } else if (n < 0) fail(n, 'read');
  };

  const req = new b.ConnectReq();
  req.address = address;
  req.port = port;
  req.oncomplete = (status) => {
    // A handle closed while connecting answers ECANCELED: nobody is listening by then.
    if (closed) return;
    if (status !== 0) return fail(status, 'connect');
    connected = true;
    const err = handle.readStart();
    if (err !== 0) return fail(err, 'read');
    events.connected();
  };

  let err = 0;
  let syscall = 'bind';
  if (localAddress)
    err = family === 6 ? handle.bind6(localAddress, 0, 0) : handle.bind(localAddress, 0);
  if (err === 0) {
    syscall = 'connect';
    err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
  }
  if (err !== 0) {
    const status = err;
    const what = syscall;
    // As net.Socket does: the error comes after the caller has its connection in hand.
    setImmediate(() => fail(status, what));
  }

  const send = (write: (w: WriteReq) => number): void => {
    if (closed || !connected) return;
    const w = new b.WriteReq();
    w.handle = handle;
    w.async = false;
    w.oncomplete = (status) => {
      if (status !== 0) fail(status, 'write');
    };
    const status = write(w);
    if (status !== 0) setImmediate(() => fail(status, 'write'));
  };
  return {
    write: (text, body) => {
      if (text.length > 0) send((w) => handle.writeLatin1String(w, text));
      if (body) send((w) => handle.writeBuffer(w, body));
    },
    reset: () => shut(connected),
    close: () => shut(false),
  };
}

function noop(): void {}
