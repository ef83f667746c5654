// The connection-sync daemons: a pure decision from wanted vs running to start/stop operations,
// and the small keeper the loop calls each tick (read, decide, apply, log), as for the table.
import type { IpvsBackend } from '../ipvs/backend.js';
import { IpvsError } from '../ipvs/errors.js';
import type { SyncDaemonRole, SyncDaemonSpec, SyncDaemonState } from '../ipvs/model.js';
import { formatSyncDaemon } from '../ipvs/sync.js';
import type { SyncSettings } from '../config/daemon.js';
import type { Logger } from '../log.js';
import { syncRoleFor, type Role } from '../director/role.js';

export type SyncOperation =
  | { readonly op: 'start-sync-daemon'; readonly spec: SyncDaemonSpec; readonly reason: string }
  | { readonly op: 'stop-sync-daemon'; readonly state: SyncDaemonRole; readonly reason: string };

/**
 * The daemons the settings want; null for `none` (leave whatever runs alone). `follow-role`
 * takes the director's role (null: no role file) as keepalived's lvs_sync_daemon does.
 */
export function wantedSyncDaemons(
  s: SyncSettings,
  role: Role | null = null,
): SyncDaemonSpec[] | null {
  if (s.state === 'none') return null;
  const roles: SyncDaemonRole[] =
    s.state === 'both'
      ? ['master', 'backup']
      : s.state === 'follow-role'
        ? [syncRoleFor(role)]
        : [s.state];
  return roles.map((state) => ({
    state,
    interface: s.interface,
    syncId: s.syncId,
    group: s.group,
    port: s.port,
    ttl: s.ttl,
    maxPacketLength: s.maxPacketLength,
  }));
}

/** How a running daemon differs from the wanted one ("" when it matches). */
export function syncDifference(want: SyncDaemonSpec, have: SyncDaemonState): string {
  const diffs: string[] = [];
  const cmp = (name: string, w: string | number, h: string | number): void => {
    if (w !== h) diffs.push(`${name} ${h} (want ${w})`);
  };
  cmp('interface', want.interface, have.interface);
  cmp('sync id', want.syncId, have.syncId);
  cmp('group', want.group, have.group);
  cmp('port', want.port, have.port);
  cmp('ttl', want.ttl, have.ttl);
  // 0: the kernel's choice from the MTU, whatever it is. The config refuses lengths it would clamp.
  if (want.maxPacketLength !== 0)
    cmp('max packet length', want.maxPacketLength, have.maxPacketLength);
  return diffs.join(', ');
}

/**
 * Start what is missing; stop then start what runs with other settings; stop a role the
 * settings do not name. Stops come first: the kernel runs one daemon of each role.
 *
 * | wanted \ running | none             | same settings | other settings      |
 * | ---------------- | ---------------- | ------------- | ------------------- |
 * | yes              | start            | nothing       | stop, start         |
 * | no               | nothing          | stop          | stop                |
 * | state: none      | nothing, whatever runs                                 |
 */
export function planSync(
  wanted: readonly SyncDaemonSpec[] | null,
  running: readonly SyncDaemonState[],
): SyncOperation[] {
  if (wanted === null) return [];
  const stops: SyncOperation[] = [];
  const starts: SyncOperation[] = [];
  for (const role of ['master', 'backup'] as const) {
    const want = wanted.find((w) => w.state === role);
    const have = running.find((r) => r.state === role);
    if (!want) {
      if (have) stops.push({ op: 'stop-sync-daemon', state: role, reason: 'not configured' });
      continue;
    }
    if (!have) {
      starts.push({ op: 'start-sync-daemon', spec: want, reason: 'not running' });
      continue;
    }
    const diff = syncDifference(want, have);
    if (diff === '') continue;
    stops.push({ op: 'stop-sync-daemon', state: role, reason: `running with ${diff}` });
    starts.push({ op: 'start-sync-daemon', spec: want, reason: `restart: running with ${diff}` });
  }
  return [...stops, ...starts];
}

/** What /status shows of the sync daemons: the last read, and the last failure. */
export interface SyncStatus {
  readonly wanted: SyncSettings['state'];
  /** The director's role as last read from the role file (null: no file). */
  readonly role: Role | null;
  readonly running: readonly SyncDaemonState[] | null;
  readonly error: string | null;
}

export interface SyncTickResult {
  readonly failed: boolean;
  /** Daemons found stopped or changed since the last tick left them as wanted. */
  readonly drift: number;
}

/** Reads, decides and applies the sync daemons; never throws (a failure is logged and retried). */
export class SyncKeeper {
  private expected = new Map<SyncDaemonRole, SyncDaemonSpec>();
  private last: SyncStatus = { wanted: 'none', role: null, running: null, error: null };

  constructor(
    private readonly backend: IpvsBackend,
    private readonly log: Logger,
  ) {}

  status(): SyncStatus {
    return this.last;
  }

  async tick(
    settings: SyncSettings,
    dryRun: boolean,
    role: Role | null = null,
  ): Promise<SyncTickResult> {
    const wanted = wantedSyncDaemons(settings, role);
    let running: SyncDaemonState[];
    try {
      running = await this.backend.syncDaemons();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.last = { wanted: settings.state, role, running: null, error: message };
      // With state none the daemons are not ours: an unreadable list is only not shown.
      this.log.log(wanted ? 'error' : 'debug', 'sync.read_failed', { error: message });
      return { failed: wanted !== null, drift: 0 };
    }
    let drift = 0;
    for (const [role, spec] of this.expected) {
      const have = running.find((r) => r.state === role);
      const diff = have ? syncDifference(spec, have) : 'stopped';
      if (diff !== '') {
        drift++;
        this.log.log('warn', 'drift.detected', {
          changes: [{ sync_daemon: role, change: diff }],
        });
      }
    }
    const ops = planSync(wanted, running);
    this.expected = new Map();
    let error: string | null = null;
    for (const o of ops) {
      const target = o.op === 'start-sync-daemon' ? formatSyncDaemon(o.spec) : o.state;
      const fields = { op: o.op, target, reason: o.reason, ...(dryRun ? { dry_run: true } : {}) };
      if (dryRun) {
        this.log.log('info', 'reconcile.planned', fields);
        continue;
      }
      try {
        if (o.op === 'start-sync-daemon') await this.backend.startSyncDaemon(o.spec);
        else await this.backend.stopSyncDaemon(o.state);
        this.log.log('info', 'reconcile.applied', fields);
      } catch (err) {
        const e = err instanceof IpvsError ? err : null;
        error = err instanceof Error ? err.message : String(err);
        this.log.log('error', 'reconcile.operation_failed', {
          ...fields,
          errno: e?.code ?? 'unknown',
          error,
        });
      }
    }
    if (!dryRun && wanted) {
      // What the next tick should find, read back after a change (the kernel fills in the
      // length); a failed start is simply planned again.
      const after =
        ops.length > 0 ? await this.backend.syncDaemons().catch(() => running) : running;
      for (const w of wanted) {
        const have = after.find((r) => r.state === w.state);
        if (have && syncDifference(w, have) === '') this.expected.set(w.state, w);
      }
      running = after;
    }
    this.last = { wanted: settings.state, role, running, error };
    return { failed: error !== null, drift };
  }

  /** cleanstop: stops the daemons the settings name (none with `state: none`). */
  async stop(settings: SyncSettings, role: Role | null = null): Promise<void> {
    const wanted = wantedSyncDaemons(settings, role);
    if (!wanted) return;
    const running = await this.backend.syncDaemons().catch(() => null);
    for (const w of wanted) {
      if (running && !running.some((r) => r.state === w.state)) continue;
      const fields = { op: 'stop-sync-daemon', target: w.state, reason: 'cleanstop' };
      try {
        await this.backend.stopSyncDaemon(w.state);
        this.log.log('info', 'reconcile.applied', fields);
      } catch (err) {
        const e = err instanceof IpvsError ? err : null;
        this.log.log('error', 'reconcile.operation_failed', {
          ...fields,
          errno: e?.code ?? 'unknown',
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    this.expected = new Map();
  }
}
