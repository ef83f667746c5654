// The PostgreSQL check against a real PostgreSQL 15 (Debian's postgresql, a throwaway instance
// started here with TLS on a self-signed certificate), and against small fake servers for what
// a real one does not do: junk, no TLS, silence after connecting or after the SSLRequest.
import { execFile } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PgsqlChecker, pgsql } from '../../checks/pgsql.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { DB_NAME, DB_PASSWORD, DB_USER, startPostgres } from './dbservers.js';
import { closedPort, listen, until } from './servers.js';

const ctx = (timeoutMs = 5000, signal = new AbortController().signal) => ({ signal, timeoutMs });
/** The machine is slow and shared: a result may come this long after its deadline. */
const MARGIN_MS = 3000;

let db: Awaited<ReturnType<typeof startPostgres>>;
let target: CheckTarget;
t.before(async () => {
  db = await startPostgres();
  target = { family: 4, address: '127.0.0.1', port: db.port };
});
t.teardown(() => db?.stop());

const login = { user: DB_USER, password: DB_PASSWORD, database: DB_NAME } as const;
/** What the server logs when a client goes badly (none of it wanted from a check). */
const NOISE =
  /could not accept SSL|incomplete startup packet|could not receive data|unexpected EOF/;

t.test('SSLRequest only: answered S, TLS completed and closed cleanly, no log noise', async (t) => {
  const before = db.log().length;
  const r = await new PgsqlChecker().check(target, ctx());
  t.ok(r.healthy, r.message);
  t.match(
    r.message,
    /^PostgreSQL SSLRequest -> 127\.0\.0\.1:\d+: connected; SSLRequest answered S; TLS TLSv1\.3$/,
  );
  await new Promise((r) => setTimeout(r, 500));
  t.notMatch(db.log().slice(before), NOISE, 'nothing in the server log');
});

t.test('closing at the S would leave noise in the log (why the check completes TLS)', async (t) => {
  const before = db.log().length;
  const s = connect(db.port, '127.0.0.1');
  s.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  await new Promise((r) => s.once('data', r));
  s.destroy();
  t.ok(
    await until(() => NOISE.test(db.log().slice(before)), 5000),
    'the server complains about the dropped TLS handshake',
  );
});

t.test('SSLRequest with TLS required: verified against its CA, refused without', async (t) => {
  const ok = await new PgsqlChecker({ tls: { servername: 'warden.test', ca: db.cert } }).check(
    target,
    ctx(),
  );
  t.ok(ok.healthy, ok.message);
  t.match(
    ok.message,
    /^PostgreSQL SSLRequest over TLS -> 127\.0\.0\.1:\d+: connected; SSLRequest answered S; TLS TLSv1\.3, verified$/,
  );
  const strict = await new PgsqlChecker({ tls: { servername: 'warden.test' } }).check(
    target,
    ctx(),
  );
  t.notOk(strict.healthy, 'a self-signed certificate fails verification');
  t.match(strict.message, /SSLRequest answered S; self.signed certificate/i);
  const wrongName = await new PgsqlChecker({
    tls: { servername: 'other.test', ca: db.cert },
  }).check(target, ctx());
  t.notOk(wrongName.healthy, 'a name the certificate does not carry fails');
  t.match(wrongName.message, /altnames|does not match/i);
});

t.test('login and query: healthy on a row, judged by expect', async (t) => {
  const ok = await new PgsqlChecker({ ...login, expect: /^1$/ }).check(target, ctx());
  t.ok(ok.healthy, ok.message);
  t.match(
    ok.message,
    /^PostgreSQL "SELECT 1" as warden@wdb -> 127\.0\.0\.1:\d+: connected; logged in as warden; 1 row, first "1"; matched \/\^1\$\/$/,
  );
  const row = await new PgsqlChecker({
    ...login,
    query: "SELECT 1, NULL, 'x', true UNION ALL SELECT 2, 3, 'y', false",
    expect: /^1\tNULL\tx\tt$/,
  }).check(target, ctx());
  t.ok(row.healthy, row.message);
  t.match(row.message, /2 rows, first "1\\tNULL\\tx\\tt"; matched/);
  t.notMatch(ok.message + row.message, DB_PASSWORD);
});

t.test('login over TLS: verified against its CA, refused without', async (t) => {
  const ok = await new PgsqlChecker({ ...login, tls: { ca: db.cert } }).check(target, ctx());
  t.ok(ok.healthy, ok.message);
  t.match(
    ok.message,
    /over TLS -> 127\.0\.0\.1:\d+: connected; TLS TLSv1\.3, verified; logged in as warden; 1 row/,
  );
  const strict = await new PgsqlChecker({ ...login, tls: {} }).check(target, ctx());
  t.notOk(strict.healthy, 'a self-signed certificate fails verification');
  t.match(strict.message, /connected; self.signed certificate/i);
  const unverified = await new PgsqlChecker({ ...login, tls: { verify: false } }).check(
    target,
    ctx(),
  );
  t.ok(unverified.healthy, unverified.message);
});

t.test('login and query: a row that does not match, no row, a failing query', async (t) => {
  const wrong = await new PgsqlChecker({ ...login, expect: /^2$/ }).check(target, ctx());
  t.notOk(wrong.healthy);
  t.match(
    wrong.message,
    /logged in as warden; 1 row, first "1"; first row does not match \/\^2\$\/$/,
  );
  const none = await new PgsqlChecker({ ...login, query: 'SELECT 1 WHERE false' }).check(
    target,
    ctx(),
  );
  t.notOk(none.healthy, 'no row is down, as in ldirectord');
  t.match(none.message, /logged in as warden; query returned no rows$/);
  const bad = await new PgsqlChecker({ ...login, query: 'SELECT * FROM nowhere' }).check(
    target,
    ctx(),
  );
  t.notOk(bad.healthy);
  t.match(
    bad.message,
    /logged in as warden; query failed: "relation \\"nowhere\\" does not exist" \(42P01\)$/,
  );
});

t.test('a refused login and an unknown database read as such, not as down', async (t) => {
  const refused = await new PgsqlChecker({ ...login, password: 'not-the-password' }).check(
    target,
    ctx(),
  );
  t.notOk(refused.healthy);
  t.match(
    refused.message,
    /connected; server up, login refused: "password authentication failed for user \\"warden\\"" \(28P01\)$/,
  );
  t.notMatch(refused.message, 'not-the-password', 'the password is not in the message');
  const unknown = await new PgsqlChecker({ ...login, database: 'nope' }).check(target, ctx());
  t.notOk(unknown.healthy);
  t.match(
    unknown.message,
    /server up, database unknown: "database \\"nope\\" does not exist" \(3D000\)$/,
  );
});

t.test('a closed port is refused', async (t) => {
  for (const opts of [{}, login]) {
    const r = await new PgsqlChecker(opts).check(await closedPort(), ctx());
    t.notOk(r.healthy);
    t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
  }
});

t.test('junk is not PostgreSQL; N is healthy unless TLS is required', async (t) => {
  const junk = await listen(createServer((s) => s.end('HTTP/1.0 400 Bad Request\r\n\r\n')));
  const j = await new PgsqlChecker().check(junk.target, ctx());
  t.notOk(j.healthy);
  t.match(
    j.message,
    /connected; not PostgreSQL: SSLRequest answered "HTTP\/1\.0 400 Bad Request\\r\\n\\r\\n"$/,
  );
  const jl = await new PgsqlChecker(login).check(junk.target, ctx());
  t.notOk(jl.healthy, 'the login path too');
  t.match(
    jl.message,
    /connected; not PostgreSQL: answered "HTTP\/1\.0 400 Bad Request\\r\\n\\r\\n"$/,
  );
  await junk.stop();
  // A server without TLS answers N (and would then wait for the startup packet).
  const plain = await listen(createServer((s) => s.once('data', () => s.write('N'))));
  const n = await new PgsqlChecker().check(plain.target, ctx());
  t.ok(n.healthy, n.message);
  t.match(n.message, /connected; SSLRequest answered N \(no TLS\)$/);
  const required = await new PgsqlChecker({ tls: {} }).check(plain.target, ctx());
  t.notOk(required.healthy);
  t.match(required.message, /connected; server up, no TLS \(SSLRequest answered N\)$/);
  const requiredLogin = await new PgsqlChecker({ ...login, tls: {} }).check(plain.target, ctx());
  t.notOk(requiredLogin.healthy);
  t.match(requiredLogin.message, /connected; server up, no TLS \(SSLRequest answered N\)$/);
  const err = await listen(
    createServer((s) => s.end(Buffer.from('E\0\0\0\x1fSFATAL\0C53300\0Mtoo many\0\0', 'latin1'))),
  );
  const e = await new PgsqlChecker().check(err.target, ctx());
  t.notOk(e.healthy);
  t.match(e.message, /SSLRequest answered with an error: "too many" \(53300\)$/);
  await plain.stop();
  await err.stop();
});

t.test('silence after connecting, or after the SSLRequest, ends at the deadline', async (t) => {
  const mute = await listen(createServer(() => undefined));
  const cases = [
    { opts: {}, stage: 'waiting for the answer to the SSLRequest' },
    { opts: login, stage: 'logging in as warden' },
    { opts: { ...login, tls: {} }, stage: 'logging in as warden' },
  ];
  let n = 0;
  for (const c of cases) {
    const started = Date.now();
    const r = await new PgsqlChecker(c.opts).check(mute.target, ctx(800));
    t.notOk(r.healthy);
    t.match(r.message, new RegExp(`timed out after 800 ms ${c.stage}$`));
    t.ok(Date.now() - started < 800 + MARGIN_MS, `in time: ${Date.now() - started} ms`);
    n++;
    t.ok(await until(() => mute.closed() === n, 5000), 'the server sees the connection closed');
  }
  // A TLS handshake that never completes.
  const sOnly = await listen(createServer((s) => s.once('data', () => s.write('S'))));
  const r = await new PgsqlChecker().check(sOnly.target, ctx(800));
  t.notOk(r.healthy);
  t.match(
    r.message,
    /SSLRequest answered S; timed out after 800 ms waiting for the TLS handshake$/,
  );
  t.ok(await until(() => sOnly.closed() === 1, 5000), 'the server sees the connection closed');
  await mute.stop();
  await sOnly.stop();
});

t.test('an abort from the caller ends a login at once', async (t) => {
  const mute = await listen(createServer(() => undefined));
  const ac = new AbortController();
  const pending = new PgsqlChecker(login).check(mute.target, ctx(10_000, ac.signal));
  setTimeout(() => ac.abort(), 100);
  const r = await pending;
  t.notOk(r.healthy);
  t.match(r.message, /cancelled logging in as warden$/);
  t.ok(r.durationMs < 5000);
  t.ok(await until(() => mute.closed() === 1, 5000), 'the connection is closed');
  await mute.stop();
});

t.test('the declaration: options that need a user', async (t) => {
  const problems: string[] = [];
  pgsql.validate?.({ password: 'x', expect: /1/ }, (o, p) => problems.push(`${o}: ${p}`));
  t.same(problems, [
    'password: a password needs a user',
    'expect: expect needs a user (and a query)',
  ]);
  t.not(new PgsqlChecker(login).key, new PgsqlChecker({ ...login, tls: {} }).key);
});

t.test(
  'out of descriptors: the login says local (EMFILE), and logs in once they are back',
  async (t) => {
    // The checker is made before the descriptors go, and pg with it. Loaded by the first login
    // instead (as until 2026-12-02), pg failed while the process had no descriptor left and node
    // kept answering MODULE_NOT_FOUND after they came back, so the check stayed local for good.
    // See local.test.ts for the other probes.
    const fixture = fileURLToPath(new URL('./local-fixture.js', import.meta.url));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'prlimit',
        ['--nofile=64:64', '--', process.execPath, fixture, `pgsql=${db.port}`],
        { timeout: 60_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const { seen } = JSON.parse(out) as {
      seen: { phase: string; healthy: boolean; local: unknown; message: string }[];
    };
    const exhausted = seen.find((s) => s.phase === 'exhausted');
    t.match(
      exhausted,
      { healthy: false, local: true, message: /local error on this director.*\(EMFILE\)/ },
      `without descriptors: local\n${exhausted?.message ?? '(none)'}`,
    );
    const freed = seen.find((s) => s.phase === 'freed');
    t.match(
      freed,
      { healthy: true, local: undefined, message: /logged in/ },
      `with descriptors again: logged in\n${freed?.message ?? '(none)'}`,
    );
  },
);
