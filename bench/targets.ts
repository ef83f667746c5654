// The HTTP server the host benchmarks check (bench:probes, bench:memory): a node:http server
// in a child process (bench/probes.js, argument `server`), or nginx from Debian's package,
// which takes far less of the two cores at 10,000 requests a second. Each target is one of the
// 127.x.y.z addresses on one port; both count the requests they answer.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The target server: one port on 0.0.0.0; `dead` addresses answer 503 until the next call. */
export interface Target {
  readonly port: number;
  setDead(dead: string[]): Promise<void>;
  /** Requests answered so far, by the server's own count. */
  answered(): Promise<number>;
  stop(): void;
}

/** Target i's address: its own in 127/8 (all of it is local). */
export function address(i: number): string {
  return `127.${1 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

/** BENCH_TARGET: `nginx`, or node's own server (the default). */
export function startTarget(kind: string | undefined): Promise<Target> {
  return kind === 'nginx' ? nginxTarget() : nodeTarget();
}

/** A node:http server in a child process (this file, argument `server`). */
async function nodeTarget(): Promise<Target> {
  const server: ChildProcess = fork(new URL('./probes.js', import.meta.url).pathname, ['server'], {
    stdio: 'inherit',
  });
  const port = await new Promise<number>((resolve) =>
    server.once('message', (m) => resolve(Number(m))),
  );
  return {
    port,
    setDead: (dead) =>
      new Promise((resolve) => {
        server.once('message', () => resolve());
        server.send({ dead });
      }),
    answered: () =>
      new Promise((resolve) => {
        server.once('message', (m) => resolve(Number(m)));
        server.send({ count: true });
      }),
    stop: () => void server.kill(),
  };
}

/** The status one request to `address` gets, or 0. */
function statusOf(address: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: address, port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
  });
}

/** nginx's own counts, its readings of them taken off. */
export interface NginxCounts {
  readonly accepts: number;
  readonly requests: number;
}

/** The nginx target, with what bench:peers reads of it too. */
export interface NginxTarget extends Target {
  readonly pid: number;
  /** Connections accepted and requests answered so far, by stub_status. */
  counts(): Promise<NginxCounts>;
}

/**
 * nginx with one worker, a throwaway config in a temp dir; dead addresses come from a map
 * file that a reload (SIGHUP) picks up, awaited until the first of them answers as it should.
 * `port` 0 takes a free one.
 */
export async function nginxTarget(port = 0, check = address(0)): Promise<NginxTarget> {
  // The port bound and let go first: a server already on it (a leftover nginx) would answer
  // in this one's place.
  port = await new Promise<number>((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', (e) =>
      reject(new Error(`port ${port} is taken (a leftover nginx? pgrep -af nginx): ${e.message}`)),
    );
    probe.listen(port, '0.0.0.0', () => {
      const a = probe.address();
      probe.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-nginx-'));
  const map = join(dir, 'dead.map');
  writeFileSync(map, '');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; worker_processes 1; worker_rlimit_nofile 65536;
pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  map $server_addr $dead { default 0; include ${map}; }
  server {
    listen 0.0.0.0:${port} backlog=4096;
    location = /healthz { if ($dead) { return 503 "dead"; } return 200 "ok"; }
    location = /stub_status { stub_status; }
  }
}
`,
  );
  const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
    stdio: 'inherit',
  });
  let exited: string | undefined;
  nginx.once('exit', (code, signal) => (exited = `nginx exited (${code ?? signal})`));
  nginx.once('error', (e) => (exited = `nginx: ${e.message}`));
  // stub_status counts every request and connection, this file's own too (these and its
  // readings): taken off.
  let own = 0;
  const until = async (address: string, status: number): Promise<void> => {
    for (let i = 0; i < 200 && exited === undefined; i++) {
      const got = await statusOf(address, port);
      if (got !== 0) own++;
      if (got === status) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    let log = '';
    try {
      if (exited)
        log = readFileSync(join(dir, 'error.log'), 'utf8').trim().split('\n').at(-1) ?? '';
    } catch {
      // nginx never started (not installed): no log
    }
    throw new Error(
      `${exited ?? `no ${status} from ${address}:${port} in 10 s`}${log ? `: ${log}` : ''}`,
    );
  };
  try {
    await until(check, 200);
  } catch (error) {
    nginx.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let last: string | undefined;
  const counts = (): Promise<NginxCounts> =>
    new Promise((resolve, reject) => {
      own++;
      const req = get({ host: '127.0.0.1', port, path: '/stub_status', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          // "Active connections: 1\nserver accepts handled requests\n 5 5 9\n..."
          const m = /^\s*(\d+)\s+\d+\s+(\d+)\s*$/m.exec(body);
          const [accepts, requests] = [Number(m?.[1]), Number(m?.[2])];
          if (Number.isFinite(accepts) && Number.isFinite(requests))
            resolve({ accepts: accepts - own, requests: requests - own });
          else reject(new Error(`nginx stub_status: no counts in ${JSON.stringify(body)}`));
        });
      });
      req.once('error', reject);
    });
  return {
    port,
    pid: nginx.pid ?? -1,
    setDead: async (dead) => {
      writeFileSync(map, dead.map((a) => `${a} 1;\n`).join(''));
      nginx.kill('SIGHUP');
      const probe = dead[0] ?? last;
      last = dead[0];
      if (probe) await until(probe, dead.length ? 503 : 200);
    },
    answered: async () => (await counts()).requests,
    counts,
    // At once, not on nginx's exit: bench:peers stops it as its own process exits.
    stop: () => {
      nginx.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
