// The pure parts of bench:peers: /proc parsing, the process tree, the guard, the tables.
import t from 'tap';
import {
  cpuCell,
  combineRounds,
  figuresTable,
  hostOthers,
  parseHostLoad,
  parsePassiveOpens,
  procCounter,
  parseRssKiB,
  parseStat,
  latenessBetween,
  parseWardenMetrics,
  ratioTable,
  refusal,
  countAt,
  type Mark,
  removalOf,
  removedServer,
  splitLines,
  tree,
  type Figures,
  victimPositions,
  victimStops,
  wardenWindow,
} from '../../bench/peers-lib.js';

t.test('Tcp PassiveOpens from /proc/net/snmp', async (t) => {
  const snmp = [
    'Ip: Forwarding DefaultTTL',
    'Ip: 2 64',
    'Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails',
    'Tcp: 1 200 120000 -1 19470457 18835167 635110',
    'Udp: InDatagrams',
    'Udp: 5',
    '',
  ].join('\n');
  t.equal(parsePassiveOpens(snmp), 18835167);
  t.throws(() => parsePassiveOpens('Ip: a\nIp: 1\n'), /no Tcp PassiveOpens/);
  t.throws(() => parsePassiveOpens('Tcp: PassiveOpens\nTcp: x\n'), /no Tcp PassiveOpens/);
  const netstat = [
    'TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPBacklogDrop',
    'TcpExt: 489 18888 18890 0',
    'IpExt: InNoRoutes InTruncatedPkts',
    'IpExt: 0 0',
    '',
  ].join('\n');
  t.equal(procCounter(netstat, 'TcpExt', 'ListenDrops'), 18890);
  t.equal(procCounter(netstat, 'TcpExt', 'SyncookiesSent'), 489, 'the first counter');
  t.throws(() => procCounter(netstat, 'TcpExt', 'Nope'), /no TcpExt Nope/);
  t.throws(() => procCounter(netstat, 'Ip', 'InNoRoutes'), /no Ip InNoRoutes/, 'IpExt is not Ip');
});

// A real line (keepalived's checker child), and one whose name holds ') (' and spaces.
const stat =
  '812 (keepalived) S 811 811 811 0 -1 4194624 570 0 0 0 150 37 5 8 20 0 1 0 1234 12345678 900 18446744073709551615';
const odd = '77 (a) (b c) R 1 77 77 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 6 7';
t.same(
  parseStat(stat),
  {
    pid: 812,
    comm: 'keepalived',
    ppid: 811,
    cpu: (150 + 37 + 5 + 8) / 100,
    system: (37 + 8) / 100,
  },
  'utime + stime + cutime + cstime, in seconds; system: stime + cstime',
);
t.same(
  parseStat(odd),
  { pid: 77, comm: 'a) (b c', ppid: 1, cpu: 0.1, system: 0.06 },
  'fields counted from the last parenthesis',
);
t.throws(() => parseStat('garbage'), /not a \/proc\/PID\/stat line/);
t.throws(() => parseStat('1 (x) S'), /bad times/);

t.equal(parseRssKiB('Name:\tnode\nVmRSS:\t   51234 kB\nRssAnon: 1 kB\n'), 51234);
t.equal(parseRssKiB('Name:\tkthreadd\n'), 0, 'no VmRSS (a kernel thread): 0');

const p = (pid: number, ppid: number) => ({ pid, ppid, comm: 'x', cpu: 0, system: 0 });
const all = [p(1, 0), p(10, 1), p(11, 10), p(12, 10), p(13, 11), p(20, 1), p(21, 20)];
t.same(tree(all, 10).sort(), [10, 11, 12, 13], 'a process and all its descendants');
t.same(tree(all, 99), [], 'a process gone: nothing');

const base = { targets: 1000, intervalS: 1, jitter: 0.1 } as const;
const cases: [string, Parameters<typeof refusal>[0], RegExp | null][] = [
  ['on schedule', { ...base, atTargets: 10_000, windowS: 10 }, null],
  ['late, fewer checks: honest', { ...base, atTargets: 4_000, windowS: 10 }, null],
  ['early by the jitter: allowed', { ...base, atTargets: 11_000, windowS: 10 }, null],
  [
    // The old bench: 24,040 checks over an assumed 10 s; the real window was about 24 s.
    'the old count, divided by an assumed window',
    { ...base, atTargets: 24_040, windowS: 10 },
    /REFUSED: counts disagree: 2404\/s at the targets, more than the schedule's 1155\/s/,
  ],
  ['the same count over the measured window', { ...base, atTargets: 24_040, windowS: 24.2 }, null],
  ['own counter within 5 %', { ...base, atTargets: 9_000, windowS: 10, ownRate: 930 }, null],
  [
    'own counter 10 % above',
    { ...base, atTargets: 9_000, windowS: 10, ownRate: 1000 },
    /REFUSED: counts disagree: 900\.0\/s at the targets, fewer than 1000\.0\/s by the peer's own counter \(-5 %\)/,
  ],
  [
    'own counter 10 % below',
    { ...base, atTargets: 9_000, windowS: 10, ownRate: 810 },
    /REFUSED: counts disagree: 900\.0\/s at the targets, more than 810\.0\/s by the peer's own counter made \(\+5 %\)/,
  ],
  [
    // bench:peers in the VM, TCP at 1,000 over two probe workers: 16 % of the checks timed out
    // connecting, so they never landed; every healthy one did.
    'failed checks that never landed: between the healthy results and all',
    { ...base, atTargets: 4_549, windowS: 10, ownRate: 543.5, ownHealthyRate: 455 },
    null,
  ],
  [
    'fewer at the targets than the healthy results',
    { ...base, atTargets: 4_000, windowS: 10, ownRate: 543.5, ownHealthyRate: 455 },
    /REFUSED: counts disagree: 400\.0\/s at the targets, fewer than the peer's own counter \(543\.5\/s, 455\.0\/s healthy\) found healthy \(-5 %\)/,
  ],
  [
    'more at the targets than all the results',
    { ...base, atTargets: 6_000, windowS: 10, ownRate: 543.5, ownHealthyRate: 455 },
    /REFUSED: counts disagree: 600\.0\/s at the targets, more than the peer's own counter \(543\.5\/s, 455\.0\/s healthy\) made \(\+5 %\)/,
  ],
  [
    // Every connect refused (a target server that is not up): nothing lands.
    'every check failed',
    { ...base, atTargets: 0, windowS: 10, ownRate: 990, ownHealthyRate: 0 },
    /REFUSED: most checks failed: 0\.0\/s of 990\.0\/s healthy by the peer's own counter/,
  ],
  [
    'just under half healthy',
    { ...base, atTargets: 4_900, windowS: 10, ownRate: 1000, ownHealthyRate: 490 },
    /REFUSED: most checks failed: 490\.0\/s of 1000\.0\/s healthy/,
  ],
  [
    'half healthy',
    { ...base, atTargets: 5_000, windowS: 10, ownRate: 1000, ownHealthyRate: 500 },
    null,
  ],
  ['no window', { ...base, atTargets: 5, windowS: 0 }, /REFUSED: counts disagree: no window/],
  [
    // bench:peers in the VM, HTTP at 10,000: the targets' window took in the 4.8 s scrape at the
    // start (slower checks), the counter's did not; over the counter's own window they agree.
    "the targets over the own counter's window agree",
    {
      ...base,
      targets: 10_000,
      atTargets: 34_300,
      windowS: 25,
      ownRate: 1461.4,
      targetsRateOwn: 1440,
    },
    null,
  ],
  [
    "the targets over the own counter's window fall short",
    {
      ...base,
      targets: 10_000,
      atTargets: 34_300,
      windowS: 25,
      ownRate: 1461.4,
      targetsRateOwn: 1370.4,
    },
    /REFUSED: counts disagree: 1370\.4\/s at the targets over the own counter's window, fewer than 1461\.4\/s by the peer's own counter \(-5 %\)/,
  ],
  [
    'more over the own window than it made',
    { ...base, atTargets: 10_000, windowS: 10, ownRate: 900, targetsRateOwn: 1000 },
    /REFUSED: counts disagree: 1000\.0\/s at the targets over the own counter's window, more than 900\.0\/s/,
  ],
];
for (const [name, counts, want] of cases) {
  const got = refusal(counts);
  if (want === null) t.equal(got, null, name);
  else t.match(got, want, name);
}

t.test('countAt: the targets at the time the own counter was read', async (t) => {
  const rows: [string, Mark[], number, number | undefined][] = [
    ['none', [], 5, undefined],
    ['one', [{ n: 100, at: 10 }], 50, 100],
    [
      'between',
      [
        { n: 100, at: 10 },
        { n: 300, at: 30 },
      ],
      15,
      150,
    ],
    [
      'after the last: on the line',
      [
        { n: 100, at: 10 },
        { n: 300, at: 30 },
      ],
      40,
      400,
    ],
    [
      'at one time',
      [
        { n: 100, at: 10 },
        { n: 120, at: 10 },
      ],
      12,
      100,
    ],
  ];
  for (const [name, marks, at, want] of rows) t.equal(countAt(marks, at), want, name);
});

const fig = (peer: string, over: Partial<Figures> = {}): Figures => ({
  peer,
  kind: 'tcp',
  targets: 200,
  checksPerS: 200,
  share: 1,
  cpuMsPerCheck: 0.1,
  rssMiB: 50,
  detectMs: [900, 1000, 1200],
  missed: 0,
  ...over,
});
const rows = [
  fig('ipvs-warden'),
  fig('keepalived', { cpuMsPerCheck: 0.05, rssMiB: 5, detectMs: [500, 2000, 2500] }),
  fig('ldirectord', { refused: 'could not run: 3 of 200 in the table after 240 s' }),
];
const ratios = ratioTable(rows, 'ipvs-warden');
t.match(
  ratios,
  /\| tcp +\| 200 +\| ipvs-warden \/ keepalived \| 1\.00 +\| 1\.00 +\| 2\.00 +\| 10\.00 \| 0\.50 +\|/,
);
t.match(ratios, /ipvs-warden \/ ldirectord +\| could not run: 3 of 200/, 'a refused peer says why');
t.notMatch(ratios, /ipvs-warden \/ ipvs-warden/);
t.match(
  ratioTable(
    [fig('ipvs-warden', { refused: 'REFUSED: counts disagree: x' }), fig('keepalived')],
    'ipvs-warden',
  ),
  /ipvs-warden \/ keepalived \| REFUSED: counts disagree: x/,
  'a refused row of ours refuses the ratio',
);
t.match(
  figuresTable([fig('keepalived', { takenDown: 970 }), fig('floor')]),
  /\| keepalived \| 200 +\| 100 % \| 0\.100 +\| 50\.0 +\| 970 +\|[^\n]*\n\|[^\n]*\| floor +\|[^\n]*\| 50\.0 +\| - +\|/,
  'healthy servers taken down: a count, or - where the peer keeps no table',
);
const figures = figuresTable([fig('keepalived', { detectMs: [800], missed: 2 })]);
t.match(figures, /\| 800\/800\/800 \(2 not seen\) \|/, 'victims never seen gone are counted');
t.equal(figures.split('\n').length, 3, 'header, rule, one row');

// A black-holed row is compared with the same black-holed row of ours, never the plain one.
const holed = ratioTable(
  [
    fig('ipvs-warden'),
    fig('ipvs-warden', { blackholed: 20, cpuMsPerCheck: 0.3 }),
    fig('keepalived', { blackholed: 20, cpuMsPerCheck: 0.1 }),
  ],
  'ipvs-warden',
);
t.match(
  holed,
  /\| tcp +\| 200 \(20 black-holed\) \| ipvs-warden \/ keepalived \| 1\.00 +\| 1\.00 +\| 3\.00 +\|/,
  'matched on black-holed too',
);
t.match(
  figuresTable([fig('keepalived', { blackholed: 20 })]),
  /\| tcp +\| 200 \(20 black-holed\) \| keepalived \|/,
);

t.test('rounds: medians of the rounds not refused, ratios of the rounds paired', async (t) => {
  const ours = [
    fig('ipvs-warden', { checksPerS: 140, cpuMsPerCheck: 5, rssMiB: 90, detectMs: [1000] }),
    fig('ipvs-warden', { checksPerS: 460, cpuMsPerCheck: 2, rssMiB: 98, detectMs: [3000] }),
    fig('ipvs-warden', { checksPerS: 160, cpuMsPerCheck: 4, rssMiB: 94, detectMs: [2000] }),
  ];
  const one = combineRounds(ours);
  t.equal(one.checksPerS, 160, 'checks/s: the median, not the mean (253)');
  t.equal(one.cpuMsPerCheck, 4);
  t.equal(one.rssMiB, 94);
  t.same(one.detectMs, [1000, 3000, 2000], 'detection over every round');
  t.equal(one.note, 'median of 3 rounds');
  t.equal(one.rounds?.length, 3);
  t.equal(combineRounds([ours[0] ?? fig('x')]), ours[0], 'one round is itself');

  const refused = fig('ipvs-warden', { checksPerS: 9999, refused: 'REFUSED: counts disagree: y' });
  const withRefused = combineRounds([ours[0] ?? fig('x'), refused, ours[2] ?? fig('x')]);
  t.equal(withRefused.refused, undefined, 'one round refused: the others still count');
  t.equal(withRefused.checksPerS, 160, 'the refused round is left out (of 140, 160)');
  t.equal(withRefused.note, 'median of 2 rounds (1 refused)');
  t.match(combineRounds([refused, refused]).refused, /counts disagree: y \(all 2 rounds\)/);
  t.throws(() => combineRounds([]), /no rounds/);

  // The peer ran beside ours in each round; the VM was slow in round 2 for both.
  const theirs = [
    fig('keepalived', { cpuMsPerCheck: 1, rssMiB: 10, detectMs: [1000] }),
    fig('keepalived', { cpuMsPerCheck: 0.5, rssMiB: 10, detectMs: [1000] }),
    fig('keepalived', { cpuMsPerCheck: 2, rssMiB: 10, detectMs: [1000] }),
  ];
  const table = ratioTable([one, combineRounds(theirs)], 'ipvs-warden');
  // checks/s 0.70, 2.30, 0.80; share 1 each; CPU 5, 4, 2; RSS 9.0, 9.8, 9.4: medians of pairs.
  t.match(table, /ipvs-warden \/ keepalived \| 0\.80 +\| 1\.00 +\| 4\.00 +\| 9\.40 /);
  // Where pairing and the medians part: ours 1, 10, 4 beside 1, 2, 8 is 1, 5 and 0.5 round by
  // round (median 1.00), while the medians' ratio, 4 / 2, says 2.00.
  const cpu = (peer: string, xs: number[]): Figures =>
    combineRounds(xs.map((x) => fig(peer, { cpuMsPerCheck: x })));
  const apart = ratioTable(
    [cpu('ipvs-warden', [1, 10, 4]), cpu('keepalived', [1, 2, 8])],
    'ipvs-warden',
  );
  t.match(apart, /ipvs-warden \/ keepalived \| 1\.00 +\| 1\.00 +\| 1\.00 +\|/);
  // A round refused on either side leaves that pair out: 10/2 and 4/8 -> 5, 0.5 -> median 5.
  const gap = ratioTable(
    [
      combineRounds([
        fig('ipvs-warden', { cpuMsPerCheck: 1, refused: 'REFUSED: z' }),
        fig('ipvs-warden', { cpuMsPerCheck: 10 }),
        fig('ipvs-warden', { cpuMsPerCheck: 4 }),
      ]),
      cpu('keepalived', [1, 2, 8]),
    ],
    'ipvs-warden',
  );
  t.match(gap, /ipvs-warden \/ keepalived \| 1\.00 +\| 1\.00 +\| 5\.00 +\|/);
  t.match(
    figuresTable([one]),
    /\| 160 \(140, 460, 160\) +\| 100 % \| 4\.000 \(5\.000, 2\.000, 4\.000\)/,
  );
  t.match(figuresTable([withRefused]), /\| 160 \(140, x, 160\)/, 'a refused round shows as x');
});

t.test('host load: the cores other processes used during a window, and the flag', async (t) => {
  // host-load.sh's lines: ms, busy jiffies (all CPUs), the VMs' jiffies; one torn line.
  const samples = parseHostLoad(
    ['1000 500 100', '2000 700 250', '3000 900 400', 'torn', '4000 1150 450', ''].join('\n'),
  );
  t.equal(samples.length, 4, 'the torn and empty lines are skipped');
  const [s1, s2, s3, s4] = samples;
  // s1..s3: busy 400, VM 300: 100 jiffies over 2 s = 0.5 cores.
  t.equal(hostOthers(s1, s3), 0.5);
  // s3..s4: busy 250, VM 50: 2 cores.
  t.equal(hostOthers(s3, s4), 2);
  t.equal(hostOthers(s2, s2), null, 'one sample for both ends (under a second): unknown');
  t.equal(hostOthers(undefined, s2), null, 'not sampled: unknown');
  t.equal(hostOthers(s4, s1), null, 'out of order: unknown');
  t.equal(cpuCell({ cpuMsPerCheck: 1.23456, hostOthers: 0.1 }), '1.235', 'a quiet host: no flag');
  t.equal(cpuCell({ cpuMsPerCheck: 1.23456, hostOthers: null }), '1.235', 'not sampled: no flag');
  t.equal(cpuCell({ cpuMsPerCheck: 1.23456, hostOthers: 0.6 }), '1.235 (host busy: 0.60 cores)');
});

t.test(
  "ipvs-warden's /metrics: its count, its cap and its checks' mean duration over a window",
  async (t) => {
    const page = (results: number, sum: number, count: number, late: number, downs = 0): string =>
      [
        '# HELP ipvs_warden_check_results_total Check results.',
        '# TYPE ipvs_warden_check_results_total counter',
        `ipvs_warden_check_results_total{kind="tcp",outcome="healthy"} ${results}`,
        'ipvs_warden_check_results_total{kind="tcp",outcome="unhealthy"} 5',
        'ipvs_warden_check_results_total_created{kind="tcp"} 1700000000',
        `ipvs_warden_check_duration_seconds_sum{kind="tcp"} ${sum}`,
        `ipvs_warden_check_duration_seconds_count{kind="tcp"} ${count}`,
        'ipvs_warden_check_duration_seconds_sum{kind="http"} 1',
        'ipvs_warden_check_duration_seconds_count{kind="http"} 100',
        'ipvs_warden_check_duration_seconds_bucket{kind="tcp",le="0.001"} 7',
        `ipvs_warden_check_lateness_seconds_sum{kind="tcp"} ${late}`,
        `ipvs_warden_check_lateness_seconds_count{kind="tcp"} ${count}`,
        'ipvs_warden_check_concurrency_limit 16',
        'ipvs_warden_checks_waiting 3',
        `ipvs_warden_server_transitions_total{service="bench",to="down"} ${downs}`,
        'ipvs_warden_server_transitions_total{service="bench",to="up"} 1000',
        `ipvs_warden_server_transitions_total{service="other",to="down"} ${downs}`,
        'process_cpu_seconds_total 12',
        '',
      ].join('\n');
    const a = parseWardenMetrics(page(1000, 2, 1000, 10));
    t.match(a, { all: 1005, healthy: 1000, cap: 16, waiting: 3, durations: 1100, durationS: 3 });
    t.equal(a.latenessS, 10);
    const b = parseWardenMetrics(page(3000, 42, 3000, 30, 6));
    t.equal(b.downs, 12, 'taken down, summed over the services; the ups are not');
    // 2,000 checks more: 40 s of duration (20 ms each), 20 s of lateness (10 ms each).
    t.equal(
      wardenWindow(a, b),
      'cap 16, 3 waiting; check duration mean 20.0 ms, lateness mean 10.0 ms; 12 servers taken down',
    );
    const none = parseWardenMetrics('');
    t.equal(none.all, 0);
    t.ok(Number.isNaN(none.cap), 'no gauge: NaN, not 0');
    t.equal(
      wardenWindow(none, none),
      'cap NaN, NaN waiting; check duration mean -, lateness mean -; 0 servers taken down',
    );
  },
);

t.test("ipvs-warden's lateness between two scrapes, from the histogram's buckets", async (t) => {
  // Cumulative counts per bound, for two kinds each: summed over the kinds.
  const page = (counts: number[]): string =>
    ['0.01', '0.05', '0.1', '+Inf']
      .flatMap((le, i) => [
        `ipvs_warden_check_lateness_seconds_bucket{kind="tcp",le="${le}"} ${counts[i] ?? 0}`,
        `ipvs_warden_check_lateness_seconds_bucket{kind="http",le="${le}"} 1`,
      ])
      .join('\n');
  const a = parseWardenMetrics(page([100, 100, 100, 100]));
  t.equal(a.lateBuckets.get(Infinity), 101, '+Inf read, kinds summed');
  // In between: 1,000 checks, 985 within 10 ms, 995 within 50 ms, 1,000 within 100 ms.
  const b = parseWardenMetrics(page([1085, 1095, 1100, 1100]));
  t.same(latenessBetween(a, b, 0.05, 0.99), { within: 0.995, bound: 0.05 });
  t.same(latenessBetween(a, b, 0.01, 0.98), { within: 0.985, bound: 0.01 });
  t.same(latenessBetween(a, b, 0.05, 0.999), { within: 0.995, bound: 0.1 });
  const late = parseWardenMetrics(page([1085, 1095, 1095, 1100]));
  t.same(
    latenessBetween(a, late, 0.05, 0.999),
    { within: 0.995, bound: Infinity },
    'only +Inf holds the 99.9th',
  );
  t.equal(latenessBetween(a, a, 0.05, 0.99), undefined, 'no check in between');
  t.equal(latenessBetween(parseWardenMetrics(''), parseWardenMetrics(''), 0.05, 0.99), undefined);
  t.match(
    wardenWindow(a, late),
    /, 99\.5 % within 50 ms, p99 at most 50 ms; 0 servers taken down$/,
    'the window line says it',
  );
  t.match(
    wardenWindow(a, parseWardenMetrics(page([150, 150, 150, 1100]))),
    /, 5\.0 % within 50 ms, p99 over 100 ms; 0 servers taken down$/,
  );
});

t.test('victims are spread evenly through the servers that answer', async (t) => {
  const cases: [answering: number, victims: number, positions: number[]][] = [
    [10, 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [20, 10, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]],
    [900, 10, [0, 90, 180, 270, 360, 450, 540, 630, 720, 810]],
    [1000, 3, [0, 333, 666]],
    [5, 10, [0, 1, 2, 3, 4]],
  ];
  for (const [answering, victims, positions] of cases) {
    const at = victimPositions(answering, victims);
    t.same([...at.keys()], positions, `${victims} of ${answering}: where`);
    t.same(
      [...at.values()],
      positions.map((_, k) => k),
      `${victims} of ${answering}: in order`,
    );
  }
});

t.test('the victims stop one at a time, each in a slot of its own of the interval', async (t) => {
  // A small LCG: the same sequence every run.
  const lcg = (seed: number) => () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const sources: [string, () => number][] = [
    ['0', () => 0],
    ['just under 1', () => 1 - Number.EPSILON],
    ['1 (out of range)', () => 1],
    ['an LCG', lcg(7)],
  ];
  for (const victims of [1, 3, 10]) {
    for (const [name, random] of sources) {
      const stops = victimStops(victims, 1000, random);
      const slot = 1000 / victims;
      t.equal(stops.length, victims, `${victims}, random ${name}: one stop each`);
      t.ok(
        stops.every((ms) => ms >= 0 && ms < 1000),
        `${victims}, random ${name}: within the interval`,
      );
      t.same(
        stops.map((ms) => Math.floor(ms / slot)).sort((a, b) => a - b),
        Array.from({ length: victims }, (_, k) => k),
        `${victims}, random ${name}: one victim a slot`,
      );
    }
  }
  t.same(
    victimStops(4, 1000, () => 0.5),
    [125, 875, 375, 625],
    'midpoints of a shuffled order',
  );
  // The order is not the list's: victims spread through the list, checked in list order by a
  // peer, would otherwise all be stopped at the same point of their checks' cycle.
  const lcgStops = victimStops(10, 1000, lcg(7));
  const slots = lcgStops.map((ms) => Math.floor(ms / 100));
  t.not(slots.join(), '0,1,2,3,4,5,6,7,8,9', 'shuffled');
  // Whatever the peer's phases (all alike here, the worst case before), the times from each stop
  // to the next check of its victim cover the interval: over 80 % of it from the least to most.
  for (const phase of [0, 300, 999]) {
    const waits = lcgStops.map((ms) => (phase - ms + 1000) % 1000);
    t.ok(
      Math.max(...waits) - Math.min(...waits) > 800,
      `checks all at ${phase} ms: waits ${waits.map(Math.round).join(' ')}`,
    );
  }
});

t.test('a removal from one log line', async (t) => {
  const applied =
    '{"time":"2026-12-05T06:41:29.832Z","level":"info","event":"reconcile.applied","op":"delete-destination","target":"TCP 10.9.0.1:80 -> 127.1.0.4:7001","service":"bench","reason":"server down (no active connections)"}';
  const rows: [string, boolean, { server: string; ms: number } | null][] = [
    [applied, true, { server: '127.1.0.4:7001', ms: Date.parse('2026-12-05T06:41:29.832Z') }],
    // a weight change, not a removal
    [applied.replace('server down', 'slow start'), true, null],
    [applied.replace('reconcile.applied', 'reconcile.planned'), true, null],
    [applied.slice(0, 80), true, null], // torn
    [applied.replace('"time":"2026', '"time":"x2026'), true, null],
    ['{"event":"reconcile.applied","reason":"server down"}', true, null],
    // keepalived's shim: "MS SERVER"
    ['1764917000123 127.1.0.9:7001', false, { server: '127.1.0.9:7001', ms: 1764917000123 }],
    ['1764917000123', false, null],
    ['', false, null],
    ['x 127.1.0.9:7001', false, null],
    [applied, false, null],
  ];
  for (const [line, ours, want] of rows) t.same(removalOf(line, ours), want, line.slice(0, 60));
});

t.test('lines read as a log grows', async (t) => {
  t.same(splitLines('', ''), { lines: [], carry: '' });
  t.same(splitLines('', 'a\nb'), { lines: ['a'], carry: 'b' });
  t.same(splitLines('b', 'c\n'), { lines: ['bc'], carry: '' });
  t.same(splitLines('x', 'y'), { lines: [], carry: 'xy' });
  t.same(splitLines('', '\n\n'), { lines: ['', ''], carry: '' });
});

t.test('removedServer: the server a removal line of each peer names', async (t) => {
  const applied =
    '{"time":"2026-12-05T19:29:04.397Z","level":"info","event":"reconcile.applied","op":"delete-destination","target":"TCP 10.9.0.1:80 -> 127.1.0.50:7000","service":"bench","reason":"server down: HTTP GET /healthz"}';
  const rows: [string, string, string | null][] = [
    [applied, 'ipvs-warden', '127.1.0.50:7000'],
    [applied.replace('server down', 'server healthy'), 'ipvs-warden', null],
    [
      'Sat Dec  5 19:31:20 2026: Removing service [127.1.0.80]:tcp:7000 from VS [10.9.0.2]:tcp:80',
      'keepalived',
      '127.1.0.80:7000',
    ],
    [
      'Sat Dec  5 19:31:20 2026: HTTP_CHECK on service [127.1.0.80]:tcp:7000 failed.',
      'keepalived',
      null,
    ],
    ['Deleted real server: 127.1.2.3:7000 (10.9.0.3:80)', 'ldirectord', '127.1.2.3:7000'],
    ['Quiescent real server: 127.1.2.3:7000 (10.9.0.3:80) (Weight set to 0)', 'ldirectord', null],
    ['Deleted real server: 127.1.2.3:7000 (10.9.0.3:80)', 'floor', null],
    ['', 'keepalived', null],
  ];
  for (const [line, peer, want] of rows)
    t.equal(removedServer(line, peer), want, `${peer}: ${line.slice(0, 50)}`);
});
