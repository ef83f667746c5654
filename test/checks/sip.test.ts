// The SIP probe against a real SIP server (Debian's kamailio, started by the test:
// ./kamailio.ts) over UDP and TCP on 127.0.0.1 and ::1; and against small node:dgram and node:net
// servers for what kamailio will not do (silence, garbage, replies to another request, a lost
// datagram, another protocol's greeting).
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { MAX_MESSAGE, parseSipMessage, sip, SipChecker } from '../../checks/sip.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { startKamailio } from './kamailio.js';
import { closedPort, listen, until } from './servers.js';

const ctx = (timeoutMs = 3000) => ({ signal: new AbortController().signal, timeoutMs });
/** Generous: two shared cores. */
const MARGIN = 2500;

t.test('against kamailio', async (t) => {
  const kamailio = await startKamailio();
  t.teardown(() => kamailio.stop());
  const v4: CheckTarget = { family: 4, address: '127.0.0.1', port: kamailio.port };
  const v6: CheckTarget = { family: 6, address: '::1', port: kamailio.port };
  const up = await until(async () => (await new SipChecker().check(v4, ctx(300))).healthy, 10_000);
  t.ok(up, `kamailio is up: ${kamailio.log().slice(-500)}`);

  t.test('OPTIONS answered 200 over UDP and TCP, on IPv4 and IPv6', async (t) => {
    for (const transport of ['udp', 'tcp'] as const) {
      for (const target of [v4, v6]) {
        const r = await new SipChecker({ transport }).check(target, ctx());
        t.ok(r.healthy, r.message);
        const hp =
          target.family === 6 ? `\\[::1\\]:${kamailio.port}` : `127\\.0\\.0\\.1:${kamailio.port}`;
        const connected = transport === 'tcp' ? 'connected; ' : '';
        t.match(
          r.message,
          new RegExp(
            `^SIP OPTIONS over ${transport} -> ${hp}: ${connected}sent \\d+ bytes; reply 200 OK$`,
          ),
        );
      }
    }
  });

  t.test('a configured URI; a 100 Trying is waited past', async (t) => {
    for (const transport of ['udp', 'tcp'] as const) {
      const r = await sip
        .create({ uri: `sip:slow@127.0.0.1:${kamailio.port}`, transport })
        .check(v4, ctx());
      t.ok(r.healthy, r.message);
      t.match(r.message, /sent \d+ bytes; 100 Trying; reply 200 OK$/);
    }
  });

  t.test('a wrong status is unhealthy; one in the expected set is not', async (t) => {
    const busy = `sip:busy@127.0.0.1:${kamailio.port}`;
    for (const transport of ['udp', 'tcp'] as const) {
      const r = await new SipChecker({ uri: busy, transport }).check(v4, ctx());
      t.notOk(r.healthy);
      t.match(
        r.message,
        /^SIP OPTIONS sip:busy@127\.0\.0\.1:\d+ over (udp|tcp) -> 127\.0\.0\.1:\d+: .*reply 503 Service Unavailable, expected 200$/,
      );
    }
    const ok = await new SipChecker({ uri: busy, expectStatus: '200,500-599' }).check(v6, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(ok.message, /reply 503 Service Unavailable$/);
  });
});

t.test('refused: a closed port fails at once, over UDP (ICMP) and TCP', async (t) => {
  const udp = await new SipChecker().check(await closedPort(), ctx(5000));
  t.notOk(udp.healthy);
  t.match(udp.message, /connection refused \(ECONNREFUSED\)$/);
  t.ok(udp.durationMs < 2000, `${udp.durationMs} ms`);
  const udp6 = await new SipChecker().check(await closedPort('::1'), ctx(5000));
  t.notOk(udp6.healthy);
  t.match(udp6.message, /-> \[::1\]:\d+: .*connection refused \(ECONNREFUSED\)$/);
  const tcp = await new SipChecker({ transport: 'tcp' }).check(await closedPort(), ctx(5000));
  t.notOk(tcp.healthy);
  t.match(tcp.message, /: connection refused \(ECONNREFUSED\)$/);
});

/** A UDP server on 127.0.0.1 that answers each request with `reply(request, n)` (or nothing). */
async function udpServer(
  reply: (request: string, n: number) => string | Buffer | undefined,
): Promise<{ target: CheckTarget; received: () => number; close: () => void }> {
  const s = createSocket('udp4');
  let n = 0;
  s.on('message', (msg: Buffer, from: RemoteInfo) => {
    const out = reply(msg.toString(), ++n);
    if (out !== undefined) s.send(out, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return {
    target: { family: 4, address: '127.0.0.1', port: s.address().port },
    received: () => n,
    close: () => s.close(),
  };
}

/** A response to `request` (its Via, From, Call-ID, CSeq copied), with `status` and changes. */
function respond(
  request: string,
  status: string,
  change: (h: string) => string = (h) => h,
): string {
  const keep = request
    .split('\r\n')
    .filter((l) => /^(Via|From|To|Call-ID|CSeq):/.test(l))
    .join('\r\n');
  return change(`SIP/2.0 ${status}\r\n${keep}\r\nContent-Length: 0\r\n\r\n`);
}

t.test('what the request looks like', async (t) => {
  let seen = '';
  const srv = await udpServer((q) => {
    seen = q;
    return respond(q, '200 OK');
  });
  const r = await new SipChecker({ uri: 'sip:ping@example.test' }).check(srv.target, ctx());
  t.ok(r.healthy, r.message);
  const lines = seen.split('\r\n');
  t.equal(lines[0], 'OPTIONS sip:ping@example.test SIP/2.0');
  t.match(seen, /\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK[0-9a-f]+;rport\r\n/);
  t.match(seen, /\r\nFrom: <sip:warden@127\.0\.0\.1>;tag=[0-9a-f]+\r\n/);
  t.match(seen, /\r\nTo: <sip:ping@example\.test>\r\n/);
  t.match(seen, /\r\nCall-ID: [0-9a-f]+@ipvs-warden\r\n/);
  t.match(seen, /\r\nCSeq: \d+ OPTIONS\r\n/);
  t.match(seen, /\r\nMax-Forwards: 70\r\n/);
  t.match(seen, /\r\nContact: <sip:warden@127\.0\.0\.1:\d+>\r\n/);
  t.ok(seen.endsWith('\r\nContent-Length: 0\r\n\r\n'));
  srv.close();
});

t.test('UDP: silence is the deadline, with retransmissions (T1, doubling)', async (t) => {
  const srv = await udpServer(() => undefined);
  const r = await new SipChecker().check(srv.target, ctx(2500));
  t.notOk(r.healthy);
  t.match(
    r.message,
    /sent \d+ bytes; timed out after 2500 ms waiting for a final reply \(request sent 3 times\)$/,
  );
  t.ok(r.durationMs >= 2490 && r.durationMs < 2500 + MARGIN, `${r.durationMs} ms`);
  t.equal(srv.received(), 3, 'at 0, 500 and 1500 ms');
  srv.close();
});

t.test('UDP: a lost request is retransmitted and the answer counts', async (t) => {
  const srv = await udpServer((q, n) => (n === 1 ? undefined : respond(q, '200 OK')));
  const r = await new SipChecker().check(srv.target, ctx(3000));
  t.ok(r.healthy, r.message);
  t.ok(r.durationMs >= 450 && r.durationMs < 500 + MARGIN, `${r.durationMs} ms`);
  srv.close();
});

t.test('replies to another request are ignored; a request from the server too', async (t) => {
  // Each its own datagram (one datagram is one message).
  const server = createSocket('udp4');
  server.on('message', (msg, from) => {
    const q = msg.toString();
    const send = (s: string): void => server.send(s, from.port, from.address);
    send(respond(q, '200 OK', (h) => h.replace(/Call-ID: \S+/, 'Call-ID: other@x')));
    send(respond(q, '200 OK', (h) => h.replace(/CSeq: \d+/, 'CSeq: 99999')));
    send(respond(q, '404 Not Found', (h) => h.replace(/CSeq: (\d+) OPTIONS/, 'CSeq: $1 INVITE')));
    send('OPTIONS sip:warden@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n');
  });
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  const target: CheckTarget = { family: 4, address: '127.0.0.1', port: server.address().port };
  const r = await new SipChecker().check(target, ctx(400));
  t.notOk(r.healthy);
  t.match(
    r.message,
    /timed out after 400 ms waiting for a final reply \(ignored 4 messages not answering the request\)$/,
  );
  server.close();
});

t.test('UDP: garbage fails at once', async (t) => {
  const cases: [string, (q: string) => string | Buffer, RegExp][] = [
    [
      'not SIP',
      () => 'HTTP/1.1 400 Bad Request\r\n\r\n',
      /not a SIP reply: "HTTP\/1\.1 400 Bad Request\\r\\n\\r\\n"$/,
    ],
    ['binary', () => Buffer.from([0, 1, 2, 0xff]), /not a SIP reply: /],
    [
      'a status out of range',
      (q) => respond(q, '999 Nine'),
      /not a SIP reply: "SIP\/2\.0 999 Nine/,
    ],
    [
      'a header without a colon',
      (q) => respond(q, '200 OK', (h) => h.replace('Call-ID: ', 'Call-ID ')),
      /not a SIP reply: "SIP\/2\.0 200 OK/,
    ],
  ];
  for (const [name, reply, expected] of cases) {
    const srv = await udpServer(reply);
    const r = await new SipChecker().check(srv.target, ctx(3000));
    t.notOk(r.healthy, name);
    t.match(r.message, expected, `${name}: ${r.message}`);
    t.ok(r.durationMs < 1000, `${name}: ${r.durationMs} ms`);
    srv.close();
  }
});

t.test('TCP: another protocol greets, garbage, silence, a close, a flood', async (t) => {
  const greeter = await listen(createServer((s) => s.write('220 mail.example ESMTP\r\n')));
  const g = await new SipChecker({ transport: 'tcp' }).check(greeter.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /connected; sent \d+ bytes; not a SIP reply: "220 mail\.example ESMTP\\r\\n"$/,
  );
  t.ok(await until(() => greeter.closed() === 1), 'closed after a greeting');
  await greeter.stop();

  const silent = await listen(createServer(() => undefined));
  const s = await new SipChecker({ transport: 'tcp' }).check(silent.target, ctx(500));
  t.notOk(s.healthy);
  t.match(
    s.message,
    /connected; sent \d+ bytes; timed out after 500 ms waiting for a final reply$/,
  );
  t.ok(s.durationMs >= 490 && s.durationMs < 500 + MARGIN, `${s.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the server sees the connection closed');
  await silent.stop();

  const closing = await listen(createServer((c: Socket) => c.once('data', () => c.end())));
  const c = await new SipChecker({ transport: 'tcp' }).check(closing.target, ctx());
  t.notOk(c.healthy);
  t.match(c.message, /sent \d+ bytes; connection closed by the server waiting for a final reply$/);
  await closing.stop();

  const half = await listen(
    createServer((c: Socket) => c.once('data', () => c.end('SIP/2.0 200 OK\r\nCall-'))),
  );
  const h = await new SipChecker({ transport: 'tcp' }).check(half.target, ctx());
  t.notOk(h.healthy);
  t.match(h.message, /connection closed after part of a reply: "SIP\/2\.0 200 OK\\r\\nCall-"$/);
  await half.stop();

  const flood = await listen(
    createServer((c: Socket) =>
      c.once('data', () => {
        c.write('SIP/2.0 200 OK\r\n');
        const line = Buffer.from(`X-Pad: ${'a'.repeat(1000)}\r\n`);
        const write = (): void => {
          while (!c.destroyed && c.write(line));
          if (!c.destroyed) c.once('drain', write);
        };
        write();
      }),
    ),
  );
  const f = await new SipChecker({ transport: 'tcp' }).check(flood.target, ctx(5000));
  t.notOk(f.healthy);
  t.match(f.message, new RegExp(`reply headers longer than ${MAX_MESSAGE} bytes$`));
  await flood.stop();

  // Two messages in one write, the first provisional, with a body: framed by Content-Length.
  const framed = await listen(
    createServer((c: Socket) =>
      c.once('data', (d: Buffer) => {
        const q = d.toString();
        const trying = respond(q, '100 Trying', (m) =>
          m.replace('Content-Length: 0\r\n\r\n', 'Content-Length: 5\r\n\r\nhello'),
        );
        c.write(`\r\n${trying}${respond(q, '200 OK')}`);
      }),
    ),
  );
  const fr = await new SipChecker({ transport: 'tcp' }).check(framed.target, ctx());
  t.ok(fr.healthy, fr.message);
  t.match(fr.message, /sent \d+ bytes; 100 Trying; reply 200 OK$/);
  await framed.stop();
});

t.test('a caller abort ends the probe', async (t) => {
  const srv = await udpServer(() => undefined);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const r = await new SipChecker().check(srv.target, { signal: ac.signal, timeoutMs: 5000 });
  t.notOk(r.healthy);
  t.match(r.message, /cancelled waiting for a final reply$/);
  srv.close();
});

t.test('parsing and options', async (t) => {
  t.same(parseSipMessage('SIP/2.0 180 Ringing\r\ni: abc\r\nCSeq:  7   OPTIONS\r\n\r\n'), {
    kind: 'response',
    status: 180,
    reason: 'Ringing',
    callId: 'abc',
    cseq: '7 OPTIONS',
  });
  t.same(parseSipMessage('OPTIONS sip:x SIP/2.0\r\n\r\n'), { kind: 'request', method: 'OPTIONS' });
  t.same(parseSipMessage('220 hello'), { kind: 'garbage' });
  const problems: string[] = [];
  sip.options.expectStatus.check('2xx', (p) => problems.push(p));
  sip.options.uri.check('http://x', (p) => problems.push(p));
  t.equal(problems.length, 2, problems.join('; '));
  t.equal(
    new SipChecker({ transport: 'tcp', uri: 'sip:a@b' }).description,
    'SIP OPTIONS sip:a@b over tcp',
  );
  t.not(new SipChecker().key, new SipChecker({ expectStatus: '200-299' }).key);
});
