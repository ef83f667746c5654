// A throwaway FreeRADIUS (Debian's freeradius package) for the RADIUS probe tests: Debian's
// configuration copied to a temp dir, cut down to one virtual server that listens on a free
// port of 127.0.0.1 and ::1 (pap and files only), clients 127.0.0.1 and ::1 with a known
// secret, users in mods-config/files/authorize; it runs in the foreground as root (the
// user/group switch is taken out, since the temp dir is root's) and is killed by stop().
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Radiusd {
  readonly port: number;
  /** What the server logged (-l stdout), for a failing test's message. */
  log(): string;
  stop(): Promise<void>;
}

/** A UDP port free on both 127.0.0.1 and ::1 right now. */
export async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const v4 = createSocket('udp4');
    const v6 = createSocket({ type: 'udp6', ipv6Only: true });
    try {
      await new Promise<void>((resolve, reject) => {
        v4.once('error', reject);
        v4.bind(0, '127.0.0.1', resolve);
      });
      const port = v4.address().port;
      await new Promise<void>((resolve, reject) => {
        v6.once('error', reject);
        v6.bind(port, '::1', resolve);
      });
      return port;
    } catch {
      // taken on ::1: try another
    } finally {
      v4.close();
      try {
        v6.close();
      } catch {
        // never bound
      }
    }
  }
  throw new Error('no UDP port free on both loopbacks');
}

export async function startFreeradius(opts: {
  secret: string;
  users: Readonly<Record<string, string>>;
}): Promise<Radiusd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-radiusd-'));
  cpSync('/etc/freeradius/3.0', dir, { recursive: true, verbatimSymlinks: true });
  for (const sub of ['sites-enabled', 'mods-enabled'])
    for (const f of readdirSync(join(dir, sub))) unlinkSync(join(dir, sub, f));
  for (const mod of ['pap', 'files'])
    symlinkSync(`../mods-available/${mod}`, join(dir, 'mods-enabled', mod));
  mkdirSync(join(dir, 'log'));
  mkdirSync(join(dir, 'run'));
  const conf = join(dir, 'radiusd.conf');
  writeFileSync(
    conf,
    readFileSync(conf, 'utf8')
      .replace(/^raddbdir = .*$/m, `raddbdir = ${dir}`)
      .replace(/^logdir = .*$/m, `logdir = ${dir}/log`)
      .replace(/^run_dir = .*$/m, `run_dir = ${dir}/run`)
      .replace(/^\s*(user|group) = freerad$/gm, ''),
  );
  const quoted = (s: string): string => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  writeFileSync(
    join(dir, 'clients.conf'),
    `client lo4 {\n  ipaddr = 127.0.0.1\n  secret = ${quoted(opts.secret)}\n}\n` +
      `client lo6 {\n  ipv6addr = ::1\n  secret = ${quoted(opts.secret)}\n}\n`,
  );
  writeFileSync(
    join(dir, 'mods-config/files/authorize'),
    Object.entries(opts.users)
      .map(([user, password]) => `${user} Cleartext-Password := ${quoted(password)}\n`)
      .join(''),
  );
  const port = await freeUdpPort();
  writeFileSync(
    join(dir, 'sites-enabled/warden'),
    `server warden {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = ${port}
  }
  listen {
    type = auth
    ipv6addr = ::1
    port = ${port}
  }
  authorize {
    files
    pap
  }
  authenticate {
    pap
  }
}
`,
  );
  const child = spawn('freeradius', ['-f', '-d', dir, '-l', 'stdout'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    const poll = setInterval(() => {
      if (log.includes('Ready to process requests')) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(true);
      }
    }, 20);
    child.once('exit', () => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(false);
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
    rmSync(dir, { recursive: true, force: true });
  };
  if (!ready) {
    await stop();
    throw new Error(`freeradius did not start:\n${log}`);
  }
  return { port, log: () => log, stop };
}
