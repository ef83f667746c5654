// Run by local.test.ts (and pgsql.test.ts) under `prlimit --nofile`: takes every descriptor this
// process may still open, runs each probe named on the command line (`kind=port`) against its
// live server, then gives the descriptors back and runs them again. Prints the results as one
// JSON line.
import { closeSync, openSync } from 'node:fs';
import { DnsChecker } from '../../checks/dns.js';
import { ExecChecker } from '../../checks/exec.js';
import { HttpChecker } from '../../checks/http.js';
import { PgsqlChecker } from '../../checks/pgsql.js';
import { TcpChecker } from '../../checks/tcp.js';
import type { Checker } from '../../src/health/checker.js';
import { DB_NAME, DB_PASSWORD, DB_USER } from './dbservers.js';

const make: Record<string, () => Checker> = {
  tcp: () => new TcpChecker(),
  http: () => new HttpChecker(),
  dns: () => new DnsChecker({ name: 'www.example.test' }),
  exec: () => new ExecChecker({ command: ['/bin/true'] }),
  // A login: pg loads when this checker is made, before the descriptors go (pgsql.test.ts).
  pgsql: () => new PgsqlChecker({ user: DB_USER, password: DB_PASSWORD, database: DB_NAME }),
};
const probes: [Checker, number][] = process.argv.slice(2).map((arg) => {
  const [kind = '', port = '0'] = arg.split('=');
  const checker = make[kind];
  if (!checker)
    throw new Error(`local-fixture: no probe '${kind}' (${Object.keys(make).join(', ')})`);
  return [checker(), Number(port)];
});

interface Seen {
  readonly phase: string;
  readonly kind: string;
  readonly healthy: boolean;
  readonly local: unknown;
  readonly message: string;
}
const seen: Seen[] = [];

async function runAll(phase: string): Promise<void> {
  for (const [checker, port] of probes) {
    const r = await checker.check(
      { family: 4, address: '127.0.0.1', port },
      // Generous: a healthy probe ends when it is done, and a PostgreSQL login on a busy machine
      // (a backend forked, a password hashed) may take seconds.
      { signal: new AbortController().signal, timeoutMs: 15_000 },
    );
    // `local` read loosely: before the field existed, this fixture still had to say what it saw.
    const local = (r as unknown as Record<string, unknown>).local;
    seen.push({ phase, kind: checker.kind, healthy: r.healthy, local, message: r.message });
  }
}

const held: number[] = [];
for (;;) {
  try {
    held.push(openSync('/dev/null', 'r'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EMFILE') break;
    throw error;
  }
}
await runAll('exhausted');
for (const fd of held) closeSync(fd);
await runAll('freed');
process.stdout.write(`${JSON.stringify({ held: held.length, seen })}\n`);
