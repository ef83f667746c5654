// The shell around decideVips() and planRoutes(): each tick it reads our table, plans, applies,
// and logs `vip.announced` / `vip.withdrawn` with the reason. Level-triggered: what the last
// tick left is compared with what the table holds now, and a difference nobody here made
// (a route deleted or added by hand) is drift, counted and repaired. A failed write is logged
// and retried with the loop's backoff; nothing here throws into the loop.
import type { Family } from '../ipvs/model.js';
import type { Logger } from '../log.js';
import { RTN_BLACKHOLE, type Route } from '../realserver/rtnetlink.js';
import {
  decideVips,
  formatRoute,
  planRoutes,
  type AnnounceSettings,
  type AnnouncingService,
  type RouteOperation,
  vipRoute,
} from './plan.js';
import type { RouteTable } from './routes.js';

/** One VIP as /status shows it. */
export interface VipStatus {
  readonly vip: string;
  /** Its host route is in the table (as this director left it at the last tick). */
  readonly announced: boolean;
  readonly reason: string;
  readonly services: readonly string[];
}

export interface AnnounceTick {
  readonly settings: AnnounceSettings;
  readonly services: readonly AnnouncingService[];
  readonly drained: string | null;
  readonly dryRun: boolean;
  /**
   * withdraw: only the deletes, and nothing at all (no table read) when no VIP is to be
   * withdrawn. The loop runs this before it changes the IPVS table and the full pass after:
   * routers stop sending before the servers leave, and start only once they are in.
   */
  readonly phase?: 'withdraw' | 'all';
}

export interface AnnounceResult {
  readonly failed: boolean;
  /** Routes of ours changed by someone else since the last tick. */
  readonly drift: number;
}

/** What the announcer reports as it goes (metrics). */
export interface AnnounceObserver {
  vip?(vip: string, announced: boolean): void;
}

/** The route type of an announcement: no next hop, no device, nothing else to keep in step. */
export const ANNOUNCE_ROUTE_TYPE = RTN_BLACKHOLE;

const routeKey = (r: Route): string =>
  `${r.family} ${r.table} ${r.address}/${r.prefix} ${r.metric} ${r.protocol} ${r.type}`;

export class Announcer {
  private chain: Promise<unknown> = Promise.resolve();
  private stopping = false;
  /** Our routes as the last tick left them; null: nothing to compare with (first tick, failure). */
  private expected: Set<string> | null = null;
  private vips: VipStatus[] = [];
  private lastError = '';
  private lastDryRun = '';
  /** The table and protocol of the last pass: a reload that changes them empties the old pair. */
  private last: AnnounceSettings | null = null;
  /** The services of the last pass: a stop names the VIPs it withdraws with its own reason. */
  private lastServices: readonly AnnouncingService[] = [];

  constructor(
    private readonly routes: RouteTable,
    private readonly log: Logger,
    private readonly observer: AnnounceObserver = {},
  ) {}

  /** Routes of ours may be in the table (or it was never read): a tick must look. */
  holding(): boolean {
    return this.expected === null || this.expected.size > 0;
  }

  /** The VIPs of the last tick. */
  status(): readonly VipStatus[] {
    return this.vips;
  }

  /** One pass; runs after any pass in flight (a stop's withdrawal is never overtaken). */
  tick(input: AnnounceTick): Promise<AnnounceResult> {
    const next = this.chain.then(() => this.pass(input));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Withdraws every route of ours, whatever the services say, and announces nothing after.
   * The stop's first step: traffic leaves this director while it still forwards.
   */
  withdrawAll(input: Omit<AnnounceTick, 'services' | 'drained'>): Promise<AnnounceResult> {
    this.stopping = true;
    const next = this.chain.then(() =>
      this.pass({ ...input, services: this.lastServices, drained: null }),
    );
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async pass(input: AnnounceTick): Promise<AnnounceResult> {
    const { settings } = input;
    const last = this.last;
    if (last && (last.table !== settings.table || last.protocol !== settings.protocol)) {
      if (!(await this.sweep(last, input.dryRun))) return { failed: true, drift: 0 };
      this.expected = null;
    }
    this.last = settings;
    this.lastServices = input.services;
    const decisions = decideVips({
      services: input.services,
      drained: input.drained,
      stopping: this.stopping,
    });
    if (input.phase === 'withdraw' && decisions.every((d) => d.announced))
      return { failed: false, drift: 0 };
    const families = [...new Set<Family>([...decisions.map((d) => d.family), 4, 6])].sort();
    let present: Route[];
    try {
      present = await this.routes.list(settings.table, families);
    } catch (e) {
      this.failed('list', `table ${settings.table}`, e);
      this.expected = null;
      // With nothing to announce, a table that cannot be read is no failure to retry.
      if (input.services.length === 0 && !this.stopping) return { failed: false, drift: 0 };
      this.vips = decisions.map((d) => ({
        vip: d.address,
        announced: false,
        reason: `unknown: the table could not be read (${String(e)})`,
        services: d.services,
      }));
      return { failed: true, drift: 0 };
    }
    const ours = present.filter(
      (r) => r.table === settings.table && r.protocol === settings.protocol,
    );
    let drift = 0;
    if (this.expected) {
      const now = new Set(ours.map(routeKey));
      const changes = [
        ...[...this.expected].filter((k) => !now.has(k)).map((k) => `removed: ${k}`),
        ...[...now].filter((k) => !this.expected?.has(k)).map((k) => `added: ${k}`),
      ];
      drift = changes.length;
      if (drift > 0) this.log.log('warn', 'vip.drift', { changes, table: settings.table });
    }
    const planned = planRoutes({ settings, type: ANNOUNCE_ROUTE_TYPE, decisions, present });
    const ops = input.phase === 'withdraw' ? planned.filter((o) => o.op === 'delete') : planned;
    const state = new Map(ours.map((r) => [routeKey(r), r]));
    const failedVips = new Map<string, string>();
    let failed = false;
    if (input.dryRun) {
      const text = JSON.stringify(ops.map((o) => [o.op, formatRoute(o.route)]));
      if (text !== this.lastDryRun) {
        this.lastDryRun = text;
        for (const o of ops) this.logOp(o, true);
      }
    } else {
      let unknown = false;
      for (const o of ops) {
        try {
          if (o.op === 'add') await this.routes.add(o.route);
          else await this.routes.delete(o.route);
          if (o.op === 'add') state.set(routeKey(o.route), o.route);
          else state.delete(routeKey(o.route));
          this.logOp(o, false);
          this.observer.vip?.(o.vip, o.op === 'add');
        } catch (e) {
          failed = true;
          // An answer lost may have been applied: the next tick re-reads before judging.
          unknown ||= (e as { outcomeUnknown?: boolean }).outcomeUnknown === true;
          failedVips.set(o.vip, String(e instanceof Error ? e.message : e));
          this.log.log('error', 'vip.route_failed', {
            vip: o.vip,
            op: o.op,
            route: formatRoute(o.route),
            reason: o.reason,
            error: e instanceof Error ? e.message : String(e),
          });
        }
      }
      this.expected = unknown ? null : new Set(state.keys());
    }
    if (!failed && this.lastError) this.lastError = '';
    this.vips = decisions.map((d) => {
      const announced = state.has(
        routeKey(vipRoute(settings, d.family, d.address, ANNOUNCE_ROUTE_TYPE)),
      );
      const error = failedVips.get(d.address);
      return {
        vip: d.address,
        announced,
        reason: error ? `${d.reason}; but: ${error}` : d.reason,
        services: d.services,
      };
    });
    return { failed, drift };
  }

  /** Deletes every route of ours under settings no longer in force; true when done. */
  private async sweep(old: AnnounceSettings, dryRun: boolean): Promise<boolean> {
    try {
      const routes = (await this.routes.list(old.table, [4, 6])).filter(
        (r) => r.table === old.table && r.protocol === old.protocol,
      );
      for (const route of routes) {
        const o: RouteOperation = {
          op: 'delete',
          route,
          reason: 'daemon.announce.table or protocol changed',
          vip: route.address,
        };
        if (!dryRun) await this.routes.delete(route);
        this.logOp(o, dryRun);
        this.observer.vip?.(o.vip, false);
      }
      return true;
    } catch (e) {
      this.failed('sweep', `table ${old.table} proto ${old.protocol}`, e);
      return false;
    }
  }

  private logOp(o: RouteOperation, dryRun: boolean): void {
    this.log.log(
      o.op === 'add' ? 'info' : 'warn',
      o.op === 'add' ? 'vip.announced' : 'vip.withdrawn',
      {
        vip: o.vip,
        reason: o.reason,
        route: formatRoute(o.route),
        ...(dryRun ? { dry_run: true } : {}),
      },
    );
  }

  private failed(op: string, target: string, e: unknown): void {
    const text = e instanceof Error ? e.message : String(e);
    if (text === this.lastError) return;
    this.lastError = text;
    this.log.log('error', 'vip.table_unreadable', { op, target, error: text });
  }
}
