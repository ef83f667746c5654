// Run by datapath.test.ts in another process (a network namespace of its own, or as another
// user): a real server on 127.0.0.1, then data-path probes of it, each result one JSON line.
import { createServer } from 'node:net';
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
