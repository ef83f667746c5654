// The reconcile loop, the imperative shell around desired() and plan(): it owns the checks, keeps
// each real server's health, and on each tick plans and applies: against the kernel table read
// anew, or, for health transitions, against the table as the last read left it plus its own
// operations since (`readsTable`). Ticks come from health transitions, slow-start steps and
// drains (when due), failed operations (with backoff) and the periodic resync. Ticks never
// overlap, and one tick's end is at least min_tick_interval from the next one's start, so a
// burst of transitions shares one tick.
// A tick works on one state (config, server records, retired services) taken when it starts;
// a reload builds the next state completely, then swaps it in at once, between ticks' reads.
import { readdir, stat } from 'node:fs/promises';
import { setImmediate as turn } from 'node:timers/promises';
import { join } from 'node:path';
import { Announcer, type VipStatus } from '../announce/announcer.js';
import type { AnnouncingService } from '../announce/plan.js';
import type { RouteTable } from '../announce/routes.js';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { flat } from '../flat.js';
import type {
  CheckConfig,
  Config,
  RealServerConfig,
  VirtualServiceConfig,
} from '../config/model.js';
import type { Checker } from '../health/checker.js';
import { inFlightMax, schedulerCap } from '../health/admission.js';
import { checkTarget, createChecker } from '../checkers.js';
import { Scheduler, type CheckEvent, type SchedulerStats } from '../health/scheduler.js';
import { operationTarget, type IpvsBackend } from '../ipvs/backend.js';
import { isOutcomeUnknown, refusedByTable, type IpvsError } from '../ipvs/errors.js';
import type { LayoutEntry, Operation } from '../ipvs/model.js';
import { hostPort } from '../health/probe.js';
import {
  destinationsByTarget,
  formatDestinationKey,
  formatServiceKey,
  serviceId,
  targetId,
} from '../ipvs/spec.js';
import type { Logger } from '../log.js';
import { SyncKeeper, type SyncStatus } from './sync.js';
import { RoleFile } from '../director/rolefile.js';
import {
  desiredTable,
  quorumText,
  reusableServices,
  serviceMode,
  settledServices,
  type Desired,
  type DesiredService,
  type RetiredService,
  type ServerHealth,
} from './desired.js';
import {
  afterOperations,
  drift,
  layoutAfter,
  operationKey,
  ownedPart,
  snapshot,
  without,
  type Snapshot,
} from './drift.js';
import { plan, type PlannedOperation } from './plan.js';
import { initialHealth, retiredAfterReload, serverStatus, stillRetired } from './servers.js';
import { DRAINED_FILE } from '../director/statedir.js';

export interface ServerRecord {
  /** The target id (`targetId`): the key of the server's record, drains, metrics and status. */
  readonly id: string;
  readonly vs: VirtualServiceConfig;
  readonly rs: RealServerConfig;
  /** Scheduler run ids, one per check, in config order; check i subscribes as `subscriber(id, i)`. */
  readonly runs: readonly string[];
  status: ServerHealth['status'];
  /** Once a server is up or down it never returns to pending (a reload keeps this). */
  settled: boolean;
  upSince: number | null;
  weight: number | undefined;
  /**
   * Runs whose last result was a local error (this director could not check): see holds.
   * Almost always none: then the one shared empty list, not a Set per server.
   */
  localRuns: readonly string[];
  message: string;
  /**
   * When a check last answered for this server (wall time), NaN before the first: a number from
   * the start, so V8 keeps a double it overwrites in place, not a new heap number each check.
   */
  lastCheck: number;
  lastTransition: number | null;
}

export interface LoopStats {
  ticks: number;
  operationsApplied: number;
  operationsFailed: number;
  driftRepairs: number;
  /** When a tick last applied everything it planned. */
  lastSync: number | null;
  /** When a tick last completed (read, planned, applied, whatever the kernel answered): ready. */
  lastTick: number | null;
}

/** What the loop reports as it goes (metrics); every method optional. */
export interface LoopObserver {
  checkResult?(event: CheckEvent): void;
  transition?(record: ServerRecord, from: ServerHealth['status'], to: ServerHealth['status']): void;
  /** A tick's length and outcome; `read`: it read the kernel table (`readsTable`). */
  tick?(durationMs: number, ok: boolean, read: boolean): void;
  operation?(operation: Operation, error: IpvsError | null): void;
  drift?(changes: number): void;
  /** A service entered (`on`) or left a mode (fallback, panic, hold), with its counts then. */
  serviceMode?(
    vs: VirtualServiceConfig,
    mode: string,
    on: boolean,
    healthy: number,
    servers: number,
  ): void;
  /** A service gained (`up`) or lost quorum; not its first decision after a start. */
  quorum?(vs: VirtualServiceConfig, up: boolean, count: QuorumEventCount): void;
}

/** A service's counts when its quorum changed. */
export interface QuorumEventCount {
  readonly healthy: number;
  readonly servers: number;
  /** The configured weights of the healthy servers, summed. */
  readonly weight: number;
}

/** One observer that tells each of `list`, in order. */
export function observers(...list: readonly LoopObserver[]): LoopObserver {
  return {
    checkResult: (e) => list.forEach((o) => o.checkResult?.(e)),
    transition: (r, from, to) => list.forEach((o) => o.transition?.(r, from, to)),
    tick: (ms, ok, read) => list.forEach((o) => o.tick?.(ms, ok, read)),
    operation: (op, error) => list.forEach((o) => o.operation?.(op, error)),
    drift: (n) => list.forEach((o) => o.drift?.(n)),
    serviceMode: (vs, mode, on, healthy, servers) =>
      list.forEach((o) => o.serviceMode?.(vs, mode, on, healthy, servers)),
    quorum: (vs, up, count) => list.forEach((o) => o.quorum?.(vs, up, count)),
  };
}

/** A transition or mode change, kept for /status. */
export interface RecentEvent {
  readonly time: number;
  readonly event: string;
  readonly service: string;
  readonly server?: string;
  readonly message?: string;
}

const RECENT_EVENTS = 100;

/** The local runs of a server that has none: one list for every server. */
const NO_RUNS: readonly string[] = Object.freeze([]);

/** A tick's wait after it while checks wait for a slot, in multiples of its length (tickGap). */
const TICK_SHARE = 2;

/**
 * The least time from one tick's end to the next one's start. `min_tick_interval`, so that a
 * burst of transitions (a rolling restart) shares one tick; but for an `urgent` tick (a
 * server went down) only as long as the last tick took, if that is shorter: traffic still goes
 * to that server until the tick, and keepalived and HAProxy take it out on the failed check
 * itself. While checks wait for a slot (`Scheduler.checksWaiting`: the director is behind), at least
 * TICK_SHARE times as long as the last tick took, urgent or not, so ticks take at most a third of
 * the loop: a tick reads and plans the whole table (at 10,000 TCP servers in the VM, 0.6 to
 * 1.1 s), and with downs found one after another and the wait capped at `min_tick_interval`,
 * ticks took 65 to 80 % of the loop, the checks that would find the next downs crawled, and
 * detection ran 1.7 to 29.4 s (4 of 50 not seen in 30 s); with this wait, 1.9 to 17.0 s, where
 * keepalived took 4.9 to 20.7 s in the same run. A director that keeps up waits as before: with
 * the wait doubled there too, detection at TCP 1,000 came out 1.95 times keepalived's, 1.17
 * without (bench:peers, single runs; README "Detection at 10,000 in the VM"). The loop passes
 * the last tick of the kind that comes next, with or without a read (`readsTable`), one that
 * reads taking several times as long as one that does not (`nextTickAt`). Pure.
 */
export function tickGap(
  minTickMs: number,
  lastTickMs: number,
  urgent: boolean,
  checksWaiting: boolean,
): number {
  const last = Math.max(0, lastTickMs);
  const gap = urgent ? Math.min(minTickMs, last) : minTickMs;
  return checksWaiting ? Math.max(gap, TICK_SHARE * last) : gap;
}

/** When a tick ended and how long it took (monotonic ms). */
export interface TickSpan {
  readonly end: number;
  readonly ms: number;
}

/**
 * The earliest start of the next tick: `tickGap` after the last tick of any kind for
 * `min_tick_interval` (or, urgent, as long as the last tick of its kind took, if shorter), and
 * while checks wait for a slot `tickGap`'s TICK_SHARE times the last tick of its kind after that
 * one's end. A tick that did not read once took seconds (at 10,000 in the VM, the fill's ticks
 * applied thousands of adds each); measured from the last tick's end, whatever its kind, that
 * held the first server found down 40 s later for 7 s. Pure.
 */
export function nextTickAt(o: {
  readonly minTickMs: number;
  /** The end of the last tick, whatever its kind. */
  readonly lastEnd: number;
  /** The last tick of the kind that comes next (`readsTable`). */
  readonly kind: TickSpan;
  readonly urgent: boolean;
  readonly checksWaiting: boolean;
}): number {
  return Math.max(
    o.lastEnd + tickGap(o.minTickMs, o.kind.ms, o.urgent, false),
    o.kind.end + tickGap(o.minTickMs, o.kind.ms, o.urgent, o.checksWaiting),
  );
}

/**
 * Whether a tick reads the kernel table, or plans against the table as the last read left it
 * plus its own operations since (`known`). Keepalived and ldirectord never read the table; we
 * read it for whatever might have changed it or what we know of it, and trust what we know only
 * for health transitions: at 10,000 TCP servers in the VM, a read took 413 ms of a 0.6 to 1.1 s
 * tick, on every server found down.
 *
 * | reads the table when                                 | why                                    |
 * | ---------------------------------------------------- | -------------------------------------- |
 * | nothing known (first tick, after a failure or reload) | what we know may be wrong              |
 * | a request wants it (start, reload, maintenance, ...)  | they change more than health           |
 * | `resync_interval` since the last read                 | drift by someone else (ipvsadm)        |
 * | a drain wants counts (`drainAt`), unless urgent       | a server found down goes first         |
 *
 * Pure.
 */
export function readsTable(o: {
  /** What the last read found, plus our operations since, for the state now in force. */
  readonly known: boolean;
  /** A request since the last read wants a read. */
  readonly wanted: boolean;
  /** A server went down: take it out now, count connections after. */
  readonly urgent: boolean;
  readonly now: number;
  /** The last read plus `resync_interval`. */
  readonly resyncAt: number;
  /** When a drain wants the connection counts (Infinity: none). */
  readonly drainAt: number;
}): boolean {
  if (!o.known || o.wanted || o.now >= o.resyncAt) return true;
  return !o.urgent && o.now >= o.drainAt;
}

/**
 * The longest a tick holds new checks back (only while the event loop is late: Scheduler.hold).
 * The tick ends the hold itself; on an overloaded loop its first turn, full of results of checks
 * in flight, took over a second in the VM, so the bound spans a few turns. A kernel that does
 * not answer (30 s) holds checks back no longer than this.
 */
const TICK_HOLD_MS = 2000;

/**
 * A tick over more destinations (or servers) than this gives the event loop a turn between
 * reading the table, deciding and planning, so the checks due meanwhile start on time. At
 * 10,000 one tick held the loop 100-140 ms at once every resync (10,000 HTTP checks a second
 * over two probe workers: each resync made 600-3,000 checks start over 50 ms late). The tick is
 * the same, in three parts: what it decides was true when it decided (a reload mid-tick is
 * handled as for any wait on the kernel).
 */
const YIELD_ABOVE = 1000;

function destinationCount(table: readonly LayoutEntry[]): number {
  let n = 0;
  for (const e of table) n += e.destinations.length;
  return n;
}

/** How a server's check subscribes to its scheduler run. */
function subscriber(recordId: string, check: number): string {
  return flat(`${recordId}#${check}`);
}

/** What one tick works on; a reload replaces it whole. */
interface LoopState {
  readonly config: Config;
  readonly records: ReadonlyMap<string, ServerRecord>;
  /**
   * Each configured real server's record, by its service's config and its own: what a tick asks
   * of each, found without an id string. By both, as nothing makes a server's config object one
   * service's alone.
   */
  readonly byServer: ReadonlyMap<VirtualServiceConfig, ReadonlyMap<RealServerConfig, ServerRecord>>;
  /** Removed by a reload and still in the table: drained, then deleted. */
  retired: RetiredService[];
}

export interface LoopOptions {
  readonly observer?: LoopObserver;
  readonly backend: IpvsBackend;
  readonly log: Logger;
  /** Time and timers (tests drive a manual clock); default: the system clock. */
  readonly clock?: Clock;
  /** Reads the maintenance directory (tests substitute a failing one); default: fs readdir. */
  readonly readdir?: (dir: string) => Promise<string[]>;
  /** Builds checkers (tests substitute); default: the probes in checks/. */
  readonly createChecker?: typeof createChecker;
  /** Where VIP announcements go (the kernel's routing tables); none: nothing is announced. */
  readonly routes?: RouteTable;
  /** Reads STATE_DIR/role (tests substitute a failing one); default: fs readFile. */
  readonly readRoleFile?: (path: string) => Promise<string>;
  /**
   * The process's open-file limit, from which the bound on checks in flight is made when
   * `check_in_flight_max` is 0 (`inFlightMax`); default 0: none known, so unless the config sets
   * one a slow check keeps its slot.
   */
  readonly openFiles?: number;
  /** The busiest probing loop's share of time busy since the last call (the scheduler's). */
  readonly busyShare?: () => number;
  /** For benchmarks: the grid checks start on, fixed (the scheduler's `slotMs`). */
  readonly slotMs?: number;
  /**
   * Whether a tick without a read takes the desired state of the services settled since the
   * last tick as it was (`reusableServices`); default true. False decides every service every
   * tick: what tests compare with.
   */
  readonly reuseSettled?: boolean;
}

export class ReconcileLoop {
  private state: LoopState;
  private readonly backend: IpvsBackend;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly readDir: (dir: string) => Promise<string[]>;
  private readonly makeChecker: typeof createChecker;
  private readonly reuseSettled: boolean;
  private readonly scheduler: Scheduler<ServerRecord>;
  /** The bound on checks in flight, those waiting on slow servers included (restart-only). */
  readonly maxInFlight: number;
  private readonly observer: LoopObserver;
  private lastDesired: Desired | null = null;
  /** Transitions and mode changes, newest last. */
  readonly recent: RecentEvent[] = [];
  private drains: ReadonlyMap<string, number> = new Map();
  /** What the last tick left in the owned part of the table, and which entries it cannot vouch for. */
  private expected: {
    snapshot: Snapshot;
    owned: ReadonlySet<string>;
    /** Keys whose last operation's answer was lost: judged only after a fresh read. */
    unknown: ReadonlySet<string>;
  } | null = null;
  private maintenanceNames = new Set<string>();
  private maintenanceError = '';
  private unownedReported = '';
  private modes = new Map<string, string>();
  /** Each service's quorum as last decided (kept across reloads, as keepalived does). */
  private quorums = new Map<string, boolean>();
  /** Per service id: until when a quorum loss holds its destinations for the VIP's withdrawal. */
  private withdrawHolds = new Map<string, number>();
  private lastDryRun = '';
  private wakeTimer: Timer | undefined;
  private wakeAt = Infinity;
  private maintenanceTimer: Timer | undefined;
  private maintenanceGeneration = 0;
  private running: Promise<void> | null = null;
  private again = false;
  /** One of the requests during the tick in progress was urgent (`requestTick`). */
  private againUrgent = false;
  /** An urgent request waits for its gap (`tickGap`). */
  private urgentWaiting = false;
  /** The last tick that read the table, and the last that did not: when each ended, how long it took (monotonic). */
  private lastTicks: Record<'read' | 'known', TickSpan> = {
    read: { end: -Infinity, ms: 0 },
    known: { end: -Infinity, ms: 0 },
  };
  /**
   * The table as the last read found it plus this daemon's operations since, the state it was
   * planned for, and when it was read (monotonic: a wall clock stepped back must not put off the
   * resync); null: the next tick reads it (first, after a failed or unknown operation).
   */
  private known: { table: readonly LayoutEntry[]; state: LoopState; readAt: number } | null = null;
  /** Services a server of which changed health since their desired state was last decided. */
  private changed = new Set<VirtualServiceConfig>();
  /**
   * The last tick's desired state by service, for the state it was decided in, and the services
   * settled in it: a tick without a read takes theirs as it is (`reusableServices`), so a
   * transition decides and plans its own service, not all 10,000 servers of a hundred.
   */
  private decided: {
    state: LoopState;
    byService: ReadonlyMap<VirtualServiceConfig, DesiredService>;
    settled: ReadonlySet<VirtualServiceConfig>;
  } | null = null;
  /** A request came that wants the table read (anything but a health transition or a timer). */
  private readWanted = true;
  /** When a drain wants the connection counts read again (`readsTable`; monotonic). */
  private drainReadAt = Infinity;
  /** When the last tick ended (monotonic): the next starts no sooner than `tickGap` after. */
  private lastTickEnd = -Infinity;
  /** Reloads run one after another; a failed one leaves the running state and the chain intact. */
  private reloading: Promise<void> = Promise.resolve();
  /** Callers of nextTick(), released when the next tick to start has ended. */
  private tickWaiters: (() => void)[] = [];
  private retryAttempt = 0;
  private stopped = false;
  private readonly sync: SyncKeeper;
  private readonly announcer: Announcer | null;
  /** The first tick sweeps our table even with nothing to announce (routes a crash left). */
  private announceSwept = false;
  /** Why the director is drained (STATE_DIR/drained exists), or null. */
  private drained: string | null = null;
  private drainedError = '';
  private directorTimer: Timer | undefined;
  /** The director's role from STATE_DIR/role, polled with the maintenance flags. */
  private readonly role: RoleFile;
  private roleTimer: Timer | undefined;
  private roleGeneration = 0;
  readonly stats: LoopStats = {
    ticks: 0,
    operationsApplied: 0,
    operationsFailed: 0,
    driftRepairs: 0,
    lastSync: null,
    lastTick: null,
  };

  constructor(config: Config, options: LoopOptions) {
    this.state = {
      config,
      records: new Map(),
      byServer: new Map(),
      retired: [],
    };
    this.backend = options.backend;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.readDir = options.readdir ?? ((dir) => readdir(dir));
    this.makeChecker = options.createChecker ?? createChecker;
    this.reuseSettled = options.reuseSettled ?? true;
    this.observer = options.observer ?? {};
    this.sync = new SyncKeeper(this.backend, this.log);
    this.announcer = options.routes ? new Announcer(options.routes, this.log) : null;
    this.role = new RoleFile(this.log, options.readRoleFile);
    const { checkConcurrency, checkConcurrencyMin, checkWorkers } = config.daemon;
    const cap = schedulerCap(checkConcurrency, checkConcurrencyMin, checkWorkers);
    this.maxInFlight = inFlightMax(cap.max, options.openFiles ?? 0, config.daemon.checkInFlightMax);
    this.scheduler = new Scheduler<ServerRecord>({
      concurrency: cap.max,
      minConcurrency: cap.min,
      maxInFlight: this.maxInFlight,
      ...(options.busyShare ? { busyShare: options.busyShare } : {}),
      ...(options.slotMs === undefined ? {} : { slotMs: options.slotMs }),
      onResult: (event) => this.onResult(event),
      clock: this.clock,
    });
  }

  /** Adopts the table as it is (no flush, no removal) and starts checking. */
  async start(): Promise<void> {
    const table = await this.backend.layout();
    this.swap(this.state.config, table, []);
    const owned = this.ownedIds();
    const adopted = table.filter((e) => owned.has(serviceId(e.service.key)));
    this.log.log('info', 'table.adopted', {
      services: adopted.length,
      destinations: adopted.reduce((n, e) => n + e.destinations.length, 0),
      configured: this.state.config.virtualServices.length,
    });
    await this.readMaintenance();
    this.scheduleMaintenance();
    await this.readDirectorState();
    this.scheduleDirectorState();
    await this.role.poll(this.state.config.daemon.stateDir);
    this.scheduleRole();
    this.requestTick('start');
    await this.nextTick();
  }

  /**
   * Applies a new, already validated config: only the difference; health carries over. Reloads
   * run one at a time; one that fails (a checker that cannot be built) changes nothing, rejects,
   * and the next one runs normally.
   */
  reload(config: Config): Promise<void> {
    const next = this.reloading.then(() => this.reloadNow(config));
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private async reloadNow(config: Config): Promise<void> {
    if (this.stopped) return;
    const table = await this.backend.layout().catch(() => [] as LayoutEntry[]);
    const before = this.state;
    // Everything new is built before anything is swapped: a throw here leaves the old state.
    this.swap(
      config,
      table,
      retiredAfterReload(before.config.virtualServices, config.virtualServices, before.retired),
    );
    const configured = new Set(config.virtualServices.map((v) => serviceId(v.service.key)));
    for (const id of this.modes.keys()) if (!configured.has(id)) this.modes.delete(id);
    for (const id of this.quorums.keys()) if (!configured.has(id)) this.quorums.delete(id);
    for (const id of this.withdrawHolds.keys())
      if (!configured.has(id)) this.withdrawHolds.delete(id);
    const after = this.state.records;
    this.log.log('info', 'config.reloaded', {
      services: config.virtualServices.length,
      servers_added: [...after.keys()].filter((k) => !before.records.has(k)).length,
      servers_removed: [...before.records.keys()].filter((k) => !after.has(k)).length,
      services_retired: this.state.retired.length,
    });
    this.scheduleMaintenance();
    this.scheduleRole();
    this.requestTick('reload');
    await this.nextTick();
  }

  /** Stops checking; with cleanstop, removes the owned services. The table is otherwise left as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    // First of all: the router stops sending new flows here while this director still forwards.
    await this.withdrawAll();
    this.directorTimer?.cancel();
    for (const w of this.tickWaiters.splice(0)) w();
    await this.reloading;
    this.wakeTimer?.cancel();
    this.maintenanceTimer?.cancel();
    this.roleTimer?.cancel();
    await this.scheduler.stop();
    await this.running;
    const { config } = this.state;
    if (config.daemon.cleanstop && !config.daemon.dryRun) {
      const table = await this.backend.layout();
      const owned = this.ownedIds();
      const ops: Operation[] = table
        .filter((e) => owned.has(serviceId(e.service.key)))
        .map((e) => ({ op: 'delete-service', service: e.service.key }));
      await this.applyLogged(
        ops.map((operation) => ({ operation, reason: 'cleanstop', service: '' })),
        false,
      );
      await this.sync.stop(config.daemon.sync, this.role.current());
    }
  }

  /** Withdraws every announced VIP; a failure is retried twice, then logged. */
  private async withdrawAll(): Promise<void> {
    if (!this.announcer) return;
    const { daemon } = this.state.config;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await this.announcer.withdrawAll({
        settings: daemon.announce,
        dryRun: daemon.dryRun,
      });
      if (!r.failed) return;
      if (attempt < 3) await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
    this.log.log('error', 'vip.withdraw_failed', {
      note: 'routes of ours may still be in the table: the BGP daemon keeps announcing them',
      table: daemon.announce.table,
      protocol: daemon.announce.protocol,
    });
  }

  /** The announced VIPs as the last tick left them. */
  announceStatus(): readonly VipStatus[] {
    return this.announcer?.status() ?? [];
  }

  /** Why the director is drained (`ipvs-warden director drain`), or null. */
  directorDrained(): string | null {
    return this.drained;
  }

  /** Checks running, waiting for the cap, and the cap now (lowered while the loop is late). */
  checkStats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** The connection-sync daemons as the last tick found and left them. */
  syncStatus(): SyncStatus {
    return this.sync.status();
  }

  /** Resolves when no tick is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Resolves when a tick that starts after this call has ended (or the loop stopped). */
  nextTick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.tickWaiters.push(resolve));
  }

  /** The desired table of the last tick (null before the first). */
  desired(): Desired | null {
    return this.lastDesired;
  }

  currentConfig(): Config {
    return this.state.config;
  }

  private remember(event: Omit<RecentEvent, 'time'>): void {
    this.recent.push({ time: this.clock.now(), ...event });
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
  }

  servers(): readonly ServerRecord[] {
    return [...this.state.records.values()];
  }

  /** The server records by target id: a new map at each config swap, the same one until then. */
  records(): ReadonlyMap<string, ServerRecord> {
    return this.state.records;
  }

  /** A server's record by its target id (`targetId`). */
  server(id: string): ServerRecord | undefined {
    return this.state.records.get(id);
  }

  /**
   * Runs a tick soon: at once, or `tickGap` after the last one ended. Requests before it starts
   * make one tick; requests during a tick make one more after it.
   */
  requestTick(reason: string, urgent = false, needsRead = true): void {
    if (this.stopped) return;
    this.readWanted ||= needsRead;
    if (this.running) {
      this.again = true;
      this.againUrgent ||= urgent;
      return;
    }
    // An urgent request that had to wait stays urgent until a tick starts, whatever wakes it.
    urgent ||= this.urgentWaiting;
    const wait =
      nextTickAt({
        minTickMs: this.state.config.daemon.minTickIntervalMs,
        lastEnd: this.lastTickEnd,
        kind: this.lastTicks[this.readsTable(urgent) ? 'read' : 'known'],
        urgent,
        checksWaiting: this.scheduler.checksWaiting(),
      }) - this.clock.monotonic();
    if (wait > 0) {
      this.urgentWaiting = urgent;
      this.scheduleWake(this.clock.now() + wait);
      return;
    }
    this.urgentWaiting = false;
    this.wakeTimer?.cancel();
    this.wakeAt = Infinity;
    let waiters: (() => void)[] = [];
    let release = (): void => undefined;
    let ticked = (): void => undefined;
    let started = 0;
    let read = true;
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => {
        started = this.clock.monotonic();
        waiters = this.tickWaiters.splice(0);
        // What the checks found reaches the kernel before more checks start (Scheduler.hold).
        release = this.scheduler.hold(TICK_HOLD_MS);
        // The checks' lag during the tick is the tick's: it does not lower their cap.
        ticked = this.scheduler.ticking();
        read = this.readsTable(urgent);
        return this.tickSafely(reason, read);
      })
      .finally(() => {
        release();
        ticked();
        for (const w of waiters) w();
        this.lastTickEnd = this.clock.monotonic();
        this.lastTicks[read ? 'read' : 'known'] = {
          end: this.lastTickEnd,
          ms: this.lastTickEnd - started,
        };
        this.running = null;
        if (this.again && !this.stopped) {
          const urgent = this.againUrgent;
          this.again = false;
          this.againUrgent = false;
          this.requestTick('requested during a tick', urgent, false);
        }
      });
  }

  private ownedIds(state: LoopState = this.state): Set<string> {
    return new Set([
      ...state.config.virtualServices.map((v) => serviceId(v.service.key)),
      ...state.retired.map((r) => serviceId(r.spec.key)),
    ]);
  }

  /**
   * Builds the server records and check subscriptions of `config`, carrying health over from
   * the current state, then swaps the new state in and drops the subscriptions no longer
   * wanted (after the new ones exist, so a check shared by both keeps its state).
   */
  private swap(config: Config, table: readonly LayoutEntry[], retired: RetiredService[]): void {
    const old = this.state.records;
    const kernel = destinationsByTarget(table);
    const records = new Map<string, ServerRecord>();
    const byServer = new Map<VirtualServiceConfig, Map<RealServerConfig, ServerRecord>>();
    const planned: {
      sub: string;
      /** The record's list of run ids, and this check's place in it (see below). */
      runs: string[];
      index: number;
      checker: Checker;
      target: ReturnType<typeof checkTarget>;
      rs: RealServerConfig;
      initial: 'up' | 'down';
      /** What the scheduler hands back with each result. */
      record: ServerRecord;
    }[] = [];
    // One checker instance per distinct check (its key), not one per server: a service's
    // 10,000 servers share their check's instance (the scheduler counts an instance's users).
    const byConfig = new Map<CheckConfig, Checker>();
    const byKey = new Map<string, Checker>();
    const checkerOf = (check: CheckConfig): Checker => {
      let checker = byConfig.get(check);
      if (!checker) {
        const made = this.makeChecker(check);
        checker = byKey.get(made.key) ?? made;
        byKey.set(checker.key, checker);
        byConfig.set(check, checker);
      }
      return checker;
    };
    for (const vs of config.virtualServices) {
      const servers = new Map<RealServerConfig, ServerRecord>();
      byServer.set(vs, servers);
      for (const rs of vs.realServers) {
        const id = targetId(vs.service.key, rs.destination.key);
        const prev = old.get(id);
        const initial = initialHealth(prev?.status, kernel.get(id)?.weight, rs.policy.initial);
        const runs: string[] = [];
        const checks = rs.checks.map((check, index) => {
          const checker = checkerOf(check);
          const target = checkTarget(rs, check);
          runs.push(Scheduler.runId(checker, target, rs.policy));
          return { sub: subscriber(id, index), index, checker, target };
        });
        const none = runs.length === 0;
        const record: ServerRecord = {
          id,
          vs,
          rs,
          runs,
          status: prev?.status ?? (none ? 'up' : 'pending'),
          settled: prev?.settled ?? none,
          upSince: prev?.upSince ?? null,
          weight: prev?.weight,
          // Still uncheckable from here after a reload, for the checks that did not change.
          localRuns: prev?.localRuns.length
            ? prev.localRuns.filter((r) => runs.includes(r))
            : NO_RUNS,
          message: prev?.message ?? (none ? 'no checks: always healthy' : 'not checked yet'),
          lastCheck: prev?.lastCheck ?? NaN,
          lastTransition: prev?.lastTransition ?? null,
        };
        records.set(id, record);
        for (const c of checks) planned.push({ ...c, runs, rs, initial, record });
        servers.set(rs, record);
      }
    }
    // Nothing above touched the running state; from here on it is replaced in one go.
    const oldSubscriptions = [...old.values()].flatMap((r) =>
      r.runs.map((run, i) => ({ sub: subscriber(r.id, i), run })),
    );
    this.state = { config, records, byServer, retired };
    /** Each subscriber's run now: one whose run changed leaves the old one. */
    const wanted = new Map<string, string>();
    for (const p of planned) {
      const run = this.scheduler.add(
        p.sub,
        p.checker,
        p.target,
        p.rs.timing,
        { ...p.rs.policy, initial: p.initial },
        p.record,
      );
      wanted.set(p.sub, run);
      // The same id, as the scheduler keeps it (a run that carried over a reload keeps its
      // old one): held once, not twice, per check of every server.
      p.runs[p.index] = run;
    }
    for (const { sub, run } of oldSubscriptions) {
      if (wanted.get(sub) !== run) this.scheduler.remove(sub, run);
    }
    for (const record of records.values()) this.refresh(record, undefined);
  }

  private onResult(event: CheckEvent<ServerRecord>): void {
    this.observer.checkResult?.(event);
    this.log.log('debug', 'check.result', () => ({
      target: hostPort(event.target),
      check: event.checker.description,
      healthy: event.result.healthy,
      ...(event.result.local ? { local: true } : {}),
      message: event.result.message,
      duration_ms: event.result.durationMs,
      lateness_ms: event.latenessMs,
    }));
    // Each subscriber's record, as the last swap gave it to the scheduler.
    for (const record of event.tags) {
      if (!record) continue;
      if (event.result.weight !== undefined && event.result.weight !== record.weight) {
        record.weight = event.result.weight;
        this.changed.add(record.vs);
      }
      const wasLocal = record.localRuns.length > 0;
      const listed = record.localRuns.includes(event.id);
      if (event.result.local && !listed) record.localRuns = [...record.localRuns, event.id];
      else if (!event.result.local && listed)
        record.localRuns = record.localRuns.filter((r) => r !== event.id);
      // Whether a service is held depends on how many servers are local: decide it now.
      if (wasLocal !== record.localRuns.length > 0) {
        this.changed.add(record.vs);
        this.requestTick(`${record.rs.name} local`, false, false);
      }
      // The message kept while it reads the same: a server keeps it until its next check, so a
      // new copy each check would live through every young collection only to die old.
      if (
        (!event.result.healthy || record.status !== 'down') &&
        record.message !== event.result.message
      )
        record.message = event.result.message;
      record.lastCheck = this.clock.now();
      this.refresh(record, event);
    }
  }

  /** Recomputes a server's status from its checks' states; a change is logged and ticks. */
  private refresh(record: ServerRecord, event: CheckEvent | undefined): void {
    if (record.runs.length === 0) return;
    // A server with one check has the state its result just brought: no lookup of it by id.
    const states =
      event && record.runs.length === 1 && record.runs[0] === event.id
        ? [event.state]
        : record.runs.map((r) => this.scheduler.state(r));
    const status = serverStatus(states, record.settled, record.rs.policy.fall);
    if (status === record.status) return;
    const from = record.status;
    record.status = status;
    this.changed.add(record.vs);
    if (status === 'pending') return;
    record.settled = true;
    const now = this.clock.now();
    record.lastTransition = now;
    // Slow start is for a server coming back, not for the first result after a start (HAProxy).
    record.upSince = status === 'up' && from === 'down' ? now : null;
    if (status === 'down') record.weight = undefined;
    const message = event?.result.message ?? record.message;
    this.log.log(status === 'down' ? 'warn' : 'info', `server.${status}`, {
      service: record.vs.name,
      server: record.rs.name,
      from,
      message,
    });
    this.observer.transition?.(record, from, status);
    this.remember({
      event: `server.${status}`,
      service: record.vs.name,
      server: record.rs.name,
      message,
    });
    this.requestTick(`${record.rs.name} ${status}`, status === 'down', false);
  }

  private maintenanceReason(rs: RealServerConfig, dir: string): string | null {
    if (this.maintenanceNames.size === 0) return null;
    const key = rs.destination.key;
    for (const name of [rs.name, key.address, formatDestinationKey(key)]) {
      if (this.maintenanceNames.has(name)) {
        return `maintenance (flag file ${dir}/${name})`;
      }
    }
    return null;
  }

  /**
   * Reads the flag files. A directory that cannot be read keeps the last set it had: a server
   * put in maintenance must not return to rotation because a disk or a mount went away.
   */
  private async readMaintenance(): Promise<void> {
    const dir = this.state.config.daemon.maintenanceDir;
    let names = new Set<string>();
    if (dir) {
      try {
        names = new Set((await this.readDir(dir)).filter((n) => !n.startsWith('.')));
        if (this.maintenanceError) {
          this.log.log('info', 'maintenance.readable', { dir });
          this.maintenanceError = '';
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? String(e);
        if (code !== this.maintenanceError) {
          this.maintenanceError = code;
          this.log.log('warn', 'maintenance.unreadable', {
            dir,
            error: code,
            kept: [...this.maintenanceNames].sort(),
            note: 'the last flags read stay in force until the directory can be read',
          });
        }
        return;
      }
    }
    const before = [...this.maintenanceNames].sort().join(',');
    const after = [...names].sort().join(',');
    this.maintenanceNames = names;
    if (before !== after) {
      this.log.log('info', 'maintenance.changed', { dir, flags: [...names].sort() });
      this.requestTick('maintenance flags changed');
    }
  }

  /**
   * Reads STATE_DIR/drained. One that cannot be read (other than absent) keeps the last answer:
   * a drained director must not come back because a disk went away.
   */
  private async readDirectorState(): Promise<void> {
    const file = join(this.state.config.daemon.stateDir, DRAINED_FILE);
    let drained: string | null;
    try {
      await stat(file);
      drained = `director drained (flag file ${file})`;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        if (code !== this.drainedError) {
          this.drainedError = code;
          this.log.log('warn', 'director.state_unreadable', {
            file,
            error: code,
            drained: this.drained !== null,
            note: 'the last state read stays in force',
          });
        }
        return;
      }
      drained = null;
    }
    this.drainedError = '';
    if (drained === this.drained) return;
    this.drained = drained;
    this.log.log('info', drained ? 'director.drained' : 'director.undrained', { file });
    this.remember({ event: drained ? 'director.drained' : 'director.undrained', service: '' });
    this.requestTick(drained ? 'director drained' : 'director undrained');
  }

  /** Polls the state directory every maintenance_poll, one chain, never blocking a tick. */
  private scheduleDirectorState(): void {
    const poll = (): void => {
      this.directorTimer = this.clock.setTimeout(
        () =>
          void this.readDirectorState().finally(() => {
            if (!this.stopped) poll();
          }),
        this.state.config.daemon.maintenancePollMs,
        { unref: true },
      );
    };
    poll();
  }

  private scheduleMaintenance(): void {
    this.maintenanceTimer?.cancel();
    const { maintenanceDir, maintenancePollMs } = this.state.config.daemon;
    if (!maintenanceDir) {
      this.maintenanceNames = new Set();
      this.maintenanceError = '';
      return;
    }
    // One chain of polls: a reload starts a new chain and the old one ends at its next turn.
    const generation = ++this.maintenanceGeneration;
    const poll = (): void => {
      this.maintenanceTimer = this.clock.setTimeout(
        () =>
          void this.readMaintenance().finally(() => {
            if (!this.stopped && generation === this.maintenanceGeneration) poll();
          }),
        maintenancePollMs,
        { unref: true },
      );
    };
    poll();
  }

  /** Reads the role file every maintenance_poll, off the tick; a change asks for a tick. */
  private scheduleRole(): void {
    this.roleTimer?.cancel();
    const generation = ++this.roleGeneration;
    const poll = (): void => {
      this.roleTimer = this.clock.setTimeout(
        () =>
          void this.role
            .poll(this.state.config.daemon.stateDir)
            .then((changed) => {
              if (changed) this.requestTick('director role changed');
            })
            .finally(() => {
              if (!this.stopped && generation === this.roleGeneration) poll();
            }),
        this.state.config.daemon.maintenancePollMs,
        { unref: true },
      );
    };
    poll();
  }

  private async tickSafely(reason: string, read: boolean): Promise<void> {
    const started = performance.now();
    try {
      const ok = await this.tick(reason, read);
      this.observer.tick?.(performance.now() - started, ok, read);
    } catch (e) {
      this.observer.tick?.(performance.now() - started, false, read);
      this.known = null;
      // A dump that fails (ENOBUFS, EPERM...) is retried like a failed operation; never fatal.
      this.log.log('error', 'reconcile.failed', {
        reason,
        error: e instanceof Error ? e.message : String(e),
      });
      this.scheduleWake(this.clock.now() + this.backoff(true));
    }
  }

  private backoff(failed: boolean): number {
    const { retryMinMs, retryMaxMs } = this.state.config.daemon;
    if (!failed) {
      this.retryAttempt = 0;
      return Infinity;
    }
    const ms = Math.min(retryMaxMs, retryMinMs * 2 ** this.retryAttempt);
    this.retryAttempt++;
    return ms;
  }

  /** Whether the next tick reads the table (`readsTable`), if it starts now. */
  private readsTable(urgent: boolean): boolean {
    const known = this.known;
    return readsTable({
      known: known !== null && known.state === this.state && this.expected !== null,
      wanted: this.readWanted,
      urgent,
      now: this.clock.monotonic(),
      resyncAt: (known?.readAt ?? -Infinity) + this.state.config.daemon.resyncIntervalMs,
      drainAt: this.drainReadAt,
    });
  }

  /**
   * One tick; false when an operation failed. `read`: it reads the table; otherwise it plans
   * against the table as the last read left it plus its own operations since (`known`).
   */
  private async tick(reason: string, read: boolean): Promise<boolean> {
    if (this.stopped) return true;
    // The state this tick works on, whatever a reload swaps in while it waits on the kernel.
    const state = this.state;
    const { daemon } = state.config;
    this.stats.ticks++;
    const known = !read && this.known?.state === state ? this.known : null;
    const expected = this.expected;
    let table: readonly LayoutEntry[];
    let observed: Snapshot;
    let readAt: number;
    const owned = this.ownedIds(state);
    if (known && expected) {
      table = known.table;
      observed = expected.snapshot;
      readAt = known.readAt;
    } else {
      // Requests from here on want a read of their own: this one may come before what they saw.
      this.readWanted = false;
      this.known = null;
      table = await this.backend.layout();
      readAt = this.clock.monotonic();
      observed = snapshot(table, owned);
      if (expected) {
        const { snapshot: want, owned: wasOwned, unknown } = expected;
        const changes = drift(want, without(ownedPart(observed, wasOwned), unknown));
        if (changes.length > 0) {
          this.stats.driftRepairs += changes.length;
          this.observer.drift?.(changes.length);
          this.log.log('warn', 'drift.detected', {
            changes,
            repairs_total: this.stats.driftRepairs,
          });
        }
      }
      this.reportUnowned(table, owned);
    }
    const now = this.clock.now();
    /** Monotonic time at `now`: drains and the resync are kept on it. */
    const mono = this.clock.monotonic();
    // The table's destinations, or the servers to plan (a first tick reads an empty table).
    const large = Math.max(destinationCount(table), state.records.size) > YIELD_ABOVE;
    if (large) await turn();

    const dir = daemon.maintenanceDir;
    // What changed up to here is decided now; what changes from here on, at the next tick.
    const changed = this.changed;
    this.changed = new Set();
    const prior = known && this.reuseSettled && this.decided?.state === state ? this.decided : null;
    this.decided = null; // until this tick's apply: a tick that throws before it decides all next
    const reused = prior
      ? reusableServices(state.config.virtualServices, changed, prior.settled)
      : new Set<VirtualServiceConfig>();
    const deciding =
      reused.size === 0
        ? state.config.virtualServices
        : state.config.virtualServices.filter((vs) => !reused.has(vs));
    const decided = desiredTable({
      services: deciding,
      retired: state.retired,
      health: (vs, rs) => this.health(state, vs, rs),
      maintenance: (_vs, rs) => this.maintenanceReason(rs, dir),
      quorumWas: (vs) => this.quorums.get(serviceId(vs.service.key)),
      withdrawHoldMs: daemon.announce.withdrawHoldMs,
      withdrawHoldWas: (vs) => this.withdrawHolds.get(serviceId(vs.service.key)),
      now,
    });
    const byService = new Map<VirtualServiceConfig, DesiredService>();
    deciding.forEach((vs, i) => byService.set(vs, decided.services[i] as DesiredService));
    for (const vs of reused) byService.set(vs, prior?.byService.get(vs) as DesiredService);
    // The whole desired table, for the reports, the announcements and /status; the plan is of
    // the services decided again (those taken as they were have nothing to do: they settled).
    const desired: Desired =
      reused.size === 0
        ? decided
        : {
            services: [
              ...state.config.virtualServices.map((vs) => byService.get(vs) as DesiredService),
              ...decided.services.slice(deciding.length),
            ],
            wakeAt: decided.wakeAt,
          };
    this.reportQuorums(desired, state);
    this.reportModes(desired);
    this.lastDesired = desired;
    if (large) await turn();
    const p = plan(decided, table, this.drains, now, known ? 'stale' : 'read');
    this.drains = p.drains;
    this.drainReadAt = p.wakeAt === null ? Infinity : mono + (p.wakeAt - now);

    let done: Operation[] = [];
    /** Planned and not applied: its service is not settled (a dry run applies nothing). */
    let undone: readonly Operation[] = p.operations.map((o) => o.operation);
    let failed = false;
    let refused = 0;
    if (daemon.dryRun) {
      const text = JSON.stringify(
        p.operations.map((o) => [o.operation.op, operationTarget(o.operation)]),
      );
      if (text !== this.lastDryRun) {
        this.lastDryRun = text;
        for (const o of p.operations) this.logOperation(o, null, true);
      }
      this.expected = { snapshot: observed, owned, unknown: new Set() };
    } else {
      // A VIP withdrawn (quorum lost, drained) stops attracting flows before servers leave.
      if (p.operations.length > 0) failed ||= await this.announce(state, desired, 'withdraw');
      const applied = await this.applyLogged(p.operations, known !== null);
      done = applied.done;
      undone = applied.undone;
      refused = applied.refused;
      const allDone = done.length === p.operations.length;
      failed ||= done.length + refused < p.operations.length;
      // Refused by a table edited since it was read: read it and plan again at once, no backoff.
      if (refused > 0) this.requestTick('the table changed since it was read', true, true);
      // An operation whose answer was lost may or may not be in the table: leave it out of what
      // the next tick compares, which re-reads the table and plans from what is really there.
      this.expected = {
        snapshot: without(afterOperations(observed, done), applied.unknown),
        owned,
        unknown: applied.unknown,
      };
      // A failed operation, or one whose answer was lost: what the table holds is not known.
      if (allDone && applied.unknown.size === 0)
        this.known = { table: layoutAfter(table, done), state, readAt };
    }
    if (daemon.dryRun) this.known = { table, state, readAt };
    this.decided = { state, byService, settled: settledServices(byService, p.drains, undone) };
    // The sync daemons are read with the table: a health transition does not change them.
    if (!known) {
      const synced = await this.sync.tick(daemon.sync, daemon.dryRun, this.role.current());
      if (synced.drift > 0) {
        this.stats.driftRepairs += synced.drift;
        this.observer.drift?.(synced.drift);
      }
      failed ||= synced.failed;
    }
    failed ||= await this.announce(state, desired);
    const present = new Set(table.map((e) => serviceId(e.service.key)));
    for (const o of done) if (o.op === 'delete-service') present.delete(serviceId(o.service));
    // The current state, not the tick's: a reload during the tick may have retired more.
    this.state.retired = stillRetired(this.state.retired, present);
    if (!failed && refused === 0) this.stats.lastSync = now;
    // The retry reads: the sync daemons are read only with the table.
    else this.readWanted = true;
    this.stats.lastTick = now;
    const retryAt = now + this.backoff(failed);
    const next = Math.min(
      desired.wakeAt ?? Infinity,
      p.wakeAt ?? Infinity,
      retryAt,
      now + (readAt + daemon.resyncIntervalMs - mono),
    );
    this.scheduleWake(next);
    this.log.log('debug', 'reconcile.tick', {
      reason,
      read: !known,
      reused: reused.size,
      operations: p.operations.length,
      ...(refused > 0 ? { refused } : {}),
      failed,
    });
    return !failed;
  }

  /** Brings the announcement routes in step; true when something failed. */
  private async announce(
    state: LoopState,
    desired: Desired,
    phase: 'withdraw' | 'all' = 'all',
  ): Promise<boolean> {
    if (!this.announcer) return false;
    const services: AnnouncingService[] = [];
    for (const vs of state.config.virtualServices) {
      const key = vs.service.key;
      if (!vs.announce || 'fwmark' in key) continue;
      const id = serviceId(key);
      const d = desired.services.find((s) => !s.retired && serviceId(s.spec.key) === id);
      services.push({
        name: vs.name,
        family: key.family,
        address: key.address,
        quorum: d?.quorum,
      });
    }
    // Nothing to announce and nothing of ours left: no table read (after the first sweep).
    if (services.length === 0 && this.announceSwept && !this.announcer.holding()) return false;
    this.announceSwept = true;
    const r = await this.announcer.tick({
      settings: state.config.daemon.announce,
      services,
      drained: this.drained,
      dryRun: state.config.daemon.dryRun,
      phase,
    });
    if (r.drift > 0) {
      this.stats.driftRepairs += r.drift;
      this.observer.drift?.(r.drift);
    }
    return r.failed;
  }

  /** A tick at `at` (or earlier if one is already due sooner). */
  private scheduleWake(at: number): void {
    if (this.stopped || at >= this.wakeAt) return;
    this.wakeTimer?.cancel();
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeAt = Infinity;
      this.requestTick('timer', false, false);
    }, at - this.clock.now());
  }

  private health(state: LoopState, vs: VirtualServiceConfig, rs: RealServerConfig): ServerHealth {
    const r = state.byServer.get(vs)?.get(rs);
    if (!r) return { status: 'pending', upSince: null, weight: undefined };
    return {
      status: r.status,
      upSince: r.upSince,
      weight: r.weight,
      local: r.localRuns.length > 0,
      downSince: r.status === 'down' ? r.lastTransition : null,
    };
  }

  /**
   * Applies and logs; returns the operations the kernel accepted, and the snapshot keys of
   * those whose outcome is unknown (sent, answer lost).
   */
  private async applyLogged(
    ops: readonly PlannedOperation[],
    stale: boolean,
  ): Promise<{ done: Operation[]; undone: Operation[]; unknown: Set<string>; refused: number }> {
    const done: Operation[] = [];
    const undone: Operation[] = [];
    const unknown = new Set<string>();
    let refused = 0;
    if (ops.length === 0) return { done, undone, unknown, refused };
    const results = await this.backend.apply(ops.map((o) => o.operation));
    results.forEach((r, i) => {
      const planned = ops[i];
      if (!planned) return;
      // A plan made from the table as last read meets a hand edit since (ipvsadm) as the
      // kernel's refusal: not a failure of the operation, a reason to read the table now.
      if (stale && r.error && refusedByTable(r.error)) {
        refused++;
        undone.push(r.operation);
        this.log.log('info', 'reconcile.operation_refused', {
          op: planned.operation.op,
          target: operationTarget(planned.operation),
          service: planned.service,
          reason: planned.reason,
          errno: r.error.code,
          error: r.error.message,
          outcome: 'the table changed since it was read: reading it again',
        });
        return;
      }
      this.logOperation(planned, r.error, false);
      this.observer.operation?.(r.operation, r.error);
      if (r.error) {
        this.stats.operationsFailed++;
        undone.push(r.operation);
        if (isOutcomeUnknown(r.error)) unknown.add(operationKey(r.operation));
      } else {
        this.stats.operationsApplied++;
        done.push(r.operation);
      }
    });
    return { done, undone, unknown, refused };
  }

  private logOperation(o: PlannedOperation, error: IpvsError | null, dryRun: boolean): void {
    const fields = {
      op: o.operation.op,
      target: operationTarget(o.operation),
      ...('destination' in o.operation && 'weight' in o.operation.destination
        ? { weight: o.operation.destination.weight }
        : {}),
      service: o.service,
      reason: o.reason,
      ...(dryRun ? { dry_run: true } : {}),
    };
    if (error) {
      this.log.log('error', 'reconcile.operation_failed', {
        ...fields,
        errno: error.code,
        error: error.message,
        ...(error.outcomeUnknown ? { outcome: 'unknown: re-read before judging' } : {}),
      });
    } else this.log.log('info', dryRun ? 'reconcile.planned' : 'reconcile.applied', fields);
  }

  private reportQuorums(desired: Desired, state: LoopState): void {
    for (const s of desired.services) {
      if (s.retired || s.quorum === undefined) continue;
      const id = serviceId(s.spec.key);
      if (s.withdrawHoldUntil === null) this.withdrawHolds.delete(id);
      else this.withdrawHolds.set(id, s.withdrawHoldUntil);
      const before = this.quorums.get(id);
      if (before === s.quorum) continue;
      this.quorums.set(id, s.quorum);
      // The first decision after a start is no change (keepalived runs no notifier for it).
      if (before === undefined) continue;
      const vs = state.config.virtualServices.find((v) => serviceId(v.service.key) === id);
      const count = { healthy: s.healthy, servers: s.eligible, weight: s.healthyWeight };
      const message = `${quorumText(vs?.quorum, { up: s.healthy, weight: s.healthyWeight, pending: false })} (${s.healthy} of ${s.eligible} healthy)`;
      const event = s.quorum ? 'service.quorum_up' : 'service.quorum_down';
      this.log.log(s.quorum ? 'info' : 'error', event, {
        service: s.name,
        healthy: s.healthy,
        servers: s.eligible,
        weight: s.healthyWeight,
        ...(vs?.quorum ? { quorum: vs.quorum.weight, hysteresis: vs.quorum.hysteresis } : {}),
        ...(s.withdrawHoldUntil !== null && s.healthy === 0
          ? { servers_kept_ms: state.config.daemon.announce.withdrawHoldMs }
          : {}),
      });
      this.remember({ event, service: s.name, message });
      if (vs) this.observer.quorum?.(vs, s.quorum, count);
    }
  }

  private reportModes(desired: Desired): void {
    for (const s of desired.services) {
      if (s.retired) continue;
      const mode = serviceMode(s);
      const id = serviceId(s.spec.key);
      const before = this.modes.get(id) ?? 'normal';
      if (mode === before) continue;
      if (mode === 'normal') this.modes.delete(id);
      else this.modes.set(id, mode);
      const fields = { service: s.name, healthy: s.healthy, servers: s.eligible };
      const message = `${s.healthy} of ${s.eligible} healthy`;
      const vs = this.observer.serviceMode
        ? this.state.config.virtualServices.find((v) => serviceId(v.service.key) === id)
        : undefined;
      if (before !== 'normal') {
        this.log.log('info', `service.${before}_off`, fields);
        this.remember({ event: `service.${before}_off`, service: s.name, message });
        if (vs) this.observer.serviceMode?.(vs, before, false, s.healthy, s.eligible);
      }
      if (mode !== 'normal') {
        this.log.log(
          mode === 'panic' || mode === 'hold' ? 'error' : 'warn',
          `service.${mode}_on`,
          fields,
        );
        this.remember({ event: `service.${mode}_on`, service: s.name, message });
        if (vs) this.observer.serviceMode?.(vs, mode, true, s.healthy, s.eligible);
      }
    }
  }

  private reportUnowned(table: readonly LayoutEntry[], owned: ReadonlySet<string>): void {
    const unowned = table
      .filter((e) => !owned.has(serviceId(e.service.key)))
      .map((e) => formatServiceKey(e.service.key));
    const text = unowned.join(', ');
    if (text === this.unownedReported) return;
    this.unownedReported = text;
    if (unowned.length > 0) {
      this.log.log('info', 'table.unowned', {
        services: unowned,
        note: 'not in the config: left alone',
      });
    }
  }
}
