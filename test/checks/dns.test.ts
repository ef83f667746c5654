// The DNS probe against dnsmasq (Debian's dnsmasq-base) over UDP and TCP on 127.0.0.1 and ::1,
// and against a server of our own for the replies dnsmasq will not send.
import { Socket as UdpSocket, createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import * as dnsPacket from 'dns-packet';
import t from 'tap';
import { DnsChecker } from '../../checks/dns.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { listen, startDnsmasq, until } from './servers.js';

const ctx = (timeoutMs = 2000) => ({ signal: new AbortController().signal, timeoutMs });

t.test('against dnsmasq', async (t) => {
  const dnsmasq = await startDnsmasq([
    '--host-record=www.example.test,10.0.0.5,2001:db8::5',
    '--cname=alias.example.test,www.example.test',
    '--txt-record=txt.example.test,v=warden1',
    '--mx-host=example.test,mail.example.test,10',
    '--srv-host=_sip._udp.example.test,sip.example.test,5060,1,5',
  ]);
  t.teardown(() => dnsmasq.stop());
  const port = dnsmasq.port;
  const v4: CheckTarget = { family: 4, address: '127.0.0.1', port };
  const v6: CheckTarget = { family: 6, address: '::1', port };
  t.ok(
    await until(
      async () => (await new DnsChecker({ name: 'www.example.test' }).check(v4, ctx(300))).healthy,
      5000,
    ),
    'dnsmasq is up',
  );

  const a = await new DnsChecker({ name: 'www.example.test', expectAnswer: /^10\.0\.0\.5$/ }).check(
    v4,
    ctx(),
  );
  t.ok(a.healthy);
  t.match(
    a.message,
    /^DNS A www\.example\.test over udp -> 127\.0\.0\.1:\d+: sent \d+ bytes; reply NOERROR, 1 answer: 10\.0\.0\.5$/,
  );
  const aaaa = await new DnsChecker({
    name: 'www.example.test',
    type: 'AAAA',
    transport: 'tcp',
  }).check(v6, ctx());
  t.ok(aaaa.healthy, aaaa.message);
  t.match(
    aaaa.message,
    /^DNS AAAA www\.example\.test over tcp -> \[::1\]:\d+: connected; reply NOERROR, 1 answer: 2001:db8::5$/,
  );
  const wrong = await new DnsChecker({
    name: 'www.example.test',
    expectAnswer: /^10\.0\.0\.9$/,
  }).check(v6, ctx());
  t.notOk(wrong.healthy);
  t.match(
    wrong.message,
    /reply NOERROR, 1 answer: 10\.0\.0\.5; no answer matches \/\^10\\\.0\\\.0\\\.9\$\/$/,
  );
  const nx = await new DnsChecker({ name: 'missing.example.test' }).check(v4, ctx());
  t.notOk(nx.healthy);
  t.match(nx.message, /reply NXDOMAIN, expected NOERROR$/);
  t.ok(
    (
      await new DnsChecker({ name: 'missing.example.test', expectRcode: ['NXDOMAIN'] }).check(
        v4,
        ctx(),
      )
    ).healthy,
    'an expected NXDOMAIN is healthy',
  );
  const txt = await new DnsChecker({
    name: 'txt.example.test',
    type: 'TXT',
    expectAnswer: /^v=warden1$/,
  }).check(v4, ctx());
  t.ok(txt.healthy, txt.message);
  const mx = await new DnsChecker({
    name: 'example.test',
    type: 'MX',
    expectAnswer: /^10 mail\.example\.test$/,
    transport: 'tcp',
  }).check(v4, ctx());
  t.ok(mx.healthy, mx.message);
  const srv = await new DnsChecker({
    name: '_sip._udp.example.test',
    type: 'SRV',
    expectAnswer: /^5 1 5060 sip\.example\.test$|^1 5 5060 sip\.example\.test$/,
  }).check(v4, ctx());
  t.ok(srv.healthy, srv.message);
  const cname = await new DnsChecker({
    name: 'alias.example.test',
    type: 'CNAME',
    expectAnswer: /^www\.example\.test$/,
  }).check(v4, ctx());
  t.ok(cname.healthy, cname.message);
});

/** A UDP server that answers every query with `reply(query)` (or nothing). */
async function udpServer(
  reply: (q: Buffer) => Buffer | undefined,
): Promise<{ target: CheckTarget; close: () => void }> {
  const s = createSocket('udp4');
  s.on('message', (msg, from) => {
    const out = reply(msg);
    if (out) s.send(out, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return {
    target: { family: 4, address: '127.0.0.1', port: s.address().port },
    close: () => s.close(),
  };
}

function answerTo(q: Buffer, extra: Partial<dnsPacket.Packet> = {}): Buffer {
  const query = dnsPacket.decode(q);
  return dnsPacket.encode({
    type: 'response',
    id: query.id ?? 0,
    flags: 0,
    questions: query.questions ?? [],
    answers: [{ type: 'A', name: query.questions?.[0]?.name ?? '', data: '10.0.0.7' }],
    ...extra,
  });
}

t.test('replies dnsmasq will not send', async (t) => {
  const wrongId = await udpServer((q) => answerTo(q, { id: (q.readUInt16BE(0) + 1) & 0xffff }));
  const r1 = await new DnsChecker({ name: 'x.test' }).check(wrongId.target, ctx(300));
  t.notOk(r1.healthy);
  t.match(
    r1.message,
    /sent \d+ bytes; timed out after 300 ms waiting for the reply$/,
    'a reply with another id is ignored',
  );
  wrongId.close();

  const garbage = await udpServer((q) =>
    Buffer.concat([q.subarray(0, 2), Buffer.from([0x80, 0, 0, 1, 0, 9, 0xff])]),
  );
  const r2 = await new DnsChecker({ name: 'x.test' }).check(garbage.target, ctx());
  t.notOk(r2.healthy);
  t.match(r2.message, /sent \d+ bytes; malformed reply: /);
  garbage.close();

  const truncated = await udpServer((q) => answerTo(q, { flags: dnsPacket.TRUNCATED_RESPONSE }));
  const r3 = await new DnsChecker({ name: 'x.test' }).check(truncated.target, ctx());
  t.notOk(r3.healthy);
  t.match(r3.message, /reply truncated \(TC\); use transport tcp$/);
  truncated.close();

  const good = await udpServer((q) => answerTo(q));
  const r4 = await new DnsChecker({ name: 'x.test' }).check(good.target, ctx());
  t.ok(r4.healthy, 'our own server answers correctly');
  t.match(r4.message, /reply NOERROR, 1 answer: 10\.0\.0\.7$/);
  good.close();

  const silent = await udpServer(() => undefined);
  const r5 = await new DnsChecker({ name: 'x.test' }).check(silent.target, ctx(200));
  t.notOk(r5.healthy);
  t.match(r5.message, /timed out after 200 ms waiting for the reply$/);
  silent.close();

  const refused = await udpServer(() => undefined);
  refused.close();
  const r8 = await new DnsChecker({ name: 'x.test' }).check(refused.target, ctx(2000));
  t.notOk(r8.healthy);
  t.match(r8.message, /connection refused \(ECONNREFUSED\)$/, 'a closed UDP port fails at once');
  t.ok(r8.durationMs < 1000);

  const closing = await listen(createServer((s) => s.end()));
  const r6 = await new DnsChecker({ name: 'x.test', transport: 'tcp' }).check(
    closing.target,
    ctx(),
  );
  t.notOk(r6.healthy);
  t.match(r6.message, /connected; connection closed without a reply$/);
  await closing.stop();

  const half = await listen(createServer((s) => s.end(Buffer.from([0, 40, 1, 2, 3]))));
  const r7 = await new DnsChecker({ name: 'x.test', transport: 'tcp' }).check(half.target, ctx());
  t.notOk(r7.healthy);
  t.match(r7.message, /connection closed after 5 bytes of a reply/);
  await half.stop();
});

t.test('a cancel while the send is pending completes the check once', async (t) => {
  // The real socket and a real server; only the send's completion is held back, as libuv holds
  // it when a datagram cannot leave at once. The check is cancelled meanwhile (a reload, a
  // stop); then the send completes with the error a send cut off by the close gets.
  const server = await udpServer(() => undefined);
  t.teardown(() => server.close());
  const controller = new AbortController();
  const proto = UdpSocket.prototype;
  // Kept to be called with the socket as `this`, and put back.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const { send, close } = proto;
  let closes = 0;
  let completeSend: (late: Error | null) => void = () => undefined;
  const sendHeld = new Promise<void>((held) => {
    proto.send = function (this: UdpSocket, ...args: unknown[]): void {
      const callback = args.pop() as (error: Error | null, bytes?: number) => void;
      (send as (...a: unknown[]) => void).call(
        this,
        ...args,
        (error: Error | null, bytes?: number) => {
          completeSend = (late) => callback(late ?? error, bytes);
          held();
        },
      );
      controller.abort();
    } as typeof proto.send;
  });
  proto.close = function (this: UdpSocket, ...args: Parameters<typeof close>) {
    closes++;
    return close.apply(this, args);
  };
  t.teardown(() => {
    proto.send = send;
    proto.close = close;
  });

  const result = await new DnsChecker({ name: 'x.test' }).check(server.target, {
    signal: controller.signal,
    timeoutMs: 5000,
  });
  t.notOk(result.healthy);
  t.match(result.message, /: cancelled waiting for the reply$/);
  await sendHeld;
  const cancelled = Object.assign(new Error('send ECANCELED'), { code: 'ECANCELED' });
  t.doesNotThrow(() => completeSend(cancelled), 'the late completion is ignored');
  t.equal(closes, 1, 'the socket is closed once');
  t.doesNotThrow(() => completeSend(null), 'a late success too');
  t.equal(closes, 1);
  t.match(result.message, /: cancelled waiting for the reply$/);
});
