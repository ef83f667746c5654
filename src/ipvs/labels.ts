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

/** One label's value exactly as node_exporter writes it (from /proc/net/ip_vs). */
export function ipvsLabelValue(
  label: IpvsLabel,
  service: ServiceKey,
  dest?: DestinationKey,
): string {
  const fwm = isFwmark(service);
  switch (label) {
    case 'local_address':
      return fwm ? '' : service.address;
    case 'local_port':
      return fwm ? '0' : String(service.port);
    case 'remote_address':
      return dest?.address ?? '';
    case 'remote_port':
      return dest ? String(dest.port) : '';
    case 'proto':
      return fwm ? 'FWM' : service.protocol.toUpperCase();
    case 'local_mark':
      return fwm ? service.fwmark.toString(16).toUpperCase().padStart(8, '0') : '';
  }
}

/** Every label's value, as ipvsLabelValue gives it. */
export function ipvsLabelValues(
  service: ServiceKey,
  dest?: DestinationKey,
): Record<IpvsLabel, string> {
  const values = {} as Record<IpvsLabel, string>;
  for (const l of IPVS_LABELS) values[l] = ipvsLabelValue(l, service, dest);
  return values;
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
  // Keyed by the service's length, the service and the values (none holds a NUL): no two
  // servers share a key unless they share the series. Only the server is kept; the values are
  // worked out again for the one pair that collides (at 100,000 servers, a record and a JSON
  // text each were most of the cost of reading the config).
  const seen = new Map<string, S>();
  for (const server of servers) {
    let key = `${server.service.length}:${server.service}`;
    for (const l of labels) key += `\0${ipvsLabelValue(l, server.serviceKey, server.destination)}`;
    const earlier = seen.get(key);
    if (earlier) {
      const a = ipvsLabelValues(earlier.serviceKey, earlier.destination);
      const b = ipvsLabelValues(server.serviceKey, server.destination);
      return {
        first: earlier,
        second: server,
        add: IPVS_LABELS.filter((l) => !labels.includes(l) && a[l] !== b[l]),
      };
    }
    seen.set(key, server);
  }
  return null;
}
