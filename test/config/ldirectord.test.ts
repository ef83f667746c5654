// The ldirectord.cf translator: a table per directive (source text -> raw, notes, problems by
// line), Debian's sample, and a corpus of our own (test/config/ldirectord/) that names every
// directive: what translates validates through the native reader, what is refused names its line.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/checkers.js';
import { translateLdirectord } from '../../src/config/ldirectord.js';
import type { Translation } from '../../src/config/foreign.js';

const corpus = fileURLToPath(new URL('../../../test/config/ldirectord/', import.meta.url));

type Raw = Record<string, unknown>;

function vs(tr: Translation, i = 0): Raw {
  return (tr.raw.virtual_services as Raw[])[i] ?? {};
}
function problemLines(tr: Translation): number[] {
  return tr.problems.map((p) => p.line);
}
/** The line of the note at exactly this path (a value's source). */
function lineOf(tr: Translation, path: (string | number)[]): number | undefined {
  return tr.notes.find((n) => JSON.stringify(n.path) === JSON.stringify(path))?.line;
}
function noteTexts(tr: Translation): string {
  return tr.notes.map((n) => n.text ?? '').join('\n');
}
/** The translation, validated by the native reader (throws its ConfigError). */
function validates(tr: Translation): void {
  parseConfig(stringify(tr.raw), 'converted.yaml', {});
}
const tr = (text: string): Translation => translateLdirectord(text, 'ldirectord.cf');

t.test(
  'fallbackcommand: hooks fallback_on/fallback_off, "start"/"stop" vip:port protocol',
  async (t) => {
    const a = tr(
      'fallbackcommand=/usr/local/bin/sorry -v\n' +
        'virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n' +
        'virtual=192.0.2.2:25\n\treal=10.0.0.1:25 gate\n\tfallbackcommand="logger -t ld fallback"\n' +
        'virtual6=[2001:db8::1]:443\n\treal6=[2001:db8::9]:443 gate\n' +
        'virtual=7\n\treal=10.0.0.1 gate\n\tfallbackcommand="/bin/sorry > /dev/null 2>&1"\n',
    );
    t.same(a.problems, []);
    t.same(vs(a, 0).hooks, {
      fallback_on: ['/usr/local/bin/sorry', '-v', 'start', '192.0.2.1:80', 'tcp'],
      fallback_off: ['/usr/local/bin/sorry', '-v', 'stop', '192.0.2.1:80', 'tcp'],
    });
    t.equal(lineOf(a, ['virtual_services', 0, 'hooks']), 1, 'the global line');
    t.same(
      vs(a, 1).hooks,
      {
        fallback_on: { shell: 'logger -t ld fallback start 192.0.2.2:25 tcp' },
        fallback_off: { shell: 'logger -t ld fallback stop 192.0.2.2:25 tcp' },
      },
      "the service's own; a program by name goes through the shell's PATH",
    );
    t.same((vs(a, 2).hooks as Raw).fallback_on, [
      '/usr/local/bin/sorry',
      '-v',
      'start',
      '[2001:db8::1]:443',
      'tcp',
    ]);
    t.same(
      (vs(a, 3).hooks as Raw).fallback_off,
      { shell: '/bin/sorry > /dev/null 2>&1 stop : fwm' },
      'shell characters: a shell line, as Perl runs it; a fwmark service has no vip:port',
    );
    t.match(noteTexts(a), /run with "start" when no real server is left/);
    validates(a);
  },
);

t.test('virtual= forms', async (t) => {
  const a = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n');
  t.match(vs(a), { protocol: 'tcp', address: '192.0.2.1', port: 80, scheduler: 'wrr' });
  t.equal(lineOf(a, ['virtual_services', 0, 'address']), 1);
  validates(a);

  const named = tr('virtual=192.0.2.1:https\n\treal=10.0.0.1:https gate\n');
  t.match(vs(named), { port: 443 });
  t.match((vs(named).real_servers as Raw[])[0], { port: 443 });

  const dns = tr('virtual=192.0.2.1:domain\n\treal=10.0.0.1:53 gate\n\treceive="x"\n');
  t.match(vs(dns), { protocol: 'udp', port: 53 }, 'port 53 is UDP unless protocol says');

  const v6 = tr('virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 masq\n');
  t.match(vs(v6), { address: '2001:db8::1', port: 80 });
  validates(v6);

  const fwm = tr('virtual=5\n\treal=10.0.0.1:80 gate\n\tservice=http\n');
  t.match(vs(fwm), { fwmark: 5, family: 4 });
  t.notOk('protocol' in vs(fwm));
  validates(fwm);
  t.match(vs(tr('virtual6=5\n\treal6=[2001:db8::2]:80 gate\n')), { fwmark: 5, family: 6 });

  const host = tr('\nvirtual=www.example.com:80\n\treal=10.0.0.1:80 gate\n');
  t.same(problemLines(host), [2]);
  t.match(host.problems[0]?.message, /host name.*write its address/);

  const badPort = tr('virtual=192.0.2.1:nosuch\n\treal=10.0.0.1:80 gate\n');
  t.same(problemLines(badPort), [1]);
  t.match(badPort.problems[0]?.message, /write the port number/);

  t.same(problemLines(tr('virtual=[2001:db8::1]:80\n')), [1], 'IPv6 needs virtual6');
  t.same(problemLines(tr('virtual=x\n')), [1]);
  t.same(
    problemLines(tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\nvirtual=192.0.2.1:80\n')),
    [3],
    'duplicate virtual server',
  );
});

t.test('real= forms', async (t) => {
  const a = tr(
    'virtual=192.0.2.1:80\n' +
      '\treal=10.0.0.9->10.0.0.11:8080 gate 5\n' +
      '\treal=10.0.0.20 masq\n' +
      '\treal=10.0.0.21:80 ipip 0 l:10 u:20\n',
  );
  const rs = vs(a).real_servers as Raw[];
  t.same(
    rs.map((r) => `${String(r.address)}:${String(r.port)} ${String(r.fwd)} ${String(r.weight)}`),
    [
      '10.0.0.9:8080 route 5',
      '10.0.0.10:8080 route 5',
      '10.0.0.11:8080 route 5',
      '10.0.0.20:undefined masq 1',
      '10.0.0.21:80 tunnel 0',
    ],
  );
  t.match(rs[4], { lower_threshold: 10, upper_threshold: 20 });
  t.equal(lineOf(a, ['virtual_services', 0, 'real_servers', 2]), 2, 'a range: each on its line');
  t.equal(lineOf(a, ['virtual_services', 0, 'real_servers', 3]), 3);
  validates(a);

  const own = tr(
    'virtual=192.0.2.1:80\n' +
      '\treal=10.0.0.1:80 gate\n' +
      '\treal=10.0.0.2:80 gate 1 "/alive", "yes"\n' +
      '\treceive="ok"\n',
  );
  t.match(vs(own).checks, [{ type: 'http', path: '/', body_match: 'ok' }]);
  t.match((vs(own).real_servers as Raw[])[1]?.checks, [
    { type: 'http', path: '/alive', body_match: 'yes' },
  ]);
  t.equal(lineOf(own, ['virtual_services', 0, 'real_servers', 1, 'checks', 0, 'path']), 3);
  validates(own);

  for (const [line, why] of [
    ['\treal=10.0.0.1:80\n', /wrong format/],
    ['\treal=10.0.0.1:80 direct\n', /gate, masq or ipip/],
    ['\treal=10.0.0.1:80 gate junk\n', /Invalid real server line/],
    ['\treal=10.0.0.5->10.0.0.1:80 gate\n', /Invalid Range/],
    ['\treal=db1:80 gate\n', /host name/],
    ['\treal6=[2001:db8::1]:80 gate\n', /please use "real"/],
  ] as const) {
    const x = tr(`virtual=192.0.2.1:80\n${line}`);
    t.same(problemLines(x), [2], line);
    t.match(x.problems[0]?.message, why);
  }
  const r6 = tr('virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::1]->[2001:db8::3]:80 gate\n');
  t.match(r6.problems[0]?.message, /IPv6 is not supported/);
});

t.test('blocks end as ldirectord ends them', async (t) => {
  // A blank line ends the block: the indented line after it is an unknown top-level command.
  const a = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\n\tscheduler=rr\n');
  t.same(problemLines(a), [4]);
  t.match(a.problems[0]?.message, /Unknown command/);
  // A comment line inside does not; a # ends a value.
  const b = tr('virtual=192.0.2.1:80\n# note\n\treal=10.0.0.1:80 gate\n\tscheduler=rr # round\n');
  t.same(problemLines(b), []);
  t.equal(vs(b).scheduler, 'rr');
  t.equal((vs(b).real_servers as Raw[]).length, 1);
  // Four spaces indent as a tab does.
  t.equal(vs(tr('virtual=192.0.2.1:80\n    scheduler=lc\n')).scheduler, 'lc');
});

t.test('checktype and service -> checks', async (t) => {
  const check = (block: string, proto = ''): Raw | undefined => {
    const x = tr(`virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n${proto}${block}`);
    t.same(x.problems, [], block);
    validates(x);
    return ((vs(x).checks as Raw[] | undefined) ?? [])[0];
  };
  t.same(check('\tchecktype=connect\n'), { type: 'tcp' });
  t.same(check('\tchecktype=connect\n', '\tprotocol=udp\n'), { type: 'ping' });
  t.same(check('\tchecktype=ping\n\tcheckcount=3\n'), { type: 'ping', count: 3 });
  t.same(check('\tchecktype=on\n'), undefined);
  t.same(check('\tservice=none\n'), undefined);
  t.match(check('\tchecktype=2\n'), { type: 'http' });
  t.same(check('\tchecktype=external\n\tcheckcommand="/bin/chk"\n'), {
    type: 'exec',
    command: ['/bin/chk', '192.0.2.1', '80', '{address}', '{port}'],
  });
  t.same(check('\tchecktype=external-perl\n\tcheckcommand=/etc/chk.pl\n'), {
    type: 'exec',
    command: ['/usr/bin/perl', '/etc/chk.pl', '192.0.2.1', '80', '{address}', '{port}'],
  });
  t.same(
    check(
      '\tservice=http\n\trequest="status"\n\treceive="up"\n\thttpmethod=head\n\tvirtualhost="w.example"\n\tcheckport=8080\n',
    ),
    {
      type: 'http',
      port: 8080,
      method: 'HEAD',
      path: '/status',
      host: 'w.example',
      body_match: 'up',
    },
  );
  t.match(check('\tservice=https\n'), { type: 'https', tls: { verify: false } });
  t.match(check('\tservice=http_proxy\n\trequest="http://example.com/"\n'), {
    type: 'http',
    proxy_url: 'http://example.com/',
  });
  t.same(check('\tservice=pop\n\tlogin="u"\n\tpasswd="p"\n'), {
    type: 'pop3',
    user: 'u',
    password: 'p',
  });
  t.match(check('\tservice=pops\n'), { type: 'pop3s' });
  t.match(check('\tservice=imap\n'), { type: 'imap' });
  t.match(check('\tservice=imaps\n'), { type: 'imaps' });
  t.same(check('\tservice=smtp\n'), { type: 'smtp' });
  t.same(check('\tservice=submission\n'), { type: 'submission' });
  t.same(check('\tservice=nntp\n'), { type: 'nntp' });
  t.same(check('\tservice=ldap\n\trequest="dc=x"\n\treceive="dc=x"\n'), {
    type: 'ldap',
    base: 'dc=x',
    expect_dn: 'dc=x',
  });
  t.match(check('\tservice=ldaps\n'), { type: 'ldaps', base: '' });
  t.same(check('\tservice=dns\n\trequest="a.example"\n\treceive="10."\n', '\tprotocol=udp\n'), {
    type: 'dns',
    name: 'a.example',
    expect_answer: '10.',
  });
  t.same(check('\tservice=mysql\n\tlogin="u"\n\tdatabase="d"\n\trequest="SELECT 1"\n'), {
    type: 'mysql',
    user: 'u',
    database: 'd',
    query: 'SELECT 1',
  });
  t.match(check('\tservice=pgsql\n\tlogin="u"\n\trequest="SELECT 1"\n'), { type: 'pgsql' });
  t.same(check('\tservice=radius\n\tsecret="s"\n\tlogin="u"\n', '\tprotocol=udp\n'), {
    type: 'radius',
    secret: 's',
    user: 'u',
  });
  t.same(check('\tservice=sip\n\tlogin="a@b"\n', '\tprotocol=udp\n'), {
    type: 'sip',
    transport: 'udp',
    uri: 'sip:a@b',
  });
  t.same(check('\tservice=simpletcp\n\trequest="PING\\n"\n\treceive="PONG"\n'), {
    type: 'tcp',
    send: 'PING\\n',
    expect_regex: 'PONG',
  });
  t.same(check('\tservice=ftp\n'), { type: 'ftp', user: 'anonymous' });
  t.same(check('\tservice=ftp\n\trequest="hello.txt"\n\treceive="hello"\n'), {
    type: 'ftp',
    user: 'anonymous',
    request: '/hello.txt',
    expect: 'hello',
  });

  const off = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tchecktype=off\n');
  t.match(vs(off), { checks: [], real_servers: [{ state: 'maintenance' }] });

  for (const [block, line] of [
    ['\tservice=oracle\n', 3],
    ['\tservice=mysql\n', 3],
    ['\tservice=dns\n\treceive="x"\n', 3],
    ['\tservice=radius\n', 3],
    ['\tservice=http_proxy\n', 3],
    ['\tservice=gopher\n', 3],
    ['\tchecktype=sometimes\n', 3],
  ] as const) {
    const x = tr(`virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n${block}`);
    t.same(problemLines(x), [line], block);
  }
});

t.test('timing: ldirectord defaults, written out', async (t) => {
  const a = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tchecktype=connect\n');
  t.match(a.raw.defaults, {
    interval: '10s',
    fast_interval: '10s',
    down_interval: '10s',
    rise: 1,
    fall: 1,
    on_failure: 'remove',
    drain_timeout: '0s',
  });
  t.equal(vs(a).timeout, '5s', 'connect: checktimeout, default 5');
  t.match(a.raw.daemon, { cleanstop: true });

  // negotiate: negotiatetimeout, default 30, at most the interval (noted)
  const b = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n');
  t.equal(vs(b).timeout, '10s');
  t.match(noteTexts(b), /waits up to 30 s/);

  const c = tr(
    'checktimeout=2\ncheckinterval=30\nfailurecount=4\nquiescent=yes\ncleanstop=no\n' +
      'virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n',
  );
  t.match(c.raw.defaults, { interval: '30s', fall: 4, on_failure: 'quiesce' });
  t.equal(vs(c).timeout, '2s', 'negotiatetimeout falls back on checktimeout');
  t.equal(lineOf(c, ['virtual_services', 0, 'timeout']), 1);
  t.equal(lineOf(c, ['defaults', 'fall']), 3);
  t.match(c.raw.daemon, { cleanstop: false });
  validates(c);

  const d = tr(
    'negotiatetimeout=7\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n' +
      '\tnegotiatetimeout=3\n\tfailurecount=2\n\tquiescent=yes\n\tcheckinterval=5\n',
  );
  t.match(vs(d), { timeout: '3s', fall: 2, on_failure: 'quiesce' });
  t.notOk('interval' in vs(d), 'per-virtual checkinterval is ignored with fork=no');
  t.match(noteTexts(d), /ignores it when fork=no/);
  const e = tr('fork=yes\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tcheckinterval=5\n');
  t.match(vs(e), { interval: '5s', timeout: '5s' });

  for (const [text, line] of [
    ['connecttimeout=3\n', 1],
    ['timeout=3\n', 1],
    ['checktimeout=0\n', 1],
    ['virtual=192.0.2.1:80\n\tconnecttimeout=3\n', 2],
  ] as const)
    t.same(problemLines(tr(text)), [line], text);
});

t.test('service settings', async (t) => {
  const a = tr(
    'virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tscheduler=sh\n\tschedflags=sh-port,sh-fallback\n' +
      '\tpersistent=900\n\tnetmask=255.255.0.0\n\tservicename=web\n',
  );
  t.match(vs(a), {
    name: 'web',
    scheduler: 'sh',
    sched_flags: ['sh-port', 'sh-fallback'],
    persistent: '900s',
    netmask: 16,
  });
  validates(a);
  t.same(problemLines(tr('virtual=192.0.2.1:80\n\tpersistent=9\n\tnetmask=255.0.255.0\n')), [3]);
  const udp = tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tprotocol=udp\n\tops=yes\n');
  t.match(vs(udp), { protocol: 'udp', one_packet: true });
  t.same(problemLines(tr('virtual=5\n\tprotocol=tcp\n')), [2]);
});

t.test('fallback, global and per virtual', async (t) => {
  const a = tr(
    'fallback=127.0.0.1:8080\nfallback6=[::1]\n' +
      'virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n' +
      'virtual=192.0.2.2:80\n\treal=10.0.0.1:80 gate\n\tfallback=10.9.9.9 masq\n' +
      'virtual6=[2001:db8::1]:443\n\treal6=[2001:db8::2]:443 gate\n',
  );
  t.same(vs(a, 0).fallback, { address: '127.0.0.1', port: 8080, fwd: 'route', weight: 1 });
  t.equal(lineOf(a, ['virtual_services', 0, 'fallback']), 1);
  t.same(vs(a, 1).fallback, { address: '10.9.9.9', port: 80, fwd: 'masq', weight: 1 });
  t.same(vs(a, 2).fallback, { address: '::1', port: 443, fwd: 'route', weight: 1 });
  validates(a);
  t.same(problemLines(tr('virtual=192.0.2.1:80\n\tfallback6=[::1]:80\n')), [2]);
  t.same(problemLines(tr('fallback=sorry.example:80\nvirtual=192.0.2.1:80\n')), [1]);
});

t.test(
  'email alerts: the global directives, a virtual block of its own, ldirectord defaults',
  async (t) => {
    const a = tr(
      [
        'emailalert="ops@example.com, oncall@example.com"',
        'emailalertfreq=600',
        'emailalertstatus=starting, running',
        'emailalertfrom="LVS" <lvs@example.com>',
        'smtp=mail.example.com:2525',
        'virtual=192.0.2.1:80',
        '\treal=10.0.0.1:80 gate',
        '\temailalert="web@example.com"',
        '\temailalertfreq=0',
        '\temailalertstatus=none',
        '\tsmtp=10.0.0.25',
        'virtual=192.0.2.2:80',
        '\treal=10.0.0.2:80 gate',
        '',
      ].join('\n'),
    );
    t.same(a.problems, []);
    t.same(a.raw.alerts, {
      email: {
        to: ['ops@example.com', 'oncall@example.com'],
        from: '"LVS" <lvs@example.com>',
        repeat: '600s',
        on: ['starting', 'running'],
        smtp: 'mail.example.com:25',
      },
    });
    t.match(
      a.notes.find((n) => n.path.join('.') === 'alerts.email.smtp')?.text,
      /reads the host name alone \(mail\.example\.com\)/,
    );
    const vss = a.raw.virtual_services as Record<string, unknown>[];
    t.same(vss[0]?.alerts, {
      email: { to: ['web@example.com'], repeat: '0s', on: 'none', smtp: '10.0.0.25:25' },
    });
    t.equal(vss[1]?.alerts, undefined, 'the other service takes the global settings');
    const c = parseConfig(stringify(a.raw), 'converted.yaml', {});
    t.match(c.alerts?.email, { smtp: { host: 'mail.example.com', port: 25 }, repeatMs: 600_000 });
    t.same(c.virtualServices[0]?.alerts?.email?.on, []);
    // A virtual block's recipients without global ones: the settings carry, no one else is mailed;
    // no smtp: the local MTA, where ldirectord hands mail to sendmail.
    const own = tr(
      'emailalertfreq=60\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\temailalert="a@example.com"\n',
    );
    t.same(own.raw.alerts, { email: { repeat: '60s', to: [], smtp: 'localhost:25' } });
    t.doesNotThrow(() => validates(own));
    t.same(
      tr('virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n').raw.alerts,
      undefined,
      'none: no alerts',
    );
  },
);

t.test('global directives: honoured, noted or refused by line', async (t) => {
  const a = tr(
    'maintenancedir=/etc/maint\nautoreload=yes\nlogfile="local0"\nsupervised=yes\nfork=no\nreaddquiescent=no\n',
  );
  t.match(a.raw.daemon, { maintenance_dir: '/etc/maint' });
  t.same(a.problems, []);
  t.same(
    a.notes.filter((n) => n.path.length === 0).map((n) => n.line),
    [2, 3, 4, 5, 6],
  );
  for (const d of [
    'callback="/bin/x"',
    'emailalert=""',
    'emailalertfreq=often',
    'emailalertstatus=all,none',
    'emailalertfrom=',
    'smtp=',
    'execute=other.cf',
    'quiescent=perhaps',
    'logfile=/unquoted',
    '  indented=1',
  ]) {
    const x = tr(`# top\n${d}\n`);
    t.same(problemLines(x), [2], d);
  }
  t.match(
    tr('emailalertstatus=none,running\n').problems[0]?.message,
    /"none" specified with others/,
  );
  const cs = tr(
    'virtual=192.0.2.1:80\n\tcleanstop=no\n\treal=10.0.0.1:80 gate\n' +
      'virtual=192.0.2.2:80\n\treal=10.0.0.1:80 gate\n',
  );
  t.same(problemLines(cs), [2], 'a per-virtual cleanstop unlike the others');
  const same = tr('cleanstop=no\nvirtual=192.0.2.1:80\n\tcleanstop=no\n\treal=10.0.0.1:80 gate\n');
  t.same(same.problems, []);
  t.match(same.raw.daemon, { cleanstop: false });
});

t.test("Debian's sample translates and validates", async (t) => {
  const plain = '/usr/share/doc/ldirectord/examples/ldirectord.cf';
  const text = existsSync(plain)
    ? readFileSync(plain, 'utf8')
    : existsSync(`${plain}.gz`)
      ? gunzipSync(readFileSync(`${plain}.gz`)).toString('utf8')
      : undefined;
  if (text === undefined) {
    // test/setup.sh installs ldirectord: without its sample this test has nothing to judge.
    t.fail(`no ${plain}: install ldirectord (bash test/setup.sh)`);
    return;
  }
  const x = translateLdirectord(text, plain);
  t.same(x.problems, []);
  t.match(vs(x), {
    name: 'Web Site',
    address: '192.168.6.240',
    port: 80,
    scheduler: 'rr',
    checks: [{ type: 'http', path: '/index.html', host: 'www.x.y.z', body_match: 'Test Page' }],
    fallback: { address: '127.0.0.1', port: 80, fwd: 'route' },
  });
  t.match(x.raw.defaults, { interval: '1s', on_failure: 'remove' });
  validates(x);
});

/** Lines after a `# expect: refused` marker (the next line that is not a comment or blank). */
function expectedRefusals(text: string): number[] {
  const lines = text.split('\n');
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (!/^\s*# expect: refused/.test(l)) return;
    let j = i + 1;
    while (j < lines.length && /^\s*(#.*)?$/.test(lines[j] ?? '')) j++;
    out.push(j + 1);
  });
  return out;
}

const DIRECTIVES = [
  'virtual',
  'virtual6',
  'real',
  'real6',
  'checktype',
  'checkcommand',
  'service',
  'request',
  'receive',
  'httpmethod',
  'virtualhost',
  'checkport',
  'login',
  'passwd',
  'database',
  'secret',
  'checktimeout',
  'negotiatetimeout',
  'connecttimeout',
  'checkinterval',
  'checkcount',
  'failurecount',
  'scheduler',
  'persistent',
  'netmask',
  'schedflags',
  'protocol',
  'ops',
  'quiescent',
  'readdquiescent',
  'fallback',
  'fallback6',
  'fallbackcommand',
  'maintenancedir',
  'cleanstop',
  'autoreload',
  'callback',
  'emailalert',
  'emailalertfreq',
  'emailalertstatus',
  'emailalertfrom',
  'smtp',
  'logfile',
  'supervised',
  'fork',
  'execute',
  'servicename',
  'comment',
  'monitorfile',
  'load',
  'timeout',
];

t.test('the corpus: refusals by line, the rest validates', async (t) => {
  const files = readdirSync(corpus).filter((f) => f.endsWith('.cf'));
  t.ok(files.length >= 4);
  let all = '';
  for (const f of files) {
    const text = readFileSync(corpus + f, 'utf8');
    all += text;
    const x = translateLdirectord(text, f);
    t.same(
      [...new Set(problemLines(x))].sort((a, b) => a - b),
      expectedRefusals(text),
      `${f}: problems on exactly the marked lines`,
    );
    t.doesNotThrow(() => validates(x), `${f}: what translates validates`);
  }
  for (const d of DIRECTIVES)
    t.match(all, new RegExp(`^\\s*${d}\\s*=`, 'm'), `the corpus writes ${d}`);
});

t.test('a ping check of a fwmark real server without a port runs (ping needs none)', async (t) => {
  const x = tr('virtual=7\n\treal=10.0.0.1 gate\n\tchecktype=ping\n');
  t.same(x.problems, []);
  t.doesNotThrow(() => parseConfig(stringify(x.raw), 'ldirectord.cf', {}));
});
