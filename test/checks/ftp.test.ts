// The FTP probe against a real vsftpd (anonymous only, AUTH TLS offered): greeting, anonymous
// login, another user refused, AUTH TLS with certificates that pass and fail verification;
// fake servers for a wrong greeting, silence, garbage, an endless line and a refused AUTH TLS.
import { createServer } from 'node:net';
import t from 'tap';
import { ANONYMOUS_PASSWORD, FtpChecker, ftp } from '../../checks/ftp.js';
import { startVsftpd } from './mail-servers.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
const inTime = (ms: number, timeoutMs = 5000): boolean => ms < timeoutMs + 3000;

t.test('against vsftpd', async (t) => {
  const vs = await startVsftpd();
  t.teardown(() => vs.stop());
  const { cert } = selfSigned();

  t.test('healthy: greeting and QUIT; an anonymous login', async (t) => {
    const r = await new FtpChecker().check(vs.ftp, ctx());
    t.ok(r.healthy, r.message);
    t.match(r.message, /^FTP -> 127\.0\.0\.1:\d+: connected; greeting 220; QUIT 221$/);
    const anon = await ftp.create({ user: 'anonymous' }).check(vs.ftp, ctx());
    t.ok(anon.healthy, anon.message);
    t.match(
      anon.message,
      /^FTP, login anonymous -> .*greeting 220; login anonymous 230; QUIT 221$/,
    );
    t.notOk(anon.message.includes(ANONYMOUS_PASSWORD));
  });

  t.test("a download, as ldirectord's request and receive", async (t) => {
    const got = await ftp
      .create({ user: 'anonymous', request: 'hello.txt', expect: /^hello from vsftpd$/m })
      .check(vs.ftp, ctx());
    t.ok(got.healthy, got.message);
    t.match(got.message, /login anonymous 230; hello\.txt: 18 bytes, matched .*; QUIT 221$/);
    const wrong = await ftp
      .create({ user: 'anonymous', request: 'hello.txt', expect: /goodbye/ })
      .check(vs.ftp, ctx());
    t.notOk(wrong.healthy);
    t.match(
      wrong.message,
      /hello\.txt: 18 bytes, no match for \/goodbye\/: "hello from vsftpd\\n"$/,
    );
    const missing = await ftp
      .create({ user: 'anonymous', request: 'nothing.txt' })
      .check(vs.ftp, ctx());
    t.notOk(missing.healthy);
    t.match(missing.message, /RETR nothing\.txt refused: 550 /);
    const long = await ftp
      .create({ user: 'anonymous', request: 'hello.txt', maxReply: 5 })
      .check(vs.ftp, ctx());
    t.notOk(long.healthy);
    t.match(long.message, /hello\.txt is longer than max_reply \(5 bytes\)$/);
  });

  t.test('login refused reads differently from a server down', async (t) => {
    const r = await ftp.create({ user: 'bob', password: 'hunter2' }).check(vs.ftp, ctx());
    t.notOk(r.healthy);
    t.match(
      r.message,
      /connected; greeting 220; login refused: 530 "This FTP server is anonymous only\."$/,
    );
    t.notOk(r.message.includes('hunter2'));
  });

  t.test('AUTH TLS: verified with the cert as ca, refused when self-signed', async (t) => {
    const ok = await ftp
      .create({
        user: 'anonymous',
        starttls: 'required',
        tls: { ca: cert, servername: 'warden.test' },
      })
      .check(vs.ftp, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(ok.message, /greeting 220; AUTH TLS: TLSv1\.[23]; login anonymous 230; QUIT 221$/);
    const bad = await ftp.create({ starttls: 'opportunistic' }).check(vs.ftp, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /greeting 220; self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
  });
});

t.test('a closed port is refused', async (t) => {
  const r = await new FtpChecker().check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('a multi-line greeting; AUTH TLS refused; PASS asked for', async (t) => {
  const srv = await listen(
    createServer((s) => {
      s.write('220-Welcome\r\nfree text in between\r\n220 ready\r\n');
      s.on('data', (d: Buffer) => {
        const c = d.toString();
        if (c.startsWith('AUTH')) s.write('500 AUTH not understood\r\n');
        else if (c.startsWith('USER')) s.write('331 password please\r\n');
        else if (c.startsWith('PASS'))
          s.write(c === 'PASS right\r\n' ? '230 ok\r\n' : '530 no\r\n');
        else if (c.startsWith('QUIT')) s.end('221 bye\r\n');
      });
    }),
  );
  t.teardown(() => srv.stop());
  const req = await ftp.create({ starttls: 'required' }).check(srv.target, ctx());
  t.notOk(req.healthy);
  t.match(req.message, /connected; greeting 220; AUTH TLS refused: 500 "AUTH not understood"$/);
  const opp = await ftp
    .create({ starttls: 'opportunistic', user: 'u', password: 'right' })
    .check(srv.target, ctx());
  t.ok(opp.healthy, opp.message);
  t.match(
    opp.message,
    /greeting 220; AUTH TLS refused: 500 "AUTH not understood"; login u 230; QUIT 221$/,
  );
  const wrong = await ftp.create({ user: 'u', password: 'wrong' }).check(srv.target, ctx());
  t.notOk(wrong.healthy);
  t.match(wrong.message, /greeting 220; login refused: 530 "no"$/);
});

t.test('a wrong greeting, silence, garbage, an endless line', async (t) => {
  const busy = await listen(createServer((s) => s.end('421 Too many users\r\n')));
  const silent = await listen(createServer((s) => s.write('220 hi\r\n')));
  const garbage = await listen(createServer((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n')));
  const endless = await listen(
    createServer((s) => {
      s.write('220-');
      const timer = setInterval(() => s.write('w'.repeat(2048)), 5);
      s.on('close', () => clearInterval(timer));
    }),
  );
  t.teardown(async () => {
    for (const s of [busy, silent, garbage, endless]) await s.stop();
  });
  const b = await new FtpChecker().check(busy.target, ctx());
  t.notOk(b.healthy);
  t.match(b.message, /connected; greeting 421 "Too many users", expected 220$/);
  const q = await ftp.create({ user: 'anonymous' }).check(silent.target, ctx(500));
  t.notOk(q.healthy);
  t.match(q.message, /greeting 220; timed out after 500 ms waiting for the USER reply$/);
  t.ok(inTime(q.durationMs, 500), `took ${q.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the silent server sees the close');
  const g = await new FtpChecker().check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /connected; reply is not in the protocol: "SSH-2\.0-OpenSSH_9\.2", waiting for the greeting$/,
  );
  const long = await new FtpChecker().check(endless.target, ctx());
  t.notOk(long.healthy);
  t.match(
    long.message,
    /connected; a reply line longer than 8192 bytes, waiting for the greeting$/,
  );
});

t.test('options: anonymous needs no password, others do', async (t) => {
  const problems: string[] = [];
  ftp.validate?.({ user: 'anonymous' }, (o, p) => problems.push(`${o}: ${p}`));
  ftp.validate?.({ user: 'bob' }, (o, p) => problems.push(`${o}: ${p}`));
  t.same(problems, [
    'password: logging in needs a password (password, password_file or password_env)',
  ]);
});

t.test('the data port from EPSV and PASV replies', async (t) => {
  const { dataPort } = await import('../../checks/ftp.js');
  const reply = (code: number, line: string) => ({ code, lines: [line], first: `${code} ${line}` });
  t.equal(dataPort(reply(229, 'Entering Extended Passive Mode (|||6446|)')), 6446);
  t.equal(dataPort(reply(229, 'EPSV ok (!!!2121!)')), 2121);
  t.equal(dataPort(reply(227, 'Entering Passive Mode (192,0,2,9,19,137).')), 19 * 256 + 137);
  t.equal(dataPort(reply(227, 'Entering Passive Mode')), undefined);
  t.equal(dataPort(reply(500, '(|||6446|)')), undefined);
});
