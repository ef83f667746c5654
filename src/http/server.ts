// The one HTTP listener (loopback by default): /metrics, /healthz, /readyz, /status, /events.
// Read-only: no endpoint changes anything.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/daemon.js';
import type { TableEntry } from '../ipvs/model.js';
import type { WardenMetrics } from '../metrics/metrics.js';
import type { ReconcileLoop } from '../reconcile/loop.js';
import { buildStatus, recentEvents } from './status.js';

export interface Listener {
  readonly url: string;
  close(): Promise<void>;
}

export async function startListener(
  listen: string,
  loop: ReconcileLoop,
  metrics: WardenMetrics,
  readTable: () => Promise<TableEntry[]>,
): Promise<Listener> {
  const where = parseListen(listen);
  if (!where) throw new Error(`daemon.listen must be ADDRESS:PORT, got "${listen}"`);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end('read-only: GET only\n');
      return;
    }
    const json = (code: number, body: unknown): void => {
      res
        .writeHead(code, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(body, null, 1)}\n`);
    };
    void (async () => {
      try {
        switch (path) {
          case '/metrics':
            res
              .writeHead(200, { 'content-type': metrics.registry.contentType })
              .end(await metrics.render());
            return;
          case '/healthz':
            res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
            return;
          case '/readyz': {
            const ready = loop.stats.lastTick !== null;
            res
              .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
              .end(ready ? 'ready\n' : 'no reconcile yet\n');
            return;
          }
          case '/status':
            json(200, buildStatus(loop, await readTable().catch(() => null)));
            return;
          case '/events':
            json(200, recentEvents(loop));
            return;
          default:
            res
              .writeHead(404, { 'content-type': 'text/plain' })
              .end('/metrics /healthz /readyz /status /events\n');
        }
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host || undefined, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
