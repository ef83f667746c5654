// Alerts in the config (read, refused at their path, printed and read back by check-config) and
// the pure decisions: a table of events and what each sends to which target, the repeat
// schedule on a given time, the daemon-state filter, a reload; and the texts (ldirectord's
// subjects, Alertmanager's alert).
import t from 'tap';
import { configProblems } from '../config/problems.js';
import { CATALOG, parseConfig } from '../../src/checkers.js';
import {
  NO_ALERTS,
  nextDue,
  onConfig,
  onEvent,
  onTime,
  type AlertContext,
  type AlertEvent,
  type AlertState,
} from '../../src/alerts/decide.js';
import { alertmanagerAlert, mail, subject, webhookBody } from '../../src/alerts/format.js';
import type { DaemonPhase } from '../../src/config/alerts.js';
import { effectiveConfig } from '../../src/config/effective.js';
import type { Config } from '../../src/config/model.js';

const BASE = `alerts:
  email:
    to: ops@example.com, oncall@example.com
    from: '"LVS" <lvs@example.com>'
    smtp: mail.example.com
    repeat: 10m
    on: [running, reloading]
  webhooks:
    - {name: am, url: "http://127.0.0.1:9093", format: alertmanager, repeat: 1m}
    - {name: chat, url_env: CHAT_URL, format: slack}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    on_failure: quiesce
    fallback: {address: 127.0.0.1, port: 8080}
    alerts: {email: {to: [web@example.com], repeat: 1m, on: all}}
    real_servers:
      - {name: a, address: 10.0.0.1}
      - {address: 10.0.0.2}
  - address: 192.0.2.2
    port: 443
    real_servers: [{address: 10.0.0.3}]
  - address: 192.0.2.3
    port: 25
    alerts: {email: {to: []}}
    real_servers: [{address: 10.0.0.4}]
`;
const ENV = { CHAT_URL: 'https://chat.example/hooks/T0K3N' };
const T0 = 1_700_000_000_000;

const problems = (text: string): string[] => configProblems(text, ENV);

t.test('alerts are read; check-config prints every default and reads back', async (t) => {
  const c = parseConfig(BASE, 'test.yaml', ENV);
  t.match(c.alerts, {
    email: {
      to: ['ops@example.com', 'oncall@example.com'],
      from: '"LVS" <lvs@example.com>',
      smtp: { host: 'mail.example.com', port: 25 },
      tls: 'auto',
      repeatMs: 600_000,
      on: ['running', 'reloading'],
      timeoutMs: 30_000,
    },
    webhooks: [
      { name: 'am', url: 'http://127.0.0.1:9093/api/v2/alerts', repeatMs: 60_000 },
      { name: 'chat', url: ENV.CHAT_URL, urlSource: { env: 'CHAT_URL' }, repeatMs: 0 },
    ],
  });
  t.same(c.virtualServices[0]!.alerts, {
    email: {
      to: ['web@example.com'],
      repeatMs: 60_000,
      on: ['starting', 'running', 'reloading', 'stopping'],
    },
  });
  t.same(c.virtualServices[2]!.alerts, { email: { to: [] } });
  const printed = effectiveConfig(c, CATALOG, { showSecrets: true });
  t.match(printed, /url_env: CHAT_URL/);
  t.match(printed, /smtp: mail\.example\.com:25/);
  t.same(
    effectiveConfig(parseConfig(printed, 'again.yaml', ENV), CATALOG, { showSecrets: true }),
    printed,
    'reads back',
  );
  // A literal URL may hold a token: hidden unless asked for, and refused when read back hidden.
  const literal = parseConfig(
    BASE.replace('url_env: CHAT_URL', `url: "${ENV.CHAT_URL}"`),
    'x',
    ENV,
  );
  t.notMatch(effectiveConfig(literal, CATALOG), /T0K3N/);
  t.match(effectiveConfig(literal, CATALOG, { showSecrets: true }), /T0K3N/);
  t.match(
    problems(effectiveConfig(literal, CATALOG)).join('\n'),
    /webhooks\.1\.url: is <redacted>/,
  );
});

t.test('mistakes, each at its path', async (t) => {
  const p = problems(`alerts:
  email: {to: [nobody], smtp: "mail example", tls: maybe, on: [all, none], user: u, repeat: -1}
  webhooks:
    - {url: "ftp://x", format: slack}
    - {format: alertmanager, url: "http://am", repeat: 500ms}
    - {url: "http://x", format: teams}
    - {url: "http://y", format: json, name: chat}
    - {url: "http://z", format: json, name: chat}
  paging: yes
virtual_services:
  - address: 192.0.2.1
    port: 80
    alerts: {email: {from: x@y, on: sometimes}}
    real_servers: [{address: 10.0.0.1}]
`);
  t.same(p.sort(), [
    'alerts.email.on: none stands alone (as in ldirectord)',
    'alerts.email.repeat: must be a duration like 500ms, 2s, 5m or a number of seconds, got -1',
    'alerts.email.smtp: must be host, host:port or [IPv6]:port, got "mail example"',
    'alerts.email.tls: must be one of auto, starttls, implicit, none, got "maybe"',
    'alerts.email.to.0: must be an email address (user@domain), got "nobody"',
    'alerts.email.user: needs password (or password_file, password_env)',
    'alerts.paging: unknown key',
    'alerts.webhooks.0.url: must be an http:// or https:// URL, got ftp:',
    'alerts.webhooks.1.repeat: must be at least 1s for alertmanager: a firing alert not sent again ends (its endsAt passes)',
    'alerts.webhooks.2.format: must be one of alertmanager, slack, json, got "teams"',
    'alerts.webhooks.4.name: "chat" is already a target\'s name',
    'virtual_services.0.alerts.email.from: unknown key',
    'virtual_services.0.alerts.email.on: must be one of starting, running, reloading, stopping, got "sometimes"',
  ]);
  t.same(
    problems('virtual_services: [{address: 192.0.2.1, port: 80, alerts: {email: {repeat: 1m}}}]'),
    [
      'virtual_services.0.alerts.email: names no recipients and there is no alerts.email to take them from: give to (here or in alerts.email)',
    ],
  );
});

const config = parseConfig(BASE, 'test.yaml', ENV);
const [web, tls, smtp] = config.virtualServices;
const [a, b] = web!.realServers;

function ctx(now: number, phase: DaemonPhase = 'running', c: Config = config): AlertContext {
  return { now, phase, alerts: c.alerts };
}

function server(
  from: 'up' | 'down' | 'pending',
  to: 'up' | 'down',
  vs = web!,
  rs = a!,
): AlertEvent {
  return {
    kind: 'server',
    vs,
    rs,
    from,
    to,
    healthy: to === 'up' ? 2 : 1,
    servers: 2,
    message: 'connect: refused',
  };
}

/** target name and alert name of each delivery. */
function sent(d: ReturnType<typeof onEvent>): string[] {
  return d.deliveries.map(
    (x) => `${x.target.name} ${x.alert.name}${x.alert.repeat ? ' repeat' : ''}`,
  );
}

t.test('which events alert, to which targets', async (t) => {
  const all = ['email server_down', 'am server_down', 'chat server_down'];
  const table: [string, AlertEvent, DaemonPhase, string[]][] = [
    ['up -> down fires everywhere', server('up', 'down'), 'running', all],
    ['pending -> down (found down at start) fires', server('pending', 'down'), 'starting', all],
    ['pending -> up says nothing', server('pending', 'up'), 'starting', []],
    ['up -> up says nothing', server('up', 'up'), 'running', []],
    [
      'down -> up resolves',
      server('down', 'up'),
      'running',
      ['email server_up', 'am server_up', 'chat server_up'],
    ],
    [
      'mail only in the states `on` lists (the top level: running, reloading)',
      server('up', 'down', tls, tls!.realServers[0]),
      'stopping',
      ['am server_down', 'chat server_down'],
    ],
    [
      'a service with to: [] mails no one',
      server('up', 'down', smtp, smtp!.realServers[0]),
      'running',
      ['am server_down', 'chat server_down'],
    ],
    [
      'fallback on',
      { kind: 'fallback', vs: web!, on: true, healthy: 0, servers: 2 },
      'running',
      ['email fallback_on', 'am fallback_on', 'chat fallback_on'],
    ],
    [
      'fallback of a service without a fallback server: nothing',
      { kind: 'fallback', vs: tls!, on: true, healthy: 0, servers: 1 },
      'running',
      [],
    ],
    [
      'quorum lost, for a service with a quorum',
      {
        kind: 'quorum',
        vs: { ...web!, quorum: { weight: 3, hysteresis: 1 } },
        up: false,
        healthy: 1,
        servers: 2,
        weight: 1,
      },
      'running',
      ['email quorum_down', 'am quorum_down', 'chat quorum_down'],
    ],
    [
      'quorum of a service without one configured (no server healthy): the server alerts say it',
      { kind: 'quorum', vs: web!, up: false, healthy: 0, servers: 2, weight: 0 },
      'running',
      [],
    ],
  ];
  for (const [name, event, phase, want] of table)
    t.same(sent(onEvent(NO_ALERTS, event, ctx(T0, phase))), want, name);
  const lost = onEvent(
    NO_ALERTS,
    {
      kind: 'quorum',
      vs: { ...web!, quorum: { weight: 3, hysteresis: 1 } },
      up: false,
      healthy: 1,
      servers: 2,
      weight: 1,
    },
    ctx(T0),
  ).deliveries[0]!;
  t.match(lost.alert, { firing: true, message: 'healthy weight 1, quorum 3 (hysteresis 1)' });
  t.match(subject(lost.alert), /^\[web\] Lost quorum: \S+ \(healthy weight 1\)$/);
  // The service's own email settings: its recipients, the top level's sender and server.
  const d = onEvent(NO_ALERTS, server('up', 'down'), ctx(T0)).deliveries[0]!;
  t.match(d.target, {
    kind: 'email',
    email: { to: ['web@example.com'], from: '"LVS" <lvs@example.com>', repeatMs: 60_000 },
  });
  // No alerts: section, no target.
  const bare = parseConfig(
    'virtual_services: [{address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.1}]}]',
    'x',
    {},
  );
  const vs = bare.virtualServices[0]!;
  t.same(
    sent(onEvent(NO_ALERTS, server('up', 'down', vs, vs.realServers[0]), ctx(T0, 'running', bare))),
    [],
  );
});

t.test(
  'repeats: email for a down server (ldirectord), webhooks for every firing alert',
  async (t) => {
    let s: AlertState = onEvent(NO_ALERTS, server('up', 'down'), ctx(T0)).state;
    s = onEvent(
      s,
      { kind: 'fallback', vs: web!, on: true, healthy: 0, servers: 2 },
      ctx(T0 + 1000),
    ).state;
    t.equal(nextDue(s), T0 + 60_000, 'the earliest: email (1m for this service) and am (1m)');
    let d = onTime(s, ctx(T0 + 59_999));
    t.same(sent(d), [], 'nothing before it is due');
    d = onTime(s, ctx(T0 + 60_000));
    t.same(sent(d), ['email server_down repeat', 'am server_down repeat']);
    t.equal(
      mail(d.deliveries[0]!.alert, 'lvs1').subject,
      '[web] Inaccessible real server: 10.0.0.1:80 (192.0.2.1:80)',
    );
    t.equal(d.deliveries[1]!.alert.since, T0, 'a repeat keeps when it began');
    s = d.state;
    t.equal(
      nextDue(s),
      T0 + 61_000,
      'the fallback alert to am; email does not repeat fallback, chat repeats nothing',
    );
    d = onTime(s, ctx(T0 + 61_000));
    t.same(sent(d), ['am fallback_on repeat']);
    s = d.state;
    // Recovery: resolved with its start, and no more reminders for it.
    d = onEvent(s, server('down', 'up'), ctx(T0 + 90_000));
    t.equal(d.deliveries.find((x) => x.target.name === 'am')?.alert.since, T0);
    s = d.state;
    t.equal(nextDue(s), T0 + 121_000, 'only the fallback alert is left');
    // Mail held back by `on` is still recorded: its reminder goes once the state is listed.
    let q = onEvent(NO_ALERTS, server('up', 'down', tls, tls!.realServers[0]), ctx(T0, 'stopping'));
    t.same(sent(q), ['am server_down', 'chat server_down']);
    q = onTime(q.state, ctx(T0 + 600_000, 'running'));
    t.same(sent(q), ['email server_down repeat', 'am server_down repeat']);
  },
);

t.test(
  'a reload: firing alerts take the new settings; gone servers and targets are forgotten',
  async (t) => {
    let s = onEvent(NO_ALERTS, server('up', 'down'), ctx(T0)).state;
    s = onEvent(s, server('up', 'down', web, b), ctx(T0)).state;
    t.equal(s.firing.size, 6);
    const next = parseConfig(
      BASE.replace('repeat: 1m, on: all', 'repeat: 5m, on: all')
        .replace(/ {4}- \{name: chat.*\n/, '')
        .replace('      - {address: 10.0.0.2}\n', ''),
      'next.yaml',
      ENV,
    );
    s = onConfig(s, next);
    t.same([...s.firing.keys()].map((k) => k.split('\n')[0]).sort(), ['am', 'email']);
    t.equal(nextDue(s), T0 + 60_000, 'am still every minute');
    const d = onTime(s, ctx(T0 + 60_000, 'running', next));
    t.same(sent(d), ['am server_down repeat'], 'email now every 5 minutes');
  },
);

t.test(
  'the texts: ldirectord subjects and body lines; Alertmanager, chat and JSON bodies',
  async (t) => {
    const at = (e: AlertEvent) => onEvent(NO_ALERTS, e, ctx(T0)).deliveries[0]!.alert;
    const down = at(server('up', 'down'));
    t.same(mail(down, 'lvs1'), {
      subject: '[web] Quiescent real server: 10.0.0.1:80 (192.0.2.1:80) (Weight set to 0)',
      text: [
        'ipvs-warden host: lvs1',
        'Log-Message: [web] Quiescent real server: 10.0.0.1:80 (192.0.2.1:80) (Weight set to 0)',
        'Daemon-Status: running',
        '',
        'Service name: web',
        'Real server: a (10.0.0.1:80)',
        'Healthy: 1 of 2',
        'Reason: connect: refused',
        'Since: 2023-11-14T22:13:20.000Z',
        '',
      ].join('\n'),
    });
    t.equal(
      mail(at(server('down', 'up')), 'h').subject,
      '[web] Restored real server: 10.0.0.1:80 (192.0.2.1:80) (Weight set to 1)',
    );
    const plain = at(server('up', 'down', tls, tls!.realServers[0]));
    t.equal(
      mail(plain, 'h').subject,
      'Deleted real server: 10.0.0.3:443 (192.0.2.2:443)',
      'no name of its own: no prefix',
    );
    t.equal(
      mail(at(server('down', 'up', tls, tls!.realServers[0])), 'h').subject,
      'Added real server: 10.0.0.3:443 (192.0.2.2:443) (Weight set to 1)',
    );
    t.equal(
      mail(at({ kind: 'fallback', vs: web!, on: true, healthy: 0, servers: 2 }), 'h').subject,
      '[web] Added fallback server: 127.0.0.1:8080 (192.0.2.1:80) (Weight set to 1)',
    );
    t.equal(
      mail(at({ kind: 'fallback', vs: web!, on: false, healthy: 1, servers: 2 }), 'h').subject,
      '[web] Deleted fallback server: 127.0.0.1:8080 (192.0.2.1:80)',
    );
    t.match(alertmanagerAlert(down, 'lvs1', 60_000), {
      labels: {
        alertname: 'IpvsRealServerDown',
        service: 'web',
        server: 'a',
        instance: '10.0.0.1:80',
        director: 'lvs1',
      },
      startsAt: '2023-11-14T22:13:20.000Z',
      endsAt: '2023-11-14T22:17:20.000Z',
    });
    const up = at(server('down', 'up'));
    t.equal(
      alertmanagerAlert(up, 'lvs1', 60_000).endsAt,
      '2023-11-14T22:13:20.000Z',
      'a resolve ends now',
    );
    t.same(
      alertmanagerAlert(up, 'lvs1', 60_000).labels,
      alertmanagerAlert(down, 'lvs1', 60_000).labels,
      'one alert: the same labels firing and resolved',
    );
    t.match(JSON.parse(webhookBody('slack', down, 'lvs1', 0)), {
      text: /^:red_circle: \[web\] Quiescent real server: 10\.0\.0\.1:80 .*1 of 2 healthy; connect: refused \(ipvs-warden on lvs1\)$/,
    });
    t.match(JSON.parse(webhookBody('json', down, 'lvs1', 0)), {
      event: 'server_down',
      firing: true,
      service: 'web',
      server: 'a',
      address: '10.0.0.1',
      port: 80,
      daemon_status: 'running',
    });
  },
);
