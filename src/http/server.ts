// The one HTTP listener (loopback by default): the status page (/), /metrics, /healthz, /readyz,
// /status, /events.
// Read-only: no endpoint changes anything. Every body is built whole before a header is written,
// so a failure while building one is a 500 that ends, not a 200 left hanging. Bounded: at most
// maxConnections at once (more are closed as they arrive), and every connection is closed when
// it idles or takes too long over its headers or request, so clients that connect and wait can
// never take the descriptors the probes need. It answers only the Host names of ./hosts.ts, so a
// web page cannot read it by rebinding its own name to this address.
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/daemon.js';
import { acceptsGzip } from './encoding.js';
import { gzipBody, type BodyWriter } from './gzip.js';
import { hostAllowed, hostPolicy, type HostPolicy } from './hosts.js';
import type { TableEntry } from '../ipvs/model.js';
import type { WardenMetrics } from '../metrics/metrics.js';
import type { ReconcileLoop } from '../reconcile/loop.js';
import { PAGE_HEADERS, refreshSeconds, renderPage } from './page.js';
import { buildStatus, recentEvents } from './status.js';

const gzipWhole = promisify(gzipCallback);
/** Smaller bodies go plain: gzip's header and trailer alone are 18 bytes. */
const GZIP_LEAST_BYTES = 1024;

export interface Listener {
  readonly url: string;
  close(): Promise<void>;
}

export interface ListenerOptions {
  /** Host names answered besides the listener's own address (daemon.listen_hosts). */
  readonly hosts?: readonly string[];
  /** Connections open at once; one more is closed as soon as it is accepted. */
  readonly maxConnections?: number;
  /** A connection with nothing read or written for this long is closed. */
  readonly idleTimeoutMs?: number;
  /** Time from a request's first byte to the end of its headers (then a 408). */
  readonly headersTimeoutMs?: number;
  /** Time for a whole request (then a 408). */
  readonly requestTimeoutMs?: number;
  /** A kept-alive connection is closed after this long without the next request. */
  readonly keepAliveTimeoutMs?: number;
}

/** Enough for a few Prometheus servers, agents and operators; nothing here is slow to answer. */
export const LISTENER_DEFAULTS: Required<ListenerOptions> = {
  hosts: [],
  maxConnections: 256,
  idleTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

export async function startListener(
  listen: string,
  loop: ReconcileLoop,
  metrics: WardenMetrics,
  readTable: () => Promise<TableEntry[]>,
  options: ListenerOptions = {},
): Promise<Listener> {
  const where = parseListen(listen);
  if (!where) throw new Error(`daemon.listen must be ADDRESS:PORT, got "${listen}"`);
  const o = { ...LISTENER_DEFAULTS, ...options };
  const limits = {
    headersTimeout: o.headersTimeoutMs,
    requestTimeout: o.requestTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    // Node checks the headers and request bounds on this period (30 s unless told).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, o.headersTimeoutMs / 4)),
  };
  const NOSNIFF = { 'x-content-type-options': 'nosniff' };
  let hosts: HostPolicy | null = null; // known once listening, before any request
  const server: Server = createServer(limits, (req, res) => {
    const [path, query = ''] = (req.url ?? '/').split('?', 2);
    /** Writes a whole response; the body must exist before any header is written. */
    const send = (
      code: number,
      type: string,
      body: string | Buffer,
      extra: Record<string, string> = {},
    ): void => {
      res.writeHead(code, { 'content-type': type, ...NOSNIFF, ...extra }).end(body);
    };
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    /**
     * A 200 with a whole body, gzipped when the client takes it and it is worth it: the page and
     * /status are 4 to 5 MB at 10,000 servers, and about 300 KB gzipped.
     */
    const sendBody = async (
      type: string,
      body: string,
      extra: Record<string, string> = {},
    ): Promise<void> => {
      const headers = { ...extra, vary: 'accept-encoding' };
      if (!gzip || body.length < GZIP_LEAST_BYTES) {
        send(200, type, body, headers);
        return;
      }
      const zipped = await gzipWhole(body, { level: 1 });
      send(200, type, zipped, { ...headers, 'content-encoding': 'gzip' });
    };
    if (!hosts || !hostAllowed(req.headers.host, hosts)) {
      send(
        421,
        'text/plain',
        "misdirected: the Host header names neither this listener's address nor a name in daemon.listen_hosts\n",
      );
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'text/plain', 'read-only: GET only\n', { allow: 'GET, HEAD' });
      return;
    }
    const json = (body: unknown): string => `${JSON.stringify(body, null, 1)}\n`;
    void (async () => {
      try {
        switch (path) {
          case '/': {
            const status = buildStatus(loop, await readTable().catch(() => null));
            const body = renderPage(status, refreshSeconds(query));
            await sendBody('text/html; charset=utf-8', body, { ...PAGE_HEADERS });
            return;
          }
          case '/metrics': {
            // Sent part by part as the scrape makes it (chunked), headers with the first part:
            // a scrape that fails before it still answers 500. Gzipped when the client takes it,
            // as Prometheus does unless told not to (enable_compression: false).
            const headers = {
              'content-type': metrics.registry.contentType,
              vary: 'accept-encoding',
              ...(gzip ? { 'content-encoding': 'gzip' } : {}),
              ...NOSNIFF,
            };
            // Set by the first part: what the rest go to (null for HEAD).
            let body: BodyWriter | null = null;
            const begin = (): BodyWriter | null => {
              res.writeHead(200, headers);
              if (req.method === 'HEAD') return null;
              if (gzip) return gzipBody(res);
              // The socket's queue is not waited for: a slow client must not hold the render
              // (and every scrape after it) up.
              return {
                write: (part) => {
                  res.write(part);
                },
                end: () => Promise.resolve(),
              };
            };
            await metrics.renderTo((part) => {
              if (!res.headersSent) body = begin();
              if (body && !res.destroyed) return body.write(part);
            });
            if (!res.headersSent) body = begin();
            await body?.end();
            res.end();
            return;
          }
          case '/healthz':
            send(200, 'text/plain', 'ok\n');
            return;
          case '/readyz': {
            const ready = loop.stats.lastTick !== null;
            send(ready ? 200 : 503, 'text/plain', ready ? 'ready\n' : 'no reconcile yet\n');
            return;
          }
          case '/status': {
            const body = json(buildStatus(loop, await readTable().catch(() => null)));
            await sendBody('application/json', body);
            return;
          }
          case '/events':
            await sendBody('application/json', json(recentEvents(loop)));
            return;
          default:
            send(404, 'text/plain', '/ /metrics /healthz /readyz /status /events\n');
        }
      } catch (e) {
        // Headers go out with a finished body, or a scrape's first part: once they are out,
        // cut the connection rather than leave the client waiting for the rest.
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const message = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
        send(500, 'text/plain', `${path} failed: ${message}\n`);
      }
    })();
  });
  server.maxConnections = o.maxConnections;
  // With no 'timeout' listener, an idle socket is destroyed.
  server.setTimeout(o.idleTimeoutMs);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host || undefined, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  hosts = hostPolicy(addr, where.host, o.hosts);
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
