// Hooks fired by the loop, end to end: the in-memory table, a real HTTP server that goes down and
// comes back, the real runner writing what each hook was given to a file. server_down, then
// server_up, with the facts; fallback_on and fallback_off as the service's mode changes; none
// for the first result after a start; and a hook that hangs holds no tick.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/checkers.js';
import { HookObserver } from '../../src/hooks/observer.js';
import { HookRunner, type HookResult } from '../../src/hooks/runner.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { MemoryLog } from '../../src/log.js';
import { ReconcileLoop, observers } from '../../src/reconcile/loop.js';
import { listen, until } from '../checks/servers.js';

async function flippable() {
  const s = { healthy: true };
  const l = await listen(
    createServer((_q, res) => ((res.statusCode = s.healthy ? 200 : 503), res.end())),
  );
  return Object.assign(s, l);
}

/** The lines the hooks wrote. The shell creates the file (>>) before echo writes to it: an
 * empty file is no line yet (CI once read one line, empty, where one was awaited). */
function linesOf(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

t.test(
  'a server going down and up fires server_down then server_up, and fallback_on/off',
  async (t) => {
    const [a, b] = [await flippable(), await flippable()];
    t.teardown(() => Promise.all([a.stop(), b.stop()]));
    const out = join(mkdtempSync(join(tmpdir(), 'warden-hookloop-')), 'hooks');
    // argv hooks: the facts arrive as $1.. of a fixed script, never parsed by a shell.
    const record = (tag: string): string =>
      `[/bin/sh, -c, 'echo "${tag} $1 $2 $3 $4 $5 $WARDEN_ADDRESS" >> ${out}', sh, "{service}", "{server}", "{from}", "{state}", "{healthy}/{servers}"]`;
    const yaml = `daemon: {resync_interval: 1s, retry_min: 100ms}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, jitter: 0, rise: 2, fall: 2}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    fallback: {address: 127.0.0.9, port: 80}
    hooks:
      server_up: ${record('up')}
      server_down: ${record('down')}
      fallback_on: ${record('fallback')}
      fallback_off: {shell: 'echo "fallback-off $WARDEN_SERVICE $WARDEN_STATE $WARDEN_HEALTHY/$WARDEN_SERVERS" >> ${out}'}
    real_servers:
      - {name: a, address: 127.0.0.1, port: ${a.target.port}}
      - {name: b, address: 127.0.0.1, port: ${b.target.port}}
`;
    const log = new MemoryLog();
    const results: [string, HookResult][] = [];
    const runner = new HookRunner({ log, onResult: (h, r) => results.push([h, r]) });
    const hooks = new HookObserver(runner);
    const loop = new ReconcileLoop(parseConfig(yaml, 'test.yaml', {}), {
      backend: new MemoryBackend(),
      log,
      observer: observers(hooks),
    });
    hooks.attach(loop);
    t.teardown(() => loop.stop());
    const lines = (): string[] => linesOf(out);

    await loop.start();
    t.ok(await until(() => log.named('server.up').length === 2, 3000), 'both up');
    await runner.idle();
    t.same(lines(), [], 'the first results after a start run no hook');

    a.healthy = false;
    t.ok(await until(() => lines().length === 1, 3000), 'a goes down');
    t.same(lines(), ['down web a up down 1/2 127.0.0.1']);

    b.healthy = false;
    t.ok(await until(() => lines().length === 3, 3000), 'b goes down, the service falls back');
    t.same(
      lines().slice(1).sort(),
      ['down web b up down 0/2 127.0.0.1', 'fallback web  off on 0/2 192.0.2.1'].sort(),
    );

    a.healthy = true;
    t.ok(await until(() => lines().length === 5, 3000), 'a comes back, fallback ends');
    t.same(
      lines().slice(3).sort(),
      ['fallback-off web off 1/2', 'up web a down up 1/2 127.0.0.1'].sort(),
    );
    await runner.idle();
    t.ok(
      results.length === 5 && results.every(([, r]) => r === 'success'),
      JSON.stringify(results),
    );
    t.same(log.named('hook.failed'), []);
  },
);

t.test('a hook that hangs holds no tick', async (t) => {
  const a = await flippable();
  t.teardown(() => a.stop());
  const yaml = `daemon: {resync_interval: 1s}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, jitter: 0, rise: 1, fall: 1}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    hooks: {server_down: [/bin/sleep, "30"], timeout: 2s}
    real_servers: [{name: a, address: 127.0.0.1, port: ${a.target.port}}]
`;
  const log = new MemoryLog();
  const runner = new HookRunner({ log });
  const hooks = new HookObserver(runner);
  const backend = new MemoryBackend();
  const loop = new ReconcileLoop(parseConfig(yaml, 'test.yaml', {}), {
    backend,
    log,
    observer: hooks,
  });
  hooks.attach(loop);
  t.teardown(() => loop.stop());
  await loop.start();
  t.ok(await until(async () => (await backend.table())[0]?.destinations.length === 1, 3000), 'in');
  a.healthy = false;
  const started = Date.now();
  t.ok(
    await until(async () => (await backend.table())[0]?.destinations.length === 0, 1500),
    'the server leaves the table while its hook still runs',
  );
  t.ok(Date.now() - started < 1500);
  await runner.idle();
  t.match(log.named('hook.failed'), [{ hook: 'server_down', result: 'timeout' }]);
});

t.test('quorum_down and quorum_up follow the healthy weight, with hysteresis', async (t) => {
  const [a, b, c] = [await flippable(), await flippable(), await flippable()];
  t.teardown(() => Promise.all([a.stop(), b.stop(), c.stop()]));
  const out = join(mkdtempSync(join(tmpdir(), 'warden-quorum-')), 'hooks');
  const record = (tag: string): string =>
    `[/bin/sh, -c, 'echo "${tag} $1 $2 $3 $4" >> ${out}', sh, "{service}", "{state}", "{weight}", "{quorum}"]`;
  // Gained at 3 + 1 = 4 (every server), kept down to 3 - 1 = 2.
  const yaml = `daemon: {resync_interval: 1s, retry_min: 100ms}
defaults: {interval: 100ms, fast_interval: 100ms, down_interval: 100ms, timeout: 100ms, jitter: 0, rise: 1, fall: 1}
virtual_services:
  - name: web
    address: 192.0.2.1
    port: 80
    checks: [{type: http}]
    quorum: {weight: 3, hysteresis: 1}
    hooks: {quorum_up: ${record('up')}, quorum_down: ${record('down')}}
    real_servers:
      - {name: a, address: 127.0.0.1, port: ${a.target.port}, weight: 2}
      - {name: b, address: 127.0.0.1, port: ${b.target.port}}
      - {name: c, address: 127.0.0.1, port: ${c.target.port}}
`;
  const log = new MemoryLog();
  const runner = new HookRunner({ log });
  const hooks = new HookObserver(runner);
  const loop = new ReconcileLoop(parseConfig(yaml, 'test.yaml', {}), {
    backend: new MemoryBackend(),
    log,
    observer: observers(hooks),
  });
  hooks.attach(loop);
  t.teardown(() => loop.stop());
  const lines = (): string[] => linesOf(out);
  const settled = async (up: number): Promise<boolean> =>
    until(() => loop.desired()?.services[0]?.healthy === up, 3000);

  await loop.start();
  t.ok(await settled(3), 'all up');
  t.equal(loop.desired()?.services[0]?.quorum, true);
  b.healthy = false;
  t.ok(await settled(2), 'b down: weight 3, still at least 2');
  a.healthy = false;
  t.ok(await until(() => lines().length === 1, 3000), 'a down: weight 1, quorum lost');
  t.same(lines(), ['down web down 1 3']);
  a.healthy = true;
  t.ok(await settled(2), 'a back: weight 3');
  await runner.idle();
  t.equal(loop.desired()?.services[0]?.quorum, false, 'below 3 + 1: not regained');
  t.equal(lines().length, 1);
  b.healthy = true;
  t.ok(await until(() => lines().length === 2, 3000), 'b back: weight 4, regained');
  t.same(lines(), ['down web down 1 3', 'up web up 4 3']);
  t.match(log.named('service.quorum_down'), [
    { service: 'web', weight: 1, quorum: 3, hysteresis: 1 },
  ]);
  t.match(log.named('service.quorum_up'), [{ service: 'web', weight: 4 }]);
});
