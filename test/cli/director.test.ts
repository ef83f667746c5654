// `ipvs-warden director drain|undrain|status`, the built CLI: the flag file in the state
// directory (made if missing), status's exit code, the state_dir of a config, usage errors.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** The command; `umask` 077 runs it as a restrictive script would (keepalived's, cron's). */
function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      'sh',
      ['-c', `umask ${umask}; exec "$@"`, 'sh', process.execPath, main, 'director', ...args],
      (error, out, err) =>
        resolve({
          code: typeof error?.code === 'number' ? error.code : error ? -1 : 0,
          out: out + err,
        }),
    ),
  );
}
let umask = '022';

t.test('drain, status, undrain', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'warden-director-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const dir = join(base, 'state');
  t.match(await cli('status', '--state-dir', dir), { code: 0, out: /^not drained/ });
  t.match(await cli('drain', '--state-dir', dir), { code: 0, out: /^drained: / });
  t.ok(existsSync(join(dir, 'drained')), 'the flag, its directory made');
  t.match(readFileSync(join(dir, 'drained'), 'utf8'), /^since \d{4}-/);
  t.match(await cli('drain', '--state-dir', dir), { code: 0, out: /^already drained/ });
  t.match(await cli('status', '--state-dir', dir), { code: 3, out: /^drained: since / });
  t.match(await cli('undrain', '--state-dir', dir), { code: 0, out: /^undrained/ });
  t.notOk(existsSync(join(dir, 'drained')));
  t.match(await cli('undrain', '--state-dir', dir), { code: 0 }, 'undrain twice is fine');

  const config = join(base, 'w.yaml');
  writeFileSync(config, `daemon:\n  state_dir: ${dir}\nvirtual_services: []\n`);
  await cli('drain', '--config', config);
  t.ok(existsSync(join(dir, 'drained')), "--config: the config's daemon.state_dir");
});

t.test(
  'under umask 077 the flag and its directories are still readable by the daemon',
  async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'warden-director-'));
    t.teardown(() => {
      umask = '022';
      rmSync(base, { recursive: true, force: true });
    });
    umask = '077';
    const dir = join(base, 'made', 'state');
    t.match(await cli('drain', '--state-dir', dir), { code: 0 });
    t.equal(statSync(join(dir, 'drained')).mode & 0o777, 0o644, 'the flag: 0644');
    t.equal(statSync(dir).mode & 0o777, 0o755, 'the state directory: 0755');
    t.equal(statSync(join(base, 'made')).mode & 0o777, 0o755, 'and the one made above it');
  },
);

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  t.match(await cli(), { code: 2, out: /director needs drain, undrain or status/ });
  t.match(await cli('pause'), { code: 2, out: /got "pause"/ });
  t.match(await cli('drain', '--state-dir', 'relative'), { code: 2, out: /absolute path/ });
  t.match(await cli('drain', '--state-dir', '/x', '--config', '/y'), { code: 2, out: /not both/ });
});
