// The announcer's route operations on the real kernel (rtnetlink in a fresh `unshare -rn`
// namespace, the host untouched), judged against iproute2; and the in-memory twin giving the
// same answers to the same steps.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { MemoryRouteTable } from '../../src/announce/routes.js';
import { announced } from './route.js';

const script = fileURLToPath(new URL('./route-ops.js', import.meta.url));

t.test('add, dump and delete host routes in a table of their own (kernel)', async (t) => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'unshare',
      ['-rn', process.execPath, script],
      { timeout: 60_000 },
      (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  const r = JSON.parse(out) as Record<string, unknown>;
  t.equal(
    r.ip4,
    'blackhole 192.0.2.1 proto 250 \nblackhole 192.0.2.99',
    'iproute2 sees our blackhole beside the static one',
  );
  t.match(
    r.ip6,
    /^blackhole 2001:db8::1 dev lo proto 250 metric 1024 pref medium$/,
    'IPv6: metric 0 is stored as 1024 (the plan expects it so)',
  );
  t.equal(r.ip4093, 'blackhole 192.0.2.2 proto 250 metric 10', 'a table above 255 (RTA_TABLE)');
  t.same(
    r.list,
    [
      '192.0.2.1/32 t240 p250 m0 type6',
      '192.0.2.99/32 t240 p3 m0 type6',
      '2001:db8::1/128 t240 p250 m1024 type6',
    ],
    'the dump: every route of the table, any protocol, nothing of main',
  );
  t.same(r.list4093, ['192.0.2.2/32 t4093 p250 m10 type6']);
  t.equal(r.exists, 'EEXIST', 'the same key again');
  t.equal(r.takenByOther, 'EEXIST', "a key someone else's route holds");
  t.equal(r.deleteOthers, 'ESRCH', "a delete of ours does not take someone else's route");
  t.equal(r.deleteAbsent, 'ESRCH');
  t.equal(r.after, 'blackhole 192.0.2.99', 'ours gone, theirs (proto boot, `ip route add`) left');
});

t.test('the in-memory table answers as the kernel did', async (t) => {
  const m = new MemoryRouteTable();
  const code = (p: Promise<void>): Promise<string> =>
    p.then(
      () => 'ok',
      (e: unknown) => (e as { code?: string }).code ?? 'thrown',
    );
  await m.add(announced('192.0.2.99', { protocol: 4 }));
  t.equal(await code(m.add(announced('192.0.2.1'))), 'ok');
  t.equal(await code(m.add(announced('192.0.2.1'))), 'EEXIST');
  t.equal(await code(m.add(announced('192.0.2.99'))), 'EEXIST');
  t.equal(await code(m.delete(announced('192.0.2.99'))), 'ESRCH');
  t.equal(await code(m.add(announced('192.0.2.5', { table: 0 }))), 'EINVAL');
  t.equal(await code(m.delete(announced('192.0.2.1'))), 'ok');
  t.equal(await code(m.delete(announced('192.0.2.1'))), 'ESRCH');
  m.failNext('add', 'EPERM');
  t.equal(await code(m.add(announced('192.0.2.1'))), 'EPERM');
  t.same(
    (await m.list(240, [4])).map((r) => `${r.address} ${r.protocol}`),
    ['192.0.2.99 4'],
  );
  await m.add(announced('2001:db8::1'));
  t.same(
    (await m.list(240, [6])).map((r) => r.metric),
    [1024],
    'IPv6 metric 0 stored as 1024, as the kernel does',
  );
});
