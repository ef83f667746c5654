// The Host check, with real requests and forged Host headers: the listener answers its own
// address and port (any address when it listens on all of them), localhost when it listens on
// loopback, and the names in daemon.listen_hosts. Anything else, which is what a web page that
// rebinds its own name to this address sends, gets a 421 with one line, on every path.
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { startListener } from '../../src/http/server.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { freePort, until } from '../checks/servers.js';
import { names, spawnDaemon } from '../cli/daemon.js';

async function setup(t: Test, listen: string, hosts: string[] = []): Promise<number> {
  const config = parseConfig('daemon: {backend: memory}\nvirtual_services: []\n', 'x', {});
  const backend = new MemoryBackend();
  const table = () => backend.table();
  const metrics = new WardenMetrics({ perServer: true, labels: ['remote_address'] }, table);
  const loop = new ReconcileLoop(config, { backend, log: new MemoryLog(), observer: metrics });
  const listener = await startListener(listen, loop, metrics, table, { hosts });
  t.teardown(() => listener.close());
  return Number(new URL(listener.url).port);
}

/** GET `path` from 127.0.0.1 or ::1 with `host` as the Host header, as sent. */
function get(
  port: number,
  host: string,
  path = '/healthz',
  address = '127.0.0.1',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port, path, setHost: false, headers: { host }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject).end();
  });
}

async function table(
  t: Test,
  port: number,
  cases: [string, number][],
  address = '127.0.0.1',
): Promise<void> {
  for (const [host, want] of cases) {
    const host_ = host.replaceAll('P', String(port));
    const res = await get(port, host_, '/healthz', address);
    t.equal(res.status, want, `Host: ${host_}`);
    if (want === 421) t.match(res.body, /^[^\n]+\n$/, 'one line');
  }
}

t.test('on 127.0.0.1: its address, localhost and the names given', async (t) => {
  const port = await setup(t, '127.0.0.1:0', ['warden.example', '198.51.100.7']);
  await table(t, port, [
    ['127.0.0.1:P', 200],
    ['127.0.0.1', 200],
    ['localhost:P', 200],
    ['LocalHost:P', 200],
    ['localhost.:P', 200],
    ['warden.example:P', 200],
    ['warden.example', 200],
    ['Warden.Example.:P', 200],
    ['198.51.100.7:P', 200],
    ['evil.example:P', 421],
    ['evil.example', 421],
    ['localhost.evil.example:P', 421],
    ['127.0.0.1.nip.io:P', 421],
    ['warden.example.evil.example:P', 421],
    ['127.0.0.1:1', 421],
    ['localhost:1', 421],
    ['10.0.0.1:P', 421],
    ['[::1]:P', 421],
    ['', 421],
    ['127.0.0.1:P:P', 421],
  ]);
  for (const path of ['/metrics', '/status', '/events', '/readyz', '/nope']) {
    const res = await get(port, `evil.example:${port}`, path);
    t.equal(res.status, 421, `${path}: refused`);
  }
  t.equal((await get(port, `127.0.0.1:${port}`, '/metrics')).status, 200);
});

t.test('a request without a Host (HTTP/1.0, never a browser) is answered', async (t) => {
  const port = await setup(t, '127.0.0.1:0');
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString()));
  socket.write('GET /healthz HTTP/1.0\r\n\r\n');
  t.ok(await until(() => data.includes('\r\n\r\n'), 10_000));
  t.match(data, /^HTTP\/1\.1 200 /);
});

t.test('on ::1: its address in any spelling, and localhost', async (t) => {
  const port = await setup(t, '[::1]:0');
  await table(
    t,
    port,
    [
      ['[::1]:P', 200],
      ['[0:0:0:0:0:0:0:1]:P', 200],
      ['localhost:P', 200],
      ['127.0.0.1:P', 421],
      ['[::2]:P', 421],
      ['evil.example:P', 421],
    ],
    '::1',
  );
});

t.test('on every address: any address of this host, localhost, not other names', async (t) => {
  const port = await setup(t, '0.0.0.0:0');
  await table(t, port, [
    ['127.0.0.1:P', 200],
    ['192.0.2.5:P', 200],
    ['[2001:db8::5]:P', 200],
    ['localhost:P', 200],
    ['192.0.2.5:1', 421],
    ['evil.example:P', 421],
  ]);
});

t.test('the daemon: daemon.listen_hosts reaches the listener', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-hosts-'));
  const file = join(dir, 'warden.yaml');
  const port = await freePort();
  writeFileSync(
    file,
    `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:${port}", listen_hosts: "warden.example"}\nvirtual_services: []\n`,
  );
  const d = spawnDaemon(file);
  t.teardown(() => d.proc.kill('SIGKILL'));
  t.ok(await until(() => names(d).includes('daemon.started'), 20_000), 'started');
  t.equal((await get(port, `warden.example:${port}`)).status, 200);
  t.equal((await get(port, `127.0.0.1:${port}`)).status, 200);
  t.equal((await get(port, `evil.example:${port}`)).status, 421);
  d.proc.kill('SIGTERM');
  t.same(await d.exited, { code: 0, signal: null });
});

t.test('daemon.listen_hosts: names and addresses, not ports or URLs', async (t) => {
  const read = (hosts: string): string[] => {
    try {
      return [
        ...parseConfig(`daemon: {listen_hosts: "${hosts}"}\nvirtual_services: []\n`, 'x', {}).daemon
          .listenHosts,
      ];
    } catch (e) {
      return [(e as Error).message.split('\n')[1]?.trim() ?? ''];
    }
  };
  t.same(read(''), []);
  t.same(read(' warden1.example , 10.9.0.5,[2001:db8::5], dir_1.lan. '), [
    'warden1.example',
    '10.9.0.5',
    '[2001:db8::5]',
    'dir_1.lan.',
  ]);
  t.match(read('warden1.example:9476'), [
    /"warden1\.example:9476" is not a host name or an address/,
  ]);
  t.match(read('http://warden1.example'), [/is not a host name/]);
});
