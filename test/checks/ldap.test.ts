// The LDAP probe against a real OpenLDAP (Debian's slapd, started by the test: ./slapd.ts) over
// ldap://, StartTLS and ldaps:// on 127.0.0.1 and ::1; and against small node:net servers for
// what slapd will not do (another protocol's greeting, garbage, silence).
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { LdapChecker, ldap, ldaps, MAX_REPLY } from '../../checks/ldap.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { closedPort, listen, selfSigned, until } from './servers.js';
import { startSlapd, SUFFIX, USER_DN, USER_PASSWORD } from './slapd.js';

const ctx = (timeoutMs = 3000) => ({ signal: new AbortController().signal, timeoutMs });
/** Generous: two shared cores. */
const MARGIN = 2500;

t.test('against slapd', async (t) => {
  const slapd = await startSlapd();
  t.teardown(() => slapd.stop());
  const v4: CheckTarget = { family: 4, address: '127.0.0.1', port: slapd.ldapPort };
  const v6: CheckTarget = { family: 6, address: '::1', port: slapd.ldapPort };
  const tls: CheckTarget = { family: 4, address: '127.0.0.1', port: slapd.ldapsPort };
  const { cert } = selfSigned();

  t.test('anonymous bind, on IPv4 and IPv6', async (t) => {
    const r4 = await new LdapChecker('ldap', {}).check(v4, ctx());
    t.ok(r4.healthy, r4.message);
    t.match(r4.message, /^LDAP bind anonymous -> 127\.0\.0\.1:\d+: connected; bound anonymous$/);
    const r6 = await ldap.create({}).check(v6, ctx());
    t.ok(r6.healthy, r6.message);
    t.match(r6.message, /^LDAP bind anonymous -> \[::1\]:\d+: connected; bound anonymous$/);
  });

  t.test('ldirectord-like: anonymous bind, search the base, expect its DN', async (t) => {
    const r = await new LdapChecker('ldap', { base: SUFFIX, expectDn: /^dc=example/ }).check(
      v4,
      ctx(),
    );
    t.ok(r.healthy, r.message);
    t.match(
      r.message,
      /connected; bound anonymous; search "dc=example,dc=test": 1 entry, first "dc=example,dc=test"$/,
    );
    const root = await new LdapChecker('ldap', { base: '' }).check(v4, ctx());
    t.ok(root.healthy, root.message);
    t.match(root.message, /search root DSE: 1 entry, first ""$/);
  });

  t.test('simple bind as a user, search with an attribute match', async (t) => {
    const r = await new LdapChecker('ldap', {
      bindDn: USER_DN,
      password: USER_PASSWORD,
      base: SUFFIX,
      scope: 'sub',
      filter: '(uid=monitor)',
      expectAttribute: 'cn',
      expectValue: /^Monitor$/,
    }).check(v4, ctx());
    t.ok(r.healthy, r.message);
    t.match(
      r.message,
      /bound as uid=monitor,dc=example,dc=test; search "dc=example,dc=test": 1 entry, first "uid=monitor,dc=example,dc=test"; cn: "Monitor"$/,
    );
    t.notMatch(r.message, USER_PASSWORD);
  });

  t.test('a wrong password: server up, bind refused', async (t) => {
    const r = await new LdapChecker('ldap', { bindDn: USER_DN, password: 'wrong' }).check(
      v4,
      ctx(),
    );
    t.notOk(r.healthy);
    t.match(
      r.message,
      /connected; server up, bind as uid=monitor,dc=example,dc=test refused: invalidCredentials \(49\)$/,
    );
    t.notMatch(r.message, /wrong/);
  });

  t.test('searches that find nothing, or not what is expected', async (t) => {
    const none = await new LdapChecker('ldap', {
      base: SUFFIX,
      scope: 'sub',
      filter: '(uid=nobody)',
    }).check(v4, ctx());
    t.notOk(none.healthy);
    t.match(
      none.message,
      /bound anonymous; search "dc=example,dc=test": no entries match \(uid=nobody\)$/,
    );
    const missing = await new LdapChecker('ldap', { base: `ou=gone,${SUFFIX}` }).check(v4, ctx());
    t.notOk(missing.healthy);
    t.match(
      missing.message,
      /bound anonymous; server up, search "ou=gone,dc=example,dc=test" failed: noSuchObject \(32\)$/,
    );
    const wrongValue = await new LdapChecker('ldap', {
      base: USER_DN,
      expectAttribute: 'description',
      expectValue: /^web server$/,
    }).check(v6, ctx());
    t.notOk(wrongValue.healthy);
    t.match(
      wrongValue.message,
      /1 entry, first "uid=monitor,dc=example,dc=test"; no entry has description matching \/\^web server\$\/; description of the first: "health probe account"$/,
    );
    const wrongDn = await new LdapChecker('ldap', { base: SUFFIX, expectDn: /^ou=/ }).check(
      v4,
      ctx(),
    );
    t.notOk(wrongDn.healthy);
    t.match(wrongDn.message, /no entry has a DN matching \/\^ou=\/$/);
    const absent = await new LdapChecker('ldap', {
      base: SUFFIX,
      expectAttribute: 'mail',
    }).check(v4, ctx());
    t.notOk(absent.healthy);
    t.match(absent.message, /no entry has mail; mail of the first: none$/);
  });

  t.test(
    'StartTLS: a self-signed certificate fails verification; trusted, it passes',
    async (t) => {
      const bad = await new LdapChecker('ldap', { starttls: {} }).check(v4, ctx());
      t.notOk(bad.healthy);
      t.match(
        bad.message,
        /^LDAP\+StartTLS bind anonymous -> 127\.0\.0\.1:\d+: connected; self-signed certificate/,
      );
      const good = await new LdapChecker('ldap', {
        starttls: { ca: cert, servername: 'warden.test' },
        bindDn: USER_DN,
        password: USER_PASSWORD,
      }).check(v4, ctx());
      t.ok(good.healthy, good.message);
      t.match(
        good.message,
        /connected; StartTLS TLSv1\.[23]; bound as uid=monitor,dc=example,dc=test$/,
      );
      const byAddress = await new LdapChecker('ldap', { starttls: { ca: cert } }).check(v4, ctx());
      t.ok(byAddress.healthy, `the certificate names 127.0.0.1 too: ${byAddress.message}`);
      const wrongName = await new LdapChecker('ldap', {
        starttls: { ca: cert, servername: 'other.test' },
      }).check(v4, ctx());
      t.notOk(wrongName.healthy);
      t.match(wrongName.message, /connected; .*other\.test/);
      const unverified = await new LdapChecker('ldap', { starttls: { verify: false } }).check(
        v4,
        ctx(),
      );
      t.ok(unverified.healthy, unverified.message);
    },
  );

  t.test(
    'ldaps: verification fails on a self-signed certificate, passes when trusted',
    async (t) => {
      const bad = await ldaps.create({}).check(tls, ctx());
      t.notOk(bad.healthy);
      t.match(
        bad.message,
        /^LDAPS bind anonymous -> 127\.0\.0\.1:\d+: connected; self-signed certificate/,
      );
      const good = await ldaps
        .create({ tls: { ca: cert, servername: 'warden.test' }, base: SUFFIX })
        .check(tls, ctx());
      t.ok(good.healthy, good.message);
      t.match(
        good.message,
        /: connected; TLS TLSv1\.[23]; bound anonymous; search "dc=example,dc=test": 1 entry/,
      );
      const unverified = await new LdapChecker('ldaps', {
        tls: { verify: false },
        bindDn: USER_DN,
        password: 'wrong',
      }).check(tls, ctx());
      t.notOk(unverified.healthy);
      t.match(
        unverified.message,
        /TLS TLSv1\.[23]; server up, bind as .* refused: invalidCredentials \(49\)$/,
      );
    },
  );

  t.test('the probe unbinds and closes every connection it opened', async (t) => {
    const count = (re: RegExp): number => slapd.log().match(re)?.length ?? 0;
    const closedAll = await until(() => count(/ ACCEPT from /g) === count(/ closed/g), 5000);
    t.ok(closedAll, `accepted ${count(/ ACCEPT from /g)}, closed ${count(/ closed/g)}`);
    t.ok(count(/ UNBIND/g) >= 10, `${count(/ UNBIND/g)} unbinds`);
  });
});

t.test('refused: nothing listens', async (t) => {
  const r = await new LdapChecker('ldap', {}).check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(
    r.message,
    /^LDAP bind anonymous -> 127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\)$/,
  );
  const s = await ldaps.create({}).check(await closedPort('::1'), ctx());
  t.notOk(s.healthy);
  t.match(s.message, /-> \[::1\]:\d+: connection refused \(ECONNREFUSED\)$/);
});

t.test('another protocol greets: not LDAP, at once', async (t) => {
  const smtp = await listen(createServer((s) => s.write('220 mail.example ESMTP\r\n')));
  t.teardown(() => smtp.stop());
  const r = await new LdapChecker('ldap', {}).check(smtp.target, ctx(5000));
  t.notOk(r.healthy);
  t.match(r.message, /connected; not an LDAP reply: "220 mail\.example ESMTP\\r\\n"$/);
  t.ok(r.durationMs < 2000, `${r.durationMs} ms`);
  t.ok(await until(() => smtp.closed() === 1), 'the probe closed its connection');
});

t.test('garbage replies', async (t) => {
  const replies: [string, Buffer, RegExp][] = [
    [
      'not BER',
      Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'),
      /not an LDAP reply: "HTTP\/1\.1 400/,
    ],
    [
      'a length beyond the cap',
      Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]),
      new RegExp(`a reply of 2147483647 bytes, more than ${MAX_REPLY}$`),
    ],
    ['an indefinite length', Buffer.from([0x30, 0x80, 0x02, 0x01]), /not an LDAP reply: "0\\x80/],
    [
      'a SEQUENCE that is not an LDAPMessage (no protocolOp)',
      Buffer.from([0x30, 0x05, 0x02, 0x01, 0x02, 0x04, 0x00]),
      /connected; not an LDAP reply: "0\\x05\\x02\\x01\\x02\\x04\\x00"$/,
    ],
    [
      'a SEQUENCE cut short',
      Buffer.from([0x30, 0x02, 0x02, 0x01]),
      /connected; not an LDAP reply: "0\\x02\\x02\\x01"$/,
    ],
    [
      'a bind response with a malformed body',
      // messageID 2 (the bind's: ldapts counts from 2), BindResponse [APPLICATION 1] holding junk.
      Buffer.from([0x30, 0x07, 0x02, 0x01, 0x02, 0x61, 0x02, 0xff, 0xff]),
      /connected; malformed LDAP reply: "Expected 0xa: got 0xff"$/,
    ],
  ];
  for (const [name, reply, expected] of replies) {
    const srv = await listen(createServer((s: Socket) => s.once('data', () => s.write(reply))));
    const r = await new LdapChecker('ldap', {}).check(srv.target, ctx(1500));
    t.notOk(r.healthy, name);
    t.match(r.message, expected, `${name}: ${r.message}`);
    t.ok(r.durationMs < 1500 + MARGIN, `${name}: ${r.durationMs} ms`);
    t.ok(await until(() => srv.closed() === 1), `${name}: connection closed`);
    await srv.stop();
  }
  // A well-formed reply to a message never sent is ignored (RFC 4511 4.1.1.1), as ldapts does.
  const unsolicited = await listen(
    createServer((s: Socket) =>
      s.once('data', () =>
        s.write(
          Buffer.from([
            0x30, 0x0c, 0x02, 0x01, 0x63, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
          ]),
        ),
      ),
    ),
  );
  const u = await new LdapChecker('ldap', {}).check(unsolicited.target, ctx(500));
  t.notOk(u.healthy);
  t.match(u.message, /connected; timed out after 500 ms waiting for the bind reply$/);
  await unsolicited.stop();
  // A flood, framed or not, is cut at the cap.
  const flood = await listen(
    createServer((s: Socket) =>
      s.once('data', () => {
        // SEQUENCE { messageID 99, [APPLICATION 4] (a search entry) of 989 octets }, repeated.
        const entry = Buffer.alloc(1000, 0x41);
        Buffer.from([0x30, 0x82, 0x03, 0xe4, 0x02, 0x01, 0x63, 0x64, 0x82, 0x03, 0xdd]).copy(entry);
        const write = (): void => {
          while (!s.destroyed && s.write(entry));
          if (!s.destroyed) s.once('drain', write);
        };
        write();
      }),
    ),
  );
  const r = await new LdapChecker('ldap', {}).check(flood.target, ctx(5000));
  t.notOk(r.healthy);
  t.match(r.message, new RegExp(`more than ${MAX_REPLY} bytes of replies$`));
  await flood.stop();
});

t.test('a server that accepts and says nothing: the deadline, and the socket goes', async (t) => {
  for (const [name, checker] of [
    ['ldap', new LdapChecker('ldap', {})],
    ['ldap+starttls', new LdapChecker('ldap', { starttls: {} })],
    ['ldaps', new LdapChecker('ldaps', {})],
  ] as const) {
    const srv = await listen(createServer(() => undefined));
    const r = await checker.check(srv.target, ctx(500));
    t.notOk(r.healthy, name);
    const waiting =
      name === 'ldap'
        ? 'connected; timed out after 500 ms waiting for the bind reply'
        : name === 'ldaps'
          ? 'connected; timed out after 500 ms waiting for the TLS handshake'
          : 'connected; timed out after 500 ms waiting for the StartTLS reply';
    t.match(r.message, new RegExp(`: ${waiting.replace(/[+.]/g, '\\$&')}$`), name);
    t.ok(r.durationMs >= 490 && r.durationMs < 500 + MARGIN, `${name}: ${r.durationMs} ms`);
    t.ok(await until(() => srv.closed() === 1), `${name}: the server sees the connection closed`);
    await srv.stop();
  }
});

t.test('a server that closes after the bind request', async (t) => {
  const srv = await listen(createServer((s: Socket) => s.once('data', () => s.end())));
  const r = await new LdapChecker('ldap', {}).check(srv.target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /connected; connection closed by the server waiting for the bind reply$/);
  await srv.stop();
});

t.test('a server that refuses StartTLS: server up, StartTLS refused', async (t) => {
  // ExtendedResponse [APPLICATION 24] to messageID 2 (ldapts's first), resultCode protocolError.
  const refusing = Buffer.from([
    0x30, 0x0c, 0x02, 0x01, 0x02, 0x78, 0x07, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00,
  ]);
  const srv = await listen(createServer((s: Socket) => s.once('data', () => s.write(refusing))));
  const r = await new LdapChecker('ldap', { starttls: {} }).check(srv.target, ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connected; server up, StartTLS refused: protocolError \(2\)$/);
  await srv.stop();
});

t.test('a caller abort ends the probe', async (t) => {
  const srv = await listen(createServer(() => undefined));
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const r = await new LdapChecker('ldap', {}).check(srv.target, {
    signal: ac.signal,
    timeoutMs: 5000,
  });
  t.notOk(r.healthy);
  t.match(r.message, /cancelled waiting for the bind reply$/);
  t.ok(await until(() => srv.closed() === 1));
  await srv.stop();
});

t.test('validation and description', async (t) => {
  const problems: string[] = [];
  ldap.validate?.({ password: 'x', expectValue: /a/, expectDn: /b/ }, (o, p) =>
    problems.push(`${o}: ${p}`),
  );
  t.same(problems, [
    'password: a password needs bind_dn',
    'expectValue: expect_value needs expect_attribute',
    'expectDn: an expect needs a search: give base',
  ]);
  const filterProblems: string[] = [];
  ldap.options.filter.check('(uid=', (p) => filterProblems.push(p));
  t.equal(filterProblems.length, 1, 'a malformed filter is reported');
  const c = new LdapChecker('ldap', { bindDn: USER_DN, password: USER_PASSWORD, base: SUFFIX });
  t.equal(
    c.description,
    'LDAP bind as uid=monitor,dc=example,dc=test, search "dc=example,dc=test" base (objectClass=*)',
  );
  t.not(
    new LdapChecker('ldap', {}).key,
    new LdapChecker('ldap', { starttls: {} }).key,
    'StartTLS is part of the key',
  );
});
