// The embedded demo: an in-memory table, three local HTTP real servers (one of which fails for a
// while and comes back) and a config for them, so `npm start` shows transitions, planned
// operations and the table changing, without root or IPVS.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperationResult } from './ipvs/backend.js';
import { BackendBase, type IpvsBackend } from './ipvs/backend.js';
import type { LayoutEntry, Operation, ServiceKey, TableEntry, Timeouts } from './ipvs/model.js';
import { destinationSpec, serviceSpec } from './ipvs/spec.js';

/** The small example table of `table --backend memory --demo`. */
export function demoTable(): Operation[] {
  const web = serviceSpec({
    key: { family: 4, protocol: 'tcp', address: '192.0.2.10', port: 80 },
    scheduler: 'wlc',
  });
  return [
    { op: 'add-service', service: web },
    ...[1, 2, 3].map((i): Operation => ({
      op: 'add-destination',
      service: web.key,
      destination: destinationSpec({
        key: { family: 4, address: `127.0.0.${i + 1}`, port: 8080 },
        weight: i === 3 ? 0 : 10,
      }),
    })),
    ...unownedDemoService(),
  ];
}

/** A service the demo config does not name: the daemon reports it and leaves it alone. */
export function unownedDemoService(): Operation[] {
  const dns = serviceSpec({
    key: { family: 6, protocol: 'udp', address: '2001:db8::53', port: 53 },
    scheduler: 'mh',
    schedFlags: 3,
  });
  return [
    { op: 'add-service', service: dns },
    {
      op: 'add-destination',
      service: dns.key,
      destination: destinationSpec({
        key: { family: 6, address: '2001:db8::5:1', port: 53 },
        fwd: 'route',
      }),
    },
  ];
}

export interface DemoServers {
  readonly ports: readonly number[];
  readonly sorryPort: number;
  close(): Promise<void>;
}

/**
 * Three real servers on 127.0.0.1 answering /healthz, and a sorry server. The second fails
 * (503) from `downAtMs` for `downForMs`, then recovers; the cycle repeats every `periodMs`.
 */
export async function startDemoServers(
  timing = { downAtMs: 6000, downForMs: 10_000, periodMs: 30_000 },
): Promise<DemoServers> {
  const started = Date.now();
  const failing = (): boolean => {
    const t = (Date.now() - started) % timing.periodMs;
    return t >= timing.downAtMs && t < timing.downAtMs + timing.downForMs;
  };
  const servers: Server[] = [];
  const listen = async (name: string, sick: () => boolean): Promise<number> => {
    const server = createServer((_req, res) => {
      const bad = sick();
      res.writeHead(bad ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(bad ? `${name}: unavailable\n` : `${name}: ok\n`);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const ports = [
    await listen('web1', () => false),
    await listen('web2', failing),
    await listen('web3', () => false),
  ];
  const sorryPort = await listen('sorry', () => false);
  return {
    ports,
    sorryPort,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}

export function demoConfig(servers: DemoServers): string {
  const rs = servers.ports
    .map(
      (port, i) => `      - name: web${i + 1}\n        address: 127.0.0.1\n        port: ${port}\n`,
    )
    .join('');
  return `# The embedded demo config (ipvs-warden run --demo).
daemon:
  backend: memory
  resync_interval: 5s
defaults:
  interval: 1s
  fast_interval: 500ms
  timeout: 500ms
  rise: 2
  fall: 2
virtual_services:
  - name: web
    protocol: tcp
    address: 192.0.2.10
    port: 80
    scheduler: wlc
    weight: 10
    slow_start: 4s
    on_failure: remove
    fallback:
      address: 127.0.0.1
      port: ${servers.sorryPort}
    checks:
      - type: http
        path: /healthz
        expect_status: 200
    real_servers:
${rs}`;
}

/** Passes everything through and calls `after` with the table after each write that changed it. */
export class ShowingBackend extends BackendBase {
  readonly kind: string;
  constructor(
    private readonly inner: IpvsBackend,
    private readonly after: (table: TableEntry[]) => void,
  ) {
    super();
    this.kind = inner.kind;
  }
  info = (): ReturnType<IpvsBackend['info']> => this.inner.info();
  timeouts = (): Promise<Timeouts> => this.inner.timeouts();
  setTimeouts = (t: Partial<Timeouts>): Promise<void> => this.inner.setTimeouts(t);
  services = (): ReturnType<IpvsBackend['services']> => this.inner.services();
  service = (k: ServiceKey): ReturnType<IpvsBackend['service']> => this.inner.service(k);
  destinations = (k: ServiceKey): ReturnType<IpvsBackend['destinations']> =>
    this.inner.destinations(k);
  table = (): Promise<TableEntry[]> => this.inner.table();
  override layout(): Promise<LayoutEntry[]> {
    return this.inner.layout();
  }
  syncDaemons = (): ReturnType<IpvsBackend['syncDaemons']> => this.inner.syncDaemons();
  startSyncDaemon = (s: Parameters<IpvsBackend['startSyncDaemon']>[0]): Promise<void> =>
    this.inner.startSyncDaemon(s);
  stopSyncDaemon = (s: Parameters<IpvsBackend['stopSyncDaemon']>[0]): Promise<void> =>
    this.inner.stopSyncDaemon(s);
  zero = (k?: ServiceKey): Promise<void> => this.inner.zero(k);
  flush = (): Promise<void> => this.inner.flush();
  close = (): Promise<void> => this.inner.close();
  async apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    const results = await this.inner.apply(operations);
    if (results.some((r) => !r.error)) {
      const table = await this.inner.table();
      // After the loop has logged the operations: the table reads as their result.
      setImmediate(() => this.after(table));
    }
    return results;
  }
}
