// The UDP probe against dnsmasq (Debian's dnsmasq-base, on 127.0.0.1 and ::1, a DNS query as
// the hex payload) and against small responders of our own (node:dgram) for silence, garbage,
// oversized replies; a closed port for ICMP port unreachable.
import { createSocket, type Socket } from 'node:dgram';
import t from 'tap';
import { UdpChecker, udp, type UdpCheckOptions } from '../../checks/udp.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { freeUdpPort } from './freeradius.js';
import { startDnsmasq, until } from './servers.js';

const ctx = (timeoutMs = 2000, signal = new AbortController().signal) => ({ signal, timeoutMs });
const check = (o: UdpCheckOptions, target: CheckTarget, timeoutMs = 2000) =>
  new UdpChecker(o).check(target, ctx(timeoutMs));
const MARGIN = 3000;

/** A DNS query, id 0x1234, RD, for A www.example.test. */
const QUERY =
  '12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 07 65 78 61 6d 70 6c 65 04 74 65 73 74 00 00 01 00 01';

t.test('against dnsmasq', async (t) => {
  const dnsmasq = await startDnsmasq(['--host-record=www.example.test,10.0.0.5']);
  t.teardown(() => dnsmasq.stop());
  const port = dnsmasq.port;
  const v4: CheckTarget = { family: 4, address: '127.0.0.1', port };
  const v6: CheckTarget = { family: 6, address: '::1', port };
  t.ok(
    await until(async () => (await check({ payloadHex: QUERY }, v4, 300)).healthy, 5000),
    'dnsmasq is up',
  );

  for (const target of [v4, v6]) {
    const any = await check({ payloadHex: QUERY }, target);
    t.ok(any.healthy, any.message);
    t.match(any.message, /^UDP request -> .*: sent 34 bytes; reply of 50 bytes$/);
    const hex = await check({ payloadHex: QUERY, expectHex: '12 34 85 80' }, target);
    t.ok(hex.healthy, hex.message);
    t.match(hex.message, /reply of 50 bytes matched bytes 12348580$/);
    const text = await check({ payloadHex: QUERY, expect: '\\x0a\\x00\\x00\\x05' }, target);
    t.ok(text.healthy, `the answer's address, in escapes: ${text.message}`);
  }
  const wrongText = await check({ payloadHex: QUERY, expect: '\\x0a\\x00\\x00\\x06' }, v4);
  t.notOk(wrongText.healthy);
  t.match(
    wrongText.message,
    /reply of 50 bytes "\\x124\\x85\\x80.*" did not match "\\n\\x00\\x00\\x06"$/,
  );
  const wrongHex = await check({ payloadHex: QUERY, expectHex: '12 35' }, v4);
  t.notOk(wrongHex.healthy);
  t.match(wrongHex.message, /reply of 50 bytes begins 12348580.* did not match bytes 1235$/);
  const regex = await check({ payloadHex: QUERY, expectRegex: /www.example.test/ }, v6);
  t.ok(regex.healthy, regex.message);
  const small = await check({ payloadHex: QUERY, maxReply: 40 }, v4);
  t.notOk(small.healthy);
  t.match(small.message, /reply of 50 bytes, more than max_reply 40$/);
});

interface Responder {
  readonly target: CheckTarget;
  readonly received: Buffer[];
  stop(): Promise<void>;
}

async function responder(
  answer: (msg: Buffer) => Buffer | undefined,
  address: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<Responder> {
  const socket: Socket = createSocket(address === '::1' ? 'udp6' : 'udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg, from) => {
    received.push(msg);
    const out = answer(msg);
    if (out) socket.send(out, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return {
    target: { family: address === '::1' ? 6 : 4, address, port: socket.address().port },
    received,
    stop: () => new Promise<void>((resolve) => socket.close(resolve)),
  };
}

t.test('the payload is sent as given: escapes, hex, or an empty datagram', async (t) => {
  const srv = await responder(() => Buffer.from('ok'));
  await check({ payload: 'PING\\r\\n\\x00' }, srv.target);
  await check({ payloadHex: 'de:ad be ef' }, srv.target);
  await check({}, srv.target);
  t.same(srv.received, [
    Buffer.from('PING\r\n\0'),
    Buffer.from('deadbeef', 'hex'),
    Buffer.alloc(0),
  ]);
  await srv.stop();
});

t.test(
  'a closed port fails at once (ICMP port unreachable), with require_reply off too',
  async (t) => {
    for (const address of ['127.0.0.1', '::1'] as const) {
      const target: CheckTarget = {
        family: address === '::1' ? 6 : 4,
        address,
        port: await freeUdpPort(),
      };
      for (const requireReply of [true, false]) {
        const r = await check({ payload: 'x', requireReply }, target, 3000);
        t.notOk(r.healthy, `${address} require_reply ${requireReply}`);
        t.match(
          r.message,
          /sent 1 bytes; ICMP port unreachable: nothing listens there \(ECONNREFUSED\)$/,
        );
        t.ok(r.durationMs < 1000 + MARGIN, `took ${r.durationMs} ms`);
      }
    }
  },
);

t.test('silence: a timeout, or healthy when no reply is required', async (t) => {
  const srv = await responder(() => undefined);
  const r = await check({ payload: 'x', expect: 'pong' }, srv.target, 400);
  t.notOk(r.healthy);
  t.match(r.message, /sent 1 bytes; timed out after 400 ms waiting for a reply matching "pong"$/);
  t.ok(r.durationMs >= 390 && r.durationMs < 400 + MARGIN, `took ${r.durationMs} ms`);
  const quiet = await check({ payload: 'x', requireReply: false }, srv.target, 400);
  t.ok(quiet.healthy, quiet.message);
  t.match(
    quiet.message,
    /sent 1 bytes; no reply and no ICMP unreachable within 400 ms \(require_reply off\)$/,
  );
  t.ok(quiet.durationMs >= 390 && quiet.durationMs < 400 + MARGIN, `took ${quiet.durationMs} ms`);
  // The caller's abort is not silence: cancelled, not healthy.
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const cancelled = await new UdpChecker({ requireReply: false }).check(
    srv.target,
    ctx(2000, ac.signal),
  );
  t.notOk(cancelled.healthy);
  t.match(cancelled.message, /cancelled waiting for a reply$/);
  await srv.stop();
});

t.test(
  'garbage does not match; an oversized reply is unhealthy; any reply will do without require_reply',
  async (t) => {
    const garbage = await responder(() => Buffer.from([0xff, 0x00, 0x13, 0x37, 0x0a]));
    const g = await check({ payload: 'PING', expect: 'PONG' }, garbage.target);
    t.notOk(g.healthy);
    t.match(g.message, /reply of 5 bytes "\\xff\\x00\\x137\\n" did not match "PONG"$/);
    const fast = await check({ payload: 'PING', requireReply: false }, garbage.target, 5000);
    t.ok(fast.healthy, 'a reply without require_reply is healthy at once');
    t.ok(fast.durationMs < 1000 + MARGIN, `took ${fast.durationMs} ms`);
    await garbage.stop();
    const big = await responder(() => Buffer.alloc(60_000, 0x50), '::1');
    const b = await check({ payload: 'x', expect: 'P' }, big.target);
    t.notOk(b.healthy);
    t.match(b.message, /reply of 60000 bytes, more than max_reply 4096$/);
    await big.stop();
  },
);

t.test('the declaration: validation and key', async (t) => {
  const problems: string[] = [];
  udp.validate?.(
    { payload: 'a', payloadHex: '00', expect: 'x', expectHex: '00', requireReply: false },
    (o, p) => problems.push(`${o}: ${p}`),
  );
  t.same(problems, [
    'payloadHex: give payload or payload_hex, not both',
    'expect: give one of expect, expect_regex and expect_hex',
    'requireReply: an expected reply needs require_reply',
  ]);
  const hexProblems: string[] = [];
  udp.options.payloadHex.check('12 3', (p) => hexProblems.push(p));
  udp.options.expectHex.check('zz', (p) => hexProblems.push(p));
  t.equal(hexProblems.length, 2, 'hex is checked');
  udp.options.payloadHex.check('12:34 56', (p) => hexProblems.push(p));
  t.equal(hexProblems.length, 2, 'colons and spaces are fine');
  t.equal(udp.create({}).key, udp.create({ requireReply: true, maxReply: 4096 }).key);
});
