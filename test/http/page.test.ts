// The status page as a pure function of the /status snapshot: every server's row, the mode in
// the caption, ages from the snapshot's time, newest events first; names and messages from
// config or a peer rendered as text; the CSP's hashes are those of the inline script and style;
// the page stays small.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import {
  age,
  escapeHtml,
  PAGE_EVENTS,
  PAGE_HEADERS,
  refreshSeconds,
  renderPage,
} from '../../src/http/page.js';
import type { ServerStatus, ServiceStatus, Status } from '../../src/http/status.js';

const NOW = '2026-12-01T10:00:00.000Z';
const EVIL = `<script>alert("x")</script>' onmouseover="alert(1)`;

function server(over: Partial<ServerStatus> = {}): ServerStatus {
  return {
    name: 'web1',
    target: '10.0.0.2:80',
    role: 'server',
    state: 'up',
    maintenance: false,
    desired_weight: 10,
    kernel_weight: 10,
    active_connections: 7,
    inactive_connections: 3,
    reason: 'healthy',
    message: 'HTTP GET / -> 10.0.0.2:80: status 200',
    last_check: '2026-12-01T09:59:58.000Z',
    last_transition: '2026-12-01T09:55:00.000Z',
    ...over,
  };
}

function service(over: Partial<ServiceStatus> = {}): ServiceStatus {
  return {
    name: 'web',
    service: 'TCP 192.0.2.10:80',
    mode: 'normal',
    healthy: 1,
    servers: 1,
    quorum: true,
    healthy_weight: 10,
    real_servers: [server()],
    ...over,
  };
}

function status(over: Partial<Status> = {}): Status {
  return {
    ready: true,
    time: NOW,
    dry_run: false,
    stats: {
      ticks: 3,
      operationsApplied: 4,
      operationsFailed: 0,
      driftRepairs: 0,
      lastSync: 0,
      lastTick: 0,
    },
    services: [service()],
    unowned: [],
    sync: { wanted: 'none', role: null, running: null, error: null },
    announce: [],
    director: { drained: false, drained_reason: null },
    events: [],
    ...over,
  };
}

/** The rows of the table whose caption starts with `name`, as lists of cell texts. */
function rows(html: string): string[][] {
  return [...html.matchAll(/<tr class="[^"]*">(.*?)<\/tr>/g)].map((m) =>
    [...(m[1] ?? '').matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) =>
      (c[1] ?? '').replace(/<[^>]+>/g, ''),
    ),
  );
}

t.test('escapeHtml', async (t) => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['<b>', '&lt;b&gt;'],
    [`a"b'c&d`, 'a&quot;b&#39;c&amp;d'],
    ['&amp;', '&amp;amp;'],
  ];
  for (const [input, want] of cases) t.equal(escapeHtml(input), want, input);
});

t.test('age: from the snapshot time, coarser as it grows', async (t) => {
  const cases: [string | null, string][] = [
    [null, '-'],
    ['2026-12-01T10:00:00.000Z', '0s'],
    ['2026-12-01T09:59:58.400Z', '2s'],
    ['2026-12-01T10:00:05.000Z', '0s'], // a clock step: never negative
    ['2026-12-01T09:58:55.000Z', '1m 5s'],
    ['2026-12-01T07:30:00.000Z', '2h 30m'],
    ['2026-11-28T06:00:00.000Z', '3d 4h'],
    ['not a time', '-'],
  ];
  for (const [iso, want] of cases) t.equal(age(iso, NOW), want, String(iso));
});

t.test('refreshSeconds: ?refresh=N within 1..3600, else 2', async (t) => {
  const cases: [string, number][] = [
    ['', 2],
    ['refresh=1', 1],
    ['refresh=10&x=1', 10],
    ['refresh=3600', 3600],
    ['refresh=0', 2],
    ['refresh=3601', 2],
    ['refresh=-1', 2],
    ['refresh=1.5', 2],
    ['refresh=abc', 2],
    ['refresh=99999999999999999999', 2],
  ];
  for (const [q, want] of cases) t.equal(refreshSeconds(q), want, q);
  const html = renderPage(status(), 7);
  t.match(html, /<body data-refresh="7">/, 'the script polls at this period');
  t.match(
    html,
    /<noscript><meta http-equiv="refresh" content="7"><\/noscript>/,
    'without it, reloads',
  );
});

t.test('a row per real server, in the order of /status', async (t) => {
  const html = renderPage(
    status({
      services: [
        service({
          real_servers: [
            server(),
            server({
              name: 'web2',
              target: '10.0.0.3:80',
              state: 'down',
              desired_weight: null,
              kernel_weight: null,
              active_connections: null,
              inactive_connections: null,
              reason: 'down',
              message: 'status 503, expected 200',
              last_check: '2026-12-01T09:59:59.000Z',
              last_transition: '2026-12-01T09:58:00.000Z',
            }),
            server({
              name: 'web3',
              target: '10.0.0.4:80',
              maintenance: true,
              desired_weight: 0,
              kernel_weight: 0,
              reason: 'maintenance (flag file /run/m/web3)',
            }),
            server({
              name: 'fallback',
              target: '10.0.0.9:80',
              role: 'fallback',
              state: 'standby',
              desired_weight: null,
              kernel_weight: null,
              active_connections: null,
              inactive_connections: null,
              reason: 'fallback not needed: 2 of 3 healthy',
              message: '',
              last_check: null,
              last_transition: null,
            }),
          ],
        }),
      ],
    }),
  );
  t.same(rows(html), [
    [
      'web1',
      '10.0.0.2:80',
      'up',
      '10',
      '10',
      '7',
      '3',
      '2s ago',
      'HTTP GET / -&gt; 10.0.0.2:80: status 200',
      '5m 0s ago',
    ],
    [
      'web2',
      '10.0.0.3:80',
      'down',
      'out',
      '-',
      '-',
      '-',
      '1s ago',
      'status 503, expected 200',
      '2m 0s ago',
    ],
    [
      'web3',
      '10.0.0.4:80',
      'up (maint)',
      '0',
      '0',
      '7',
      '3',
      '2s ago',
      'maintenance (flag file /run/m/web3)',
      '5m 0s ago',
    ],
    [
      'fallback',
      '10.0.0.9:80',
      'standby',
      'out',
      '-',
      '-',
      '-',
      '-',
      'fallback not needed: 2 of 3 healthy',
      '-',
    ],
  ]);
  t.match(html, /<tr class="down"><td>web2</, 'a down server is marked for its colour');
  t.match(html, /<tr class="maint"><td>web3</, 'maintenance is marked');
  t.match(html, /<td class="n" title="healthy">10<\/td>/, 'why this weight, on hover');
});

t.test('the mode and quorum in the caption', async (t) => {
  const cases: [Partial<ServiceStatus>, RegExp][] = [
    [{}, /<span class="mode mode-normal">normal<\/span> 1\/1 healthy<\/caption>/],
    [
      { mode: 'fallback', healthy: 0, quorum: false },
      /mode-fallback">fallback<\/span> 0\/1 healthy<\/caption>/,
    ],
    [{ mode: 'panic', healthy: 0 }, /mode-panic">panic<\/span> 0\/1 healthy<\/caption>/],
    [
      { quorum: false, healthy: 0, healthy_weight: 0 },
      /normal<\/span> 0\/1 healthy <span class="bad">NO QUORUM \(healthy weight 0\)<\/span>/,
    ],
  ];
  for (const [over, want] of cases)
    t.match(renderPage(status({ services: [service(over)] })), want);
});

t.test('the state of the daemon, director, announcements', async (t) => {
  t.match(renderPage(status({ ready: false })), /NOT READY/);
  t.match(renderPage(status({ dry_run: true })), /DRY RUN/);
  t.match(renderPage(status({ services: [] })), /No services configured/);
  t.notMatch(renderPage(status({ services: [], ready: false })), /No services configured/);
  t.match(
    renderPage(status({ director: { drained: true, drained_reason: 'kernel upgrade' } })),
    /DIRECTOR DRAINED: kernel upgrade/,
  );
  t.match(
    renderPage(
      status({
        announce: [{ vip: '192.0.2.10', announced: false, reason: 'no quorum', services: ['web'] }],
      }),
    ),
    /<tr class="down"><td>192\.0\.2\.10<\/td><td>WITHDRAWN<\/td><td>no quorum<\/td><td>web<\/td>/,
  );
  t.match(renderPage(status({ unowned: ['UDP 10.1.1.1:53'] })), /left alone\): UDP 10\.1\.1\.1:53/);
  t.match(
    renderPage(status({ sync: { wanted: 'master', role: 'master', running: [], error: 'EPERM' } })),
    /Director role: master.*\n.*Sync daemon: EPERM/,
  );
});

t.test('events: newest first, at most PAGE_EVENTS, bad ones marked', async (t) => {
  t.match(renderPage(status()), /<h2>Recent events<\/h2><p>None yet\.<\/p>/);
  const events = Array.from({ length: 40 }, (_v, i) => ({
    time: new Date(Date.parse(NOW) - (40 - i) * 1000).toISOString(),
    event: i % 2 ? 'server.down' : 'server.up',
    service: 'web',
    server: `s${i}`,
    message: `m${i}`,
  }));
  const html = renderPage(status({ events }));
  const items = [...html.matchAll(/<li(?: class="([^"]*)")?>(.*?)<\/li>/g)];
  t.equal(items.length, PAGE_EVENTS);
  t.equal(items[0]?.[2]?.replace(/<[^>]+>/g, ''), '1s ago server.down web s39: m39');
  t.equal(items[0]?.[1], 'down');
  t.equal(items[1]?.[1], undefined);
  t.match(items.at(-1)?.[2], / web s15: m15$/);
});

t.test('text from config and peers is text: no element, no attribute breaks out', async (t) => {
  const html = renderPage(
    status({
      services: [
        service({
          name: EVIL,
          service: EVIL,
          real_servers: [server({ name: EVIL, target: EVIL, message: EVIL, reason: EVIL })],
        }),
      ],
      unowned: [EVIL],
      director: { drained: true, drained_reason: EVIL },
      announce: [{ vip: EVIL, announced: true, reason: EVIL, services: [EVIL] }],
      sync: { wanted: 'none', role: null, running: null, error: EVIL },
      events: [{ time: NOW, event: EVIL, service: EVIL, server: EVIL, message: EVIL }],
    }),
  );
  const escaped = escapeHtml(EVIL);
  t.equal(html.split('<script>').length, 2, "one <script>: the page's own");
  t.notMatch(html, /alert\("x"\)<\/script>/);
  t.notMatch(html, /onmouseover="/, 'no attribute made of a name');
  t.ok(html.split(escaped).length - 1 >= 12, 'every copy is there, escaped');
});

t.test('the CSP allows the inline script and style by hash, and nothing else', async (t) => {
  const html = renderPage(status());
  const csp = PAGE_HEADERS['content-security-policy'] ?? '';
  const sha = (text: string): string =>
    `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
  const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
  t.ok(script.length > 100 && style.length > 100);
  t.match(csp, `script-src ${sha(script)};`);
  t.match(csp, `style-src ${sha(style)};`);
  t.match(csp, /^default-src 'none';/);
  t.notMatch(csp, /unsafe/);
  t.notMatch(html, / style="/, 'no style attribute (it would need unsafe-inline)');
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'no external asset');
  t.equal(PAGE_HEADERS['x-content-type-options'], 'nosniff');
});

t.test(
  'small: 20 services of 10 servers and 25 events under 100 KB, the chrome under 8 KB',
  async (t) => {
    const empty = renderPage(status({ services: [] }));
    t.ok(empty.length < 8 * 1024, `the page without data: ${empty.length} bytes`);
    const big = status({
      services: Array.from({ length: 20 }, (_v, i) =>
        service({
          name: `svc${i}`,
          real_servers: Array.from({ length: 10 }, (_w, j) => server({ name: `s${i}-${j}` })),
        }),
      ),
      events: Array.from({ length: 100 }, () => ({
        time: NOW,
        event: 'server.up',
        service: 'web',
        server: 'web1',
        message: 'HTTP GET / -> 10.0.0.2:80: status 200',
      })),
    });
    const html = renderPage(big);
    const gz = gzipSync(html).length;
    t.ok(html.length < 100 * 1024, `200 servers: ${html.length} bytes, ${gz} gzipped`);
  },
);
