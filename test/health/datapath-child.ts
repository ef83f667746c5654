// Run by datapath.test.ts in another process (a network namespace of its own, or as another
// user): a real server on 127.0.0.1, then data-path probes of it, each result one JSON line.
import { createServer } from 'node:net';
import { HttpChecker } from '../../checks/http.js';
import { TcpChecker } from '../../checks/tcp.js';
import { connectTcp } from '../../src/health/datapath.js';

const server = createServer((s) => {
  s.on('error', () => undefined); // the probe may reset it
  s.end('hello\n');
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;
const target = (mark: number) => ({
  family: 4 as const,
  address: '127.0.0.1',
  port,
  dataPath: { mark, server: '127.0.0.1' },
});

// `hang`: a data-path HTTP check of an address whose SYN never leaves (no neighbour answers):
// its result must come at its deadline, not when the kernel gives up on the connect.
if (process.argv[2] === 'hang') {
  const started = Date.now();
  const r = await new HttpChecker({ path: '/' }).check(
    { family: 4, address: '10.9.9.9', port: 80, dataPath: { mark: 7, server: '10.9.9.9' } },
    { signal: new AbortController().signal, timeoutMs: 500 },
  );
  console.log(JSON.stringify({ ms: Date.now() - started, healthy: r.healthy, message: r.message }));
  process.exit(0);
}

for (const mark of process.argv.slice(2).map(Number)) {
  const outcome = await new Promise<Record<string, unknown>>((resolve) => {
    const s = connectTcp(target(mark));
    s.once('connect', () => {
      s.destroy();
      resolve({ mark, connected: true });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ mark, error: e.code ?? e.message }));
  });
  const check = await new TcpChecker({}).check(target(mark), {
    signal: new AbortController().signal,
    timeoutMs: 2000,
  });
  console.log(
    JSON.stringify({
      ...outcome,
      healthy: check.healthy,
      local: check.local ?? false,
      message: check.message,
    }),
  );
}
server.close();
