// The POP3 probes (pop3 with STLS, pop3s) against a real dovecot: greeting, login accepted and
// refused, STLS and POP3S with certificates that pass and fail verification; fake servers for
// a wrong greeting, silence after it, garbage and an endless line.
import { createServer } from 'node:net';
import t from 'tap';
import { Pop3Checker, pop3, pop3s } from '../../checks/pop3.js';
import { MAIL_PASSWORD, MAIL_USER, startDovecot } from './mail-servers.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
const inTime = (ms: number, timeoutMs = 5000): boolean => ms < timeoutMs + 3000;

t.test('against dovecot', async (t) => {
  const dove = await startDovecot();
  t.teardown(() => dove.stop());
  const { cert } = selfSigned();
  const trusted = { ca: cert, servername: 'warden.test' };

  t.test('healthy: greeting and QUIT; greeting, login and QUIT', async (t) => {
    const r = await new Pop3Checker('pop3').check(dove.pop3, ctx());
    t.ok(r.healthy, r.message);
    t.match(r.message, /^POP3 -> 127\.0\.0\.1:\d+: connected; greeting \+OK; QUIT \+OK$/);
    const login = await pop3
      .create({ user: MAIL_USER, password: MAIL_PASSWORD })
      .check(dove.pop3, ctx());
    t.ok(login.healthy, login.message);
    t.match(login.message, /^POP3, login warden -> .*greeting \+OK; login warden \+OK; QUIT \+OK$/);
    t.notOk(login.message.includes(MAIL_PASSWORD), 'no password in the message');
  });

  t.test('login refused reads differently from a server down', async (t) => {
    // From a source address of its own: dovecot delays every later login from an address
    // that failed one (2 s, 4 s, 8 s...).
    const r = await pop3
      .create({ user: MAIL_USER, password: 'wrong', bindAddress: '127.0.0.3' })
      .check(dove.pop3, ctx());
    t.notOk(r.healthy);
    t.match(
      r.message,
      /connected; greeting \+OK; login refused: -ERR "\[AUTH\] Authentication failed\."$/,
    );
    t.notOk(r.message.includes('wrong'));
  });

  t.test('STLS: verified with the cert as ca, refused when self-signed', async (t) => {
    const ok = await pop3
      .create({ starttls: 'required', tls: trusted, user: MAIL_USER, password: MAIL_PASSWORD })
      .check(dove.pop3, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(ok.message, /greeting \+OK; STLS: TLSv1\.[23]; login warden \+OK; QUIT \+OK$/);
    const bad = await pop3.create({ starttls: 'opportunistic' }).check(dove.pop3, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /greeting \+OK; self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
  });

  t.test('POP3S: verified or not', async (t) => {
    const ok = await pop3s
      .create({ tls: trusted, user: MAIL_USER, password: MAIL_PASSWORD })
      .check(dove.pop3s, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(
      ok.message,
      /^POP3S, login warden -> .*: connected; TLS TLSv1\.[23]; greeting \+OK; login/,
    );
    const bad = await pop3s.create({}).check(dove.pop3s, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
  });
});

t.test('a closed port is refused', async (t) => {
  const r = await new Pop3Checker('pop3').check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('STLS refused: required fails, opportunistic goes on in the clear', async (t) => {
  const srv = await listen(
    createServer((s) => {
      s.write('+OK ready\r\n');
      s.on('data', (d) => {
        const c = d.toString();
        if (c.startsWith('STLS')) s.write('-ERR not here\r\n');
        if (c.startsWith('QUIT')) s.end('+OK bye\r\n');
      });
    }),
  );
  t.teardown(() => srv.stop());
  const req = await pop3.create({ starttls: 'required' }).check(srv.target, ctx());
  t.notOk(req.healthy);
  t.match(req.message, /greeting \+OK; STLS refused: -ERR "not here"$/);
  const opp = await pop3.create({ starttls: 'opportunistic' }).check(srv.target, ctx());
  t.ok(opp.healthy, opp.message);
  t.match(opp.message, /greeting \+OK; STLS refused: -ERR "not here"; QUIT \+OK$/);
});

t.test('a wrong greeting, silence, garbage, an endless line', async (t) => {
  const err = await listen(createServer((s) => s.write('-ERR too many connections\r\n')));
  const smtp = await listen(createServer((s) => s.write('220 mail ESMTP\r\n')));
  const silent = await listen(createServer((s) => s.write('+OK hello\r\n')));
  const garbage = await listen(
    createServer((s) => {
      s.write('+OK hello\r\n');
      s.on('data', () => s.write('\x1b[31mwhat\r\n'));
    }),
  );
  const endless = await listen(
    createServer((s) => {
      s.write('+OK ');
      const timer = setInterval(() => s.write('y'.repeat(2048)), 5);
      s.on('close', () => clearInterval(timer));
    }),
  );
  t.teardown(async () => {
    for (const s of [err, smtp, silent, garbage, endless]) await s.stop();
  });
  const e = await new Pop3Checker('pop3').check(err.target, ctx());
  t.notOk(e.healthy);
  t.match(e.message, /connected; greeting -ERR "too many connections", expected \+OK$/);
  const s = await new Pop3Checker('pop3').check(smtp.target, ctx());
  t.notOk(s.healthy);
  t.match(
    s.message,
    /connected; reply is not in the protocol: "220 mail ESMTP", waiting for the greeting$/,
  );
  const quiet = await pop3.create({ user: 'u', password: 'p' }).check(silent.target, ctx(500));
  t.notOk(quiet.healthy);
  t.match(quiet.message, /greeting \+OK; timed out after 500 ms waiting for the USER reply$/);
  t.ok(inTime(quiet.durationMs, 500), `took ${quiet.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the silent server sees the close');
  const g = await new Pop3Checker('pop3').check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /greeting \+OK; reply is not in the protocol: "\\x1b\[31mwhat", waiting for the QUIT reply$/,
  );
  const long = await new Pop3Checker('pop3').check(endless.target, ctx());
  t.notOk(long.healthy);
  t.match(
    long.message,
    /connected; a reply line longer than 8192 bytes, waiting for the greeting$/,
  );
});

t.test('options: login rules and the key', async (t) => {
  const problems: string[] = [];
  pop3.validate?.({ user: 'u' }, (o, p) => problems.push(`${o}: ${p}`));
  pop3.validate?.({ password: 'p' }, (o, p) => problems.push(`${o}: ${p}`));
  pop3.validate?.({ tls: { verify: false } }, (o, p) => problems.push(`${o}: ${p}`));
  t.same(problems, [
    'password: logging in needs a password (password, password_file or password_env)',
    'password: a password needs a user to log in as',
    'tls: TLS settings apply to STLS: set starttls to opportunistic or required',
  ]);
  t.not(
    new Pop3Checker('pop3', { user: 'u', password: 'a' }).key,
    new Pop3Checker('pop3', { user: 'u', password: 'b' }).key,
  );
});
