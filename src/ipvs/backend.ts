// The one seam to the kernel IPVS table. The rest of the program sees only this interface.
import type { IpvsError } from './errors.js';
import { formatTarget } from './spec.js';
import type {
  DestinationKey,
  DestinationSpec,
  DestinationState,
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
} from './model.js';

export interface OperationResult {
  readonly operation: Operation;
  /** null when the kernel accepted the operation. */
  readonly error: IpvsError | null;
}

/**
 * Every method behaves as the kernel does: the same error codes (EEXIST, ESRCH for a missing
 * service, ENOENT for a missing destination, scheduler or persistence engine, EINVAL, ERANGE,
 * EPERM) for the same inputs, and lists sorted by key. Errors are `IpvsError`s.
 */
export interface IpvsBackend {
  /** "netlink" or "memory". */
  readonly kind: string;
  info(): Promise<IpvsInfo>;
  timeouts(): Promise<Timeouts>;
  /** Sets the given timeouts; 0 or absent leaves one unchanged (as the kernel does). */
  setTimeouts(timeouts: Partial<Timeouts>): Promise<void>;

  services(): Promise<ServiceState[]>;
  /** ESRCH when there is no such service. */
  service(key: ServiceKey): Promise<ServiceState>;
  /** The destinations of a service; empty for a missing service, as the kernel's dump is. */
  destinations(key: ServiceKey): Promise<DestinationState[]>;
  /** Every service with its destinations. */
  table(): Promise<TableEntry[]>;
  /**
   * The table without statistics: settings and connection counts, what a reconcile compares.
   * A backend may return the whole table; the kernel's leaves the statistics undecoded (at
   * 10,000 destinations a third of the read's time, bench/table.ts).
   */
  layout(): Promise<LayoutEntry[]>;

  addService(spec: ServiceSpec): Promise<void>;
  updateService(spec: ServiceSpec): Promise<void>;
  deleteService(key: ServiceKey): Promise<void>;
  addDestination(service: ServiceKey, dest: DestinationSpec): Promise<void>;
  updateDestination(service: ServiceKey, dest: DestinationSpec): Promise<void>;
  deleteDestination(service: ServiceKey, dest: DestinationKey): Promise<void>;

  /**
   * Applies operations in order without waiting for each acknowledgement (the kernel still
   * applies them in order), and reports each one's outcome; one failure does not stop the rest.
   *
   * A failure with `error.outcomeUnknown` (see `isOutcomeUnknown`) was sent but its answer was
   * lost (a timeout, lost or malformed replies, the socket closed or failed under it): the
   * kernel may have applied it, so re-read the table before judging that target. Any other
   * failure is known: the kernel refused it (its errno) or it never reached the kernel.
   */
  apply(operations: readonly Operation[]): Promise<OperationResult[]>;

  /** The connection-sync daemons running, master before backup (ipvsadm --list --daemon). */
  syncDaemons(): Promise<SyncDaemonState[]>;
  /**
   * Starts a sync daemon (ipvsadm --start-daemon): EEXIST when one of that state runs, ENODEV
   * for a missing interface, EINVAL for a spec the kernel refuses.
   */
  startSyncDaemon(spec: SyncDaemonSpec): Promise<void>;
  /** Stops the sync daemon of a state (ipvsadm --stop-daemon): ESRCH when none runs. */
  stopSyncDaemon(state: SyncDaemonRole): Promise<void>;

  /** Zeroes the counters of one service, or of everything. */
  zero(key?: ServiceKey): Promise<void>;
  /** Removes every service (ipvsadm -C). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Throws the first failure of an `apply` (for the single-operation methods). */
export function firstFailure(results: readonly OperationResult[]): void {
  for (const r of results) if (r.error) throw r.error;
}

/** The single-operation methods, each one `apply` of one operation: one code path for writes. */
export abstract class BackendBase implements IpvsBackend {
  abstract readonly kind: string;
  abstract info(): Promise<IpvsInfo>;
  abstract timeouts(): Promise<Timeouts>;
  abstract setTimeouts(timeouts: Partial<Timeouts>): Promise<void>;
  abstract services(): Promise<ServiceState[]>;
  abstract service(key: ServiceKey): Promise<ServiceState>;
  abstract destinations(key: ServiceKey): Promise<DestinationState[]>;
  abstract table(): Promise<TableEntry[]>;
  layout(): Promise<LayoutEntry[]> {
    return this.table();
  }
  abstract apply(operations: readonly Operation[]): Promise<OperationResult[]>;
  abstract syncDaemons(): Promise<SyncDaemonState[]>;
  abstract startSyncDaemon(spec: SyncDaemonSpec): Promise<void>;
  abstract stopSyncDaemon(state: SyncDaemonRole): Promise<void>;
  abstract zero(key?: ServiceKey): Promise<void>;
  abstract flush(): Promise<void>;
  abstract close(): Promise<void>;

  private async one(operation: Operation): Promise<void> {
    firstFailure(await this.apply([operation]));
  }
  addService(service: ServiceSpec): Promise<void> {
    return this.one({ op: 'add-service', service });
  }
  updateService(service: ServiceSpec): Promise<void> {
    return this.one({ op: 'update-service', service });
  }
  deleteService(service: ServiceKey): Promise<void> {
    return this.one({ op: 'delete-service', service });
  }
  addDestination(service: ServiceKey, destination: DestinationSpec): Promise<void> {
    return this.one({ op: 'add-destination', service, destination });
  }
  updateDestination(service: ServiceKey, destination: DestinationSpec): Promise<void> {
    return this.one({ op: 'update-destination', service, destination });
  }
  deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    return this.one({ op: 'delete-destination', service, destination });
  }
}

/** What an operation is about: its service, and its destination when it has one. */
export function operationSubject(o: Operation): {
  readonly service: ServiceKey;
  readonly destination?: DestinationKey;
} {
  switch (o.op) {
    case 'add-service':
    case 'update-service':
      return { service: o.service.key };
    case 'delete-service':
      return { service: o.service };
    case 'add-destination':
    case 'update-destination':
      return { service: o.service, destination: o.destination.key };
    case 'delete-destination':
      return { service: o.service, destination: o.destination };
  }
}

/** The target text of an operation, for error messages and logs. */
export function operationTarget(o: Operation): string {
  const { service, destination } = operationSubject(o);
  return formatTarget(service, destination);
}
