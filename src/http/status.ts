// The status document of /status and `ipvs-warden status`: every owned service, its real
// servers with state, desired and kernel weight, last probe message and last transition, and the
// recent events. Pure: built from the loop's state and one table read.
import {
  destinationsByTarget,
  formatDestinationKey,
  formatServiceKey,
  serviceId,
  targetId,
} from '../ipvs/spec.js';
import type { TableEntry } from '../ipvs/model.js';
import { formatSyncDaemon } from '../ipvs/sync.js';
import { desiredWeight, serviceMode } from '../reconcile/desired.js';
import type { ReconcileLoop } from '../reconcile/loop.js';

export interface ServerStatus {
  readonly name: string;
  readonly target: string;
  readonly role: 'server' | 'fallback';
  readonly state: string;
  readonly maintenance: boolean;
  readonly desired_weight: number | null;
  readonly kernel_weight: number | null;
  readonly active_connections: number | null;
  readonly inactive_connections: number | null;
  readonly reason: string;
  readonly message: string;
  /** When a check last answered (null: not yet, or a fallback). */
  readonly last_check: string | null;
  readonly last_transition: string | null;
}

export interface ServiceStatus {
  readonly name: string;
  readonly service: string;
  readonly mode: ReturnType<typeof serviceMode>;
  readonly healthy: number;
  readonly servers: number;
  /** Null before its servers have settled. */
  readonly quorum: boolean | null;
  readonly healthy_weight: number;
  readonly real_servers: readonly ServerStatus[];
}

export interface Status {
  readonly ready: boolean;
  readonly time: string;
  readonly dry_run: boolean;
  readonly stats: ReconcileLoop['stats'];
  readonly services: readonly ServiceStatus[];
  readonly unowned: readonly string[];
  /** The connection-sync daemons: wanted (daemon.sync.state), the director's role, running as last read. */
  readonly sync: ReturnType<ReconcileLoop['syncStatus']>;
  /** Per VIP of an announcing service: its host route in the table or not, and why. */
  readonly announce: ReturnType<ReconcileLoop['announceStatus']>;
  /** This director's own state (`ipvs-warden director drain`). */
  readonly director: { readonly drained: boolean; readonly drained_reason: string | null };
  readonly events: readonly {
    time: string;
    event: string;
    service: string;
    server?: string;
    message?: string;
  }[];
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function buildStatus(
  loop: ReconcileLoop,
  table: readonly TableEntry[] | null,
  now = Date.now(),
): Status {
  const kernel = destinationsByTarget(table ?? []);
  const desired = loop.desired();
  const services: ServiceStatus[] = (desired?.services ?? [])
    .filter((s) => !s.retired)
    .map((s) => ({
      name: s.name,
      service: formatServiceKey(s.spec.key),
      mode: serviceMode(s),
      healthy: s.healthy,
      servers: s.eligible,
      quorum: s.quorum ?? null,
      healthy_weight: s.healthyWeight,
      real_servers: s.destinations.map((d): ServerStatus => {
        const id = targetId(s.spec.key, d.destination.key);
        const r = d.role === 'server' ? loop.server(id) : undefined;
        const k = kernel.get(id);
        const want = d.want;
        return {
          name:
            d.role === 'fallback'
              ? 'fallback'
              : (r?.rs.name ?? formatDestinationKey(d.destination.key)),
          target: formatDestinationKey(d.destination.key),
          role: d.role,
          state:
            d.role === 'fallback'
              ? s.fallbackActive
                ? 'active'
                : 'standby'
              : (r?.status ?? 'pending'),
          maintenance: d.maintenance,
          desired_weight: desiredWeight(want),
          kernel_weight: k ? k.weight : null,
          active_connections: k ? k.activeConns : null,
          inactive_connections: k ? k.inactiveConns : null,
          reason: want.reason,
          message: r?.message ?? '',
          last_check: iso(r && !Number.isNaN(r.lastCheck) ? r.lastCheck : null),
          last_transition: iso(r?.lastTransition ?? null),
        };
      }),
    }));
  const owned = new Set(loop.currentConfig().virtualServices.map((v) => serviceId(v.service.key)));
  return {
    ready: loop.stats.lastTick !== null,
    time: new Date(now).toISOString(),
    dry_run: loop.currentConfig().daemon.dryRun,
    stats: loop.stats,
    services,
    unowned: (table ?? [])
      .filter((e) => !owned.has(serviceId(e.service.key)))
      .map((e) => formatServiceKey(e.service.key)),
    sync: loop.syncStatus(),
    announce: loop.announceStatus(),
    director: { drained: loop.directorDrained() !== null, drained_reason: loop.directorDrained() },
    events: recentEvents(loop),
  };
}

/** The loop's recent transitions and mode changes, times as ISO text. */
export function recentEvents(loop: ReconcileLoop): Status['events'] {
  return loop.recent.map((e) => ({ ...e, time: new Date(e.time).toISOString() }));
}

/** The status as a table an operator reads at a glance. */
export function formatStatus(s: Status): string {
  const lines: string[] = [];
  lines.push(
    `ipvs-warden ${s.ready ? 'ready' : 'NOT READY (no reconcile yet)'}${s.dry_run ? ', DRY RUN' : ''} at ${s.time}; ` +
      `${s.stats.operationsApplied} operations applied, ${s.stats.operationsFailed} failed, ${s.stats.driftRepairs} drift repairs`,
  );
  for (const svc of s.services) {
    const mode = svc.mode === 'normal' ? '' : `  ** ${svc.mode.toUpperCase()} **`;
    // Fallback says it already; without a fallback, lost quorum changes no weight: say it here.
    const quorum =
      svc.quorum === false && svc.mode !== 'fallback'
        ? `  ** NO QUORUM (healthy weight ${svc.healthy_weight}) **`
        : '';
    lines.push(
      '',
      `${svc.name}  ${svc.service}  ${svc.healthy}/${svc.servers} healthy${mode}${quorum}`,
    );
    const rows = svc.real_servers.map((r) => [
      r.name,
      r.target,
      r.maintenance ? `${r.state} (maint)` : r.state,
      r.desired_weight === null ? 'out' : String(r.desired_weight),
      r.kernel_weight === null ? '-' : String(r.kernel_weight),
      r.active_connections === null
        ? '-'
        : `${r.active_connections}/${r.inactive_connections ?? 0}`,
      r.last_transition ?? '-',
      r.maintenance || r.role === 'fallback' ? r.reason : r.message,
    ]);
    const head = ['SERVER', 'TARGET', 'STATE', 'WANT', 'KERNEL', 'CONN A/I', 'LAST CHANGE', 'WHY'];
    const widths = head.map((h, i) =>
      Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
    );
    for (const row of [head, ...rows]) {
      lines.push(
        `  ${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`,
      );
    }
  }
  if (s.unowned.length > 0) lines.push('', `not owned (left alone): ${s.unowned.join(', ')}`);
  if (s.sync.role) lines.push('', `director role: ${s.sync.role}`);
  if (s.sync.wanted !== 'none' || (s.sync.running?.length ?? 0) > 0) {
    const running = s.sync.running?.map((d) => formatSyncDaemon(d)).join('; ') || 'none';
    const want =
      s.sync.wanted === 'follow-role'
        ? `follow-role, role ${s.sync.role ?? 'none'}`
        : s.sync.wanted;
    lines.push('', `sync daemons (want ${want}): ${s.sync.running ? running : 'unread'}`);
    if (s.sync.error) lines.push(`  last failure: ${s.sync.error}`);
  }
  // Absent from an older daemon's document: nothing to say then.
  if (s.director?.drained) lines.push('', `DIRECTOR DRAINED: ${s.director.drained_reason ?? ''}`);
  if ((s.announce?.length ?? 0) > 0) {
    lines.push('', 'announced VIPs:');
    for (const v of s.announce)
      lines.push(
        `  ${v.vip.padEnd(15)}  ${v.announced ? 'announced' : 'WITHDRAWN'}  ${v.reason}  (${v.services.join(', ')})`,
      );
  }
  if (s.events.length > 0) {
    lines.push('', 'recent events:');
    for (const e of s.events.slice(-10)) {
      lines.push(
        `  ${e.time}  ${e.event}  ${e.service}${e.server ? ` ${e.server}` : ''}${e.message ? `: ${e.message}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
