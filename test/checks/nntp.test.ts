// The NNTP probe against a real jamnntpd (greeting 200, QUIT 205; a client its allow file does
// not admit gets a refusing greeting), and fake servers for 201, a multi-line greeting, silence,
// garbage and an endless line.
import { createServer } from 'node:net';
import t from 'tap';
import { NntpChecker, nntp } from '../../checks/nntp.js';
import { startJamnntpd } from './mail-servers.js';
import { closedPort, listen, until } from './servers.js';

const ctx = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
const inTime = (ms: number, timeoutMs = 5000): boolean => ms < timeoutMs + 3000;

t.test('against jamnntpd', async (t) => {
  const open = await startJamnntpd();
  t.teardown(() => open.stop());
  const r = await nntp.create({}).check(open.nntp, ctx());
  t.ok(r.healthy, r.message);
  t.match(r.message, /^NNTP -> 127\.0\.0\.1:\d+: connected; greeting 200; QUIT 205$/);

  const closed = await startJamnntpd(true);
  t.teardown(() => closed.stop());
  const d = await nntp.create({}).check(closed.nntp, ctx());
  t.notOk(d.healthy);
  t.match(
    d.message,
    /^NNTP -> .*: connected; greeting 502 ".*", expected 200 or 201 \(service permanently unavailable\)$/,
  );
});

t.test('a closed port is refused', async (t) => {
  const r = await new NntpChecker().check(await closedPort(), ctx());
  t.notOk(r.healthy);
  t.match(r.message, /: connection refused \(ECONNREFUSED\)$/);
});

t.test('201 is healthy; a server that closes after QUIT too', async (t) => {
  const srv = await listen(
    createServer((s) => {
      s.write('201 reader only\r\n');
      s.on('data', () => s.destroy());
    }),
  );
  t.teardown(() => srv.stop());
  const r = await new NntpChecker().check(srv.target, ctx());
  t.ok(r.healthy, r.message);
  t.match(r.message, /connected; greeting 201; QUIT \(closed\)$/);
});

t.test('a wrong greeting, a multi-line one, silence, garbage, an endless line', async (t) => {
  const busy = await listen(createServer((s) => s.end('400 come back later\r\n')));
  const multi = await listen(createServer((s) => s.write('200-hello\r\n200 there\r\n')));
  const silent = await listen(createServer((s) => s.write('200 hi\r\n')));
  const garbage = await listen(createServer((s) => s.write('* OK IMAP4rev1\r\n')));
  const endless = await listen(
    createServer((s) => {
      s.write('200 ');
      const timer = setInterval(() => s.write('n'.repeat(2048)), 5);
      s.on('close', () => clearInterval(timer));
    }),
  );
  t.teardown(async () => {
    for (const s of [busy, multi, silent, garbage, endless]) await s.stop();
  });
  const b = await new NntpChecker().check(busy.target, ctx());
  t.notOk(b.healthy);
  t.match(
    b.message,
    /connected; greeting 400 "come back later", expected 200 or 201 \(service temporarily unavailable\)$/,
  );
  const m = await new NntpChecker().check(multi.target, ctx());
  t.notOk(m.healthy);
  t.match(m.message, /connected; reply 200 has more than 1 line, waiting for the greeting$/);
  const q = await new NntpChecker().check(silent.target, ctx(500));
  t.notOk(q.healthy);
  t.match(q.message, /greeting 200; timed out after 500 ms waiting for the QUIT reply$/);
  t.ok(inTime(q.durationMs, 500), `took ${q.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the silent server sees the close');
  const g = await new NntpChecker().check(garbage.target, ctx());
  t.notOk(g.healthy);
  t.match(
    g.message,
    /connected; reply is not in the protocol: "\* OK IMAP4rev1", waiting for the greeting$/,
  );
  const long = await new NntpChecker().check(endless.target, ctx());
  t.notOk(long.healthy);
  t.match(
    long.message,
    /connected; a reply line longer than 8192 bytes, waiting for the greeting$/,
  );
});

t.test('an abort from the caller tears the probe down', async (t) => {
  const silent = await listen(createServer(() => undefined));
  t.teardown(() => silent.stop());
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const r = await new NntpChecker().check(silent.target, {
    signal: controller.signal,
    timeoutMs: 5000,
  });
  t.notOk(r.healthy);
  t.match(r.message, /connected; cancelled waiting for the greeting$/);
  t.ok(r.durationMs < 3000, `took ${r.durationMs} ms`);
  t.ok(await until(() => silent.closed() === 1), 'the server sees the close');
});
