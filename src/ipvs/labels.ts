// node_exporter's IPVS labels (its names, its value formats), so our per-server series join with
// node_ipvs_backend_*. A leaf: the config checks a label subset with it, the metrics write it.
import { isFwmark, type DestinationKey, type ServiceKey } from './model.js';

/** node_exporter's IPVS backend labels, in its order (the metrics carry a chosen subset). */
export const IPVS_LABELS = [
  'local_address',
  'local_port',
  'remote_address',
  'remote_port',
  'proto',
  'local_mark',
] as const;
export type IpvsLabel = (typeof IPVS_LABELS)[number];

/** Label values exactly as node_exporter writes them (from /proc/net/ip_vs). */
export function ipvsLabelValues(
  service: ServiceKey,
  dest?: DestinationKey,
): Record<IpvsLabel, string> {
  const fwm = isFwmark(service);
  return {
    local_address: fwm ? '' : service.address,
    local_port: fwm ? '0' : String(service.port),
    remote_address: dest?.address ?? '',
    remote_port: dest ? String(dest.port) : '',
    proto: fwm ? 'FWM' : service.protocol.toUpperCase(),
    local_mark: fwm ? service.fwmark.toString(16).toUpperCase().padStart(8, '0') : '',
  };
}

/** A real server as its per-server series see it: the `service` label and the two keys. */
export interface LabelledServer {
  /** The configured service name (the `service` label). */
  readonly service: string;
  readonly serviceKey: ServiceKey;
  readonly destination: DestinationKey;
}

export interface LabelCollision<S> {
  readonly first: S;
  readonly second: S;
  /** Labels left out of the subset that would tell the two apart (empty: none would). */
  readonly add: readonly IpvsLabel[];
}

/**
 * The first two servers whose per-server series would be one series with `service` plus
 * `labels` (gauges overwriting each other, counters adding up), or null. Pure.
 */
export function labelCollision<S extends LabelledServer>(
  servers: Iterable<S>,
  labels: readonly IpvsLabel[],
): LabelCollision<S> | null {
  const seen = new Map<string, { server: S; values: Record<IpvsLabel, string> }>();
  for (const server of servers) {
    const values = ipvsLabelValues(server.serviceKey, server.destination);
    const key = JSON.stringify([server.service, ...labels.map((l) => values[l])]);
    const earlier = seen.get(key);
    if (earlier) {
      return {
        first: earlier.server,
        second: server,
        add: IPVS_LABELS.filter((l) => !labels.includes(l) && earlier.values[l] !== values[l]),
      };
    }
    seen.set(key, { server, values });
  }
  return null;
}
