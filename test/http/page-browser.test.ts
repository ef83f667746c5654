// The status page in a real browser (Debian's chromium, headless, driven by playwright-core): a
// daemon on the memory backend checks two real HTTP servers on loopback; one fails and recovers,
// and the open page shows each change without a reload (a marker set on window survives); when
// the daemon stops, the page says it is disconnected. With JavaScript off the table is there.
// Names from config containing markup render as text (no dialog opens). Also the page's headers
// and read-only answers over plain HTTP.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { listen, until } from '../checks/servers.js';
import { exitWithin, spawnDaemon, type Daemon } from '../cli/daemon.js';

const CHROMIUM = '/usr/bin/chromium';
// Markup and quotes in a name from config: the page must show them as text.
const EVIL = `<script>alert("x")</script>'"><img src=x onerror=alert(2)>`;
// Bounds for a busy 2-core machine: checks every 2 s and polls every second need far less.
const CHANGE_MS = 30_000;

async function launch(t: Test): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: run test/setup.sh (it installs Debian's chromium)`);
    return null;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
  t.teardown(() => browser.close());
  return browser;
}

/** A daemon on the memory backend over `ports`, and the listener's URL. */
async function daemon(
  t: Test,
  ports: { web1: number; evil: number },
): Promise<
  Daemon & {
    url: string;
    stateOf: (name: string) => Promise<string | undefined>;
    healthy: () => Promise<number | undefined>;
  }
> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-page-'));
  const config = join(dir, 'warden.yaml');
  writeFileSync(
    config,
    `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:0"}
defaults: {interval: 2s, timeout: 2s, rise: 1, fall: 1}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    checks: [{type: http, path: /health}]
    real_servers:
      - {name: web1, address: 127.0.0.1, port: ${ports.web1}}
      - {name: ${JSON.stringify(EVIL)}, address: 127.0.0.1, port: ${ports.evil}}
`,
  );
  const d = spawnDaemon(config);
  t.teardown(() => d.proc.kill('SIGKILL'));
  let url = '';
  const up = await until(() => {
    const e = d.events.find((x) => x.event === 'http.listening');
    url = typeof e?.url === 'string' ? e.url : '';
    return url !== '';
  }, 20_000);
  if (!up) throw new Error(`the daemon did not listen: ${d.errors.join('')}`);
  type Doc = { services: { healthy: number; real_servers: { name: string; state: string }[] }[] };
  const status = async (): Promise<Doc> => (await (await fetch(`${url}/status`)).json()) as Doc;
  const stateOf = async (name: string): Promise<string | undefined> =>
    (await status()).services[0]?.real_servers.find((r) => r.name === name)?.state;
  // The caption's count comes from the last tick's plan, a tick after the states change.
  const healthy = async (): Promise<number | undefined> => (await status()).services[0]?.healthy;
  return { ...d, url, stateOf, healthy };
}

/** The state cell of the row of `name`, or null when there is no such row. */
const stateOf = (page: Page, name: string): Promise<unknown> =>
  page.evaluate(
    `(() => { const r = [...document.querySelectorAll('#live tr')].find((tr) => tr.cells[0]?.textContent === ${JSON.stringify(name)}); return r ? r.cells[2].textContent : null; })()`,
  );

// Polled from here: the page's CSP refuses the eval that waitForFunction would run in it.
async function waitFor(page: Page, expression: string): Promise<boolean> {
  return until(async () => (await page.evaluate(expression)) === true, CHANGE_MS);
}

const waitState = (page: Page, name: string, state: string): Promise<boolean> =>
  waitFor(
    page,
    `[...document.querySelectorAll('#live tr')].some((tr) => tr.cells[0]?.textContent === ${JSON.stringify(name)} && tr.cells[2].textContent === ${JSON.stringify(state)} && tr.className === ${JSON.stringify(state)})`,
  );

t.test(
  'the page follows a server down and up without a reload, then the daemon stopping',
  async (t) => {
    let healthy = true;
    const web1 = await listen(
      createServer((_q, res) => {
        res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'failing on purpose');
      }),
    );
    const evil = await listen(createServer((_q, res) => res.end('ok')));
    t.teardown(() => web1.stop());
    t.teardown(() => evil.stop());
    const browser = await launch(t);
    if (!browser) return;
    const d = await daemon(t, { web1: web1.target.port, evil: evil.target.port });

    const context = await browser.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.goto(`${d.url}/?refresh=1`);
    t.equal(await page.title(), 'ipvs-warden');
    t.ok(await waitState(page, 'web1', 'up'), 'web1 shows up');
    t.ok(await waitState(page, EVIL, 'up'), 'the server named with markup has its row, as text');
    t.match(
      await page.evaluate(
        `[...document.querySelectorAll('#live tr')].find((tr) => tr.cells[0]?.textContent === 'web1').cells[7].textContent`,
      ),
      /^\d+s ago$/,
      'the age of the last check',
    );
    await page.evaluate('window.wardenMarker = 42');

    healthy = false;
    t.ok(await waitState(page, 'web1', 'down'), 'web1 shows down, without a reload');
    t.match(
      await page.textContent('#live'),
      /server\.down web web1: HTTP GET \/health -> 127\.0\.0\.1:\d+: connected; status 503/,
      'the event is listed with its check message',
    );
    t.match(await page.textContent('#conn'), /^live, updated \d+ s ago$/);

    // While text is selected the tables stay as they are (an operator copying a message).
    await page.evaluate(`getSelection().selectAllChildren(document.querySelector('#live td.m'))`);
    healthy = true;
    t.ok(
      await until(async () => (await d.stateOf('web1')) === 'up', CHANGE_MS),
      'the daemon has web1 up',
    );
    t.ok(
      await waitFor(
        page,
        `document.getElementById('conn').textContent.startsWith('paused while text is selected, updated')`,
      ),
      'the page says it is paused',
    );
    t.equal(await stateOf(page, 'web1'), 'down', 'and still shows web1 down');
    await page.evaluate(`getSelection().removeAllRanges()`);
    t.ok(await waitState(page, 'web1', 'up'), 'web1 shows up again once nothing is selected');
    t.equal(await page.evaluate('window.wardenMarker'), 42, 'the marker set on window survived');
    t.equal(navigations, 1, 'one navigation: the first');

    // Rendered as text: the name is in the table as typed, no element came of it, nothing ran.
    t.equal(await stateOf(page, EVIL), 'up');
    t.equal(await page.evaluate(`document.querySelectorAll('img, #live script').length`), 0);
    t.same(dialogs, [], 'no script from a name ran');
    t.same(
      cspErrors,
      [],
      'the CSP refused nothing: the inline script and style are allowed by hash',
    );

    d.proc.kill('SIGTERM');
    t.not(await exitWithin(d), 'still running');
    t.ok(
      await waitFor(
        page,
        `document.body.classList.contains('stale') && document.getElementById('conn').textContent.startsWith('DISCONNECTED: no answer for')`,
      ),
      'the page shows it is disconnected',
    );
    t.comment(`#conn: ${String(await page.textContent('#conn'))}`);
    t.equal(await stateOf(page, 'web1'), 'up', 'the last snapshot stays on the page');
    t.equal(navigations, 1);
  },
);

t.test('with JavaScript off the table is there', async (t) => {
  const web1 = await listen(createServer((_q, res) => res.end('ok')));
  const evil = await listen(createServer((_q, res) => res.end('ok')));
  t.teardown(() => web1.stop());
  t.teardown(() => evil.stop());
  const browser = await launch(t);
  if (!browser) return;
  const d = await daemon(t, { web1: web1.target.port, evil: evil.target.port });
  // Wait for both to be checked and planned, so the page has their states and the caption's count.
  t.ok(
    await until(
      async () =>
        (await d.stateOf('web1')) === 'up' &&
        (await d.stateOf(EVIL)) === 'up' &&
        (await d.healthy()) === 2,
      CHANGE_MS,
    ),
  );
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${d.url}/`);
  t.equal(await stateOf(page, 'web1'), 'up');
  t.equal(await stateOf(page, EVIL), 'up');
  t.match(await page.textContent('caption'), /^web TCP 192\.0\.2\.1:80 normal 2\/2 healthy$/);
  t.match(await page.textContent('#conn'), /^snapshot \S+, reloads every 2 s$/, 'no script ran');
});

t.test('over HTTP: the headers of the page, GET and HEAD only', async (t) => {
  const web1 = await listen(createServer((_q, res) => res.end('ok')));
  t.teardown(() => web1.stop());
  const evil = await listen(createServer((_q, res) => res.end('ok')));
  t.teardown(() => evil.stop());
  const d = await daemon(t, { web1: web1.target.port, evil: evil.target.port });
  t.ok(await until(async () => (await d.stateOf('web1')) === 'up', CHANGE_MS), 'web1 up');
  // /status carries when a check last answered: the page's "last check" age.
  const doc = (await (await fetch(`${d.url}/status`)).json()) as {
    time: string;
    services: { real_servers: { last_check: string | null }[] }[];
  };
  const last = doc.services[0]?.real_servers[0]?.last_check ?? '';
  t.match(last, /^\d{4}-\d\d-\d\dT/, `last_check ${last}`);
  t.ok(Date.parse(doc.time) - Date.parse(last) < CHANGE_MS, 'a recent check');
  const res = await fetch(`${d.url}/`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  t.match(res.headers.get('content-security-policy'), /^default-src 'none'; script-src 'sha256-/);
  t.equal(res.headers.get('x-content-type-options'), 'nosniff');
  t.equal(res.headers.get('cache-control'), 'no-store');
  const body = await res.text();
  t.match(body, /<table><caption>web /);
  t.ok(body.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&quot;&gt;&lt;img'));
  const head = await fetch(`${d.url}/`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '');
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await fetch(`${d.url}/`, { method });
    t.equal(r.status, 405, method);
    t.equal(r.headers.get('allow'), 'GET, HEAD');
  }
  // fetch() drops a Host header given to it; node:http sends it.
  const misdirected = await new Promise<number | undefined>((resolve, reject) => {
    get(`${d.url}/`, { headers: { host: 'rebound.example' } }, (r) => {
      r.resume();
      resolve(r.statusCode);
    }).on('error', reject);
  });
  t.equal(misdirected, 421, 'a rebound name is refused, as everywhere on the listener');
});
