// Errors of the kernel table: a stable code (the kernel's errno name), the operation and its target.
import { constants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** "ENOENT" for 2; "E123" for an errno this platform does not name. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** What the codes mean for an IPVS operator (the kernel's wording is terse and sometimes misleading). */
const explanations: Record<string, string> = {
  EEXIST: 'already exists',
  ENOENT: 'not found (or the scheduler / persistence engine module is not loaded)',
  ESRCH: 'no such service',
  EPERM: 'operation not permitted: needs CAP_NET_ADMIN (run as root or grant the capability)',
  EACCES: 'permission denied',
  EINVAL: 'invalid argument',
  ERANGE: 'value out of range',
  EBUSY: 'busy',
  ENOBUFS: 'replies were lost (socket buffer overrun); the table state must be re-read',
  EPROTO: 'malformed reply from the kernel',
  ETIMEDOUT: 'no reply from the kernel in time',
  ESHUTDOWN: 'the netlink socket was closed',
  EAFNOSUPPORT: 'address family not supported (is IPv6 enabled?)',
  EINTR:
    'interrupted: the table changed during a dump, repeatedly, or the kernel cut a command short',
  EAGAIN: 'too many requests waiting for the kernel; try again later',
  IPVS_UNAVAILABLE:
    'the kernel has no IPVS: load it with `modprobe ip_vs` (persist it in /etc/modules-load.d/ipvs.conf)',
};

/** Where a code means something else for the sync daemon's commands. */
const explanationsByOp: Record<string, Record<string, string>> = {
  'start-sync-daemon': {
    EEXIST: 'a sync daemon of that state is already running',
    ENODEV: 'no such interface',
    EINVAL: 'invalid argument (or a service mixes address families, which sync cannot carry)',
  },
  'stop-sync-daemon': {
    ESRCH: 'no sync daemon of that state is running',
    EINTR: 'the kernel cut the stop short and the daemon is still listed',
  },
  'add-route': {
    EEXIST:
      'a route of that prefix and metric is in the table already (if not ours, it is left alone)',
  },
  'delete-route': { ESRCH: 'no such route of our protocol in the table' },
};

export interface IpvsErrorOptions {
  /** The operation: "add-service", "list-destinations", ... */
  readonly op: string;
  /** What it was applied to: "TCP 10.0.0.1:80", "TCP 10.0.0.1:80 -> 10.0.0.2:8080". */
  readonly target?: string;
  /** More than the code says: the kernel's extended ack message, the attribute that was wrong. */
  readonly detail?: string;
  readonly errno?: number;
  readonly cause?: unknown;
  /** See `IpvsError.outcomeUnknown`; false unless said. */
  readonly outcomeUnknown?: boolean;
}

export class IpvsError extends Error {
  override readonly name = 'IpvsError';
  readonly code: string;
  readonly op: string;
  readonly target: string;
  readonly errno: number | undefined;
  readonly detail: string | undefined;
  /**
   * True when the request reached the kernel but its answer did not reach us (a timeout, lost
   * replies, a malformed or truncated reply, the socket closed under it): the kernel may well
   * have applied it, so the table must be re-read before judging. False for the kernel's own
   * errno and for a request that never went out.
   */
  readonly outcomeUnknown: boolean;

  constructor(code: string, options: IpvsErrorOptions) {
    const what = options.target ? `${options.op} ${options.target}` : options.op;
    const why = explanationsByOp[options.op]?.[code] ?? explanations[code] ?? code;
    const detail = options.detail ? `: ${options.detail}` : '';
    super(`${what} failed: ${code} (${why})${detail}`, { cause: options.cause });
    this.code = code;
    this.op = options.op;
    this.target = options.target ?? '';
    this.errno = options.errno;
    this.detail = options.detail;
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }

  /** From a negative or positive errno as the kernel returns it. */
  static fromErrno(errno: number, options: IpvsErrorOptions): IpvsError {
    return new IpvsError(errnoName(errno), { ...options, errno: Math.abs(errno) });
  }
}

/** Whether `e` is an `IpvsError` whose request may have been applied although it failed. */
export function isOutcomeUnknown(e: unknown): boolean {
  return e instanceof IpvsError && e.outcomeUnknown;
}

/** The table's commands that name an existing service (all but IPVS_CMD_NEW_SERVICE). */
const NAMING_A_SERVICE = new Set([
  'update-service',
  'delete-service',
  'add-destination',
  'update-destination',
  'delete-destination',
]);

/**
 * Whether the kernel refused `e`'s operation because the table is not the one its plan was made
 * from (ip_vs_genl_set_cmd, kernel 6.1): what it adds is there already (EEXIST: a service,
 * ip_vs_add_dest), or what it changes or removes is gone (ESRCH: no such service;
 * ENOENT: ip_vs_edit_dest and ip_vs_del_dest find no such destination). An ENOENT for a service
 * is a scheduler or persistence module that is not loaded: a failure, not the table's state.
 */
export function refusedByTable(e: IpvsError): boolean {
  switch (e.code) {
    case 'EEXIST':
      return e.op === 'add-service' || e.op === 'add-destination';
    case 'ESRCH':
      return NAMING_A_SERVICE.has(e.op);
    case 'ENOENT':
      return e.op === 'update-destination' || e.op === 'delete-destination';
    default:
      return false;
  }
}
