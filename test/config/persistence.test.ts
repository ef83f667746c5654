// The kernel settings a persistent service needs, judged from what /proc says: one warning per
// setting left at 0, naming the services; nothing without a persistent service or when unread.
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { persistenceProblems, type PersistenceSysctls } from '../../src/config/persistence.js';

const services = (lines: string[]) =>
  parseConfig(`virtual_services:\n${lines.map((l) => `  - ${l}\n`).join('')}`, 'a.yaml', {})
    .virtualServices;
const rs = 'real_servers: [{address: 10.0.0.2}]';
const sticky = services([
  `{name: web, address: 192.0.2.1, port: 80, persistent: 60s, ${rs}}`,
  `{name: plain, address: 192.0.2.2, port: 80, ${rs}}`,
  `{name: mail, address: 192.0.2.3, port: 25, persistent: true, on_failure: quiesce, ${rs}}`,
]);
const plain = services([`{name: plain, address: 192.0.2.2, port: 80, ${rs}}`]);
const many = services(
  Array.from(
    { length: 5 },
    (_, i) => `{name: s${i}, address: 192.0.2.${i + 1}, port: 80, persistent: true, ${rs}}`,
  ),
);

const both: PersistenceSysctls = { expireNodestConn: '0\n', expireQuiescentTemplate: '0\n' };
const set: PersistenceSysctls = { expireNodestConn: '1\n', expireQuiescentTemplate: '1\n' };
const unread: PersistenceSysctls = { expireNodestConn: null, expireQuiescentTemplate: null };

const cases: [string, ReturnType<typeof services>, PersistenceSysctls, string[]][] = [
  ['both at 0: both said', sticky, both, ['expire_quiescent_template', 'expire_nodest_conn']],
  ['both set: nothing', sticky, set, []],
  ['unreadable (no ip_vs, not Linux): nothing', sticky, unread, []],
  ['no persistent service: nothing to lose', plain, both, []],
  [
    'template alone at 0',
    sticky,
    { expireNodestConn: '1', expireQuiescentTemplate: '0' },
    ['expire_quiescent_template'],
  ],
  [
    'nodest alone at 0',
    sticky,
    { expireNodestConn: '0', expireQuiescentTemplate: '2' },
    ['expire_nodest_conn'],
  ],
];
for (const [name, svcs, sysctls, want] of cases)
  t.test(name, async (t) => {
    const got = persistenceProblems(svcs, sysctls);
    t.same(
      got.map((p) => p.sysctl),
      want.map((w) => `net.ipv4.vs.${w}`),
    );
    for (const p of got) {
      t.equal(p.event, `persistence.${p.sysctl.slice('net.ipv4.vs.'.length)}_off`);
      t.match(
        p.problem,
        new RegExp(`^${p.sysctl.replace(/\./g, '\\.')} is 0: `),
        'names the setting',
      );
      t.match(p.problem, `Fix: sysctl -w ${p.sysctl}=1`, 'and the fix');
    }
  });

t.test('names the persistent services, a few of them', async (t) => {
  const [one] = persistenceProblems(sticky, both);
  t.match(one?.problem, '(web, mail)', 'the persistent ones only');
  const [five] = persistenceProblems(many, both);
  t.match(five?.problem, '(s0, s1, s2 and 2 more)');
});
