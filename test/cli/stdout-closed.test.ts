// A daemon whose log stream closes (journald restarted, `ipvs-warden run | head`) keeps running:
// its writes fail with EPIPE, which used to be an unhandled 'error' and killed it, table and all.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exitWithin, names, spawnDaemon } from './daemon.js';

t.test('the log stream closing does not stop the daemon', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-epipe-'));
  const file = join(dir, 'warden.yaml');
  writeFileSync(
    file,
    `daemon: {backend: memory, log_format: json, log_level: debug, listen: "", pid_file: ${dir}/warden.pid, resync_interval: 100ms}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [], real_servers: [{address: 192.0.2.11}]}
`,
  );
  const d = spawnDaemon(file);
  t.teardown(() => d.proc.kill('SIGKILL'));
  const end = Date.now() + 20_000;
  while (!names(d).includes('daemon.started') && Date.now() < end)
    await new Promise((r) => setTimeout(r, 50));
  t.ok(names(d).includes('daemon.started'), 'started');
  d.proc.stdout?.destroy(); // the reader goes away
  d.proc.kill('SIGHUP'); // a reload: log lines, into the closed pipe
  t.equal(await exitWithin(d, 3000), 'still running', 'alive after writing into a closed pipe');
  d.proc.kill('SIGTERM');
  t.same(await exitWithin(d), { code: 0, signal: null }, 'and stops cleanly');
  t.same(d.errors.join(''), '', 'nothing on stderr');
});
