// Data-path connections (src/health/datapath.ts) on this machine's kernel: the mark is on the
// socket before its connect (a policy rule that refuses the mark refuses the connection, in a
// network namespace of the test's own), the source is this director's address towards the real
// server, and a director that may not mark (no CAP_NET_ADMIN) gets a local result, not a down
// server. The IPVS half (a fwmark service per real server, DR and TUN) is in test/vm/.
import { execFile } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { getsockopt } from 'sockopt';
import { connectTcp, sourceTowards } from '../../src/health/datapath.js';

const child = fileURLToPath(new URL('./datapath-child.js', import.meta.url));

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    // Without tap's NODE_OPTIONS: its process-info hook would write where another user cannot.
    execFile(
      cmd,
      args,
      { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }),
    ),
  );
}

const lines = (out: string): Record<string, unknown>[] =>
  out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('the source towards a server is what the route lookup picks', async (t) => {
  t.equal(await sourceTowards(4, '127.0.0.1', 80), '127.0.0.1');
  t.equal(await sourceTowards(6, '::1', 80), '::1');
});

t.test('a data-path connection: marked, bound where asked, connected', async (t) => {
  const seen: string[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    seen.push(s.remoteAddress ?? '');
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const connect = (localAddress?: string): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connectTcp(
        { family: 4, address: '127.0.0.1', port, dataPath: { mark: 0x7a10, server: '127.0.0.1' } },
        localAddress,
      );
      s.once('connect', () => resolve(s)).once('error', reject);
    });
  const a = await connect();
  t.equal(getsockopt(a, 1, 36), 0x7a10, 'SO_MARK on the socket');
  a.destroy();
  const b = await connect('127.0.0.2');
  b.destroy();
  await new Promise((r) => setTimeout(r, 100));
  t.same(seen, ['127.0.0.1', '127.0.0.2'], 'from the source towards the server, or the one given');
});

t.test('the mark is set before connect: a rule refusing it refuses the SYN', async (t) => {
  // A network namespace of the test's own (a user namespace: no privilege needed), where
  // packets marked 0x7a10 are prohibited by policy routing (before the local table), decided
  // at connect(2).
  const script = `ip link set lo up && ip rule add pref 5 fwmark 0x7a10 prohibit && ip rule del pref 0 && ip rule add pref 10 lookup local && exec ${process.execPath} ${child} 0x7a10 0x7a11`;
  const r = await run('unshare', ['-rn', 'sh', '-c', script]);
  t.equal(r.code, 0, r.err);
  const [refused, allowed] = lines(r.out);
  t.match(refused, { mark: 0x7a10, error: 'EACCES', healthy: false, local: false });
  t.match(refused?.message, /127\.0\.0\.1:\d+ via 127\.0\.0\.1 \(mark 0x7a10\)/);
  t.match(allowed, { mark: 0x7a11, connected: true, healthy: true });
});

t.test('a data-path HTTP check whose SYN goes unanswered ends at its deadline', async (t) => {
  // 10.9.9.9 is a neighbour whose frames no one takes: the SYN goes out and nothing answers.
  const script = `ip link set lo up && ip link add vp0 type veth peer name vp1 && ip link set vp0 up && ip link set vp1 up && ip addr add 10.9.9.1/24 dev vp0 && ip neigh add 10.9.9.9 lladdr 02:00:00:00:00:09 dev vp0 nud permanent && exec ${process.execPath} ${child} hang`;
  const r = await run('unshare', ['-rn', 'sh', '-c', script]);
  t.equal(r.code, 0, r.err);
  const [result] = lines(r.out);
  t.match(result, { healthy: false, message: /timed out after 500 ms/ });
  // The deadline plus a margin for a busy machine; the kernel's own give-up takes minutes.
  t.ok(Number(result?.ms) < 5000, `${String(result?.ms)} ms`);
});

t.test(
  'without CAP_NET_ADMIN the mark is refused: a local result, not a down server',
  async (t) => {
    const r = await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      '--',
      process.execPath,
      child,
      '0x7a10',
    ]);
    t.equal(r.code, 0, r.err);
    const [result] = lines(r.out);
    t.match(result, { error: 'EPERM', healthy: false, local: true });
    t.match(result?.message, /local error on this director.*CAP_NET_ADMIN/);
  },
);
