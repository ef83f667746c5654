// IpvsBackend over the kernel's IPVS generic-netlink family.
import { RawNetlinkSocket } from 'netlink';
import { BackendBase, operationTarget, type OperationResult } from '../backend.js';
import { IpvsError } from '../errors.js';
import type {
  DestinationState,
  IpvsInfo,
  Operation,
  ServiceKey,
  ServiceState,
  TableEntry,
  Timeouts,
} from '../model.js';
import {
  checkDestinationSpec,
  checkServiceSpec,
  compareDestinationKeys,
  compareServiceKeys,
  formatServiceKey,
  normalizeDestinationKey,
  normalizeServiceKey,
} from '../spec.js';
import {
  MalformedReply,
  decodeDestination,
  decodeFamily,
  decodeInfo,
  decodeService,
  decodeTimeouts,
  encodeDestination,
  encodeDestinationKey,
  encodeGetFamily,
  encodeMessage,
  encodeService,
  encodeServiceKey,
  encodeTimeouts,
} from './codec.js';
import * as K from './constants.js';
import {
  NetlinkTransport,
  type RequestContext,
  type SocketFactory,
  type TransportOptions,
} from './transport.js';

export interface NetlinkBackendOptions extends TransportOptions {
  /** For tests: a socket other than the kernel's. */
  readonly socketFactory?: SocketFactory;
  /** Attempts at a dump the kernel marks NLM_F_DUMP_INTR (the table changed meanwhile). */
  readonly dumpAttempts?: number;
}

/** SO_RCVBUF asked for; the kernel caps it at net.core.rmem_max. */
const RECV_BUFFER = 4 << 20;

/** netlink@0.3.0's raw socket, speaking to the kernel (port 0). */
export const kernelSocket: SocketFactory = (handlers) => {
  const socket = new RawNetlinkSocket(K.NETLINK_GENERIC, {
    recvBufferSize: RECV_BUFFER,
    sendBufferSize: RECV_BUFFER,
  });
  socket.on('message', (data, rinfo) => handlers.message(data, rinfo.port, false));
  socket.on('truncatedMessage', (data, rinfo) => handlers.message(data, rinfo.port, true));
  socket.on('error', (error) => handlers.error(error));
  return {
    port: socket.address().port,
    send: (message, callback) => socket.send(message, { port: 0 }, callback),
    close: () => socket.close(),
  };
};

export class NetlinkBackend extends BackendBase {
  readonly kind = 'netlink';
  private readonly dumpAttempts: number;

  private constructor(
    private readonly transport: NetlinkTransport,
    private readonly familyId: number,
    options: NetlinkBackendOptions,
  ) {
    super();
    this.dumpAttempts = options.dumpAttempts ?? 3;
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
      const parts = await transport.request(
        (seq, port) => encodeGetFamily(seq, port, K.IPVS_GENL_NAME),
        { op: 'resolve-ipvs-family' },
      );
      const [first] = parts;
      if (!first) throw new IpvsError('EPROTO', { op: 'resolve-ipvs-family', detail: 'no reply' });
      const family = decodeFamily(first);
      return new NetlinkBackend(transport, family.id, options);
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

  private send(
    cmd: number,
    attrs: Uint8Array[],
    context: RequestContext,
    dump = false,
  ): Promise<Buffer[]> {
    const flags = K.NLM_F_REQUEST | (dump ? K.NLM_F_DUMP : K.NLM_F_ACK);
    return this.transport.request(
      (seq, port) =>
        encodeMessage(this.familyId, flags, seq, port, cmd, K.IPVS_GENL_VERSION, attrs),
      context,
      dump,
    );
  }

  /** A dump, tried again while the kernel reports it was interrupted by a change. */
  private async dump<T>(
    cmd: number,
    attrs: Uint8Array[],
    context: RequestContext,
    decode: (p: Buffer) => T,
  ): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const parts = await this.send(cmd, attrs, context, true);
        return parts.map(decode);
      } catch (err) {
        if (err instanceof IpvsError && err.code === 'EINTR' && attempt < this.dumpAttempts)
          continue;
        throw wrapDecode(err, context);
      }
    }
  }

  private async get<T>(
    cmd: number,
    attrs: Uint8Array[],
    context: RequestContext,
    decode: (p: Buffer) => T,
  ): Promise<T> {
    try {
      const [first] = await this.send(cmd, attrs, context);
      if (!first) throw new MalformedReply('no reply message before the acknowledgement');
      return decode(first);
    } catch (err) {
      throw wrapDecode(err, context);
    }
  }

  info(): Promise<IpvsInfo> {
    return this.get(K.IPVS_CMD_GET_INFO, [], { op: 'get-info' }, decodeInfo);
  }

  timeouts(): Promise<Timeouts> {
    return this.get(K.IPVS_CMD_GET_CONFIG, [], { op: 'get-timeouts' }, decodeTimeouts);
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
    await this.send(K.IPVS_CMD_SET_CONFIG, encodeTimeouts(t), { op: 'set-timeouts' });
  }

  async services(): Promise<ServiceState[]> {
    const list = await this.dump(
      K.IPVS_CMD_GET_SERVICE,
      [],
      { op: 'list-services' },
      decodeService,
    );
    return list.sort((a, b) => compareServiceKeys(a.key, b.key));
  }

  service(key: ServiceKey): Promise<ServiceState> {
    const k = normalizeServiceKey(key, 'get-service');
    return this.get(
      K.IPVS_CMD_GET_SERVICE,
      encodeServiceKey(k),
      { op: 'get-service', target: formatServiceKey(k) },
      decodeService,
    );
  }

  async destinations(key: ServiceKey): Promise<DestinationState[]> {
    const k = normalizeServiceKey(key, 'list-destinations');
    const list = await this.dump(
      K.IPVS_CMD_GET_DEST,
      encodeServiceKey(k),
      { op: 'list-destinations', target: formatServiceKey(k) },
      (p) => decodeDestination(p, k.family),
    );
    return list.sort((a, b) => compareDestinationKeys(a.key, b.key));
  }

  async table(): Promise<TableEntry[]> {
    const services = await this.services();
    // The transport runs these dumps one after another on the socket; queueing them all at once
    // saves a turn of the event loop per service.
    return Promise.all(
      services.map(async (service) => ({
        service,
        destinations: await this.destinations(service.key),
      })),
    );
  }

  apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    return Promise.all(
      operations.map(async (operation): Promise<OperationResult> => {
        const context = { op: operation.op, target: operationTarget(operation) };
        try {
          const [cmd, attrs] = encodeOperation(operation);
          await this.send(cmd, attrs, context);
          return { operation, error: null };
        } catch (err) {
          return {
            operation,
            error:
              err instanceof IpvsError ? err : new IpvsError('EINVAL', { ...context, cause: err }),
          };
        }
      }),
    );
  }

  async zero(key?: ServiceKey): Promise<void> {
    const k = key && normalizeServiceKey(key, 'zero');
    await this.send(K.IPVS_CMD_ZERO, k ? encodeServiceKey(k) : [], {
      op: 'zero',
      ...(k ? { target: formatServiceKey(k) } : {}),
    });
  }

  async flush(): Promise<void> {
    await this.send(K.IPVS_CMD_FLUSH, [], { op: 'flush' });
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}

/** The command and attributes of a write; throws EINVAL for what cannot be sent. */
function encodeOperation(o: Operation): [number, Uint8Array[]] {
  switch (o.op) {
    case 'add-service':
      return [K.IPVS_CMD_NEW_SERVICE, encodeService(checkServiceSpec(o.service, o.op))];
    case 'update-service':
      return [K.IPVS_CMD_SET_SERVICE, encodeService(checkServiceSpec(o.service, o.op))];
    case 'delete-service':
      return [K.IPVS_CMD_DEL_SERVICE, encodeServiceKey(normalizeServiceKey(o.service, o.op))];
    case 'add-destination':
    case 'update-destination': {
      const svc = normalizeServiceKey(o.service, o.op);
      const dest = checkDestinationSpec(o.destination, o.op, svc);
      const cmd = o.op === 'add-destination' ? K.IPVS_CMD_NEW_DEST : K.IPVS_CMD_SET_DEST;
      return [cmd, [...encodeServiceKey(svc), ...encodeDestination(dest)]];
    }
    case 'delete-destination': {
      const svc = normalizeServiceKey(o.service, o.op);
      return [
        K.IPVS_CMD_DEL_DEST,
        [
          ...encodeServiceKey(svc),
          ...encodeDestinationKey(normalizeDestinationKey(o.destination, o.op)),
        ],
      ];
    }
  }
}

function wrapDecode(err: unknown, context: RequestContext): unknown {
  if (err instanceof MalformedReply)
    return new IpvsError('EPROTO', { ...context, detail: err.message, cause: err });
  return err;
}
