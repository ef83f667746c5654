// Webhook alerts through the real deliverer (undici). The alertmanager format against a real
// prometheus-alertmanager (Debian's package) that the test starts on a free loopback port with a
// throwaway config and storage dir, and no cluster port: a server going down fires an alert
// (read back from its GET /api/v2/alerts), the reminder keeps its startsAt, the recovery
// resolves it. The chat ({"text"}) and json formats against a node HTTP server in the test, which
// stands in for Slack, Mattermost or Rocket.Chat (none can be started here): the bodies as
// posted, and a refusing service counted as a failure with its status.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import {
  NO_ALERTS,
  onEvent,
  onTime,
  type AlertContext,
  type AlertEvent,
  type AlertState,
} from '../../src/alerts/decide.js';
import { AlertDeliverer, type AlertResult } from '../../src/alerts/deliver.js';
import { parseConfig } from '../../src/checkers.js';
import type { Config } from '../../src/config/model.js';
import { MemoryLog } from '../../src/log.js';
import { freePort, listen, until } from '../checks/servers.js';

const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

async function startAlertmanager() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-alertmanager-'));
  const port = await freePort();
  const conf = join(dir, 'alertmanager.yml');
  writeFileSync(conf, 'route:\n  receiver: none\nreceivers:\n  - name: none\n');
  const child = spawn(
    ALERTMANAGER,
    [
      `--config.file=${conf}`,
      `--storage.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await until(() => child.exitCode !== null || child.signalCode !== null, 5000);
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const ready = await until(async () => {
    try {
      const r = await request(`${base}/-/ready`);
      await r.body.dump();
      return r.statusCode === 200;
    } catch {
      return child.exitCode !== null;
    }
  }, 20_000);
  if (!ready || child.exitCode !== null) {
    await stop();
    throw new Error(`alertmanager did not start\n${output}`);
  }
  /** Its alerts (active ones: a resolved alert is no longer listed). */
  const alerts = async (): Promise<
    {
      labels: Record<string, string>;
      startsAt: string;
      endsAt: string;
      status: { state: string };
    }[]
  > => {
    const r = await request(`${base}/api/v2/alerts`);
    return (await r.body.json()) as never;
  };
  return { base, alerts, stop };
}

function fixture(url: string, format: string): Config {
  return parseConfig(
    `alerts: {webhooks: [{name: hook, url: "${url}", format: ${format}, timeout: 5s}]}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    real_servers: [{name: a, address: 10.0.0.1}, {name: b, address: 10.0.0.2}]`,
    'test.yaml',
    {},
  );
}

function event(c: Config, to: 'up' | 'down'): AlertEvent {
  const vs = c.virtualServices[0]!;
  return {
    kind: 'server',
    vs,
    rs: vs.realServers[0]!,
    from: to === 'up' ? 'down' : 'up',
    to,
    healthy: to === 'up' ? 2 : 1,
    servers: 2,
    message: 'connect: refused',
  };
}

t.test('alertmanager: a down server fires, is re-sent, and resolves', async (t) => {
  const am = await startAlertmanager();
  t.teardown(() => am.stop());
  // Its base URL: the API path is added.
  const c = fixture(am.base, 'alertmanager');
  t.equal(c.alerts?.webhooks[0]?.url, `${am.base}/api/v2/alerts`);
  const results: AlertResult[] = [];
  const deliverer = new AlertDeliverer({
    log: new MemoryLog(),
    host: 'lvs1.test',
    onResult: (_, r) => results.push(r),
  });
  // Alertmanager compares endsAt with its own clock: real time here.
  const ctx = (now = Date.now()): AlertContext => ({ now, phase: 'running', alerts: c.alerts });
  let state: AlertState = NO_ALERTS;
  const step = async (d: { state: AlertState; deliveries: readonly unknown[] }) => {
    state = d.state;
    deliverer.send(d.deliveries as never);
    await deliverer.idle();
  };

  const firedAt = Date.now();
  await step(onEvent(state, event(c, 'down'), ctx(firedAt)));
  t.same(results, ['sent']);
  const [alert] = await am.alerts();
  t.match(alert, {
    labels: {
      alertname: 'IpvsRealServerDown',
      service: 'web',
      server: 'a',
      instance: '10.0.0.1:80',
      director: 'lvs1.test',
    },
    status: { state: 'active' },
  });
  const ends = Date.parse(alert?.endsAt ?? '');
  t.ok(ends - firedAt > 3.5 * 60_000 && ends - firedAt < 4.5 * 60_000, 'ends 4 repeats on');

  // The reminder a minute on (the time given, not waited for) keeps startsAt, moves endsAt.
  await step(onTime(state, ctx(firedAt + 60_000)));
  const [again] = await am.alerts();
  t.equal(again?.startsAt, alert?.startsAt, 'still the alert that started then');
  t.ok(Date.parse(again?.endsAt ?? '') > ends, 'its end moved on');

  await step(onEvent(state, event(c, 'up'), ctx()));
  t.ok(await until(async () => (await am.alerts()).length === 0, 5000), 'resolved');
  t.same(results, ['sent', 'sent', 'sent']);
});

t.test(
  'chat and json: the bodies as posted; a refusing service is a counted failure',
  async (t) => {
    const posted: { url: string; type: string; body: string }[] = [];
    let status = 200;
    const server = await listen(
      createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          posted.push({ url: req.url ?? '', type: req.headers['content-type'] ?? '', body });
          res.statusCode = status;
          res.end(status === 200 ? 'ok' : 'invalid_token');
        });
      }),
    );
    t.teardown(() => server.stop());
    const base = `http://127.0.0.1:${server.target.port}`;
    const results: AlertResult[] = [];
    const log = new MemoryLog();
    const deliverer = new AlertDeliverer({
      log,
      host: 'lvs1.test',
      onResult: (_, r) => results.push(r),
    });
    const send = async (c: Config, to: 'up' | 'down') => {
      deliverer.send(
        onEvent(NO_ALERTS, event(c, to), {
          now: 1_700_000_000_000,
          phase: 'running',
          alerts: c.alerts,
        }).deliveries,
      );
      await deliverer.idle();
    };

    const slack = fixture(`${base}/hooks/T000/B000/XXXX`, 'slack');
    await send(slack, 'down');
    await send(slack, 'up');
    t.match(posted, [
      { url: '/hooks/T000/B000/XXXX', type: 'application/json' },
      { url: '/hooks/T000/B000/XXXX' },
    ]);
    t.same(
      Object.keys(JSON.parse(posted[0]!.body) as object),
      ['text'],
      'only text, as every chat service takes',
    );
    t.same(JSON.parse(posted[0]!.body), {
      text: ':red_circle: [web] Deleted real server: 10.0.0.1:80 (192.0.2.1:80): 1 of 2 healthy; connect: refused (ipvs-warden on lvs1.test)',
    });
    t.match(JSON.parse(posted[1]!.body), {
      text: /^:large_green_circle: \[web\] Added real server: 10\.0\.0\.1:80/,
    });

    await send(fixture(`${base}/events`, 'json'), 'down');
    t.match(JSON.parse(posted[2]!.body), {
      event: 'server_down',
      firing: true,
      service: 'web',
      server: 'a',
      address: '10.0.0.1',
      port: 80,
      healthy: 1,
      servers: 2,
      time: '2023-11-14T22:13:20.000Z',
      director: 'lvs1.test',
    });

    status = 403;
    await send(slack, 'down');
    t.same(results, ['sent', 'sent', 'sent', 'failed']);
    t.match(log.named('alert.failed'), [{ target: 'hook', message: 'HTTP 403: invalid_token' }]);
  },
);
