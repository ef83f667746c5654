// Where announcement routes live: one small interface, the kernel's (rtnetlink) and an in-memory
// twin that fails as the kernel does (EEXIST for a taken key, ESRCH for a route not there), so
// the loop's tests see the same answers the daemon will.
import { IpvsError } from '../ipvs/errors.js';
import type { Family } from '../ipvs/model.js';
import { RouteNetlink, type Route } from '../realserver/rtnetlink.js';
import { IP6_RT_PRIO_USER, formatRoute } from './plan.js';

export interface RouteTable {
  readonly kind: 'netlink' | 'memory';
  /** Every route in `table` of these families, whoever installed it. */
  list(table: number, families: readonly Family[]): Promise<Route[]>;
  /** Rejects with EEXIST when a route of its key (family, table, prefix, metric) is there. */
  add(route: Route): Promise<void>;
  /** Deletes the route of its key, protocol and type; ESRCH when there is none. */
  delete(route: Route): Promise<void>;
  close(): void;
}

/** The kernel's routing tables over rtnetlink. */
export class NetlinkRouteTable implements RouteTable {
  readonly kind = 'netlink';
  private socket: RouteNetlink | null = null;

  private open(): RouteNetlink {
    this.socket ??= RouteNetlink.open({ timeoutMs: 2000 });
    return this.socket;
  }

  async list(table: number, families: readonly Family[]): Promise<Route[]> {
    const out: Route[] = [];
    // A family the kernel lacks (IPv6 disabled) is dumped as every family: keep the asked one.
    for (const f of families)
      out.push(...(await this.open().routes(f)).filter((r) => r.table === table && r.family === f));
    return out;
  }

  add(route: Route): Promise<void> {
    return this.open().addRoute(route, formatRoute(route));
  }

  delete(route: Route): Promise<void> {
    return this.open().deleteRoute(route, formatRoute(route));
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}

const key = (r: Route): string => `${r.family} ${r.table} ${r.address}/${r.prefix} ${r.metric}`;

/** A routing table in the process, as strict as the kernel's. */
export class MemoryRouteTable implements RouteTable {
  readonly kind = 'memory';
  private readonly routes = new Map<string, Route>();
  /** The next operations of a kind fail with this code (tests). */
  private readonly failing: { op: 'add' | 'delete' | 'list'; code: string }[] = [];

  /** Makes the next `op` fail with `code` (EPERM, ENOBUFS...). */
  failNext(op: 'add' | 'delete' | 'list', code: string): void {
    this.failing.push({ op, code });
  }

  private fail(op: 'add' | 'delete' | 'list', target: string): void {
    const i = this.failing.findIndex((f) => f.op === op);
    if (i < 0) return;
    const [f] = this.failing.splice(i, 1);
    throw new IpvsError(f?.code ?? 'EIO', { op: `${op}-route`, target });
  }

  /** Sorted, as a dump would list them. */
  all(): Route[] {
    return [...this.routes.values()].sort((a, b) => key(a).localeCompare(key(b)));
  }

  list(table: number, families: readonly Family[]): Promise<Route[]> {
    try {
      this.fail('list', `table ${table}`);
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve(
      this.all().filter((r) => r.table === table && families.includes(r.family)),
    );
  }

  add(given: Route): Promise<void> {
    const target = formatRoute(given);
    // As the kernel: an IPv6 route of metric 0 is stored with 1024.
    const stored =
      given.family === 6 && given.metric === 0 ? { ...given, metric: IP6_RT_PRIO_USER } : given;
    const route = stored;
    try {
      this.fail('add', target);
      if (route.table === 0 || route.prefix > (route.family === 4 ? 32 : 128))
        throw new IpvsError('EINVAL', { op: 'add-route', target });
      if (this.routes.has(key(route))) throw new IpvsError('EEXIST', { op: 'add-route', target });
    } catch (e) {
      return Promise.reject(e);
    }
    this.routes.set(key(stored), stored);
    return Promise.resolve();
  }

  delete(given: Route): Promise<void> {
    const target = formatRoute(given);
    const route =
      given.family === 6 && given.metric === 0 ? { ...given, metric: IP6_RT_PRIO_USER } : given;
    try {
      this.fail('delete', target);
      const there = this.routes.get(key(route));
      // The kernel matches protocol and type when the request gives them (non-zero).
      if (
        !there ||
        (route.protocol !== 0 && there.protocol !== route.protocol) ||
        (route.type !== 0 && there.type !== route.type)
      )
        throw new IpvsError('ESRCH', { op: 'delete-route', target });
    } catch (e) {
      return Promise.reject(e);
    }
    this.routes.delete(key(route));
    return Promise.resolve();
  }

  close(): void {}
}
