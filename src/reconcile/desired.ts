// Config + health -> the table the kernel should hold, per owned virtual service. Pure: time,
// health and maintenance come in as values; nothing here reads a clock, a file or the kernel.
import type { Quorum, RealServerConfig, VirtualServiceConfig } from '../config/model.js';
import { operationSubject } from '../ipvs/backend.js';
import type { DestinationSpec, Operation, ServiceSpec } from '../ipvs/model.js';
import { serviceId } from '../ipvs/spec.js';

export interface ServerHealth {
  /** pending: no settled result yet (adopted, or still counting towards rise/fall). */
  readonly status: 'up' | 'down' | 'pending';
  /** When it last came up (ms on the loop's clock) for slow start; null: long enough ago. */
  readonly upSince: number | null;
  /** A weight a check reported (exec dynamic mode); replaces the configured weight. */
  readonly weight: number | undefined;
  /** Its last check could not run for a reason on this director (`CheckResult.local`). */
  readonly local?: boolean;
  /** While down: when it went down (ms on the loop's clock); null or absent: not known. */
  readonly downSince?: number | null;
}

/** What a destination should be. */
export type Want =
  /** In the table with exactly this spec. */
  | { readonly kind: 'in'; readonly spec: DestinationSpec; readonly reason: string }
  /** Weight 0 if it is in the table (existing connections continue); not added if absent. */
  | { readonly kind: 'zero'; readonly spec: DestinationSpec; readonly reason: string }
  /** Out of the table, drained first. */
  | { readonly kind: 'out'; readonly reason: string }
  /** Whatever the kernel has (no settled result yet). */
  | { readonly kind: 'keep'; readonly reason: string };

/** The weight a destination should have in the table, or null when it should not be there. */
export function desiredWeight(want: Want): number | null {
  return want.kind === 'in' || want.kind === 'zero' ? want.spec.weight : null;
}

export interface DesiredDestination {
  readonly destination: DestinationSpec;
  readonly role: 'server' | 'fallback';
  readonly want: Want;
  /** In maintenance (config state or flag file). */
  readonly maintenance: boolean;
}

export interface DesiredService {
  readonly name: string;
  readonly spec: ServiceSpec;
  /** Removed from the config on reload: drain every destination, then delete the service. */
  readonly retired: boolean;
  readonly drainTimeoutMs: number;
  readonly destinations: readonly DesiredDestination[];
  readonly healthy: number;
  readonly eligible: number;
  /** The configured weights of the healthy servers, summed (what a quorum counts). */
  readonly healthyWeight: number;
  /** Has quorum; undefined before it was first decided (servers with no settled result). */
  readonly quorum: boolean | undefined;
  readonly fallbackActive: boolean;
  readonly panic: boolean;
  /** Too many servers cannot be checked from this director: the table is kept as it is. */
  readonly held: boolean;
  /**
   * Until when (ms) its quorum loss is withdrawing its VIP: while it has no healthy server then,
   * its destinations are kept as the kernel has them (daemon.announce.withdraw_hold). Null: not.
   */
  readonly withdrawHoldUntil: number | null;
  /**
   * When this service's desired state changes by itself (a slow-start step, a withdraw hold's
   * end); null: only when its servers' health or the inputs around it do.
   */
  readonly wakeAt: number | null;
}

export interface Desired {
  readonly services: readonly DesiredService[];
  /** When the desired table changes by itself next (a slow-start step); null: it does not. */
  readonly wakeAt: number | null;
}

export interface RetiredService {
  readonly name: string;
  readonly spec: ServiceSpec;
  readonly drainTimeoutMs: number;
}

export interface DesiredInput {
  readonly services: readonly VirtualServiceConfig[];
  /** Services owned before a reload and no longer configured. */
  readonly retired: readonly RetiredService[];
  readonly health: (vs: VirtualServiceConfig, rs: RealServerConfig) => ServerHealth;
  /** The reason a server is in maintenance ("flag file /etc/.../10.0.0.2"), or null. */
  readonly maintenance: (vs: VirtualServiceConfig, rs: RealServerConfig) => string | null;
  /** A service's quorum as last decided (the hysteresis needs it); undefined: never decided. */
  readonly quorumWas?: (vs: VirtualServiceConfig) => boolean | undefined;
  /** daemon.announce.withdraw_hold in ms; 0 or absent: no hold. */
  readonly withdrawHoldMs?: number;
  /** A service's `withdrawHoldUntil` as last decided. */
  readonly withdrawHoldWas?: (vs: VirtualServiceConfig) => number | null | undefined;
  readonly now: number;
}

export interface QuorumCount {
  /** Healthy servers, and their configured weights summed. */
  readonly up: number;
  readonly weight: number;
  /** Some servers have no settled result yet. */
  readonly pending: boolean;
}

/**
 * Whether a service has quorum now. Without a configured quorum: while any server is healthy.
 * With one (keepalived's quorum and hysteresis): first gained at `weight + hysteresis`, then
 * kept down to `weight - hysteresis`, and never held by a healthy weight of 0. While servers
 * with no settled result could still restore it, it stays as it was.
 */
export function quorumState(
  q: Quorum | undefined,
  count: QuorumCount,
  was: boolean | undefined,
): boolean | undefined {
  const now = q
    ? count.weight > 0 && count.weight >= q.weight + (was === true ? -q.hysteresis : q.hysteresis)
    : count.up > 0;
  if (now) return true;
  return count.pending ? was : false;
}

/** What the quorum counted, for reasons and logs ("healthy weight 20 of 30 (hysteresis 5)"). */
export function quorumText(q: Quorum | undefined, count: QuorumCount): string {
  if (!q) return `${count.up} healthy`;
  return `healthy weight ${count.weight} of ${q.weight}${q.hysteresis > 0 ? ` (hysteresis ${q.hysteresis})` : ''}`;
}

/** Slow-start steps: the weight is recomputed this many times over the window (HAProxy: 1 s steps). */
const SLOW_START_STEPS = 20;

/** The weight part way through slow start: at least 1, the full weight at the end. */
export function slowStartWeight(weight: number, elapsedMs: number, windowMs: number): number {
  if (windowMs <= 0 || elapsedMs >= windowMs || weight === 0) return weight;
  return Math.max(1, Math.ceil((weight * Math.max(0, elapsedMs)) / windowMs));
}

/** A service's mode, for logs, status and metrics: hold over fallback over panic. */
export function serviceMode(s: DesiredService): 'normal' | 'hold' | 'fallback' | 'panic' {
  return s.held ? 'hold' : s.fallbackActive ? 'fallback' : s.panic ? 'panic' : 'normal';
}

function holdReason(local: number, eligible: number): string {
  return `hold: ${local} of ${eligible} servers cannot be checked from this director (local errors): the table is kept as it is`;
}

/** `spec` at `weight`: the same object when that is its weight already. */
function withWeight(spec: DestinationSpec, weight: number): DestinationSpec {
  return spec.weight === weight ? spec : { ...spec, weight };
}

interface Row {
  readonly rs: RealServerConfig;
  readonly maintenance: string | null;
  readonly health: ServerHealth;
}

interface Judged {
  readonly vs: VirtualServiceConfig;
  readonly rows: readonly Row[];
  readonly eligible: readonly Row[];
  readonly up: number;
  readonly pending: boolean;
  readonly healthyWeight: number;
  /** Eligible servers this director cannot check (local errors). */
  readonly local: number;
  /** Too many of them: the table is kept as it is. */
  readonly held: boolean;
  readonly was: boolean | undefined;
  readonly count: QuorumCount;
  readonly quorum: boolean | undefined;
}

/** A service's quorum and counts, decided before any destination (a VIP's services are read together). */
function judge(vs: VirtualServiceConfig, input: DesiredInput): Judged {
  const rows = vs.realServers.map((rs) => ({
    rs,
    maintenance: rs.maintenance ? 'maintenance (state in the config)' : input.maintenance(vs, rs),
    health: input.health(vs, rs),
  }));
  const eligible = rows.filter((r) => r.maintenance === null);
  const healthy = eligible.filter((r) => r.health.status === 'up');
  const up = healthy.length;
  const pending = eligible.some((r) => r.health.status === 'pending');
  const healthyWeight = healthy.reduce(
    (n, r) => n + (r.health.weight ?? r.rs.destination.weight),
    0,
  );
  // When this director cannot check many of the servers (it is out of descriptors, memory or
  // ports), its view of the rest is not to be trusted either: change nothing but maintenance.
  const local = eligible.filter((r) => r.health.local === true).length;
  const held =
    vs.holdThreshold > 0 && eligible.length > 0 && local / eligible.length > vs.holdThreshold;
  const was = input.quorumWas?.(vs);
  const count = { up, weight: healthyWeight, pending };
  const quorum = held ? was : quorumState(vs.quorum, count, was);
  return { vs, rows, eligible, up, pending, healthyWeight, local, held, was, count, quorum };
}

const vipOf = (vs: VirtualServiceConfig): string | null =>
  'fwmark' in vs.service.key ? null : `${vs.service.key.family} ${vs.service.key.address}`;

/**
 * Until when a service's destinations wait for its VIP's withdrawal, or null. The routers keep
 * sending new flows here for a while after the route goes (BGP's UPDATE, their FIB); draining
 * the last servers at once would refuse every one of them. So when a quorum loss withdraws the
 * VIP (no announcing service on it keeps quorum) and leaves the service no fallback, the hold
 * starts; it ends at its time or when the VIP is announced again.
 */
export function withdrawHold(o: {
  readonly announce: boolean;
  readonly fallback: boolean;
  readonly quorumWas: boolean | undefined;
  readonly quorum: boolean | undefined;
  /** Another announcing service on the VIP has quorum: the VIP stays. */
  readonly vipKept: boolean;
  readonly untilWas: number | null | undefined;
  readonly holdMs: number;
  readonly now: number;
}): number | null {
  if (!o.announce || o.fallback || o.holdMs <= 0 || o.quorum !== false || o.vipKept) return null;
  if (o.quorumWas === true) return o.now + o.holdMs;
  return o.untilWas !== null && o.untilWas !== undefined && o.untilWas > o.now ? o.untilWas : null;
}

/**
 * Whether a server down while its service's VIP is withdrawn goes back in for the hold: it went
 * down no longer than the hold before the quorum was lost (`lostAt`), or since. Servers that
 * fail together in so short a time are as likely this director's view failing (its checks'
 * path, its routes) as the servers: the other directors still send them flows, and the flows the
 * routers still send here, moved to those directors mid-connection when the route goes, must
 * meet the same server there. Drained here, a flow that the others hash to it (mh, sh) went to
 * another server here and was reset there (the anycast lane, one connection in 34). Pure.
 */
export function backForHold(health: ServerHealth, lostAt: number, holdMs: number): boolean {
  const since = health.downSince;
  return (
    health.status === 'down' && since !== null && since !== undefined && lostAt - since <= holdMs
  );
}

export function desiredTable(input: DesiredInput): Desired {
  let wakeAt: number | null = null;
  const wake = (t: number): void => {
    wakeAt = wakeAt === null ? t : Math.min(wakeAt, t);
  };
  const judged = input.services.map((vs) => judge(vs, input));
  const vipsKept = new Set<string>();
  for (const j of judged) {
    const vip = vipOf(j.vs);
    if (j.vs.announce && j.quorum === true && vip !== null) vipsKept.add(vip);
  }
  const services: DesiredService[] = judged.map((j) => {
    const { vs, rows, eligible, up, pending, healthyWeight, local, held, count, quorum } = j;
    let serviceWake: number | null = null;
    const wakeService = (t: number): void => {
      serviceWake = serviceWake === null ? t : Math.min(serviceWake, t);
      wake(t);
    };
    const fallbackActive = !held && vs.fallback !== null && quorum === false;
    const panic =
      !held &&
      !fallbackActive &&
      vs.panicThreshold > 0 &&
      eligible.length > 0 &&
      !pending &&
      up / eligible.length < vs.panicThreshold;
    const ratio = `${up} of ${eligible.length} healthy`;
    const vip = vipOf(vs);
    const withdrawHoldUntil = held
      ? null
      : withdrawHold({
          announce: vs.announce && vip !== null,
          fallback: vs.fallback !== null,
          quorumWas: j.was,
          quorum,
          vipKept: vip !== null && vipsKept.has(vip),
          untilWas: input.withdrawHoldWas?.(vs),
          holdMs: input.withdrawHoldMs ?? 0,
          now: input.now,
        });
    // With a healthy server left, new flows still sent here have somewhere to go: no hold (a
    // later tick that finds none left applies it, and wakes for its end).
    const withdrawing = withdrawHoldUntil !== null && up === 0;
    if (withdrawing) wakeService(withdrawHoldUntil);

    const destinations: DesiredDestination[] = rows.map(({ rs, maintenance, health }) => {
      const configured = rs.destination;
      let want: Want;
      if (maintenance !== null) {
        want = { kind: 'zero', spec: withWeight(configured, 0), reason: maintenance };
      } else if (held) {
        want = { kind: 'keep', reason: holdReason(local, eligible.length) };
      } else if (panic) {
        want = {
          kind: 'in',
          spec: configured,
          reason: `panic: ${ratio}, below ${vs.panicThreshold * 100}%: every server stays in`,
        };
      } else if (withdrawing) {
        const holdMs = input.withdrawHoldMs ?? 0;
        const hold = `daemon.announce.withdraw_hold (${holdMs / 1000} s)`;
        want = backForHold(health, withdrawHoldUntil - holdMs, holdMs)
          ? {
              kind: 'in',
              spec: configured,
              reason: `quorum lost, VIP withdrawn: in for ${hold}, as it went down within that of the loss: the flows the routers move to other directors meet it there too`,
            }
          : {
              kind: 'keep',
              reason: `quorum lost, VIP withdrawn: kept as it is for ${hold} while the routers move new flows away`,
            };
      } else if (fallbackActive && health.status === 'up') {
        // keepalived's sorry server: without quorum the few healthy servers would be swamped.
        const reason = `quorum lost (${quorumText(vs.quorum, count)}): the fallback serves`;
        want =
          vs.onFailure === 'quiesce'
            ? { kind: 'zero', spec: withWeight(configured, 0), reason }
            : { kind: 'out', reason };
      } else if (health.status === 'pending') {
        want = { kind: 'keep', reason: 'no settled check result yet: the table is kept as it is' };
      } else if (health.status === 'down') {
        want =
          vs.onFailure === 'quiesce'
            ? { kind: 'zero', spec: withWeight(configured, 0), reason: 'down: quiesced' }
            : { kind: 'out', reason: 'down' };
      } else {
        const full = health.weight ?? configured.weight;
        const elapsed = health.upSince === null ? Infinity : input.now - health.upSince;
        const weight = slowStartWeight(full, elapsed, rs.slowStartMs);
        let reason =
          health.weight === undefined ? 'healthy' : `healthy, weight ${full} from the check`;
        if (weight !== full && health.upSince !== null) {
          reason = `slow start: ${Math.floor((elapsed / rs.slowStartMs) * 100)}% of ${rs.slowStartMs / 1000} s`;
          wakeService(input.now + Math.max(100, Math.ceil(rs.slowStartMs / SLOW_START_STEPS)));
        }
        want = { kind: 'in', spec: withWeight(configured, weight), reason };
      }
      return { destination: configured, role: 'server', want, maintenance: maintenance !== null };
    });
    if (vs.fallback) {
      const want: Want = held
        ? { kind: 'keep', reason: holdReason(local, eligible.length) }
        : fallbackActive
          ? {
              kind: 'in',
              spec: vs.fallback,
              reason: vs.quorum
                ? `fallback: quorum lost, ${quorumText(vs.quorum, count)}`
                : `fallback: ${ratio}`,
            }
          : quorum === undefined
            ? { kind: 'keep', reason: 'fallback: servers have no settled result yet' }
            : { kind: 'out', reason: `fallback not needed: ${ratio}` };
      destinations.push({ destination: vs.fallback, role: 'fallback', want, maintenance: false });
    }
    return {
      name: vs.name,
      spec: vs.service,
      retired: false,
      drainTimeoutMs: vs.drainTimeoutMs,
      destinations,
      healthy: up,
      eligible: eligible.length,
      healthyWeight,
      quorum,
      fallbackActive,
      panic,
      held,
      withdrawHoldUntil,
      wakeAt: serviceWake,
    };
  });
  for (const r of input.retired) {
    services.push({
      name: r.name,
      spec: r.spec,
      retired: true,
      drainTimeoutMs: r.drainTimeoutMs,
      destinations: [],
      healthy: 0,
      eligible: 0,
      healthyWeight: 0,
      quorum: undefined,
      fallbackActive: false,
      panic: false,
      held: false,
      withdrawHoldUntil: null,
      wakeAt: null,
    });
  }
  return { services, wakeAt };
}

/**
 * The services whose desired state a tick may take from the last tick's instead of deciding it
 * again: none of its servers `changed` health since, it was `settled` then (no wake of its own,
 * no drain under way), and so was every other service on its VIP (a withdraw hold reads the
 * VIP's quorum across its services). Everything else a service's state reads (the config,
 * maintenance, the director's state and role) makes the loop read the table and decide all.
 */
export function reusableServices(
  services: readonly VirtualServiceConfig[],
  changed: ReadonlySet<VirtualServiceConfig>,
  settled: ReadonlySet<VirtualServiceConfig>,
): Set<VirtualServiceConfig> {
  const moving = (vs: VirtualServiceConfig): boolean => changed.has(vs) || !settled.has(vs);
  const movingVips = new Set<string>();
  for (const vs of services) {
    const vip = vipOf(vs);
    if (vip !== null && moving(vs)) movingVips.add(vip);
  }
  const out = new Set<VirtualServiceConfig>();
  for (const vs of services) {
    const vip = vipOf(vs);
    if (!moving(vs) && (vip === null || !movingVips.has(vip))) out.add(vs);
  }
  return out;
}

/**
 * The services settled after a tick: no wake of their own, no drain under way (`drains`: target
 * id, "service id>destination id", to when it began; plan() wakes for those), and nothing the
 * tick planned for them left undone (`undone`: a dry run's operations, a failed or refused one).
 */
export function settledServices(
  byService: ReadonlyMap<VirtualServiceConfig, DesiredService>,
  drains: ReadonlyMap<string, number>,
  undone: readonly Operation[] = [],
): Set<VirtualServiceConfig> {
  const moving = new Set<string>();
  for (const id of drains.keys()) moving.add(id.slice(0, id.indexOf('>')));
  for (const o of undone) moving.add(serviceId(operationSubject(o).service));
  const out = new Set<VirtualServiceConfig>();
  for (const [vs, d] of byService)
    if (d.wakeAt === null && !moving.has(serviceId(vs.service.key))) out.add(vs);
  return out;
}
