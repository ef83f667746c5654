// Which VIPs this director announces, and the route operations that make the kernel's table say
// so. Pure: quorum, the drain flag and the routes present come in as values. The routes are what
// the site's BGP daemon exports (BIRD's `kernel` protocol with `learn`, FRR's `ip import-table`):
// a VIP is attracted here exactly while its host route is in the table.
import type { Family } from '../ipvs/model.js';
import type { Route } from '../realserver/rtnetlink.js';

/** daemon.announce: where the routes go and what they look like. */
export interface AnnounceSettings {
  readonly table: number;
  readonly protocol: number;
  readonly metric: number;
}

/** One announcing virtual service, as far as the decision needs it. */
export interface AnnouncingService {
  readonly name: string;
  readonly family: Family;
  readonly address: string;
  /** Its quorum as last decided; undefined before the first decision. */
  readonly quorum: boolean | undefined;
}

/** A VIP's verdict: announced or not, and why (status, logs). */
export interface VipDecision {
  readonly family: Family;
  readonly address: string;
  readonly announced: boolean;
  readonly reason: string;
  /** The announcing services on it, in config order. */
  readonly services: readonly string[];
}

export interface DecideInput {
  readonly services: readonly AnnouncingService[];
  /** The reason the director is drained ("drained (flag file /run/ipvs-warden/drained)"), or null. */
  readonly drained: string | null;
  /** The daemon is stopping: everything goes. */
  readonly stopping: boolean;
}

const vipKey = (family: Family, address: string): string => `${family} ${address}`;

/**
 * Per VIP: announced while the daemon runs, the director is not drained, and ANY of the
 * announcing services on that VIP has quorum. Any, not all: several ports share one VIP, and
 * when one port's pool is down everywhere, withdrawing the VIP from every director would take
 * the healthy ports down with it. A director that cannot reach its servers loses quorum on every
 * port at once and is withdrawn all the same. To tie a VIP to one port, announce that service only.
 */
export function decideVips(input: DecideInput): VipDecision[] {
  const byVip = new Map<string, AnnouncingService[]>();
  for (const s of input.services) {
    const key = vipKey(s.family, s.address);
    const list = byVip.get(key);
    if (list) list.push(s);
    else byVip.set(key, [s]);
  }
  return [...byVip.values()].map((list) => {
    const first = list[0] as AnnouncingService;
    const services = list.map((s) => s.name);
    const base = { family: first.family, address: first.address, services };
    if (input.stopping) return { ...base, announced: false, reason: 'daemon stopping' };
    if (input.drained !== null) return { ...base, announced: false, reason: input.drained };
    const up = list.filter((s) => s.quorum === true).map((s) => s.name);
    if (up.length > 0) return { ...base, announced: true, reason: `quorum: ${up.join(', ')}` };
    const undecided = list.filter((s) => s.quorum === undefined).map((s) => s.name);
    const lost = list.filter((s) => s.quorum === false).map((s) => s.name);
    const reason = [
      ...(lost.length ? [`no quorum: ${lost.join(', ')}`] : []),
      ...(undecided.length ? [`quorum not decided yet: ${undecided.join(', ')}`] : []),
    ].join('; ');
    return { ...base, announced: false, reason };
  });
}

/** What the kernel makes of an IPv6 route's metric 0 (IP6_RT_PRIO_USER). */
export const IP6_RT_PRIO_USER = 1024;

/** The host route that announces a VIP, its metric as the kernel will store it. */
export function vipRoute(
  s: AnnounceSettings,
  family: Family,
  address: string,
  type: number,
): Route {
  return {
    family,
    table: s.table,
    address,
    prefix: family === 4 ? 32 : 128,
    metric: family === 6 && s.metric === 0 ? IP6_RT_PRIO_USER : s.metric,
    protocol: s.protocol,
    type,
  };
}

export interface RouteOperation {
  readonly op: 'add' | 'delete';
  readonly route: Route;
  readonly reason: string;
  /** The VIP it announces or withdraws (`10.0.0.1`, `2001:db8::1`), or the stray route's prefix. */
  readonly vip: string;
}

export interface RoutePlanInput {
  readonly settings: AnnounceSettings;
  /** rtm_type of the routes we install (RTN_BLACKHOLE). */
  readonly type: number;
  readonly decisions: readonly VipDecision[];
  /** Every route the kernel has in our table (any protocol; the plan picks ours). */
  readonly present: readonly Route[];
}

const routeKey = (r: Route): string =>
  `${r.family} ${r.table} ${r.address}/${r.prefix} ${r.metric}`;

/** "10.0.0.1/32 table 240 proto 250 metric 0" for logs. */
export function formatRoute(r: Route): string {
  return `${r.address}/${r.prefix} table ${r.table} proto ${r.protocol} metric ${r.metric}`;
}

/**
 * Wanted routes vs the routes of our protocol in our table. A VIP announced and one withdrawn
 * are one operation each; a route of ours with another metric or type is replaced, the new one
 * added before the old one goes when their keys differ (a metric change never withdraws the
 * VIP). Routes of other protocols in the table are someone else's and never touched; one that
 * holds the key of a route we want makes our add fail (EEXIST), which is logged and retried.
 */
export function planRoutes(input: RoutePlanInput): RouteOperation[] {
  const { settings } = input;
  const ours = input.present.filter(
    (r) => r.table === settings.table && r.protocol === settings.protocol,
  );
  const wanted = new Map<string, { route: Route; reason: string }>();
  const announced = new Set<string>();
  const withdrawn = new Map<string, string>();
  for (const d of input.decisions) {
    const route = vipRoute(settings, d.family, d.address, input.type);
    if (d.announced) {
      wanted.set(routeKey(route), { route, reason: d.reason });
      announced.add(vipKey(d.family, d.address));
    } else withdrawn.set(vipKey(d.family, d.address), d.reason);
  }
  const deletes: RouteOperation[] = [];
  const kept = new Set<string>();
  const freed = new Set<string>();
  for (const r of ours) {
    const key = routeKey(r);
    if (wanted.has(key) && r.type === input.type && !kept.has(key)) {
      kept.add(key);
      continue;
    }
    if (wanted.has(key)) freed.add(key);
    const host = r.prefix === (r.family === 4 ? 32 : 128);
    const vip = vipKey(r.family, r.address);
    const reason =
      host && announced.has(vip)
        ? `replaced: metric ${r.metric} type ${r.type}, wanted metric ${vipRoute(settings, r.family, r.address, input.type).metric} type ${input.type}`
        : ((host ? withdrawn.get(vip) : undefined) ?? 'not a VIP this config announces');
    deletes.push({
      op: 'delete',
      route: r,
      reason,
      vip: host ? r.address : `${r.address}/${r.prefix}`,
    });
  }
  const add = (key: string): RouteOperation[] => {
    const w = wanted.get(key);
    return w ? [{ op: 'add', route: w.route, reason: w.reason, vip: w.route.address }] : [];
  };
  const missing = [...wanted.keys()].filter((k) => !kept.has(k));
  return [
    ...missing.filter((k) => !freed.has(k)).flatMap(add),
    ...deletes,
    ...missing.filter((k) => freed.has(k)).flatMap(add),
  ];
}
