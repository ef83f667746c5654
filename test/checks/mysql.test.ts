// The MySQL check against a real MariaDB (Debian's mariadb-server, a throwaway instance started
// here), and against small fake servers for what a real one does not do: junk, a wrong
// greeting, silence after connecting or after the greeting.
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { MysqlChecker, PROBE_USER, mysql, parseGreeting } from '../../checks/mysql.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { DB_NAME, DB_PASSWORD, DB_USER, startMariadb, type DbServer } from './dbservers.js';
import { closedPort, listen, until } from './servers.js';

const ctx = (timeoutMs = 5000, signal = new AbortController().signal) => ({ signal, timeoutMs });
/** The machine is slow and shared: a result may come this long after its deadline. */
const MARGIN_MS = 3000;

/** An address of this machine that is not loopback (the server's host cache ignores loopback). */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;

let db: DbServer;
let target: CheckTarget;
t.before(async () => {
  db = await startMariadb({
    ...(outside ? { alsoBind: outside } : {}),
    args: ['--max-connect-errors=3'],
  });
  target = { family: 4, address: '127.0.0.1', port: db.port };
});
t.teardown(() => db?.stop());

const login = { user: DB_USER, password: DB_PASSWORD, database: DB_NAME } as const;

/** A protocol 10 greeting as MariaDB sends it (framed, sequence 0). */
function greeting(protocol = 10): Buffer {
  const p = Buffer.concat([
    Buffer.from([protocol]),
    Buffer.from('5.5.5-10.11.0-MariaDB-fake\0'),
    Buffer.from([1, 0, 0, 0]), // connection id
    Buffer.from('abcdefgh\0'), // scramble part 1, filler
    Buffer.from([0xfe, 0xf7, 33, 2, 0, 0x08, 0x00, 21]), // caps, charset, status, caps high, length
    Buffer.alloc(10),
    Buffer.from('ijklmnopqrst\0mysql_native_password\0'),
  ]);
  const head = Buffer.from([p.length & 0xff, p.length >> 8, 0, 0]);
  return Buffer.concat([head, p]);
}

t.test('the greeting parser reads MariaDB and refuses what is not one', async (t) => {
  const g = parseGreeting(greeting().subarray(4));
  t.equal(g.version, '10.11.0-MariaDB-fake');
  t.equal(g.plugin, 'mysql_native_password');
  t.throws(() => parseGreeting(greeting(9).subarray(4)), /not a MySQL greeting \(protocol 9\)/);
  t.throws(() => parseGreeting(Buffer.from([10, 0x41])), /truncated/);
  t.throws(
    () => parseGreeting(Buffer.from('\xff\x69\x04Host is blocked', 'latin1')),
    /server up, refused the connection: "Host is blocked" \(1129\)/,
  );
});

t.test('handshake only: greeting, and the probe login refused, is healthy', async (t) => {
  const r = await new MysqlChecker().check(target, ctx());
  t.ok(r.healthy, r.message);
  t.match(
    r.message,
    /^MySQL handshake -> 127\.0\.0\.1:\d+: connected; greeting: protocol 10, "10\.\d+\.\d+-MariaDB[^"]*"; login as ipvs-warden refused, as expected \(1045\)$/,
  );
  t.match(db.log(), `Access denied for user '${PROBE_USER}'`, 'the server saw the login');
});

t.test('handshake only: a probe user that exists (no password) logs in and quits', async (t) => {
  await db.sql(`CREATE USER '${PROBE_USER}'@'%'`);
  t.teardown(() => db.sql(`DROP USER '${PROBE_USER}'@'%'`));
  const r = await new MysqlChecker().check(target, ctx());
  t.ok(r.healthy, r.message);
  t.match(r.message, /login as ipvs-warden \(no password\) accepted; quit$/);
});

t.test(
  'handshake only does not get the director blocked (max_connect_errors), closing after the greeting does',
  { skip: outside ? false : 'no address of this machine outside loopback' },
  async (t) => {
    const away: CheckTarget = { family: 4, address: outside ?? '', port: db.port };
    await db.sql('FLUSH HOSTS');
    // The server runs with --max-connect-errors=3: ten checks would block a careless probe.
    for (let i = 0; i < 10; i++) {
      const r = await new MysqlChecker().check(away, ctx());
      t.ok(r.healthy, `check ${i}: ${r.message}`);
    }
    // What the check avoids: a connection closed after the greeting counts as an error.
    for (let i = 0; i < 4; i++) {
      const s = await new Promise<Socket>((resolve) => {
        const c = connect(away.port, away.address);
        c.once('data', () => resolve(c));
      });
      s.destroy();
      await new Promise((r) => setTimeout(r, 100));
    }
    const blocked = await new MysqlChecker().check(away, ctx());
    t.notOk(blocked.healthy, 'the host is now blocked: the test can see the hazard');
    t.match(blocked.message, /server up, refused the connection: .*blocked.* \(1129\)$/);
    await db.sql('FLUSH HOSTS');
  },
);

t.test('login and query: healthy on a row, judged by expect', async (t) => {
  const ok = await new MysqlChecker({ ...login, expect: /^1$/ }).check(target, ctx());
  t.ok(ok.healthy, ok.message);
  t.match(
    ok.message,
    /^MySQL "SELECT 1" as warden@wdb -> 127\.0\.0\.1:\d+: connected; greeting: protocol 10, "10[^"]*"; logged in as warden; 1 row, first "1"; matched \/\^1\$\/$/,
  );
  const row = await new MysqlChecker({
    ...login,
    query: "SELECT 1, NULL, 'x' UNION ALL SELECT 2, 3, 'y'",
    expect: /^1\tNULL\tx$/,
  }).check(target, ctx());
  t.ok(row.healthy, row.message);
  t.match(row.message, /2 rows, first "1\\tNULL\\tx"; matched/);
  const noExpect = await mysql.create({ ...login, query: 'SELECT NOW()' }).check(target, ctx());
  t.ok(noExpect.healthy, `any row will do without expect: ${noExpect.message}`);
  t.notMatch(ok.message + row.message, DB_PASSWORD);
  await new Promise((r) => setTimeout(r, 500));
  t.notMatch(db.log(), /Aborted connection .* user: 'warden'/, 'each login ended with a QUIT');
});

t.test('login and query: a row that does not match, no row, a failing query', async (t) => {
  const wrong = await new MysqlChecker({ ...login, expect: /^2$/ }).check(target, ctx());
  t.notOk(wrong.healthy);
  t.match(
    wrong.message,
    /logged in as warden; 1 row, first "1"; first row does not match \/\^2\$\/$/,
  );
  const none = await new MysqlChecker({ ...login, query: 'SELECT 1 FROM DUAL WHERE 1 = 0' }).check(
    target,
    ctx(),
  );
  t.notOk(none.healthy, 'no row is down, as in ldirectord');
  t.match(none.message, /logged in as warden; query returned no rows$/);
  const ok = await new MysqlChecker({ ...login, query: 'DO 1' }).check(target, ctx());
  t.notOk(ok.healthy, 'a statement without a result set has no row');
  t.match(ok.message, /query returned no rows$/);
  const bad = await new MysqlChecker({ ...login, query: 'SELECT * FROM nowhere' }).check(
    target,
    ctx(),
  );
  t.notOk(bad.healthy);
  t.match(
    bad.message,
    /logged in as warden; query failed: "Table 'wdb\.nowhere' doesn't exist" \(1146\)$/,
  );
});

t.test('a refused login and an unknown database read as such, not as down', async (t) => {
  const refused = await new MysqlChecker({ ...login, password: 'not-the-password' }).check(
    target,
    ctx(),
  );
  t.notOk(refused.healthy);
  t.match(
    refused.message,
    /greeting: protocol 10, "[^"]+"; server up, login refused: "Access denied for user 'warden'@'[^']+' \(using password: YES\)" \(1045\)$/,
  );
  t.notMatch(refused.message, 'not-the-password', 'the password is not in the message');
  // Without a grant on it, the server does not say whether a database exists.
  const hidden = await new MysqlChecker({ ...login, database: 'nope' }).check(target, ctx());
  t.notOk(hidden.healthy);
  t.match(
    hidden.message,
    /server up, database refused: "Access denied for user 'warden'@'%' to database 'nope'" \(1044\)$/,
  );
  await db.sql(`GRANT ALL ON nope.* TO '${DB_USER}'@'%'`);
  const unknown = await new MysqlChecker({ ...login, database: 'nope' }).check(target, ctx());
  t.notOk(unknown.healthy);
  t.match(unknown.message, /server up, database unknown: "Unknown database 'nope'" \(1049\)$/);
});

t.test('a closed port is refused', async (t) => {
  for (const opts of [{}, login]) {
    const r = await new MysqlChecker(opts).check(await closedPort(), ctx());
    t.notOk(r.healthy);
    t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
  }
});

t.test('junk and a wrong greeting are not MySQL, in both modes', async (t) => {
  const junk = await listen(createServer((s) => s.end('HTTP/1.0 400 Bad Request\r\n\r\n')));
  const wrong = await listen(createServer((s) => s.end(greeting(9))));
  const short = await listen(createServer((s) => s.end(Buffer.from([5, 0, 0, 0, 10]))));
  for (const opts of [{}, login]) {
    const j = await new MysqlChecker(opts).check(junk.target, ctx());
    t.notOk(j.healthy);
    t.match(
      j.message,
      /connected; not MySQL: a packet of 5526600 bytes: "HTTP\/1\.0 400 Bad Request\\r\\n\\r\\n"$/,
    );
    const w = await new MysqlChecker(opts).check(wrong.target, ctx());
    t.notOk(w.healthy);
    t.match(
      w.message,
      /connected; not a MySQL greeting \(protocol 9\): "\\t5\.5\.5-10\.11\.0-MariaDB-fake/,
    );
    const s = await new MysqlChecker(opts).check(short.target, ctx());
    t.notOk(s.healthy);
    t.match(s.message, /connected; connection closed after "\\x05\\x00\\x00\\x00\\n"$/);
  }
  for (const l of [junk, wrong, short]) await l.stop();
});

t.test('silence after connecting, or after the greeting, ends at the deadline', async (t) => {
  const mute = await listen(createServer(() => undefined));
  const greetOnly = await listen(createServer((s) => s.write(greeting())));
  const cases = [
    { srv: mute, opts: {}, stage: 'waiting for the greeting' },
    { srv: mute, opts: login, stage: 'waiting for the greeting' },
    { srv: greetOnly, opts: {}, stage: 'waiting for the answer to the login' },
    { srv: greetOnly, opts: login, stage: 'logging in as warden' },
  ];
  let n = 0;
  for (const c of cases) {
    const started = Date.now();
    const r = await new MysqlChecker(c.opts).check(c.srv.target, ctx(800));
    t.notOk(r.healthy);
    t.match(r.message, new RegExp(`timed out after 800 ms ${c.stage}$`));
    t.ok(Date.now() - started < 800 + MARGIN_MS, `in time: ${Date.now() - started} ms`);
    n++;
    t.ok(
      await until(() => mute.closed() + greetOnly.closed() === n, 5000),
      'the server sees the connection closed',
    );
  }
  await mute.stop();
  await greetOnly.stop();
});

t.test('an abort from the caller ends a login at once', async (t) => {
  const greetOnly = await listen(createServer((s) => s.write(greeting())));
  const ac = new AbortController();
  const pending = new MysqlChecker(login).check(greetOnly.target, ctx(10_000, ac.signal));
  setTimeout(() => ac.abort(), 100);
  const r = await pending;
  t.notOk(r.healthy);
  t.match(r.message, /cancelled logging in as warden$/);
  t.ok(r.durationMs < 5000);
  t.ok(await until(() => greetOnly.closed() === 1, 5000), 'the connection is closed');
  await greetOnly.stop();
});

t.test('the declaration: options that need a user', async (t) => {
  const problems: string[] = [];
  mysql.validate?.({ password: 'x', database: 'd' }, (o, p) => problems.push(`${o}: ${p}`));
  t.same(problems, ['password: a password needs a user', 'database: a database needs a user']);
  t.not(
    new MysqlChecker(login).key,
    new MysqlChecker({ ...login, query: 'SELECT 2' }).key,
    'the query is part of the key',
  );
});
