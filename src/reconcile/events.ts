// What the loop's transitions mean to those who act on them (hooks, alerts): one event type, and
// a server's event made from the loop's records in one place.
import type { RealServerConfig, VirtualServiceConfig } from '../config/model.js';
import type { ReconcileLoop, ServerRecord } from './loop.js';

export type TransitionEvent =
  | {
      readonly kind: 'server';
      readonly vs: VirtualServiceConfig;
      readonly rs: RealServerConfig;
      readonly from: 'up' | 'down' | 'pending';
      readonly to: 'up' | 'down';
      /** Servers of the service up, and all of them, after the transition. */
      readonly healthy: number;
      readonly servers: number;
      /** Why (the check's message), when known. */
      readonly message?: string;
    }
  | {
      readonly kind: 'fallback';
      readonly vs: VirtualServiceConfig;
      readonly on: boolean;
      readonly healthy: number;
      readonly servers: number;
    }
  | {
      readonly kind: 'quorum';
      readonly vs: VirtualServiceConfig;
      readonly up: boolean;
      readonly healthy: number;
      readonly servers: number;
      /** The configured weights of the healthy servers, summed. */
      readonly weight: number;
    };

/** A server's transition as an event, its service's counts taken from the loop's records. */
export function serverEvent(
  loop: Pick<ReconcileLoop, 'servers'> | null,
  record: ServerRecord,
  from: ServerRecord['status'],
  to: 'up' | 'down',
): TransitionEvent {
  const mine = (loop?.servers() ?? [record]).filter((r) => r.vs === record.vs);
  return {
    kind: 'server',
    vs: record.vs,
    rs: record.rs,
    from,
    to,
    healthy: mine.filter((r) => r.status === 'up' && !r.rs.maintenance).length,
    servers: mine.length,
    message: record.message,
  };
}
