// An in-memory IPVS table that fails the way the kernel does, for tests and for running without one.
import { BackendBase, operationTarget, type OperationResult } from './backend.js';
import { IpvsError } from './errors.js';
import {
  ZERO_STATS,
  type DestinationLayout,
  type DestinationSpec,
  type DestinationState,
  type IpvsInfo,
  type Operation,
  type ServiceKey,
  type ServiceSpec,
  type ServiceState,
  type SyncDaemonRole,
  type SyncDaemonSpec,
  type Stats,
  type SyncDaemonState,
  type TableEntry,
  type Timeouts,
} from './model.js';
import {
  KERNEL_PERSISTENCE_ENGINES,
  KERNEL_SCHEDULERS,
  checkDestinationSpec,
  checkServiceSpec,
  destinationProblem,
  destinationId,
  formatServiceKey,
  normalizeDestinationKey,
  normalizeServiceKey,
  serviceId,
  serviceProblem,
  serviceSortKey,
  sortBy,
  sortDestinations,
} from './spec.js';

import {
  BACKUP_MIN_MAXLEN,
  checkSyncDaemonSpec,
  multicastFamily,
  syncHeaderLength,
  syncMaxLenBounds,
} from './sync.js';

export { KERNEL_SCHEDULERS };

export interface MemoryBackendOptions {
  /** Scheduler modules "loaded"; others fail with ENOENT as in the kernel. */
  readonly schedulers?: readonly string[];
  /** Persistence engines "loaded" (ip_vs_pe_sip). */
  readonly persistenceEngines?: readonly string[];
  /** Interfaces a sync daemon may use (others: ENODEV, as in the kernel); absent: any name. */
  readonly interfaces?: readonly string[];
  /** The interfaces' MTU, from which the kernel derives a sync daemon's max packet length. */
  readonly mtu?: number;
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
  private readonly interfaces: Set<string> | null;
  private readonly mtu: number;
  private readonly daemons = new Map<SyncDaemonRole, SyncDaemonState>();

  constructor(options: MemoryBackendOptions = {}) {
    super();
    this.schedulers = new Set(options.schedulers ?? KERNEL_SCHEDULERS);
    this.engines = new Set(options.persistenceEngines ?? KERNEL_PERSISTENCE_ENGINES);
    this.interfaces = options.interfaces ? new Set(options.interfaces) : null;
    this.mtu = options.mtu ?? 1500;
  }

  syncDaemons(): Promise<SyncDaemonState[]> {
    return Promise.resolve(
      (['master', 'backup'] as const).flatMap((s) => {
        const d = this.daemons.get(s);
        return d ? [{ ...d }] : [];
      }),
    );
  }

  startSyncDaemon(spec: SyncDaemonSpec): Promise<void> {
    const op = 'start-sync-daemon';
    try {
      const s = checkSyncDaemonSpec(spec, op);
      if (this.interfaces && !this.interfaces.has(s.interface))
        throw new IpvsError('ENODEV', {
          op,
          target: s.state,
          detail: `no interface ${s.interface}`,
        });
      if (this.daemons.has(s.state)) throw new IpvsError('EEXIST', { op, target: s.state });
      // As start_sync_thread: a length asked for is clamped, none is the MTU minus the headers.
      const family = multicastFamily(s.group) ?? 4;
      const { max } = syncMaxLenBounds(family);
      const min = s.state === 'backup' ? BACKUP_MIN_MAXLEN : 1;
      const maxPacketLength =
        s.maxPacketLength === 0
          ? this.mtu - syncHeaderLength(family)
          : Math.min(max, Math.max(min, s.maxPacketLength));
      this.daemons.set(s.state, { ...s, maxPacketLength });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stopSyncDaemon(state: SyncDaemonRole): Promise<void> {
    const op = 'stop-sync-daemon';
    if (state !== 'master' && state !== 'backup') {
      return Promise.reject(
        new IpvsError('EINVAL', {
          op,
          detail: `state must be master or backup, got ${String(state)}`,
        }),
      );
    }
    if (!this.daemons.delete(state))
      return Promise.reject(new IpvsError('ESRCH', { op, target: state }));
    return Promise.resolve();
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
        for (const [id, d] of svc.dests) svc.dests.set(id, destinationState(d, d, ZERO_STATS));
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
        const problem = destinationProblem(dest, svc.spec.key, o.op === 'add-destination');
        if (problem) throw this.err(problem.code, o, problem.detail);
        const id = destinationId(dest.key);
        const existing = svc.dests.get(id);
        if (o.op === 'add-destination') {
          if (existing) throw this.err('EEXIST', o);
          svc.dests.set(id, destinationState(dest, NO_CONNS, ZERO_STATS));
        } else {
          if (!existing) throw this.err('ENOENT', o);
          svc.dests.set(id, destinationState(dest, existing, existing.stats));
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
    const problem = serviceProblem(spec, { schedulers: this.schedulers, engines: this.engines });
    if (problem) throw this.err(problem.code, o, problem.detail);
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
    const s = svc.spec;
    return {
      key: s.key,
      scheduler: s.scheduler,
      schedFlags: s.schedFlags,
      persistent: s.persistent,
      timeout: s.timeout,
      netmask: s.netmask,
      onePacket: s.onePacket,
      pe: s.pe,
      stats: svc.stats,
    };
  }
}

const NO_CONNS = { activeConns: 0, inactiveConns: 0, persistentConns: 0 } as const;

/**
 * Built key by key, as the netlink codec builds what it reads: V8 gives each spread copy of an
 * object this size a map of its own (checked with %HaveSameMap), which at 10,000 destinations
 * is memory and a missed inline cache on every read.
 */
function destinationState(
  d: DestinationSpec,
  conns: Pick<DestinationLayout, 'activeConns' | 'inactiveConns' | 'persistentConns'>,
  stats: Stats,
): DestinationState {
  return {
    key: d.key,
    fwd: d.fwd,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    tunnel: d.tunnel,
    activeConns: conns.activeConns,
    inactiveConns: conns.inactiveConns,
    persistentConns: conns.persistentConns,
    stats,
  };
}

/** In the order the netlink backend gives a dump (sortDestinations: no key string per item). */
function sortedDests(svc: Service): DestinationState[] {
  return sortDestinations([...svc.dests.values()]);
}
