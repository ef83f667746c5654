// data_path in the config: what is refused and why, the marks (from daemon.data_path_marks,
// stable across reloads, clear of configured fwmark services), the carrier services made from
// it, check-config not printing them, and the director's accept_local judged.
import t from 'tap';
import { configProblems } from './problems.js';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import { acceptLocalProblem } from '../../src/config/datapath.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { isFwmark } from '../../src/ipvs/model.js';

const BASE = 0x7a100000;
const web = (servers: string, extra = ''): string => `daemon: {data_path_marks: ${BASE}}
defaults: {fwd: route, checks: [{type: http}]}
virtual_services:
  - {name: web, address: 192.0.2.10, port: 80, data_path: true, real_servers: [${servers}]}
${extra}`;

const problems = (text: string): string[] => configProblems(text);

t.test('marks: in range, one per server, the same after a reload that adds others', async (t) => {
  const one = parseConfig(web('{address: 10.0.0.2}, {address: 10.0.0.3}'), 'a.yaml', {});
  const marks = (c: typeof one) =>
    Object.fromEntries(
      c.virtualServices[0]!.realServers.map((rs) => [rs.name, rs.dataPath?.mark ?? -1]),
    );
  const before = marks(one);
  for (const m of Object.values(before)) t.ok(m >= BASE && m < BASE + 65536, `0x${m.toString(16)}`);
  t.not(before['10.0.0.2:80'], before['10.0.0.3:80']);
  const more = parseConfig(
    web('{address: 10.0.0.4}, {address: 10.0.0.2}, {address: 10.0.0.5}, {address: 10.0.0.3}'),
    'b.yaml',
    {},
  );
  t.match(marks(more), before, 'a server keeps its mark whatever is added or reordered');
  const rs = one.virtualServices[0]!.realServers[0]!;
  t.same(rs.dataPath, { mark: before['10.0.0.2:80'], family: 4, address: '192.0.2.10', port: 80 });
});

t.test('a configured fwmark service keeps its mark: data-path servers go around it', async (t) => {
  const free = parseConfig(web('{address: 10.0.0.2}'), 'a.yaml', {});
  const mark = free.virtualServices[0]!.realServers[0]!.dataPath!.mark;
  const taken = parseConfig(
    web(
      '{address: 10.0.0.2}',
      `  - {fwmark: ${mark}, checks: [], fwd: masq, data_path: false, real_servers: [{address: 10.0.0.9}]}\n`,
    ),
    'b.yaml',
    {},
  );
  t.equal(taken.virtualServices[0]!.realServers[0]!.dataPath!.mark, mark + 1);
});

t.test(
  'one carrier per server: its fwmark, rr, the server alone at weight 1, always in',
  async (t) => {
    const c = parseConfig(web('{name: a, address: 10.0.0.2, weight: 50}'), 'a.yaml', {});
    t.equal(c.virtualServices.length, 2);
    const carrier = c.virtualServices[1]!;
    const rs = c.virtualServices[0]!.realServers[0]!;
    t.match(carrier, {
      name: 'web data path a',
      dataPathFor: { service: 'web', server: 'a' },
      service: { scheduler: 'rr', persistent: false },
      fallback: null,
    });
    t.ok(isFwmark(carrier.service.key) && carrier.service.key.fwmark === rs.dataPath?.mark);
    t.match(carrier.realServers, [
      {
        destination: { key: { address: '10.0.0.2', port: 80 }, fwd: 'route', weight: 1 },
        checks: [],
      },
    ]);
    const printed = effectiveConfig(c, CATALOG);
    t.notMatch(
      printed,
      /data path|fwmark/,
      'check-config prints what was written, not the carriers',
    );
    t.match(printed, /data_path: true/);
  },
);

t.test('refused, each with its reason', async (t) => {
  t.match(problems(web('{address: 10.0.0.2, fwd: masq}')), [
    /real_servers\.0: data_path is for fwd: route \(DR\) or tunnel \(TUN\)/,
  ]);
  t.match(problems(web('{address: 10.0.0.2, checks: [{type: dns, name: x}]}')), [
    /data_path: the dns check cannot go through the data path \(tcp, http, https can\)/,
  ]);
  t.match(problems(web('{address: 10.0.0.2, checks: [{type: tcp, port: 8080}]}')), [
    /a check with its own address or port does not probe through the VIP/,
  ]);
  t.match(
    problems(`virtual_services:
  - {fwmark: 5, fwd: route, data_path: true, checks: [{type: tcp}], real_servers: [{address: 10.0.0.2, port: 80}]}
`),
    [/data_path needs the virtual service's address and port/],
  );
  t.match(
    problems(`virtual_services:
  - {protocol: udp, address: 192.0.2.1, port: 53, fwd: route, data_path: true, checks: [{type: tcp}], real_servers: [{address: 10.0.0.2}]}
`),
    [/data_path works with TCP services/],
  );
});

t.test("the director's accept_local", async (t) => {
  const dp = parseConfig(web('{address: 10.0.0.2}'), 'a.yaml', {}).virtualServices;
  const plain = parseConfig(
    'virtual_services: [{address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.2}]}]\n',
    'b.yaml',
    {},
  ).virtualServices;
  t.match(
    acceptLocalProblem(dp, '0\n'),
    /accept_local is 0: .*sysctl -w net\.ipv4\.conf\.all\.accept_local=1/,
  );
  t.equal(acceptLocalProblem(dp, '1\n'), null);
  t.equal(acceptLocalProblem(dp, null), null, 'unknown: nothing said');
  t.equal(acceptLocalProblem(plain, '0\n'), null, 'no data-path check: nothing needed');
});
