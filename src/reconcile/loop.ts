// The reconcile loop, the imperative shell around desired() and plan(): it owns the checks, keeps
// each real server's health, and on every tick re-reads the kernel table, plans and applies.
// Ticks come from health transitions (at once), slow-start steps and drains (when due), failed
// operations (with backoff) and the periodic resync. Ticks never overlap; requests made during a
// tick run one more tick after it.
import { readdir } from 'node:fs/promises';
import type { Config, RealServerConfig, VirtualServiceConfig } from '../config/model.js';
import type { Checker } from '../health/checker.js';
import type { HealthPolicy } from '../health/policy.js';
import { checkTarget, createChecker } from '../checkers.js';
import { Scheduler, type CheckEvent } from '../health/scheduler.js';
import { operationTarget, type IpvsBackend } from '../ipvs/backend.js';
import type { IpvsError } from '../ipvs/errors.js';
import type { Operation, TableEntry } from '../ipvs/model.js';
import { hostPort } from '../health/probe.js';
import {
  destinationsByTarget,
  formatDestinationKey,
  formatServiceKey,
  serviceId,
  targetId,
} from '../ipvs/spec.js';
import type { Logger } from '../log.js';
import { desiredTable, type Desired, type RetiredService, type ServerHealth } from './desired.js';
import { afterOperations, drift, snapshot, type Snapshot } from './drift.js';
import { plan, type PlannedOperation } from './plan.js';

export interface ServerRecord {
  readonly vs: VirtualServiceConfig;
  readonly rs: RealServerConfig;
  /** Scheduler run ids, one per check, in config order. */
  readonly runs: readonly string[];
  readonly subscriptions: readonly string[];
  status: ServerHealth['status'];
  /** Once a server is up or down it never returns to pending (a reload keeps this). */
  settled: boolean;
  upSince: number | null;
  weight: number | undefined;
  message: string;
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
  tick?(durationMs: number, ok: boolean): void;
  operation?(operation: Operation, error: IpvsError | null): void;
  drift?(changes: number): void;
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

export interface LoopOptions {
  readonly observer?: LoopObserver;
  readonly backend: IpvsBackend;
  readonly log: Logger;
  readonly now?: () => number;
  /** Builds checkers (tests substitute); default: the probes in checks/. */
  readonly createChecker?: typeof createChecker;
}

export class ReconcileLoop {
  private config: Config;
  private readonly backend: IpvsBackend;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly makeChecker: typeof createChecker;
  private readonly scheduler: Scheduler;
  private readonly observer: LoopObserver;
  private lastDesired: Desired | null = null;
  /** Transitions and mode changes, newest last. */
  readonly recent: RecentEvent[] = [];
  private readonly records = new Map<string, ServerRecord>();
  private retired: RetiredService[] = [];
  private drains: ReadonlyMap<string, number> = new Map();
  private expected: { snapshot: Snapshot; owned: ReadonlySet<string> } | null = null;
  private maintenanceNames = new Set<string>();
  private unownedReported = '';
  private modes = new Map<string, string>();
  private lastDryRun = '';
  private wakeTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private retryAttempt = 0;
  private stopped = false;
  readonly stats: LoopStats = {
    ticks: 0,
    operationsApplied: 0,
    operationsFailed: 0,
    driftRepairs: 0,
    lastSync: null,
    lastTick: null,
  };

  constructor(config: Config, options: LoopOptions) {
    this.config = config;
    this.backend = options.backend;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.makeChecker = options.createChecker ?? createChecker;
    this.observer = options.observer ?? {};
    this.scheduler = new Scheduler({
      concurrency: config.daemon.checkConcurrency,
      onResult: (event) => this.onResult(event),
    });
  }

  /** Adopts the table as it is (no flush, no removal) and starts checking. */
  async start(): Promise<void> {
    const table = await this.backend.table();
    this.subscribe(table, new Map());
    const owned = this.ownedIds();
    const adopted = table.filter((e) => owned.has(serviceId(e.service.key)));
    this.log.log('info', 'table.adopted', {
      services: adopted.length,
      destinations: adopted.reduce((n, e) => n + e.destinations.length, 0),
      configured: this.config.virtualServices.length,
    });
    await this.readMaintenance();
    this.scheduleMaintenance();
    this.requestTick('start');
    await this.idle();
  }

  /** Applies a new, already validated config: only the difference; health carries over. */
  async reload(config: Config): Promise<void> {
    const oldRecords = new Map(this.records);
    const oldServices = this.config.virtualServices;
    this.config = config;
    const table = await this.backend.table().catch(() => [] as TableEntry[]);
    this.subscribe(table, oldRecords);
    // Drop subscriptions no longer wanted only after the new ones exist, so shared checks keep state.
    const keep = new Set(
      [...this.records.values()].flatMap((r) =>
        r.subscriptions.map((s, i) => `${s}@${r.runs[i] ?? ''}`),
      ),
    );
    for (const r of oldRecords.values()) {
      r.subscriptions.forEach((s, i) => {
        const run = r.runs[i] ?? '';
        if (!keep.has(`${s}@${run}`)) this.scheduler.remove(s, run);
      });
    }
    const now = new Set(config.virtualServices.map((v) => serviceId(v.service.key)));
    this.retired = this.retired.filter((r) => !now.has(serviceId(r.spec.key)));
    for (const vs of oldServices) {
      if (!now.has(serviceId(vs.service.key))) {
        this.retired.push({ name: vs.name, spec: vs.service, drainTimeoutMs: vs.drainTimeoutMs });
      }
    }
    const before = new Set(oldRecords.keys());
    const after = new Set(this.records.keys());
    this.log.log('info', 'config.reloaded', {
      services: config.virtualServices.length,
      servers_added: [...after].filter((k) => !before.has(k)).length,
      servers_removed: [...before].filter((k) => !after.has(k)).length,
      services_retired: this.retired.length,
    });
    this.scheduleMaintenance();
    this.requestTick('reload');
    await this.idle();
  }

  /** Stops checking; with cleanstop, removes the owned services. The table is otherwise left as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.wakeTimer);
    clearInterval(this.maintenanceTimer);
    await this.scheduler.stop();
    await this.running;
    if (this.config.daemon.cleanstop && !this.config.daemon.dryRun) {
      const table = await this.backend.table();
      const owned = this.ownedIds();
      const ops: Operation[] = table
        .filter((e) => owned.has(serviceId(e.service.key)))
        .map((e) => ({ op: 'delete-service', service: e.service.key }));
      await this.applyLogged(
        ops.map((operation) => ({ operation, reason: 'cleanstop', service: '' })),
      );
    }
  }

  /** Resolves when no tick is running or requested. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** The desired table of the last tick (null before the first). */
  desired(): Desired | null {
    return this.lastDesired;
  }

  currentConfig(): Config {
    return this.config;
  }

  private remember(event: Omit<RecentEvent, 'time'>): void {
    this.recent.push({ time: this.now(), ...event });
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
  }

  servers(): readonly ServerRecord[] {
    return [...this.records.values()];
  }

  /** A server's record by its target id (`targetId`). */
  server(id: string): ServerRecord | undefined {
    return this.records.get(id);
  }

  /** Runs a tick soon; several requests before it starts make one tick. */
  requestTick(reason: string): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.tickSafely(reason))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.requestTick('requested during a tick');
        }
      });
  }

  private ownedIds(): Set<string> {
    return new Set([
      ...this.config.virtualServices.map((v) => serviceId(v.service.key)),
      ...this.retired.map((r) => serviceId(r.spec.key)),
    ]);
  }

  /** Creates server records and check subscriptions; carries state over from `old`. */
  private subscribe(table: readonly TableEntry[], old: ReadonlyMap<string, ServerRecord>): void {
    const kernel = destinationsByTarget(table);
    this.records.clear();
    for (const vs of this.config.virtualServices) {
      for (const rs of vs.realServers) {
        const key = targetId(vs.service.key, rs.destination.key);
        const prev = old.get(key);
        // The health a new check starts from: what we knew, else what the kernel shows.
        const inKernel = kernel.get(key)?.weight;
        const initial: HealthPolicy['initial'] = prev
          ? prev.status === 'up'
            ? 'up'
            : 'down'
          : inKernel !== undefined
            ? inKernel > 0
              ? 'up'
              : 'down'
            : rs.policy.initial;
        const policy: HealthPolicy = { ...rs.policy, initial };
        const runs: string[] = [];
        const subscriptions: string[] = [];
        rs.checks.forEach((check, i) => {
          const checker: Checker = this.makeChecker(check);
          const target = checkTarget(rs, check);
          const sub = `${key}#${i}`;
          const run = Scheduler.runId(checker, target, policy);
          this.scheduler.add(sub, checker, target, rs.timing, policy);
          runs.push(run);
          subscriptions.push(sub);
        });
        const record: ServerRecord = {
          vs,
          rs,
          runs,
          subscriptions,
          status: prev?.status ?? (rs.checks.length === 0 ? 'up' : 'pending'),
          settled: prev?.settled ?? rs.checks.length === 0,
          upSince: prev?.upSince ?? null,
          weight: prev?.weight,
          message:
            prev?.message ??
            (rs.checks.length === 0 ? 'no checks: always healthy' : 'not checked yet'),
          lastTransition: prev?.lastTransition ?? null,
        };
        this.records.set(key, record);
        this.refresh(record, undefined);
      }
    }
  }

  private onResult(event: CheckEvent): void {
    this.observer.checkResult?.(event);
    this.log.log('debug', 'check.result', {
      target: hostPort(event.target),
      check: event.checker.description,
      healthy: event.result.healthy,
      message: event.result.message,
      duration_ms: event.result.durationMs,
      lateness_ms: event.latenessMs,
    });
    for (const sub of event.subscribers) {
      const record = this.records.get(sub.slice(0, sub.lastIndexOf('#')));
      if (!record) continue;
      if (event.result.weight !== undefined) record.weight = event.result.weight;
      if (!event.result.healthy || record.status !== 'down') record.message = event.result.message;
      this.refresh(record, event);
    }
  }

  /** Recomputes a server's status from its checks' states; a change is logged and ticks. */
  private refresh(record: ServerRecord, event: CheckEvent | undefined): void {
    if (record.runs.length === 0) return;
    const states = record.runs.map((r) => this.scheduler.state(r));
    let status: ServerHealth['status'] = 'pending';
    if (states.every((s) => s !== undefined)) {
      if (states.every((s) => s.up)) {
        status = record.settled || states.every((s) => s.results > 0) ? 'up' : 'pending';
      } else if (
        record.settled ||
        states.some((s) => !s.up && s.failures >= record.rs.policy.fall)
      ) {
        status = 'down';
      }
    }
    if (status === record.status) return;
    const from = record.status;
    record.status = status;
    if (status === 'pending') return;
    record.settled = true;
    const now = this.now();
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
    this.requestTick(`${record.rs.name} ${status}`);
  }

  private maintenanceReason(rs: RealServerConfig): string | null {
    if (this.maintenanceNames.size === 0) return null;
    const key = rs.destination.key;
    for (const name of [rs.name, key.address, formatDestinationKey(key)]) {
      if (this.maintenanceNames.has(name)) {
        return `maintenance (flag file ${this.config.daemon.maintenanceDir}/${name})`;
      }
    }
    return null;
  }

  private async readMaintenance(): Promise<void> {
    const dir = this.config.daemon.maintenanceDir;
    let names = new Set<string>();
    if (dir) {
      try {
        names = new Set((await readdir(dir)).filter((n) => !n.startsWith('.')));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? String(e);
        if (this.maintenanceNames.size > 0 || this.stats.ticks === 0) {
          this.log.log('warn', 'maintenance.unreadable', { dir, error: code });
        }
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

  private scheduleMaintenance(): void {
    clearInterval(this.maintenanceTimer);
    if (!this.config.daemon.maintenanceDir) {
      this.maintenanceNames = new Set();
      return;
    }
    this.maintenanceTimer = setInterval(
      () => void this.readMaintenance(),
      this.config.daemon.maintenancePollMs,
    );
    this.maintenanceTimer.unref();
  }

  private async tickSafely(reason: string): Promise<void> {
    const started = performance.now();
    try {
      const ok = await this.tick(reason);
      this.observer.tick?.(performance.now() - started, ok);
    } catch (e) {
      this.observer.tick?.(performance.now() - started, false);
      // A dump that fails (ENOBUFS, EPERM...) is retried like a failed operation; never fatal.
      this.log.log('error', 'reconcile.failed', {
        reason,
        error: e instanceof Error ? e.message : String(e),
      });
      this.scheduleWake(this.now() + this.backoff(true));
    }
  }

  private backoff(failed: boolean): number {
    const { retryMinMs, retryMaxMs } = this.config.daemon;
    if (!failed) {
      this.retryAttempt = 0;
      return Infinity;
    }
    const ms = Math.min(retryMaxMs, retryMinMs * 2 ** this.retryAttempt);
    this.retryAttempt++;
    return ms;
  }

  /** One tick; false when an operation failed. */
  private async tick(reason: string): Promise<boolean> {
    if (this.stopped) return true;
    this.stats.ticks++;
    const table = await this.backend.table();
    const now = this.now();
    const owned = this.ownedIds();
    const observed = snapshot(table, owned);

    if (this.expected) {
      const prevOwned = this.expected.owned;
      const comparable = new Map(
        [...observed].filter(([id]) => prevOwned.has(id.split('>')[0] ?? '')),
      );
      const changes = drift(this.expected.snapshot, comparable);
      if (changes.length > 0) {
        this.stats.driftRepairs += changes.length;
        this.observer.drift?.(changes.length);
        this.log.log('warn', 'drift.detected', { changes, repairs_total: this.stats.driftRepairs });
      }
    }
    this.reportUnowned(table, owned);

    const desired = desiredTable({
      services: this.config.virtualServices,
      retired: this.retired,
      health: (vs, rs) => this.health(vs, rs),
      maintenance: (_vs, rs) => this.maintenanceReason(rs),
      now,
    });
    this.reportModes(desired);
    this.lastDesired = desired;
    const p = plan(desired, table, this.drains, now);
    this.drains = p.drains;

    let done: Operation[] = [];
    if (this.config.daemon.dryRun) {
      const text = JSON.stringify(
        p.operations.map((o) => [o.operation.op, operationTarget(o.operation)]),
      );
      if (text !== this.lastDryRun) {
        this.lastDryRun = text;
        for (const o of p.operations) this.logOperation(o, null, true);
      }
      this.expected = { snapshot: observed, owned };
    } else {
      done = await this.applyLogged(p.operations);
      this.expected = { snapshot: afterOperations(observed, done), owned };
    }
    const failed = !this.config.daemon.dryRun && done.length < p.operations.length;
    const present = new Set(table.map((e) => serviceId(e.service.key)));
    for (const o of done) if (o.op === 'delete-service') present.delete(serviceId(o.service));
    this.retired = this.retired.filter((r) => present.has(serviceId(r.spec.key)));
    if (!failed) this.stats.lastSync = now;
    this.stats.lastTick = now;
    const retryAt = now + this.backoff(failed);
    const next = Math.min(
      desired.wakeAt ?? Infinity,
      p.wakeAt ?? Infinity,
      retryAt,
      now + this.config.daemon.resyncIntervalMs,
    );
    this.scheduleWake(next);
    this.log.log('debug', 'reconcile.tick', { reason, operations: p.operations.length, failed });
    return !failed;
  }

  private scheduleWake(at: number): void {
    clearTimeout(this.wakeTimer);
    if (this.stopped) return;
    this.wakeTimer = setTimeout(() => this.requestTick('timer'), Math.max(0, at - this.now()));
  }

  private health(vs: VirtualServiceConfig, rs: RealServerConfig): ServerHealth {
    const r = this.records.get(targetId(vs.service.key, rs.destination.key));
    if (!r) return { status: 'pending', upSince: null, weight: undefined };
    return { status: r.status, upSince: r.upSince, weight: r.weight };
  }

  /** Applies and logs; returns the operations the kernel accepted. */
  private async applyLogged(ops: readonly PlannedOperation[]): Promise<Operation[]> {
    if (ops.length === 0) return [];
    const results = await this.backend.apply(ops.map((o) => o.operation));
    const done: Operation[] = [];
    results.forEach((r, i) => {
      const planned = ops[i];
      if (!planned) return;
      this.logOperation(planned, r.error, false);
      this.observer.operation?.(r.operation, r.error);
      if (r.error) this.stats.operationsFailed++;
      else {
        this.stats.operationsApplied++;
        done.push(r.operation);
      }
    });
    return done;
  }

  private logOperation(
    o: PlannedOperation,
    error: { code: string; message: string } | null,
    dryRun: boolean,
  ): void {
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
      });
    } else this.log.log('info', dryRun ? 'reconcile.planned' : 'reconcile.applied', fields);
  }

  private reportModes(desired: Desired): void {
    for (const s of desired.services) {
      if (s.retired) continue;
      const mode = s.fallbackActive ? 'fallback' : s.panic ? 'panic' : 'normal';
      const id = serviceId(s.spec.key);
      const before = this.modes.get(id) ?? 'normal';
      if (mode === before) continue;
      this.modes.set(id, mode);
      const fields = { service: s.name, healthy: s.healthy, servers: s.eligible };
      const message = `${s.healthy} of ${s.eligible} healthy`;
      if (before !== 'normal') {
        this.log.log('info', `service.${before}_off`, fields);
        this.remember({ event: `service.${before}_off`, service: s.name, message });
      }
      if (mode !== 'normal') {
        this.log.log(mode === 'panic' ? 'error' : 'warn', `service.${mode}_on`, fields);
        this.remember({ event: `service.${mode}_on`, service: s.name, message });
      }
    }
  }

  private reportUnowned(table: readonly TableEntry[], owned: ReadonlySet<string>): void {
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
