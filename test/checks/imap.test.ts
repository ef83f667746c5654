// The IMAP probes (imap with STARTTLS, imaps) against a real dovecot: greeting, LOGIN with a
// password that needs quoting, accepted and refused, a literal, STARTTLS and IMAPS with
// certificates that pass and fail verification; fake servers for a BYE greeting, silence,
// garbage and an endless line.
import { createServer } from 'node:net';
import t from 'tap';
import { ImapChecker, imap, imapString, imaps } from '../../checks/imap.js';
import { MAIL_PASSWORD, MAIL_USER, startDovecot } from './mail-servers.js';
import { closedPort, listen, selfSigned, until } from './servers.js';

const ctx = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
const inTime = (ms: number, timeoutMs = 5000): boolean => ms < timeoutMs + 3000;

t.test('IMAP strings: quoted with escapes, or a literal', async (t) => {
  t.same(imapString('plain'), { quoted: '"plain"' });
  t.same(imapString('a"b\\c d'), { quoted: '"a\\"b\\\\c d"' });
  t.same(imapString('pässword'), { literal: 'p\xc3\xa4ssword' }, 'UTF-8 bytes in a literal');
  t.same(imapString('two\r\nlines'), { literal: 'two\r\nlines' });
});

t.test('against dovecot', async (t) => {
  const dove = await startDovecot();
  t.teardown(() => dove.stop());
  const { cert } = selfSigned();
  const trusted = { ca: cert, servername: 'warden.test' };
  const login = { user: MAIL_USER, password: MAIL_PASSWORD };

  t.test('healthy: greeting and LOGOUT, on IPv4 and IPv6; with LOGIN', async (t) => {
    for (const target of [dove.imap, dove.imap6]) {
      const r = await new ImapChecker('imap').check(target, ctx());
      t.ok(r.healthy, r.message);
      t.match(r.message, /^IMAP -> .*: connected; greeting OK; LOGOUT OK$/);
    }
    const r = await imap.create(login).check(dove.imap, ctx());
    t.ok(r.healthy, r.message);
    t.match(
      r.message,
      /^IMAP, login warden -> .*: connected; greeting OK; login warden OK; LOGOUT OK$/,
    );
    t.notOk(r.message.includes(MAIL_PASSWORD), 'no password in the message');
  });

  t.test('login refused reads differently from a server down', async (t) => {
    // From a source address of its own: dovecot delays every later login from an address
    // that failed one (2 s, 4 s, 8 s...). A password that goes as a literal.
    const r = await imap
      .create({ user: MAIL_USER, password: 'wrong ünicode', bindAddress: '127.0.0.3' })
      .check(dove.imap, ctx());
    t.notOk(r.healthy);
    t.match(
      r.message,
      /connected; greeting OK; login refused: NO "\[AUTHENTICATIONFAILED\] Authentication failed\."$/,
    );
    t.notOk(r.message.includes('wrong'));
  });

  t.test('STARTTLS: verified with the cert as ca, refused when self-signed', async (t) => {
    const ok = await imap
      .create({ ...login, starttls: 'required', tls: trusted })
      .check(dove.imap6, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(ok.message, /greeting OK; STARTTLS: TLSv1\.[23]; login warden OK; LOGOUT OK$/);
    const bad = await imap.create({ starttls: 'required' }).check(dove.imap, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /greeting OK; self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
  });

  t.test('IMAPS: verified or not', async (t) => {
    const ok = await imaps.create({ ...login, tls: trusted }).check(dove.imaps, ctx());
    t.ok(ok.healthy, ok.message);
    t.match(
      ok.message,
      /^IMAPS, login warden -> .*: connected; TLS TLSv1\.[23]; greeting OK; login warden OK; LOGOUT OK$/,
    );
    const bad = await imaps.create({}).check(dove.imaps, ctx());
    t.notOk(bad.healthy);
    t.match(bad.message, /: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
  });
});

t.test('a closed port is refused', async (t) => {
  const r = await new ImapChecker('imap').check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('a literal waits for the go-ahead; a refusal before it is a login refused', async (t) => {
  const seen: string[] = [];
  const srv = await listen(
    createServer((s) => {
      s.write('* OK ready\r\n');
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let at; (at = buf.indexOf('\r\n')) >= 0;) {
          const line = buf.slice(0, at);
          buf = buf.slice(at + 2);
          seen.push(line);
          if (/^w1 LOGIN "u" \{\d+\}$/.test(line)) s.write('+ go ahead\r\n');
          else if (line.startsWith('p\xc3\xa4ss')) s.write('w1 NO [AUTHENTICATIONFAILED] nope\r\n');
          else if (line.startsWith('w1 LOGIN')) s.write('w1 NO no literals today\r\n');
          else if (line.endsWith('LOGOUT')) s.end(`* BYE\r\n${line.split(' ')[0]} OK bye\r\n`);
        }
      });
    }),
  );
  t.teardown(() => srv.stop());
  const r = await imap.create({ user: 'u', password: 'päss' }).check(srv.target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /greeting OK; login refused: NO "\[AUTHENTICATIONFAILED\] nope"$/);
  t.same(seen.slice(0, 2), ['w1 LOGIN "u" {5}', 'p\xc3\xa4ss'], 'the literal went after the +');
});

t.test('a BYE greeting, another protocol, silence, garbage, an endless line', async (t) => {
  const bye = await listen(createServer((s) => s.write('* BYE too busy\r\n')));
  const pop = await listen(createServer((s) => s.write('+OK POP3\r\n')));
  const silent = await listen(createServer((s) => s.write('* OK hello\r\n')));
  const garbage = await listen(
    createServer((s) => {
      s.write('* OK hello\r\n');
      s.on('data', () => s.write('HTTP/1.1 400 Bad Request\r\n'));
    }),
  );
  const endless = await listen(
    createServer((s) => {
      s.write('* OK hello\r\n* ');
      const timer = setInterval(() => s.write('z'.repeat(2048)), 5);
      s.on('close', () => clearInterval(timer));
    }),
  );
  t.teardown(async () => {
    for (const s of [bye, pop, silent, garbage, endless]) await s.stop();
  });
  const b = await new ImapChecker('imap').check(bye.target, ctx());
  t.notOk(b.healthy);
  t.match(b.message, /connected; greeting BYE "too busy" \(the server refuses the session\)$/);
  const p = await new ImapChecker('imap').check(pop.target, ctx());
  t.notOk(p.healthy);
  t.match(
    p.message,
    /connected; reply is not in the protocol: "\+OK POP3", waiting for the greeting$/,
  );
  const q = await imap.create({ user: 'u', password: 'p' }).check(silent.target, ctx(500));
  t.notOk(q.healthy);
  t.match(q.message, /greeting OK; timed out after 500 ms waiting for the LOGIN reply$/);
  t.ok(inTime(q.durationMs, 500), `took ${q.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the silent server sees the close');
  const g = await new ImapChecker('imap').check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /greeting OK; reply is not in the protocol: "HTTP\/1\.1 400 Bad Request", waiting for the LOGOUT reply$/,
  );
  const long = await new ImapChecker('imap').check(endless.target, ctx());
  t.notOk(long.healthy);
  t.match(
    long.message,
    /greeting OK; a reply line longer than 8192 bytes, waiting for the LOGOUT reply$/,
  );
});
