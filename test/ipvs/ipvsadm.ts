// Reads `ipvsadm -Ln` listings (any of --stats, --rate, --thresholds, --persistent-conn) into
// rows, so tests can compare the kernel's own tool with what a backend reports.

export interface ListedDestination {
  readonly address: string;
  readonly columns: string[];
}
export interface ListedService {
  /** "TCP 10.0.0.1:80", "FWM 7", "FWM 16 IPv6" */
  readonly service: string;
  /** The columns after the service (scheduler and flags, or counters). */
  readonly columns: string[];
  readonly destinations: ListedDestination[];
}

export function parseIpvsadmList(text: string): ListedService[] {
  const services: ListedService[] = [];
  for (const line of text.split('\n')) {
    const dest = /^\s+->\s+(\S+)\s*(.*)$/.exec(line);
    if (dest) {
      if (dest[1] === 'RemoteAddress:Port') continue;
      const current = services.at(-1);
      if (!current) throw new Error(`destination before any service: ${line}`);
      current.destinations.push({
        address: dest[1] ?? '',
        columns: (dest[2] ?? '').trim().split(/\s+/).filter(Boolean),
      });
      continue;
    }
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)(\s+IPv6)?\s*(.*)$/.exec(line);
    if (svc) {
      services.push({
        service: `${svc[1]} ${svc[2]}${svc[3] ? ' IPv6' : ''}`,
        columns: (svc[4] ?? '').trim().split(/\s+/).filter(Boolean),
        destinations: [],
      });
    }
  }
  return services;
}
