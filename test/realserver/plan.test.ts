// The real-server plan, its judgement and its printed form, as tables: VIPs and mode in, steps
// out; a host's state in, verdicts out.
import t from 'tap';
import {
  judge,
  parseVips,
  realServerPlan,
  stepTitle,
  type Mode,
  type Observed,
  type Vip,
} from '../../src/realserver/plan.js';
import {
  INTERFACES_FILE,
  MODULES_FILE,
  SYSCTL_FILE,
  commandsOf,
  persistFiles,
  printScript,
} from '../../src/realserver/script.js';

const v4: Vip = { family: 4, address: '10.0.0.100' };
const v4b: Vip = { family: 4, address: '10.0.0.101' };
const v6: Vip = { family: 6, address: '2001:db8::100' };

t.test('parseVips: repeated and comma lists, canonical, every problem named', async (t) => {
  const cases: [string[], string[], string[]][] = [
    [['10.0.0.100'], ['10.0.0.100'], []],
    [
      ['10.0.0.100,10.0.0.101', '2001:DB8:0::100'],
      ['10.0.0.100', '10.0.0.101', '2001:db8::100'],
      [],
    ],
    [['[2001:db8::1]'], ['2001:db8::1'], []],
    [['10.0.0.100, 10.0.0.100'], ['10.0.0.100'], []],
    [
      ['10.0.0.100/32'],
      [],
      ['--vip 10.0.0.100/32: give the address alone; the prefix is always /32 or /128'],
    ],
    [
      ['10.0.0.300,x'],
      [],
      ['--vip 10.0.0.300: not an IPv4 or IPv6 address', '--vip x: not an IPv4 or IPv6 address'],
    ],
    [[], [], ['--vip ADDRESS is required']],
    [[','], [], ['--vip ADDRESS is required']],
  ];
  for (const [input, vips, problems] of cases) {
    const got = parseVips(input);
    t.same(
      got.vips.map((v) => v.address),
      vips,
      input.join(' '),
    );
    t.same(got.problems, problems, input.join(' '));
  }
});

t.test('the plan per mode and family: steps in the order they are applied', async (t) => {
  const cases: [Mode, Vip[], string[]][] = [
    [
      'dr',
      [v4],
      [
        'lo up',
        'VIP 10.0.0.100/32 on lo',
        'net.ipv4.conf.all.arp_ignore = 1',
        'net.ipv4.conf.all.arp_announce = 2',
      ],
    ],
    // IPv6 alone: no sysctl (NDP answers only for the receiving interface's addresses).
    ['dr', [v6], ['lo up', 'VIP 2001:db8::100/128 on lo']],
    [
      'dr',
      [v4, v4b, v6],
      [
        'lo up',
        'VIP 10.0.0.100/32 on lo',
        'VIP 10.0.0.101/32 on lo',
        'VIP 2001:db8::100/128 on lo',
        'net.ipv4.conf.all.arp_ignore = 1',
        'net.ipv4.conf.all.arp_announce = 2',
      ],
    ],
    [
      'tun',
      [v4],
      [
        'tunl0 up',
        'VIP 10.0.0.100/32 on tunl0',
        'net.ipv4.conf.tunl0.rp_filter = 0',
        'net.ipv4.conf.all.rp_filter = 0',
        'net.ipv4.conf.all.arp_ignore = 1',
        'net.ipv4.conf.all.arp_announce = 2',
      ],
    ],
    ['tun', [v6], ['ip6tnl0 up', 'VIP 2001:db8::100/128 on ip6tnl0']],
    [
      'tun',
      [v6, v4],
      [
        'tunl0 up',
        'ip6tnl0 up',
        'VIP 2001:db8::100/128 on ip6tnl0',
        'VIP 10.0.0.100/32 on tunl0',
        'net.ipv4.conf.tunl0.rp_filter = 0',
        'net.ipv4.conf.all.rp_filter = 0',
        'net.ipv4.conf.all.arp_ignore = 1',
        'net.ipv4.conf.all.arp_announce = 2',
      ],
    ],
  ];
  for (const [mode, vips, titles] of cases) {
    t.same(
      realServerPlan(vips, mode).steps.map(stepTitle),
      titles,
      `${mode} ${vips.map((v) => v.address).join(',')}`,
    );
  }
});

t.test('commands: the ip, sysctl and modprobe lines of each step', async (t) => {
  const dr = realServerPlan([v4, v6], 'dr').steps.flatMap(commandsOf);
  t.same(dr, [
    'ip link set lo up',
    'ip addr add 10.0.0.100/32 dev lo',
    'ip -6 addr add 2001:db8::100/128 dev lo nodad',
    'sysctl -w net.ipv4.conf.all.arp_ignore=1',
    'sysctl -w net.ipv4.conf.all.arp_announce=2',
  ]);
  const tun = realServerPlan([v4, v6], 'tun').steps.flatMap(commandsOf);
  t.same(tun.slice(0, 6), [
    'modprobe ipip',
    'ip link set tunl0 up',
    'modprobe ip6_tunnel',
    'ip link set ip6tnl0 up',
    'ip addr add 10.0.0.100/32 dev tunl0',
    'ip -6 addr add 2001:db8::100/128 dev ip6tnl0 nodad',
  ]);
  t.ok(tun.includes('sysctl -w net.ipv4.conf.tunl0.rp_filter=0'));
});

t.test('persistence: sysctl.d, modules-load.d (TUN) and ifupdown stanzas', async (t) => {
  const dr = persistFiles(realServerPlan([v4, v6], 'dr'));
  t.same(
    dr.map((f) => f.path),
    [SYSCTL_FILE, INTERFACES_FILE],
  );
  t.match(dr[0]?.content, /^net\.ipv4\.conf\.all\.arp_ignore = 1$/m);
  t.match(dr[0]?.content, /^net\.ipv4\.conf\.all\.arp_announce = 2$/m);
  t.match(
    dr[1]?.content,
    /auto lo\niface lo inet static\n {4}address 10\.0\.0\.100\/32\n\niface lo inet6 static\n {4}address 2001:db8::100\/128\n {4}dad-attempts 0\n$/,
  );
  const tun = persistFiles(realServerPlan([v4], 'tun'));
  t.same(
    tun.map((f) => f.path),
    [SYSCTL_FILE, MODULES_FILE, INTERFACES_FILE],
  );
  t.match(tun[1]?.content, /^ipip$/m);
  t.match(tun[0]?.content, /^net\.ipv4\.conf\.tunl0\.rp_filter = 0$/m);
  t.match(tun[2]?.content, /auto tunl0\niface tunl0 inet static\n {4}address 10\.0\.0\.100\/32\n/);
  // IPv6 DR alone: nothing for sysctl.d.
  t.same(
    persistFiles(realServerPlan([v6], 'dr')).map((f) => f.path),
    [INTERFACES_FILE],
  );
  const script = printScript(realServerPlan([v4], 'dr'));
  t.match(script, /^ip addr add 10\.0\.0\.100\/32 dev lo$/m);
  t.match(script, /^cat > \/etc\/sysctl\.d\/90-ipvs-warden-realserver\.conf <<'IPVS_WARDEN_EOF'$/m);
});

const good: Observed = {
  links: [
    { index: 1, name: 'lo', up: true },
    { index: 2, name: 'eth0', up: true },
  ],
  addresses: [
    { device: 'lo', family: 4, address: '127.0.0.1', prefix: 8 },
    { device: 'lo', family: 4, address: '10.0.0.100', prefix: 32 },
    { device: 'eth0', family: 4, address: '192.0.2.10', prefix: 24 },
  ],
  sysctls: new Map([
    ['net.ipv4.conf.all.arp_ignore', 1],
    ['net.ipv4.conf.all.arp_announce', 2],
  ]),
};

t.test('judge: each difference from the plan, its verdict and what it says', async (t) => {
  const plan = realServerPlan([v4], 'dr');
  type Case = [string, Observed, [string, RegExp][]];
  const cases: Case[] = [
    ['all in place', good, []],
    [
      'arp_ignore 2 and 8 serve as well; 3 does not',
      { ...good, sysctls: new Map([...good.sysctls, ['net.ipv4.conf.all.arp_ignore', 3]]) },
      [['wrong', /^arp_ignore is 3 on all: this host answers ARP for the VIP/]],
    ],
    [
      'arp settings at the defaults',
      {
        ...good,
        sysctls: new Map([
          ['net.ipv4.conf.all.arp_ignore', 0],
          ['net.ipv4.conf.all.arp_announce', 0],
        ]),
      },
      [
        ['wrong', /^arp_ignore is 0 on all: .*set net\.ipv4\.conf\.all\.arp_ignore=1$/],
        ['wrong', /^arp_announce is 0 on all: /],
      ],
    ],
    [
      'lo down, VIP missing',
      {
        ...good,
        links: [{ index: 1, name: 'lo', up: false }],
        addresses: good.addresses.filter((a) => a.address !== '10.0.0.100'),
      },
      [
        ['missing', /^lo is down/],
        ['missing', /^VIP 10\.0\.0\.100 not on lo: /],
      ],
    ],
    [
      'VIP on lo as /24: blocked, with the command that removes it',
      {
        ...good,
        addresses: [{ device: 'lo', family: 4, address: '10.0.0.100', prefix: 24 }],
      },
      [['blocked', /as \/24, not \/32: .*ip addr del 10\.0\.0\.100\/24 dev lo/]],
    ],
    [
      'VIP also on eth0: it answers ARP there whatever the sysctls say',
      {
        ...good,
        addresses: [
          ...good.addresses,
          { device: 'eth0', family: 4, address: '10.0.0.100', prefix: 32 },
        ],
      },
      [['blocked', /^VIP 10\.0\.0\.100 is also on eth0: eth0 answers ARP/]],
    ],
    [
      'a sysctl file missing',
      { ...good, sysctls: new Map([['net.ipv4.conf.all.arp_ignore', 1]]) },
      [['blocked', /^net\.ipv4\.conf\.all\.arp_announce does not exist$/]],
    ],
  ];
  for (const [name, observed, expected] of cases) {
    const bad = judge(plan, observed).filter((f) => f.verdict !== 'ok');
    t.equal(bad.length, expected.length, `${name}: ${bad.map((f) => f.message).join(' | ')}`);
    for (const [i, [verdict, message]] of expected.entries()) {
      t.equal(bad[i]?.verdict, verdict, name);
      t.match(bad[i]?.message, message, name);
    }
  }
  t.equal(judge(plan, good).length, plan.steps.length, 'one finding per step when all is well');
});

t.test('judge TUN: no tunl0 means the module is missing, and says which', async (t) => {
  const plan = realServerPlan([v4], 'tun');
  const observed: Observed = {
    links: [{ index: 1, name: 'lo', up: true }],
    addresses: [{ device: 'lo', family: 4, address: '10.0.0.100', prefix: 32 }],
    sysctls: new Map<string, number | null>([
      ['net.ipv4.conf.tunl0.rp_filter', null],
      ['net.ipv4.conf.all.rp_filter', 1],
      ['net.ipv4.conf.all.arp_ignore', 1],
      ['net.ipv4.conf.all.arp_announce', 2],
    ]),
  };
  const bad = judge(plan, observed).filter((f) => f.verdict !== 'ok');
  t.same(
    bad.map((f) => f.verdict),
    ['blocked', 'blocked', 'blocked', 'wrong'],
  );
  t.match(bad[0]?.message, /tunl0 does not exist: the ipip module is not loaded \(modprobe ipip/);
  t.match(bad[3]?.message, /^rp_filter is 1 on all: reverse-path filtering drops/);
  // A VIP on lo beside tunl0 claims nothing on the network: no conflict reported for it.
  t.notOk(bad.some((f) => /also on lo/.test(f.message)));
  const up: Observed = {
    ...observed,
    links: [...observed.links, { index: 5, name: 'tunl0', up: false }],
    sysctls: new Map([...observed.sysctls, ['net.ipv4.conf.tunl0.rp_filter', 1]]),
  };
  t.same(
    judge(plan, up)
      .filter((f) => f.verdict !== 'ok')
      .map((f) => [f.verdict, f.step && stepTitle(f.step)]),
    [
      ['missing', 'tunl0 up'],
      ['missing', 'VIP 10.0.0.100/32 on tunl0'],
      ['wrong', 'net.ipv4.conf.tunl0.rp_filter = 0'],
      ['wrong', 'net.ipv4.conf.all.rp_filter = 0'],
    ],
  );
});
