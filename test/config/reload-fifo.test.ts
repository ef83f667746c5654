// A reload whose ca_file is a FIFO is refused like any invalid file, and the daemon goes on:
// the next reload applies. (The read was synchronous: the whole daemon froze in it.)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { until } from '../checks/servers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

t.test('a FIFO ca_file on reload: config.invalid, and the next reload applies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-reload-'));
  execFileSync('mkfifo', [join(dir, 'ca.pem')]);
  const config = join(dir, 'warden.yaml');
  const text = (
    weight: number,
    check = '',
  ): string => `daemon: {backend: memory, log_format: json, listen: ""}
virtual_services:
  - address: 192.0.2.1
    port: 80
    checks: [${check}]
    real_servers: [{address: 192.0.2.2, weight: ${weight}}]
`;
  writeFileSync(config, text(3));
  const proc = spawn(process.execPath, [main, 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => proc.kill('SIGKILL'));
  const events: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
  });
  const named = (event: string): Record<string, unknown>[] =>
    events.filter((e) => e.event === event);
  t.ok(await until(() => named('daemon.started').length === 1, 20_000), 'started');

  writeFileSync(config, text(4, '{type: https, tls: {ca_file: ca.pem}}'));
  proc.kill('SIGHUP');
  t.ok(await until(() => named('config.invalid').length === 1, 20_000), 'refused');
  t.match(named('config.invalid')[0], {
    problems: [/checks\[0\]\.tls\.ca_file: cannot read ca\.pem: not a regular file \(a FIFO\)$/],
    note: 'the running config stays in force',
  });

  writeFileSync(config, text(5));
  proc.kill('SIGHUP');
  t.ok(await until(() => named('config.reloaded').length === 1, 20_000), 'the next one applies');
  t.ok(
    await until(
      () => named('reconcile.applied').some((e) => e.op === 'update-destination' && e.weight === 5),
      20_000,
    ),
  );
  proc.kill('SIGTERM');
});
