// Real servers on loopback for the probe tests: listen on port 0 of 127.0.0.1 or ::1, count
// connections, notice when a probe tears its socket down; a self-signed certificate from openssl.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckTarget } from '../../src/health/checker.js';

export interface Listening {
  readonly target: CheckTarget;
  /** Connections accepted so far, and those the peer has closed. */
  readonly accepted: Socket[];
  closed(): number;
  stop(): Promise<void>;
}

/** Wraps any net/tls/http server: listens on port 0 of `host` and tracks its sockets. */
export async function listen(
  server: Server,
  host: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<Listening> {
  const accepted: Socket[] = [];
  let closed = 0;
  server.on('connection', (s: Socket) => {
    accepted.push(s);
    s.on('close', () => closed++);
    s.on('error', () => undefined);
    // Reading (and dropping what no handler wants) is how a server notices the peer's close.
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    target: { family: host === '::1' ? 6 : 4, address: host, port: addr.port },
    accepted,
    closed: () => closed,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of accepted) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A listener that records how each connection ended, in order: the error's code (ECONNRESET: a
 * reset) or 'end' (a FIN).
 */
export async function endings(): Promise<Listening & { readonly outcomes: string[] }> {
  const outcomes: string[] = [];
  const server = await listen(
    createServer((s: Socket) => {
      s.on('error', (e: Error & { code?: string }) => outcomes.push(e.code ?? 'error'));
      s.on('end', () => outcomes.push('end'));
    }),
  );
  return { ...server, outcomes };
}

/** A port nothing listens on (bound, then closed). */
export async function closedPort(host: '127.0.0.1' | '::1' = '127.0.0.1'): Promise<CheckTarget> {
  const l = await listen(createServer(), host);
  await l.stop();
  return l.target;
}

/** Ports freePort has handed out in this process. */
const handedOut = new Set<number>();

/**
 * A TCP port free on 127.0.0.1 right now (for servers that cannot listen on port 0), never one
 * it gave before in this process: the kernel can give a port just closed again, and a server
 * given two "free" ports that were one (dovecot's IMAP and POP3) refused to start.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const addr = s.address();
    await new Promise((r) => s.close(r));
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Waits until `cond` holds (checked every 10 ms), failing after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

let cert: { key: string; cert: string } | undefined;
/** A self-signed certificate for warden.test (and 127.0.0.1), made once per process. */
export function selfSigned(): { key: string; cert: string } {
  if (cert) return cert;
  const dir = mkdtempSync(join(tmpdir(), 'warden-cert-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=warden.test',
      '-addext',
      'subjectAltName=DNS:warden.test,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  cert = {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
  };
  return cert;
}

/**
 * dnsmasq's arguments for a throwaway server on loopback: no config file of the machine's (a
 * director with Debian's dnsmasq installed has one), no upstream, no hosts file; the records
 * given.
 */
/** An HTTP server on loopback whose health a test flips: 200 while `healthy`, else 503. */
export interface Flippable extends Listening {
  healthy: boolean;
}

export async function flippableHttp(): Promise<Flippable> {
  const s = { healthy: true } as Flippable;
  const l = await listen(
    createHttpServer((_q, res) => ((res.statusCode = s.healthy ? 200 : 503), res.end())),
  );
  return Object.assign(s, l);
}

export interface Dnsmasq {
  readonly port: number;
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

/**
 * dnsmasq on a port free for UDP and TCP (it binds both) at every listen address. Another
 * process may take the port between the look and dnsmasq's bind (the machine is shared, and
 * outgoing connections take ports from the same range): dnsmasq then exits at once, before it
 * writes its pid file, and another port is tried.
 */
export async function startDnsmasq(
  records: readonly string[],
  listen = '127.0.0.1,::1',
): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-dnsmasq-'));
  for (let attempt = 1; ; attempt++) {
    const port = await freeUdpTcpPort(listen.split(','));
    const proc = spawn('dnsmasq', dnsmasqArgs(port, dir, records, listen), {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    let exited = false;
    proc.once('exit', () => (exited = true));
    const up = await until(() => exited || existsSync(`${dir}/pid`), 10_000);
    if (up && !exited) {
      const stopped = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      return {
        port,
        proc,
        stop: async () => {
          proc.kill();
          await stopped;
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    proc.kill();
    if (attempt === 5) throw new Error(`dnsmasq did not start on ${attempt} ports`);
  }
}

/** A port no socket holds, UDP or TCP, at any of these addresses (held while looked at). */
async function freeUdpTcpPort(addresses: readonly string[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    const held: { close(): void }[] = [];
    try {
      for (const address of addresses) {
        const type = address.includes(':') ? 'udp6' : 'udp4';
        const udp = createSocket(type);
        held.push(udp);
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(port, address, () => resolve());
        });
        const tcp = createServer();
        held.push(tcp);
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, address, () => resolve());
        });
      }
      return port;
    } catch {
      // taken at one of them: another
    } finally {
      for (const h of held) h.close();
    }
  }
}

export function dnsmasqArgs(
  port: number,
  dir: string,
  records: readonly string[],
  listen = '127.0.0.1,::1',
): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--user=root',
    `--pid-file=${dir}/pid`,
    `--port=${port}`,
    `--listen-address=${listen}`,
    '--bind-interfaces',
    '--local=/example.test/',
    ...records,
  ];
}

/**
 * An nginx.conf for a throwaway nginx in `dir`: in the foreground, one process, its pid, error
 * log and temp files in `dir`, no access log; `http` goes inside the http block (server
 * blocks). `connections` raises the worker's connection and file limits (benchmarks).
 */
export function nginxConf(dir: string, http: string, connections?: number): string {
  const limit = connections ? ` worker_rlimit_nofile ${connections};` : '';
  return `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;${limit}
events {${connections ? ` worker_connections ${connections};` : ''} }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
${http}
}
`;
}
