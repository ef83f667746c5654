// Email alerts end to end: the loop over the in-memory table, real HTTP servers that go down and
// come back, the alert observer (its repeat timer on a manual clock) and the real deliverer
// (nodemailer) talking SMTP to a real exim4 on loopback, which the test starts with a throwaway
// config that delivers every message into an mbox file in its temp dir. The delivered messages
// are read back: To, From, Subject and body as ldirectord writes them, the reminders of a server
// that stays down, none after it recovers. Then a refused connection and a silent server: each
// a counted failure, never a hang.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AlertDeliverer, smtpOptions, type AlertResult } from '../../src/alerts/deliver.js';
import { AlertObserver } from '../../src/alerts/observer.js';
import { NO_ALERTS, onEvent, type Delivery } from '../../src/alerts/decide.js';
import { parseConfig } from '../../src/checkers.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop, observers } from '../../src/reconcile/loop.js';
import { run } from '../checks/mail-servers.js';
import { closedPort, freePort, listen, until } from '../checks/servers.js';
import { ManualClock } from '../clock.js';

/** exim4 accepting mail for anyone on 127.0.0.1 and appending it to DIR/mbox. */
async function startMailbox() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-alert-exim-'));
  const port = await freePort();
  mkdirSync(join(dir, 'spool'));
  const conf = join(dir, 'exim.conf');
  writeFileSync(
    conf,
    [
      'primary_hostname = warden.test',
      `spool_directory = ${dir}/spool`,
      `log_file_path = ${dir}/%slog`,
      `pid_file_path = ${dir}/exim.pid`,
      'exim_user = Debian-exim',
      'exim_group = Debian-exim',
      'keep_environment =',
      `daemon_smtp_ports = ${port}`,
      'local_interfaces = 127.0.0.1',
      'tls_advertise_hosts =',
      'host_lookup =',
      'rfc1413_hosts =',
      'acl_smtp_rcpt = acl_check_rcpt',
      'begin acl',
      'acl_check_rcpt:',
      '  accept',
      'begin routers',
      'everyone:',
      '  driver = accept',
      '  transport = mbox',
      'begin transports',
      'mbox:',
      '  driver = appendfile',
      `  file = ${dir}/mbox`,
      '  user = Debian-exim',
      '  envelope_to_add',
      '',
    ].join('\n'),
  );
  execFileSync('chown', ['-R', 'Debian-exim:Debian-exim', dir]);
  execFileSync('chown', ['root:root', conf]);
  chmodSync(dir, 0o755);
  const r = await run(dir, 'exim4', ['-bdf', '-oX', String(port), '-C', conf], port);
  const mbox = join(dir, 'mbox');
  /** The messages delivered to `rcpt` (one copy per recipient), split at mbox "From " lines. */
  const messages = (rcpt = 'ops@example.com'): string[] =>
    existsSync(mbox)
      ? readFileSync(mbox, 'utf8')
          .split(/^From \S+ .*\n/m)
          .filter((m) => header(m, 'Envelope-to') === rcpt)
      : [];
  return { ...r, port, messages };
}

function header(message: string, name: string): string | undefined {
  const head = message.split('\n\n')[0] ?? '';
  // Folded headers (a long To) continue on lines that start with white space.
  const m = new RegExp(`^${name}: (.*(?:\\n[ \\t].*)*)`, 'mi').exec(head);
  return m?.[1]?.replace(/\n[ \t]+/g, ' ');
}

/** The body, quoted-printable decoded (nodemailer folds lines longer than 76 characters). */
function body(message: string): string {
  return message
    .split('\n\n')
    .slice(1)
    .join('\n\n')
    .replace(/=\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

async function flippable() {
  const s = { healthy: true };
  const l = await listen(
    createHttpServer((_q, res) => ((res.statusCode = s.healthy ? 200 : 503), res.end())),
  );
  return Object.assign(s, l);
}

t.test('a server down, reminded while it stays down, then back: mail through exim4', async (t) => {
  const exim = await startMailbox();
  t.teardown(() => exim.stop());
  const [a, b] = [await flippable(), await flippable()];
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const yaml = `daemon: {resync_interval: 1s, retry_min: 100ms}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, jitter: 0, rise: 1, fall: 1}
alerts:
  email:
    to: [ops@example.com, oncall@example.com]
    from: '"LVS alerts" <lvs@example.com>'
    smtp: 127.0.0.1:${exim.port}
    repeat: 1m
    timeout: 5s
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    real_servers:
      - {name: a, address: 127.0.0.1, port: ${a.target.port}}
      - {name: b, address: 127.0.0.1, port: ${b.target.port}}
`;
  const config = parseConfig(yaml, 'test.yaml', {});
  const log = new MemoryLog();
  const results: [string, AlertResult][] = [];
  const deliverer = new AlertDeliverer({
    log,
    host: 'lvs1.test',
    onResult: (target, r) => results.push([target, r]),
  });
  const clock = new ManualClock();
  const alerts = new AlertObserver(config, deliverer, clock);
  const loop = new ReconcileLoop(config, {
    backend: new MemoryBackend(),
    log,
    observer: observers(alerts),
  });
  alerts.attach(loop);
  await loop.start();
  alerts.setPhase('running');
  t.teardown(async () => {
    alerts.stop();
    await loop.stop();
    await deliverer.stop();
  });
  t.ok(await until(() => loop.servers().every((r) => r.status === 'up'), 5000), 'both up');
  await deliverer.idle();
  t.same(results, [], 'the first results after a start mail no one');

  a.healthy = false;
  t.ok(await until(() => exim.messages().length === 1, 10_000), 'mailed once: a is down');
  // The reminders come from the observer's timer, on the manual clock.
  await clock.advance(60_000);
  t.ok(await until(() => exim.messages().length === 2, 10_000), 'reminded after 1m');
  await clock.advance(60_000);
  t.ok(await until(() => exim.messages().length === 3, 10_000), 'and again');
  a.healthy = true;
  t.ok(await until(() => exim.messages().length === 4, 10_000), 'mailed: a is back');
  await clock.advance(180_000);
  await deliverer.idle();
  await new Promise((r) => setTimeout(r, 500));
  t.equal(exim.messages().length, 4, 'no reminder once it is back');
  t.same(results, [
    ['email', 'sent'],
    ['email', 'sent'],
    ['email', 'sent'],
    ['email', 'sent'],
  ]);

  const [down, again, , up] = exim.messages();
  const where = `127.0.0.1:${a.target.port} (192.0.2.1:80)`;
  t.equal(header(down!, 'To'), 'ops@example.com, oncall@example.com');
  t.equal(exim.messages('oncall@example.com').length, 4, 'the other recipient has them too');
  t.equal(header(down!, 'From'), 'LVS alerts <lvs@example.com>');
  t.equal(header(down!, 'Subject'), `[web] Deleted real server: ${where}`);
  t.match(
    body(down!),
    `ipvs-warden host: lvs1.test\nLog-Message: [web] Deleted real server: ${where}\nDaemon-Status: running\n`,
  );
  t.match(
    body(down!),
    `Service name: web\nReal server: a (127.0.0.1:${a.target.port})\nHealthy: 1 of 2\nReason: `,
  );
  t.match(body(down!), /Reason: .*503/);
  t.equal(header(again!, 'Subject'), `[web] Inaccessible real server: ${where}`);
  t.equal(header(up!, 'Subject'), `[web] Added real server: ${where} (Weight set to 1)`);
  t.match(body(up!), 'Healthy: 2 of 2');
});

t.test("nodemailer's own timeouts come after our deadline, which judges time", (t) => {
  // At the same value, nodemailer's greeting timer (timed from its connect by the wall clock)
  // could fire first on a busy loop: the silent server below was 'failed', not 'timeout'.
  for (const timeout of ['300ms', '10s']) {
    const config = parseConfig(
      `alerts: {email: {to: [ops@example.com], smtp: "127.0.0.1:25", timeout: ${timeout}}}
virtual_services: [{address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.1}]}]`,
      'x.yaml',
      {},
    );
    const email = config.alerts?.email;
    if (!email) throw new Error('no email alerts');
    const o = smtpOptions(email);
    for (const key of ['connectionTimeout', 'greetingTimeout', 'socketTimeout'] as const)
      t.ok((o[key] ?? 0) >= email.timeoutMs + 1000, `${timeout}: ${key} ${o[key]}`);
    t.same([o.host, o.port], ['127.0.0.1', 25]);
  }
  t.end();
});

t.test('a refused connection and a silent server: failed and timeout, counted', async (t) => {
  const config = parseConfig(
    `alerts: {email: {to: [ops@example.com], smtp: "127.0.0.1:1", timeout: 300ms}}
virtual_services: [{address: 192.0.2.1, port: 80, real_servers: [{address: 10.0.0.1}]}]`,
    'x.yaml',
    {},
  );
  const vs = config.virtualServices[0]!;
  const event = {
    kind: 'server',
    vs,
    rs: vs.realServers[0]!,
    from: 'up',
    to: 'down',
    healthy: 0,
    servers: 1,
    message: 'x',
  } as const;
  const [delivery] = onEvent(NO_ALERTS, event, {
    now: 0,
    phase: 'running',
    alerts: config.alerts,
  }).deliveries;
  if (delivery?.target.kind !== 'email') throw new Error('no email delivery');
  const closed = await closedPort();
  // Accepts, never greets.
  const silent = await listen(createServer());
  t.teardown(() => silent.stop());
  const log = new MemoryLog();
  const results: [string, AlertResult][] = [];
  const deliverer = new AlertDeliverer({ log, onResult: (n, r) => results.push([n, r]) });
  const email = delivery.target.email;
  const to = (port: number): Delivery => ({
    ...delivery,
    target: {
      kind: 'email',
      name: 'email',
      email: { ...email, smtp: { host: '127.0.0.1', port } },
    },
  });
  const started = Date.now();
  deliverer.send([to(closed.port)]);
  deliverer.send([to(silent.target.port)]);
  t.ok(Date.now() - started < 100, 'send returns at once');
  await deliverer.idle();
  t.ok(Date.now() - started < 3000, 'the silent server held it no longer than its deadline');
  t.same(results, [
    ['email', 'failed'],
    ['email', 'timeout'],
  ]);
  t.match(log.named('alert.failed'), [
    { target: 'email', result: 'failed', message: /ECONNREFUSED/ },
    { target: 'email', result: 'timeout' },
  ]);
});
