// An in-memory IPVS table that fails the way the kernel does, for tests and for running without one.
import { addressRange } from './address.js';
import { BackendBase, operationTarget, type OperationResult } from './backend.js';
import { IpvsError } from './errors.js';
import {
  ZERO_STATS,
  type DestinationState,
  type IpvsInfo,
  type Operation,
  type ServiceKey,
  type ServiceSpec,
  type ServiceState,
  type TableEntry,
  type Timeouts,
} from './model.js';
import {
  checkDestinationSpec,
  checkServiceSpec,
  destinationId,
  destinationSortKey,
  formatServiceKey,
  normalizeDestinationKey,
  normalizeServiceKey,
  serviceId,
  serviceSortKey,
  sortBy,
} from './spec.js';

/** Schedulers of a stock Debian kernel (ip_vs_twos is not built there). */
export const KERNEL_SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'fo',
  'ovf',
  'mh',
] as const;

export interface MemoryBackendOptions {
  /** Scheduler modules "loaded"; others fail with ENOENT as in the kernel. */
  readonly schedulers?: readonly string[];
  /** Persistence engines "loaded" (ip_vs_pe_sip). */
  readonly persistenceEngines?: readonly string[];
}

interface Service {
  spec: ServiceSpec;
  stats: ServiceState['stats'];
  dests: Map<string, DestinationState>;
}

const INT_MAX = 0x7fffffff;

export class MemoryBackend extends BackendBase {
  readonly kind = 'memory';
  private readonly table_ = new Map<string, Service>();
  private timeouts_: Timeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  private readonly schedulers: Set<string>;
  private readonly engines: Set<string>;

  constructor(options: MemoryBackendOptions = {}) {
    super();
    this.schedulers = new Set(options.schedulers ?? KERNEL_SCHEDULERS);
    this.engines = new Set(options.persistenceEngines ?? ['sip']);
  }

  info(): Promise<IpvsInfo> {
    return Promise.resolve({ version: '1.2.1', connTableSize: 4096 });
  }

  timeouts(): Promise<Timeouts> {
    return Promise.resolve({ ...this.timeouts_ });
  }

  setTimeouts(t: Partial<Timeouts>): Promise<void> {
    for (const [name, value] of Object.entries(t)) {
      if (!Number.isInteger(value) || value < 0 || value > INT_MAX) {
        return Promise.reject(
          new IpvsError('EINVAL', {
            op: 'set-timeouts',
            detail: `${name} must be 0..${INT_MAX} s, got ${value}`,
          }),
        );
      }
    }
    // 0 leaves a timeout unchanged, as ip_vs_set_timeout does.
    this.timeouts_ = {
      tcp: t.tcp || this.timeouts_.tcp,
      tcpFin: t.tcpFin || this.timeouts_.tcpFin,
      udp: t.udp || this.timeouts_.udp,
    };
    return Promise.resolve();
  }

  services(): Promise<ServiceState[]> {
    return Promise.resolve(this.sorted().map((s) => this.state(s)));
  }

  service(key: ServiceKey): Promise<ServiceState> {
    try {
      return Promise.resolve(this.state(this.find(key, 'get-service')));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  destinations(key: ServiceKey): Promise<DestinationState[]> {
    try {
      const svc = this.table_.get(serviceId(normalizeServiceKey(key, 'list-destinations')));
      return Promise.resolve(svc ? sortedDests(svc) : []);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  table(): Promise<TableEntry[]> {
    return Promise.resolve(
      this.sorted().map((s) => ({ service: this.state(s), destinations: sortedDests(s) })),
    );
  }

  apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    return Promise.resolve(
      operations.map((operation) => {
        try {
          this.applyOne(operation);
          return { operation, error: null };
        } catch (err) {
          const error =
            err instanceof IpvsError
              ? err
              : new IpvsError('EINVAL', {
                  op: operation.op,
                  target: operationTarget(operation),
                  cause: err,
                });
          return { operation, error };
        }
      }),
    );
  }

  zero(key?: ServiceKey): Promise<void> {
    try {
      const targets = key ? [this.find(key, 'zero')] : [...this.table_.values()];
      for (const svc of targets) {
        svc.stats = ZERO_STATS;
        for (const [id, d] of svc.dests) svc.dests.set(id, { ...d, stats: ZERO_STATS });
      }
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flush(): Promise<void> {
    this.table_.clear();
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private applyOne(o: Operation): void {
    switch (o.op) {
      case 'add-service': {
        const spec = checkServiceSpec(o.service, o.op);
        const id = serviceId(spec.key);
        if (this.table_.has(id)) throw this.err('EEXIST', o);
        this.checkServiceValues(spec, o);
        this.table_.set(id, { spec, stats: ZERO_STATS, dests: new Map() });
        return;
      }
      case 'update-service': {
        const spec = checkServiceSpec(o.service, o.op);
        const svc = this.find(spec.key, o.op);
        this.checkServiceValues(spec, o);
        svc.spec = spec;
        return;
      }
      case 'delete-service': {
        const svc = this.find(o.service, o.op);
        this.table_.delete(serviceId(svc.spec.key));
        return;
      }
      case 'add-destination':
      case 'update-destination': {
        const svc = this.find(o.service, o.op);
        const dest = checkDestinationSpec(o.destination, o.op, svc.spec.key);
        // Mixed-family pools work only for tunnels (ip_vs_genl_set_cmd).
        if (dest.key.family !== svc.spec.key.family && dest.fwd !== 'tunnel') {
          throw this.err(
            'EINVAL',
            o,
            'a destination of the other address family must use tunnel forwarding',
          );
        }
        if (dest.weight > INT_MAX) throw this.err('ERANGE', o, 'weight above 2147483647');
        if (dest.lowerThreshold > dest.upperThreshold) {
          throw this.err('ERANGE', o, 'lower threshold above upper threshold');
        }
        if (dest.tunnel?.type === 'gue' && dest.tunnel.port === 0) {
          throw this.err('EINVAL', o, 'GUE tunnel needs a port');
        }
        const id = destinationId(dest.key);
        const existing = svc.dests.get(id);
        if (o.op === 'add-destination') {
          if (existing) throw this.err('EEXIST', o);
          const range = addressRange(dest.key.family, dest.key.address);
          if (['unspecified', 'broadcast', 'multicast', 'linkLocal'].includes(range)) {
            if (!(range === 'linkLocal' && dest.key.family === 4)) {
              throw this.err('EINVAL', o, `a ${range} address cannot be a real server`);
            }
          }
          svc.dests.set(id, {
            ...dest,
            activeConns: 0,
            inactiveConns: 0,
            persistentConns: 0,
            stats: ZERO_STATS,
          });
        } else {
          if (!existing) throw this.err('ENOENT', o);
          svc.dests.set(id, { ...existing, ...dest });
        }
        return;
      }
      case 'delete-destination': {
        const svc = this.find(o.service, o.op);
        const id = destinationId(normalizeDestinationKey(o.destination, o.op));
        if (!svc.dests.delete(id)) throw this.err('ENOENT', o);
        return;
      }
    }
  }

  private checkServiceValues(spec: ServiceSpec, o: Operation): void {
    if (spec.scheduler !== 'none' && !this.schedulers.has(spec.scheduler)) {
      throw this.err('ENOENT', o, `scheduler module ip_vs_${spec.scheduler} not found`);
    }
    if (spec.pe !== '' && !this.engines.has(spec.pe)) {
      throw this.err('ENOENT', o, `persistence engine module ip_vs_pe_${spec.pe} not found`);
    }
    if (spec.key.family === 6 && spec.netmask < 1) {
      throw this.err('EINVAL', o, 'IPv6 persistence prefix must be 1..128');
    }
  }

  private find(key: ServiceKey, op: string): Service {
    const k = normalizeServiceKey(key, op);
    const svc = this.table_.get(serviceId(k));
    if (!svc) throw new IpvsError('ESRCH', { op, target: formatServiceKey(k) });
    return svc;
  }

  private err(code: string, o: Operation, detail?: string): IpvsError {
    return new IpvsError(code, {
      op: o.op,
      target: operationTarget(o),
      ...(detail ? { detail } : {}),
    });
  }

  private sorted(): Service[] {
    return sortBy([...this.table_.values()], (s) => serviceSortKey(s.spec.key));
  }

  private state(svc: Service): ServiceState {
    return { ...svc.spec, stats: svc.stats };
  }
}

function sortedDests(svc: Service): DestinationState[] {
  return sortBy([...svc.dests.values()], (d) => destinationSortKey(d.key));
}
