// Run by routes.test.ts inside `unshare -rn` (a fresh network namespace): the kernel's answers to
// the announcer's route operations, with iproute2's view of each step, as one JSON report.
import { execFileSync } from 'node:child_process';
import { NetlinkRouteTable } from '../../src/announce/routes.js';
import type { Route } from '../../src/realserver/rtnetlink.js';
import { announced } from './route.js';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' }).trim();
const code = (e: unknown): string => (e as { code?: string }).code ?? String(e);

const report: Record<string, unknown> = {};
const rt = new NetlinkRouteTable();
ip('link', 'set', 'lo', 'up');
// Someone else's routes: a static one in our table, one in main.
ip('route', 'add', 'blackhole', '192.0.2.99/32', 'table', '240');
ip('route', 'add', 'blackhole', '192.0.2.1/32', 'metric', '7');
await rt.add(announced('192.0.2.1'));
await rt.add(announced('2001:db8::1'));
await rt.add(announced('192.0.2.2', { metric: 10, table: 4093 }));
report.ip4 = ip('route', 'show', 'table', '240');
report.ip6 = ip('-6', 'route', 'show', 'table', '240');
report.ip4093 = ip('route', 'show', 'table', '4093');
const fmt = (r: Route): string =>
  `${r.address}/${r.prefix} t${r.table} p${r.protocol} m${r.metric} type${r.type}`;
report.list = (await rt.list(240, [4, 6])).map(fmt).sort();
report.list4093 = (await rt.list(4093, [4])).map(fmt);
report.exists = await rt.add(announced('192.0.2.1')).then(() => 'ok', code);
report.takenByOther = await rt.add(announced('192.0.2.99')).then(() => 'ok', code);
report.deleteOthers = await rt.delete(announced('192.0.2.99')).then(() => 'ok', code);
await rt.delete(announced('192.0.2.1'));
report.deleteAbsent = await rt.delete(announced('192.0.2.1')).then(() => 'ok', code);
report.after = ip('route', 'show', 'table', '240');
rt.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
