// The SMTP probes (smtp, submission, smtps) against a real exim4 (greeting, EHLO, a refused
// EHLO, STARTTLS offered on 127.0.0.1 and not on ::1, SMTPS, certificates that pass and fail
// verification), and small fake servers for what exim never does: a wrong greeting, silence
// after the greeting, garbage, an endless line.
import { createServer } from 'node:net';
import t from 'tap';
import { SmtpChecker, smtp, smtps, submission } from '../../checks/smtp.js';
import { startExim } from './mail-servers.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
/** Within the deadline, with a margin for a shared machine. */
const inTime = (ms: number, timeoutMs = 5000): boolean => ms < timeoutMs + 3000;

t.test('against exim4', async (t) => {
  const exim = await startExim();
  t.teardown(() => exim.stop());
  const { cert } = selfSigned();

  t.test('healthy: greeting, EHLO, QUIT, on IPv4 and IPv6', async (t) => {
    for (const target of [exim.smtp, exim.smtp6]) {
      const r = await new SmtpChecker('smtp').check(target, ctx());
      t.ok(r.healthy, r.message);
      t.match(
        r.message,
        /^SMTP EHLO localhost -> .*: connected; greeting 220; EHLO 250; QUIT 221$/,
      );
    }
    const sub = await submission.create({ heloName: 'probe.example' }).check(exim.smtp, ctx());
    t.ok(sub.healthy, sub.message);
    t.match(sub.message, /^SMTP submission EHLO probe\.example -> /);
  });

  t.test('an EHLO name the server refuses is named as such', async (t) => {
    const r = await smtp.create({ heloName: 'refused.test' }).check(exim.smtp, ctx());
    t.notOk(r.healthy);
    t.match(r.message, /connected; greeting 220; EHLO refused: 550 "/);
  });

  t.test('STARTTLS: verified with the cert as ca and a servername', async (t) => {
    const r = await smtp
      .create({ starttls: 'required', tls: { ca: cert, servername: 'warden.test' } })
      .check(exim.smtp, ctx());
    t.ok(r.healthy, r.message);
    t.match(r.message, /greeting 220; EHLO 250; STARTTLS: TLSv1\.[23]; EHLO 250; QUIT 221$/);
  });

  t.test('STARTTLS: a self-signed certificate fails verification', async (t) => {
    for (const starttls of ['required', 'opportunistic'] as const) {
      const r = await smtp.create({ starttls }).check(exim.smtp, ctx());
      t.notOk(r.healthy, starttls);
      t.match(r.message, /EHLO 250; self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
    }
    const wrongName = await smtp
      .create({ starttls: 'required', tls: { ca: cert, servername: 'other.test' } })
      .check(exim.smtp, ctx());
    t.notOk(wrongName.healthy);
    t.match(wrongName.message, /Hostname\/IP does not match certificate's altnames/);
  });

  t.test('STARTTLS not offered (exim offers it on 127.0.0.1 only)', async (t) => {
    const required = await smtp
      .create({ starttls: 'required', tls: { verify: false } })
      .check(exim.smtp6, ctx());
    t.notOk(required.healthy);
    t.match(required.message, /greeting 220; EHLO 250; STARTTLS not offered in the EHLO reply$/);
    const opportunistic = await smtp.create({ starttls: 'opportunistic' }).check(exim.smtp6, ctx());
    t.ok(opportunistic.healthy, opportunistic.message);
    t.match(opportunistic.message, /EHLO 250; STARTTLS not offered; QUIT 221$/);
  });

  t.test('SMTPS: TLS first, verified or not', async (t) => {
    const ok = await smtps
      .create({ tls: { ca: cert, servername: 'warden.test' } })
      .check(exim.smtps, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(
      ok.message,
      /^SMTPS EHLO localhost -> .*: connected; TLS TLSv1\.[23]; greeting 220; EHLO 250; QUIT 221$/,
    );
    const bad = await smtps.create({}).check(exim.smtps, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
    t.notOk(bad.message.includes('connected'), 'not connected: the handshake failed');
  });
});

t.test('a closed port is refused', async (t) => {
  const r = await new SmtpChecker('smtp').check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('a wrong greeting: 554, and a server of another protocol', async (t) => {
  const busy = await listen(createServer((s) => s.write('554 no SMTP service here\r\n')));
  t.teardown(() => busy.stop());
  const r = await new SmtpChecker('smtp').check(busy.target, ctx());
  t.notOk(r.healthy);
  t.match(
    r.message,
    /connected; greeting 554 "no SMTP service here", expected 220 \(the server refuses this client\)$/,
  );
  const pop = await listen(createServer((s) => s.write('+OK POP3 ready\r\n')));
  t.teardown(() => pop.stop());
  const p = await new SmtpChecker('smtp').check(pop.target, ctx());
  t.notOk(p.healthy);
  t.match(
    p.message,
    /connected; reply is not in the protocol: "\+OK POP3 ready", waiting for the greeting$/,
  );
});

t.test('silence after the greeting ends at the deadline, and the socket is closed', async (t) => {
  const srv = await listen(createServer((s) => s.write('220 hello\r\n')));
  t.teardown(() => srv.stop());
  const r = await new SmtpChecker('smtp').check(srv.target, ctx(500));
  t.notOk(r.healthy);
  t.match(r.message, /connected; greeting 220; timed out after 500 ms waiting for the EHLO reply$/);
  t.ok(r.durationMs >= 490 && inTime(r.durationMs, 500), `took ${r.durationMs} ms`);
  t.ok(await until(() => srv.closed() === 1), 'the server sees the connection closed');
});

t.test('garbage after EHLO, and a line longer than the cap', async (t) => {
  const garbage = await listen(
    createServer((s) => {
      s.write('220 hi\r\n');
      s.once('data', () => s.write(Buffer.from('\x00\xff\x16garbage\r\n', 'latin1')));
    }),
  );
  t.teardown(() => garbage.stop());
  const g = await new SmtpChecker('smtp').check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /greeting 220; reply is not in the protocol: "\\x00\\xff\\x16garbage", waiting for the EHLO reply$/,
  );

  const endless = await listen(
    createServer((s) => {
      s.write('220 ');
      const timer = setInterval(() => s.write('x'.repeat(1024)), 5);
      s.on('close', () => clearInterval(timer));
    }),
  );
  t.teardown(() => endless.stop());
  const e = await new SmtpChecker('smtp').check(endless.target, ctx());
  t.notOk(e.healthy);
  t.match(e.message, /connected; a reply line longer than 8192 bytes, waiting for the greeting$/);
  t.ok(inTime(e.durationMs), `took ${e.durationMs} ms`);
  t.ok(await until(() => endless.closed() === 1), 'the probe closed the connection');
});

t.test(
  'a server without EHLO gets HELO (RFC 5321 4.1.4), unless STARTTLS is required',
  async (t) => {
    const srv = await listen(
      createServer((s) => {
        s.write('220 old\r\n');
        s.on('data', (d: Buffer) => {
          const c = d.toString();
          if (c.startsWith('EHLO')) s.write('502 what\r\n');
          else if (c.startsWith('HELO')) s.write('250 old\r\n');
          else if (c.startsWith('QUIT')) s.end('221 bye\r\n');
        });
      }),
    );
    t.teardown(() => srv.stop());
    const r = await new SmtpChecker('smtp').check(srv.target, ctx());
    t.ok(r.healthy, r.message);
    t.match(r.message, /connected; greeting 220; EHLO 502; HELO 250; QUIT 221$/);
    const req = await smtp.create({ starttls: 'required' }).check(srv.target, ctx());
    t.notOk(req.healthy);
    t.match(req.message, /greeting 220; EHLO refused: 502 "what"$/);
  },
);

t.test('options: the key, the description, tls without starttls refused', async (t) => {
  t.equal(new SmtpChecker('smtp').key, new SmtpChecker('smtp', { heloName: 'localhost' }).key);
  t.not(new SmtpChecker('smtp').key, new SmtpChecker('submission').key);
  const problems: string[] = [];
  smtp.validate?.({ tls: { verify: false } }, (o, p) => problems.push(`${o}: ${p}`));
  t.same(problems, [
    'tls: TLS settings apply to STARTTLS: set starttls to opportunistic or required',
  ]);
  t.equal(
    new SmtpChecker('smtp', { starttls: 'required' }).description,
    'SMTP EHLO localhost, STARTTLS required',
  );
});
