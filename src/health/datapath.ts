// TCP connections for probes, through the data path when the target asks for it. A DR or TUN
// real server can answer on its own address while it has lost the VIP (or answers ARP for it),
// so a probe of its address passes while every packet the director sends it is lost. A
// data-path probe goes as that traffic goes: to the VIP, with a firewall mark that an IPVS
// fwmark service of this one real server picks up (IPVS schedules locally generated packets
// too), which forwards it by the server's own method, DR or TUN (Google's Seesaw does the
// same). The mark must be on the SYN, so it is set between bind(2) and connect(2): Node has no
// hook there but a custom lookup, which runs after the socket's handle exists and before the
// connect. The probe is bound to this director's address towards the real server (the kernel
// would pick the VIP, a local address, and the reply would never come back here), and the
// director must accept replies from the VIP, one of its own addresses (accept_local: README).
import { createSocket } from 'node:dgram';
import { Socket, connect as netConnect, type LookupFunction } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { setsockopt } from 'sockopt';
import type { CheckTarget } from './checker.js';
import { errnoCode, leanConnect, type LeanEvents } from './lean.js';
import { nativeConnect, nativeExchange, type NativeRequest } from './native.js';
import type { TlsOptions } from './options.js';

/** <linux/socket.h>, <asm-generic/socket.h> */
const SOL_SOCKET = 1;
const SO_MARK = 36;

/**
 * The address this director sends from to reach `server`: what the kernel's route lookup picks,
 * asked of a UDP socket's connect(2), which sends nothing.
 */
export function sourceTowards(family: 4 | 6, server: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const udp = createSocket(family === 6 ? 'udp6' : 'udp4');
    udp.once('error', (e) => {
      udp.close();
      reject(e);
    });
    udp.connect(port || 9, server, () => {
      const { address } = udp.address();
      udp.close();
      resolve(address);
    });
  });
}

/** The handle of a net.Socket as far as this module needs it (Node's TCPWrap). */
interface Handle {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
}

/** An errno as libuv returns it (-98) to an Error with its code, as net.Socket's own are. */
function uvError(errno: number, what: string): Error {
  const code = errnoCode(errno);
  return Object.assign(new Error(`${what}: ${code}`), { code, errno });
}

/**
 * A TCP connection to `target` as net.connect makes one (`localAddress` binds it); through the
 * data path when `target.dataPath` is set: marked before its SYN, bound to `localAddress` or to
 * this director's address towards the real server. Errors (the mark refused without
 * CAP_NET_ADMIN: EPERM) come as the socket's 'error', like a refused connection's.
 */
export function connectTcp(target: CheckTarget, localAddress?: string): Socket {
  const via = target.dataPath;
  if (!via)
    return netConnect({
      host: target.address,
      port: target.port,
      family: target.family,
      ...(localAddress ? { localAddress } : {}),
    });
  const socket = new Socket();
  const lookup: LookupFunction = (_host, options, callback) => {
    const answer = (): void => {
      if (options.all) callback(null, [{ address: target.address, family: target.family }]);
      else callback(null, target.address, target.family);
    };
    const source = localAddress
      ? Promise.resolve(localAddress)
      : sourceTowards(target.family, via.server, target.port);
    source.then(
      (address) => {
        const handle = (socket as unknown as { _handle: Handle | null })._handle;
        if (!handle) {
          callback(Object.assign(new Error('the socket was closed'), { code: 'ECANCELED' }), '');
          return;
        }
        const err = target.family === 6 ? handle.bind6(address, 0, 0) : handle.bind(address, 0);
        if (err) {
          callback(uvError(err, `binding to ${address}`), '');
          return;
        }
        try {
          setsockopt(socket, SOL_SOCKET, SO_MARK, via.mark);
        } catch (e) {
          const code = (e as { code?: string }).code ?? 'EPERM';
          callback(
            Object.assign(new Error(`marking the probe (SO_MARK): ${(e as Error).message}`), {
              code,
            }),
            '',
          );
          return;
        }
        answer();
      },
      (e: unknown) => callback(e as NodeJS.ErrnoException, ''),
    );
  };
  // A name, not the VIP itself: for an address net.connect skips the lookup, and with it the
  // one moment between the socket's creation and its connect.
  return socket.connect({
    host: 'data-path.invalid',
    port: target.port,
    family: target.family,
    autoSelectFamily: false,
    lookup,
  });
}

/**
 * A probe's connection: TCP, or TLS when `tls` is given ('secureConnect' then, 'connect'
 * otherwise), through the data path when the target asks for it.
 */
export function openConnection(
  target: CheckTarget,
  localAddress: string | undefined,
  tls: TlsOptions | undefined,
): Socket | TLSSocket {
  if (!tls) return connectTcp(target, localAddress);
  const options = {
    rejectUnauthorized: tls.verify ?? true,
    ...(tls.servername ? { servername: tls.servername } : {}),
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
  if (target.dataPath) return tlsConnect({ ...options, socket: connectTcp(target, localAddress) });
  const base = {
    host: target.address,
    port: target.port,
    family: target.family,
    ...(localAddress ? { localAddress } : {}),
  };
  return tlsConnect({ ...options, ...base });
}

/**
 * Ends a probe's connection with a reset (SO_LINGER 0) when it is an established plain TCP one:
 * the probe leaves no TIME_WAIT behind. A director closing first after each of 1,000 checks a
 * second would hold 60,000 of them (60 s each), more than the ephemeral ports, and every
 * connect(2) would search that crowded port space. keepalived and HAProxy close their checks
 * the same way. A socket still
 * connecting (nothing to linger), or a TLS one (its handle is not the TCP one), is destroyed
 * as usual. Not for a connection whose last bytes sent may not have been read yet: a reset
 * can discard them.
 */
export function endProbeConnection(socket: Socket | TLSSocket): void {
  if (socket.destroyed) return;
  if (!socket.pending && !(socket instanceof TLSSocket)) {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP handle after all: a plain destroy below.
    }
  }
  socket.destroy();
}

/** What a probe's connection tells it (lean.ts's events, whichever socket is under them). */
export type ProbeEvents = LeanEvents;

/**
 * A probe's connection as the fresh-connection probes (TCP, HTTP) drive it: events in, one
 * write, one end. A lean handle (lean.ts) for plain TCP where this Node has one; net.Socket or
 * TLSSocket for TLS, the data path, or a Node without it.
 */
export interface ProbeConnection {
  /** Sends a Latin-1 string (if not empty), then `body` if given, in one go. */
  write(text: string, body?: Buffer): void;
  /** The connection's end after a probe: endProbeConnection's (a reset when it can). */
  reset(): void;
  /** A plain close (FIN): for a connection whose last bytes sent may not have been read. */
  close(): void;
  /** The TLS version once connected over TLS ("TLSv1.3", or ''); undefined for plain TCP. */
  tlsProtocol(): string | undefined;
}

/** The TLS version of a plain TCP connection: none. */
const plain = (): undefined => undefined;
const noop = (): void => {};

/** `events`, but `request` is written on the connection once it connects, before it is told. */
function writing(
  request: NativeRequest,
  events: ProbeEvents,
  connection: () => Pick<ProbeConnection, 'write'> | undefined,
): ProbeEvents {
  return {
    connected: () => {
      connection()?.write(request.text, request.body);
      events.connected();
    },
    data: events.data,
    ended: events.ended,
    failed: events.failed,
  };
}

/** A connection of native.ts: it writes its request itself, and ends as `cancel` does. */
const nativeConnection = (cancel: (close?: boolean) => void): ProbeConnection => ({
  write: noop,
  reset: () => cancel(),
  close: () => cancel(true),
  tlsProtocol: plain,
});

/**
 * Opens a probe's connection. Every outcome comes through `events`, never from this call, and
 * none after the probe has ended the connection (reset or close). `send` says what the probe
 * sends: `nothing` for a probe that only connects (it neither writes nor reads), or a request
 * that the connection writes itself once connected (before `connected` is told); both run in C
 * where native.ts has its addon. Without `send` the probe writes, with `write`.
 */
export function openProbeConnection(
  target: CheckTarget,
  localAddress: string | undefined,
  tls: TlsOptions | undefined,
  events: ProbeEvents,
  send?: 'nothing' | NativeRequest,
): ProbeConnection {
  const request = send === 'nothing' ? undefined : send;
  if (!tls && !target.dataPath) {
    const { family, address, port } = target;
    const cancel =
      send === 'nothing'
        ? nativeConnect(family, address, port, localAddress, events)
        : request && nativeExchange(family, address, port, localAddress, request, events);
    if (cancel) return nativeConnection(cancel);
  }
  if (!request) return openHandle(target, localAddress, tls, events);
  let connection: ProbeConnection | undefined = undefined;
  connection = openHandle(
    target,
    localAddress,
    tls,
    writing(request, events, () => connection),
  );
  return connection;
}

/** A probe's connection on a handle of Node's: the lean one where it can be, else net.Socket. */
function openHandle(
  target: CheckTarget,
  localAddress: string | undefined,
  tls: TlsOptions | undefined,
  events: ProbeEvents,
): ProbeConnection {
  if (!tls && !target.dataPath) {
    const lean = leanConnect(target.family, target.address, target.port, localAddress, events);
    // Field by field: a spread gave each check's connection a map of its own (one per
    // exchange in flight in a heap snapshot), so the exchange's calls on it went megamorphic.
    if (lean)
      return { write: lean.write, reset: lean.reset, close: lean.close, tlsProtocol: plain };
  }
  const socket = openConnection(target, localAddress, tls);
  let open = true;
  const unless =
    <A extends unknown[]>(f: (...a: A) => void) =>
    (...a: A): void => {
      if (open) f(...a);
    };
  socket.once(tls ? 'secureConnect' : 'connect', unless(events.connected));
  socket.on('data', unless(events.data));
  socket.once('end', unless(events.ended));
  // Closed without an end or an error of its own (destroyed under it): ended as well.
  socket.once('close', unless(events.ended));
  socket.on(
    'error',
    unless((error: Error) => {
      open = false;
      events.failed(error);
    }),
  );
  return {
    write(text, body) {
      socket.cork();
      if (text.length > 0) socket.write(text, 'latin1');
      if (body) socket.write(body);
      socket.uncork();
    },
    reset() {
      open = false;
      endProbeConnection(socket);
    },
    close() {
      open = false;
      socket.destroy();
    },
    tlsProtocol: () => (socket instanceof TLSSocket ? (socket.getProtocol() ?? '') : undefined),
  };
}
