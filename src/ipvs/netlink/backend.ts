// IpvsBackend over the kernel's IPVS generic-netlink family.
import { RawNetlinkSocket } from 'netlink';
import { BackendBase, operationTarget, type OperationResult } from '../backend.js';
import { IpvsError } from '../errors.js';
import type {
  DestinationLayout,
  DestinationState,
  Family,
  IpvsInfo,
  LayoutEntry,
  Operation,
  ServiceKey,
  ServiceSpec,
  ServiceState,
  SyncDaemonRole,
  SyncDaemonSpec,
  SyncDaemonState,
  TableEntry,
  Timeouts,
} from '../model.js';
import {
  checkDestinationSpec,
  checkServiceSpec,
  formatServiceKey,
  normalizeDestinationKey,
  normalizeServiceKey,
  serviceSortKey,
  sortBy,
  sortDestinations,
} from '../spec.js';
import { checkSyncDaemonSpec } from '../sync.js';
import {
  MalformedReply,
  decodeDaemon,
  decodeDestination,
  decodeDestinationLayout,
  decodeFamily,
  decodeInfo,
  decodeService,
  decodeServiceSpec,
  decodeTimeouts,
  getFamilyMessage,
  ipvsMessage,
  isRefusal,
  refusedRequest,
  writeDaemon,
  writeDaemonState,
  writeDestination,
  writeDestinationKey,
  writeService,
  writeServiceKey,
  writeTimeouts,
  type MessageWriter,
} from './codec.js';
import * as K from './constants.js';
import {
  NetlinkTransport,
  type PartDecoder,
  type RequestContext,
  type SocketFactory,
  type TransportCounters,
  type TransportOptions,
} from './transport.js';

export interface NetlinkBackendOptions extends TransportOptions {
  /** For tests: a socket other than the kernel's. */
  readonly socketFactory?: SocketFactory;
  /** Attempts at a dump the kernel marks NLM_F_DUMP_INTR (the table changed meanwhile). */
  readonly dumpAttempts?: number;
  /**
   * Sockets a table read spreads its per-service dumps over, the backend's own among them
   * (`DUMP_LANES`; 1 with a `socketFactory`, unless given).
   */
  readonly dumpLanes?: number;
}

/** SO_RCVBUF asked for; the kernel caps it at net.core.rmem_max (and doubles what it grants). */
const RECV_BUFFER = 4 << 20;

/**
 * The kernel sizes each part of a dump by the largest read it has seen on the socket, up to
 * 32 KiB (af_netlink.c, max_recvmsg_len). netlink@0.3.0 peeks at each datagram and reads it at
 * its own size, so on a fresh socket every part stays one page: 10,000 destinations came in
 * about 1,100 datagrams, each two reads and a call into JavaScript. Reading one large datagram
 * once raises the size for good, so each socket starts with a request the kernel refuses and
 * echoes back whole (`refusedRequest`). A socket that reads a fixed 32 KiB instead would
 * allocate that much for every acknowledgement.
 */
const DUMP_PART_SIZING = 32 << 10;

/**
 * A table read is a dump per service, and the kernel runs one dump at a time on a socket: each
 * is a round trip through the event loop, about 2 ms in the emulated VM. Spread over a few
 * sockets, the round trips overlap and one wake-up reads several (bench:table, README).
 */
const DUMP_LANES = 4;

/** netlink@0.3.0's raw socket of a protocol, speaking to the kernel (port 0). */
export const kernelSocketFor =
  (protocol: number): SocketFactory =>
  (handlers) => {
    const socket = new RawNetlinkSocket(protocol, {
      recvBufferSize: RECV_BUFFER,
      sendBufferSize: RECV_BUFFER,
    });
    // Sent before anything the transport sends; if it fails, dumps are only slower.
    socket.send(refusedRequest(DUMP_PART_SIZING), { port: 0 }, () => undefined);
    socket.on('message', (data, rinfo) => {
      // Its refusal answers no request of the transport's (they are numbered from 1).
      if (rinfo.port === 0 && isRefusal(data)) return;
      handlers.message(data, rinfo.port, false);
    });
    socket.on('truncatedMessage', (data, rinfo) => handlers.message(data, rinfo.port, true));
    socket.on('error', (error) => handlers.error(error));
    return {
      port: socket.address().port,
      recvBufferSize: socket.getRecvBufferSize(),
      send: (messages, callback) => socket.send(messages, { port: 0 }, callback),
      close: () => socket.close(),
    };
  };

/** The IPVS family's socket (generic netlink); called again if one fails. */
export const kernelSocket: SocketFactory = kernelSocketFor(K.NETLINK_GENERIC);

/** A destination part's decoder: as `PartDecoder`, knowing its service's family. */
type DestinationDecoder<D> = (buf: Buffer, family: Family, start: number, end: number) => D;

export class NetlinkBackend extends BackendBase {
  readonly kind = 'netlink';
  private readonly dumpAttempts: number;
  private readonly dumpLanes: number;
  /** The sockets a table read spreads over besides `transport`, opened at the first read. */
  private readonly lanes: NetlinkTransport[] = [];
  private closed = false;

  private constructor(
    private readonly transport: NetlinkTransport,
    private readonly familyId: number,
    private readonly options: NetlinkBackendOptions,
  ) {
    super();
    this.dumpAttempts = options.dumpAttempts ?? 3;
    this.dumpLanes = Math.max(1, options.dumpLanes ?? (options.socketFactory ? 1 : DUMP_LANES));
  }

  /** Opens a socket and resolves the IPVS family; fails with IPVS_UNAVAILABLE when the kernel has none. */
  static async open(options: NetlinkBackendOptions = {}): Promise<NetlinkBackend> {
    let transport: NetlinkTransport;
    try {
      transport = new NetlinkTransport(options.socketFactory ?? kernelSocket, options);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw IpvsError.fromErrno(typeof e.errno === 'number' ? e.errno : 0, {
        op: 'open-netlink-socket',
        detail: e.message,
        cause: err,
      });
    }
    try {
      const [first] = await transport.request(getFamilyMessage(K.IPVS_GENL_NAME), {
        op: 'resolve-ipvs-family',
      });
      if (!first) throw new MalformedReply('no reply to CTRL_CMD_GETFAMILY');
      return new NetlinkBackend(transport, decodeFamily(first).id, options);
    } catch (err) {
      transport.close();
      if (err instanceof IpvsError && err.code === 'ENOENT') {
        throw new IpvsError('IPVS_UNAVAILABLE', {
          op: 'open',
          detail: 'generic netlink family "IPVS" not found',
          cause: err,
        });
      }
      throw wrapDecode(err, { op: 'resolve-ipvs-family' });
    }
  }

  /** The socket's traffic so far: requests, datagrams and replies (for diagnostics and tests). */
  get counters(): Readonly<TransportCounters> {
    return this.transport.counters;
  }

  private message(cmd: number, dump = false): MessageWriter {
    return ipvsMessage(this.familyId, cmd, dump);
  }

  /** A dump, tried again while the kernel reports it was interrupted by a change. */
  private async dump<T>(
    message: Buffer,
    context: RequestContext,
    decode: PartDecoder<T>,
    transport = this.transport,
  ): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await transport.decoded(Buffer.from(message), context, true, decode);
      } catch (err) {
        if (err instanceof IpvsError && err.code === 'EINTR' && attempt < this.dumpAttempts)
          continue;
        throw wrapDecode(err, context);
      }
    }
  }

  private async get<T>(
    message: Buffer,
    context: RequestContext,
    decode: (p: Buffer) => T,
  ): Promise<T> {
    try {
      const [first] = await this.transport.request(message, context);
      if (!first) throw new MalformedReply('no reply message before the acknowledgement');
      return decode(first);
    } catch (err) {
      throw wrapDecode(err, context);
    }
  }

  info(): Promise<IpvsInfo> {
    return this.get(this.message(K.IPVS_CMD_GET_INFO).finish(), { op: 'get-info' }, decodeInfo);
  }

  timeouts(): Promise<Timeouts> {
    return this.get(
      this.message(K.IPVS_CMD_GET_CONFIG).finish(),
      { op: 'get-timeouts' },
      decodeTimeouts,
    );
  }

  async setTimeouts(t: Partial<Timeouts>): Promise<void> {
    for (const [name, value] of Object.entries(t)) {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new IpvsError('EINVAL', {
          op: 'set-timeouts',
          detail: `${name} must be a whole number of seconds, got ${value}`,
        });
      }
    }
    await this.transport.request(writeTimeouts(this.message(K.IPVS_CMD_SET_CONFIG), t).finish(), {
      op: 'set-timeouts',
    });
  }

  services(): Promise<ServiceState[]> {
    return this.listServices(decodeService);
  }

  private async listServices<S extends ServiceSpec>(decode: PartDecoder<S>): Promise<S[]> {
    const list = await this.dump(
      this.message(K.IPVS_CMD_GET_SERVICE, true).finish(),
      { op: 'list-services' },
      decode,
    );
    return sortBy(list, (s) => serviceSortKey(s.key));
  }

  service(key: ServiceKey): Promise<ServiceState> {
    const k = normalizeServiceKey(key, 'get-service');
    return this.get(
      writeServiceKey(this.message(K.IPVS_CMD_GET_SERVICE), k).finish(),
      { op: 'get-service', target: formatServiceKey(k) },
      decodeService,
    );
  }

  destinations(key: ServiceKey): Promise<DestinationState[]> {
    return this.listDestinations(key, decodeDestination);
  }

  private async listDestinations<D extends DestinationLayout>(
    key: ServiceKey,
    decode: DestinationDecoder<D>,
    transport = this.transport,
  ): Promise<D[]> {
    const k = normalizeServiceKey(key, 'list-destinations');
    const list = await this.dump(
      writeServiceKey(this.message(K.IPVS_CMD_GET_DEST, true), k).finish(),
      { op: 'list-destinations', target: formatServiceKey(k) },
      (buf, start, end) => decode(buf, k.family, start, end),
      transport,
    );
    return sortDestinations(list);
  }

  table(): Promise<TableEntry[]> {
    return this.read(decodeService, decodeDestination);
  }

  override layout(): Promise<LayoutEntry[]> {
    return this.read(decodeServiceSpec, decodeDestinationLayout);
  }

  private async read<S extends ServiceSpec, D extends DestinationLayout>(
    service: PartDecoder<S>,
    destination: DestinationDecoder<D>,
  ): Promise<{ service: S; destinations: D[] }[]> {
    // The services' dump is answered after every write sent before it on this socket, so the
    // destinations' dumps see those writes whichever socket they go on.
    const services = await this.listServices(service);
    const out: { service: S; destinations: D[] }[] = [];
    let next = 0;
    // Each lane takes the next service when its last dump is done, so a large one holds one lane.
    const lane = async (transport: NetlinkTransport): Promise<void> => {
      for (let i = next++; i < services.length; i = next++) {
        const s = services[i] as S;
        try {
          out[i] = {
            service: s,
            destinations: await this.listDestinations(s.key, destination, transport),
          };
        } catch (e) {
          next = services.length; // the read has failed: the other lanes stop too
          throw e;
        }
      }
    };
    await Promise.all(this.readLanes(services.length).map(lane));
    return out;
  }

  /** This socket and up to `dumpLanes - 1` more, for `dumps` dumps. */
  private readLanes(dumps: number): NetlinkTransport[] {
    const want = Math.min(this.dumpLanes, dumps) - 1;
    while (!this.closed && this.lanes.length < want) {
      try {
        this.lanes.push(
          new NetlinkTransport(this.options.socketFactory ?? kernelSocket, this.options),
        );
      } catch {
        // Without a socket of its own, a read is only slower: its dumps go on the others.
        break;
      }
    }
    return [this.transport, ...this.lanes.slice(0, Math.max(0, want))];
  }

  /**
   * The transport's errors pass through as they are, `outcomeUnknown` with them; an operation
   * that cannot be encoded is EINVAL and was never sent.
   */
  apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    // Promise chains, not an async function per operation: a start-up writes 10,000.
    return Promise.all(
      operations.map((operation): Promise<OperationResult> => {
        // The target is text for an error message: made only if one is.
        const context = {
          op: operation.op,
          get target(): string {
            return operationTarget(operation);
          },
        };
        const failed = (err: unknown): OperationResult => ({
          operation,
          error:
            err instanceof IpvsError ? err : new IpvsError('EINVAL', { ...context, cause: err }),
        });
        let message: Buffer;
        try {
          message = encodeOperation(this.familyId, operation);
        } catch (err) {
          return Promise.resolve(failed(err));
        }
        return this.transport
          .write(message, context)
          .then(() => ({ operation, error: null }), failed);
      }),
    );
  }

  async syncDaemons(): Promise<SyncDaemonState[]> {
    const list = await this.dump(
      this.message(K.IPVS_CMD_GET_DAEMON, true).finish(),
      { op: 'list-sync-daemons' },
      decodeDaemon,
    );
    return sortBy(list, (d) => (d.state === 'master' ? '0' : '1'));
  }

  async startSyncDaemon(spec: SyncDaemonSpec): Promise<void> {
    const s = checkSyncDaemonSpec(spec, 'start-sync-daemon');
    await this.transport.request(writeDaemon(this.message(K.IPVS_CMD_NEW_DAEMON), s).finish(), {
      op: 'start-sync-daemon',
      target: s.state,
    });
  }

  async stopSyncDaemon(state: SyncDaemonRole): Promise<void> {
    if (state !== 'master' && state !== 'backup') {
      throw new IpvsError('EINVAL', {
        op: 'stop-sync-daemon',
        detail: `state must be master or backup, got ${String(state)}`,
      });
    }
    const stop = this.transport.request(
      writeDaemonState(this.message(K.IPVS_CMD_DEL_DAEMON), state).finish(),
      { op: 'stop-sync-daemon', target: state },
    );
    // The kernel does not answer a stop that finds the daemon's thread not yet run (kthread_stop
    // returns -EINTR; see NetlinkTransport.skipped), though it stopped it. The list sent right
    // behind is answered after it, so the transport fails the stop at once, and says whether
    // the daemon is gone. Its failure is caught here: it is only a guard, never an unhandled
    // rejection.
    const after = this.syncDaemons().then(
      (list) => list,
      () => undefined,
    );
    try {
      await stop;
    } catch (e) {
      const left = e instanceof IpvsError && e.code === 'EINTR' ? await after : undefined;
      if (left && !left.some((d) => d.state === state)) return;
      throw e;
    }
  }

  async zero(key?: ServiceKey): Promise<void> {
    const k = key && normalizeServiceKey(key, 'zero');
    const w = this.message(K.IPVS_CMD_ZERO);
    if (k) writeServiceKey(w, k);
    await this.transport.request(w.finish(), {
      op: 'zero',
      ...(k ? { target: formatServiceKey(k) } : {}),
    });
  }

  async flush(): Promise<void> {
    await this.transport.request(this.message(K.IPVS_CMD_FLUSH).finish(), { op: 'flush' });
  }

  close(): Promise<void> {
    this.closed = true;
    this.transport.close();
    for (const lane of this.lanes.splice(0)) lane.close();
    return Promise.resolve();
  }
}

/** The message of a write; throws EINVAL for what cannot be sent. */
function encodeOperation(familyId: number, o: Operation): Buffer {
  const w = (cmd: number): MessageWriter => ipvsMessage(familyId, cmd, false);
  switch (o.op) {
    case 'add-service':
      return writeService(w(K.IPVS_CMD_NEW_SERVICE), checkServiceSpec(o.service, o.op)).finish();
    case 'update-service':
      return writeService(w(K.IPVS_CMD_SET_SERVICE), checkServiceSpec(o.service, o.op)).finish();
    case 'delete-service':
      return writeServiceKey(
        w(K.IPVS_CMD_DEL_SERVICE),
        normalizeServiceKey(o.service, o.op),
      ).finish();
    case 'add-destination':
    case 'update-destination': {
      const svc = normalizeServiceKey(o.service, o.op);
      const dest = checkDestinationSpec(o.destination, o.op, svc);
      const cmd = o.op === 'add-destination' ? K.IPVS_CMD_NEW_DEST : K.IPVS_CMD_SET_DEST;
      return writeDestination(writeServiceKey(w(cmd), svc), dest).finish();
    }
    case 'delete-destination': {
      const msg = writeServiceKey(w(K.IPVS_CMD_DEL_DEST), normalizeServiceKey(o.service, o.op));
      return writeDestinationKey(msg, normalizeDestinationKey(o.destination, o.op)).finish();
    }
  }
}

function wrapDecode(err: unknown, context: RequestContext): unknown {
  if (err instanceof MalformedReply) {
    return new IpvsError('EPROTO', { ...context, detail: err.message, cause: err });
  }
  return err;
}
