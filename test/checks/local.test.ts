// Probe errors of the director's own are not evidence about the server: a real process with a
// real descriptor limit (prlimit) uses up its descriptors, and the real probes run against live
// servers on 127.0.0.1 must say `local`, naming EMFILE; with the descriptors back, the same
// probes in the same process are healthy, so the servers were fine all along.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import t from 'tap';
import { listen } from './servers.js';

const fixture = fileURLToPath(new URL('./local-fixture.js', import.meta.url));

interface Seen {
  readonly phase: string;
  readonly kind: string;
  readonly healthy: boolean;
  readonly local: unknown;
  readonly message: string;
}

t.test('out of descriptors: every probe says local (EMFILE), never a plain failure', async (t) => {
  const tcp = await listen(createServer());
  const http = await listen(createHttpServer((_q, res) => res.end('ok')));
  const dns = createSocket('udp4');
  dns.on('message', (msg, from) => {
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: q.questions ?? [],
      answers: [{ type: 'A', name: 'www.example.test', ttl: 60, data: '10.0.0.5' }],
    });
    dns.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
  t.teardown(async () => {
    dns.close();
    await Promise.all([tcp.stop(), http.stop()]);
  });

  // A low limit only so that filling it is quick; the fixture takes whatever is left of it.
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'prlimit',
      [
        '--nofile=64:64',
        '--',
        process.execPath,
        fixture,
        `tcp=${tcp.target.port}`,
        `http=${http.target.port}`,
        `dns=${dns.address().port}`,
        `exec=${tcp.target.port}`,
      ],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  const { held, seen } = JSON.parse(out) as { held: number; seen: Seen[] };
  t.ok(held > 0, `the fixture held ${held} descriptors`);
  const kinds = ['tcp', 'http', 'dns', 'exec'];
  for (const kind of kinds) {
    const exhausted = seen.find((s) => s.phase === 'exhausted' && s.kind === kind);
    t.match(
      exhausted,
      { healthy: false, local: true, message: /local error on this director.*\(EMFILE\)/ },
      `${kind} without descriptors: local, says EMFILE\n${exhausted?.message ?? '(none)'}`,
    );
    const freed = seen.find((s) => s.phase === 'freed' && s.kind === kind);
    t.match(
      freed,
      { healthy: true, local: undefined },
      `${kind} with descriptors again: healthy\n${freed?.message ?? '(none)'}`,
    );
  }
});
