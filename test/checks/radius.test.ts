// The RADIUS probe against a real FreeRADIUS (Debian's freeradius, a throwaway instance on
// 127.0.0.1 and ::1: see freeradius.ts) for accept, reject, a long password, a wrong secret
// and a closed port; against small responders of our own (node:dgram, replies built here
// with node:crypto per RFC 2865 §3 and RFC 3579) for what a real server will not do: a forged
// authenticator, garbage, an oversized packet, a stray reply, a challenge, silence.
import { createHash, createHmac } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import t from 'tap';
import {
  RadiusChecker,
  decodeReply,
  hidePassword,
  radius,
  type RadiusCheckOptions,
} from '../../checks/radius.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { startFreeradius, freeUdpPort } from './freeradius.js';

const SECRET = 'testing123-warden';
const ctx = (timeoutMs = 4000, signal = new AbortController().signal) => ({ signal, timeoutMs });
const check = (o: RadiusCheckOptions, target: CheckTarget, timeoutMs = 4000) =>
  new RadiusChecker(o).check(target, ctx(timeoutMs));
/** Judged within the deadline plus a margin for a machine shared by several agents. */
const MARGIN = 3000;

t.test('password hiding (RFC 2865 §5.2) round-trips, one block and several', async (t) => {
  const auth = Buffer.alloc(16, 7);
  const secret = Buffer.from('s');
  for (const pw of ['', 'short', 'exactly-16-bytes', 'a'.repeat(40)]) {
    const hidden = hidePassword(Buffer.from(pw), secret, auth);
    t.equal(hidden.length, Math.max(16, Math.ceil(pw.length / 16) * 16), `length for ${pw.length}`);
    t.equal(unhide(hidden, secret, auth), pw);
  }
});

t.test('against FreeRADIUS', async (t) => {
  const server = await startFreeradius({
    secret: SECRET,
    users: { warden: 'pw', longpass: 'a-password-of-more-than-two-md5-blocks!!' },
  });
  t.teardown(() => server.stop());
  const on = (address: '127.0.0.1' | '::1'): CheckTarget => ({
    family: address === '::1' ? 6 : 4,
    address,
    port: server.port,
  });

  t.test('Access-Accept is healthy, on IPv4 and IPv6', async (t) => {
    for (const address of ['127.0.0.1', '::1'] as const) {
      const r = await check({ secret: SECRET, user: 'warden', password: 'pw' }, on(address));
      t.ok(r.healthy, `${address}: ${r.message}`);
      t.match(
        r.message,
        /^RADIUS Access-Request for "warden" -> .*: sent \d+ bytes; Access-Accept$/,
      );
      t.notMatch(r.message, /pw\b/, 'no password in the message');
    }
    const long = await check(
      { secret: SECRET, user: 'longpass', password: 'a-password-of-more-than-two-md5-blocks!!' },
      on('127.0.0.1'),
    );
    t.ok(long.healthy, `a three-block password: ${long.message}`);
    const nas = await check(
      { secret: SECRET, user: 'warden', password: 'pw', nasIdentifier: 'director-1' },
      on('127.0.0.1'),
    );
    t.ok(nas.healthy, `with a NAS-Identifier: ${nas.message}`);
    const unsigned = await check(
      { secret: SECRET, user: 'warden', password: 'pw', messageAuthenticator: false },
      on('::1'),
    );
    t.ok(unsigned.healthy, `without a Message-Authenticator: ${unsigned.message}`);
  });

  t.test(
    'Access-Reject: the server is up but refused; healthy only when reject is expected',
    async (t) => {
      const r = await check({ secret: SECRET, user: 'warden', password: 'wrong' }, on('127.0.0.1'));
      t.notOk(r.healthy);
      t.match(
        r.message,
        /Access-Reject: the server is up but refused the credentials; expected accept$/,
      );
      t.ok(r.durationMs < 4000 + MARGIN, `took ${r.durationMs} ms`);
      const alive = await check(
        { secret: SECRET, user: 'nobody-here', password: 'x', expect: ['accept', 'reject'] },
        on('::1'),
      );
      t.ok(alive.healthy, alive.message);
      t.match(alive.message, /; Access-Reject$/);
    },
  );

  t.test('a wrong secret', async (t) => {
    // Signed: FreeRADIUS drops a request whose Message-Authenticator fails, unanswered.
    const signed = await check(
      { secret: 'not-the-secret', user: 'warden', password: 'pw' },
      on('127.0.0.1'),
      1500,
    );
    t.notOk(signed.healthy);
    t.match(
      signed.message,
      /sent \d+ bytes; sent 3 times; timed out after 1500 ms waiting for a reply \(a server drops a request signed with another secret unanswered\)$/,
    );
    t.ok(signed.durationMs < 1500 + MARGIN, `took ${signed.durationMs} ms`);
    t.match(server.log(), /invalid Message-Authenticator/, 'the server says why it dropped it');
    // Unsigned: it answers (Access-Reject, the password decoded to garbage), signed with its
    // own secret; the reply's authenticator does not verify with ours.
    const unsigned = await check(
      { secret: 'not-the-secret', user: 'warden', password: 'pw', messageAuthenticator: false },
      on('127.0.0.1'),
    );
    t.notOk(unsigned.healthy);
    t.match(
      unsigned.message,
      /Access-Reject whose authenticator does not verify: the shared secret is probably wrong$/,
    );
  });
});

t.test('a closed port fails at once (ICMP port unreachable)', async (t) => {
  for (const address of ['127.0.0.1', '::1'] as const) {
    const port = await freeUdpPort();
    const r = await check({ secret: SECRET }, { family: address === '::1' ? 6 : 4, address, port });
    t.notOk(r.healthy);
    t.match(
      r.message,
      /sent \d+ bytes; ICMP port unreachable: nothing listens there \(ECONNREFUSED\)$/,
    );
    t.ok(r.durationMs < 1000 + MARGIN, `${address}: took ${r.durationMs} ms`);
  }
});

/** Builds a reply to `req`: code, attributes, signed with `secret` (Message-Authenticator when asked). */
function reply(
  req: Buffer,
  code: number,
  secret: string,
  attrs: Buffer[] = [],
  ma = false,
): Buffer {
  const id = req.readUInt8(1);
  const requestAuth = req.subarray(4, 20);
  const all = ma ? [Buffer.concat([Buffer.from([80, 18]), Buffer.alloc(16)]), ...attrs] : attrs;
  const body = Buffer.concat(all);
  const packet = Buffer.concat([Buffer.from([code, id, 0, 0]), requestAuth, body]);
  packet.writeUInt16BE(packet.length, 2);
  if (ma) createHmac('md5', secret).update(packet).digest().copy(packet, 22);
  createHash('md5').update(packet).update(secret).digest().copy(packet, 4);
  return packet;
}

function unhide(hidden: Buffer, secret: Buffer, auth: Buffer): string {
  const out = Buffer.alloc(hidden.length);
  let prev = auth;
  for (let i = 0; i < hidden.length; i += 16) {
    const b = createHash('md5').update(secret).update(prev).digest();
    for (let j = 0; j < 16; j++) out[i + j] = (hidden[i + j] ?? 0) ^ (b[j] ?? 0);
    prev = hidden.subarray(i, i + 16);
  }
  return out.toString().replace(/\0+$/, '');
}

interface Responder {
  readonly target: CheckTarget;
  readonly requests: Buffer[];
  stop(): Promise<void>;
}

/** A UDP server on loopback that answers each request with what `answer` returns (nothing: silence). */
async function responder(
  answer: (req: Buffer, from: RemoteInfo, socket: Socket) => Buffer | Buffer[] | undefined,
  address: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<Responder> {
  const socket = createSocket(address === '::1' ? 'udp6' : 'udp4');
  const requests: Buffer[] = [];
  socket.on('message', (msg, from) => {
    requests.push(msg);
    const out = answer(msg, from, socket);
    for (const d of out === undefined ? [] : Array.isArray(out) ? out : [out])
      socket.send(d, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return {
    target: { family: address === '::1' ? 6 : 4, address, port: socket.address().port },
    requests,
    stop: () => new Promise<void>((resolve) => socket.close(resolve)),
  };
}

t.test('own responders', async (t) => {
  t.test(
    'the request: user, hidden password, NAS address or identifier, Message-Authenticator first',
    async (t) => {
      for (const address of ['127.0.0.1', '::1'] as const) {
        const srv = await responder((req) => reply(req, 2, SECRET, [], true), address);
        const r = await check({ secret: SECRET, user: 'u1', password: 'p1' }, srv.target);
        t.ok(r.healthy, r.message);
        const req = srv.requests[0]!;
        const d = decodeReply(req);
        t.equal(d.code, 1, 'Access-Request');
        t.same(
          d.attributes.map((a) => a.type),
          [80, 1, 2, address === '::1' ? 95 : 4],
        );
        t.equal(d.attributes[1]!.value.toString(), 'u1');
        t.equal(unhide(d.attributes[2]!.value, Buffer.from(SECRET), req.subarray(4, 20)), 'p1');
        const ma = Buffer.from(req);
        ma.fill(0, 22, 38);
        t.same(
          createHmac('md5', SECRET).update(ma).digest(),
          req.subarray(22, 38),
          'Message-Authenticator',
        );
        await srv.stop();
      }
      const srv = await responder((req) => reply(req, 2, SECRET));
      await check(
        { secret: SECRET, nasIdentifier: 'director-1', messageAuthenticator: false },
        srv.target,
      );
      const d = decodeReply(srv.requests[0]!);
      t.same(
        d.attributes.map((a) => a.type),
        [1, 2, 32],
      );
      t.equal(d.attributes[2]!.value.toString(), 'director-1');
      await srv.stop();
    },
  );

  t.test('a reply signed with another secret: the secret is probably wrong', async (t) => {
    const srv = await responder((req) => reply(req, 2, 'another'));
    const r = await check({ secret: SECRET }, srv.target);
    t.notOk(r.healthy);
    t.match(
      r.message,
      /sent \d+ bytes; Access-Accept whose authenticator does not verify: the shared secret is probably wrong$/,
    );
    // A right Response Authenticator but a forged Message-Authenticator fails too.
    const forged = await responder((req) => {
      const p = reply(req, 2, SECRET, [], true);
      p[25] = (p[25] ?? 0) ^ 1;
      createHash('md5')
        .update(Buffer.concat([p.subarray(0, 4), req.subarray(4, 20), p.subarray(20)]))
        .update(SECRET)
        .digest()
        .copy(p, 4);
      return p;
    });
    const f = await check({ secret: SECRET }, forged.target);
    t.notOk(f.healthy, f.message);
    t.match(f.message, /does not verify/);
    await srv.stop();
    await forged.stop();
  });

  t.test(
    'garbage and oversized replies with our identifier are malformed; strays are ignored',
    async (t) => {
      const cases: [string, (req: Buffer) => Buffer, RegExp][] = [
        [
          'short',
          (req) => Buffer.from([2, req.readUInt8(1), 0]),
          /malformed reply \(3 bytes, shorter than a RADIUS header\)/,
        ],
        [
          'a Length past the datagram',
          (req) =>
            Buffer.concat([Buffer.from([2, req.readUInt8(1), 0xff, 0xff]), Buffer.alloc(40)]),
          /malformed reply \(Length field 65535 in a datagram of 44 bytes\)/,
        ],
        [
          'oversized (8000 bytes)',
          (req) => {
            const p = Buffer.alloc(8000, 0x41);
            p.writeUInt8(2, 0);
            p.writeUInt8(req.readUInt8(1), 1);
            p.writeUInt16BE(8000, 2);
            return p;
          },
          /malformed reply \(Length field 8000 in a datagram of 8000 bytes\)/,
        ],
        [
          'an attribute running past the end',
          (req) => {
            const p = Buffer.concat([
              Buffer.from([2, req.readUInt8(1), 0, 24]),
              Buffer.alloc(16),
              Buffer.from([18, 9, 65, 66]),
            ]);
            return p;
          },
          /malformed reply \(attribute 18 at 20 runs past the packet\)/,
        ],
      ];
      for (const [name, make, expected] of cases) {
        const srv = await responder(make);
        const r = await check({ secret: SECRET }, srv.target);
        t.notOk(r.healthy, name);
        t.match(r.message, expected, name);
        await srv.stop();
      }
      // Strays (another identifier, or text) first, then the real reply: healthy.
      const srv = await responder((req) => [
        Buffer.from('HELLO there, not RADIUS'),
        reply(Buffer.from([1, (req.readUInt8(1) + 1) % 256, ...req.subarray(2)]), 3, SECRET),
        reply(req, 2, SECRET, [Buffer.from([18, 7, ...Buffer.from('hello')])]),
      ]);
      const r = await check({ secret: SECRET }, srv.target);
      t.ok(r.healthy, r.message);
      t.match(r.message, /; Access-Accept \("hello"\)$/, 'the Reply-Message is shown');
      await srv.stop();
    },
  );

  t.test('a challenge is healthy only when expected', async (t) => {
    const srv = await responder((req) => reply(req, 11, SECRET));
    const r = await check({ secret: SECRET }, srv.target);
    t.notOk(r.healthy);
    t.match(r.message, /; Access-Challenge, expected accept$/);
    t.ok((await check({ secret: SECRET, expect: ['challenge'] }, srv.target)).healthy);
    await srv.stop();
  });

  t.test(
    'silence: resent within the deadline, same request each time, then a timeout',
    async (t) => {
      const srv = await responder(() => undefined);
      const r = await check({ secret: SECRET, messageAuthenticator: false }, srv.target, 900);
      t.notOk(r.healthy);
      t.match(
        r.message,
        /sent \d+ bytes; sent 3 times; timed out after 900 ms waiting for a reply$/,
      );
      t.ok(r.durationMs >= 890 && r.durationMs < 900 + MARGIN, `took ${r.durationMs} ms`);
      t.equal(srv.requests.length, 3, 'three tries');
      t.ok(
        srv.requests.every((q) => q.equals(srv.requests[0]!)),
        'a retransmission is the same packet',
      );
      // A reply after a retransmission is taken.
      let seen = 0;
      const late = await responder((req) => (++seen >= 2 ? reply(req, 2, SECRET) : undefined));
      const ok = await check({ secret: SECRET }, late.target, 1500);
      t.ok(ok.healthy, ok.message);
      t.match(ok.message, /sent 2 times; Access-Accept$/);
      await srv.stop();
      await late.stop();
    },
  );

  t.test('a reply from another port is not heard', async (t) => {
    const other = createSocket('udp4');
    await new Promise<void>((resolve) => other.bind(0, '127.0.0.1', resolve));
    const srv = await responder((req, from) => {
      other.send(reply(req, 2, SECRET), from.port, from.address);
      return undefined;
    });
    const r = await check({ secret: SECRET, tries: 1 }, srv.target, 600);
    t.notOk(r.healthy);
    t.match(r.message, /timed out after 600 ms/);
    other.close();
    await srv.stop();
  });

  t.test('the caller cancels: the socket is closed, the result says so', async (t) => {
    const srv = await responder(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await new RadiusChecker({ secret: SECRET }).check(srv.target, ctx(5000, ac.signal));
    t.notOk(r.healthy);
    t.match(r.message, /cancelled waiting for a reply/);
    t.ok(r.durationMs < 2000, `took ${r.durationMs} ms`);
    await srv.stop();
  });
});

t.test('the declaration: defaults, validation, the key hides nothing it needs', async (t) => {
  const problems: string[] = [];
  radius.validate?.({ secret: '', password: 'x'.repeat(129), expect: [] }, (option, problem) =>
    problems.push(`${option}: ${problem}`),
  );
  t.same(problems.sort(), [
    'expect: name at least one reply',
    'password: at most 128 bytes (RFC 2865 §5.2)',
    'secret: must not be empty',
  ]);
  const a = radius.create({ secret: 's' });
  t.equal(a.kind, 'radius');
  t.equal(
    a.key,
    radius.create({ secret: 's', user: 'ipvs-warden', expect: ['accept'] }).key,
    'defaults fill the key',
  );
  t.not(a.key, radius.create({ secret: 's', expect: ['accept', 'reject'] }).key);
});
