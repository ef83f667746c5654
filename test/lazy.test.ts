// Libraries loaded on first use (src/lazy.ts): the daemon's own modules and a probe worker's
// leave undici, nodemailer, dns-packet, pg and mysql2 out until a check or an alert needs one,
// and a load that failed is tried again.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { onFirstUse } from '../src/lazy.js';

const dist = new URL('../', import.meta.url).href;

/** Runs `steps` (ESM, after importing the daemon's modules) in a fresh node and returns which
 * of the lazily loaded packages it holds after each step. */
function loadedAfter(steps: readonly string[]): Promise<string[][]> {
  const script = `
    import { createRequire } from 'node:module';
    const cache = createRequire(import.meta.url).cache;
    const held = () => ['undici', 'nodemailer', 'dns-packet', 'pg', 'mysql2'].filter((p) =>
      Object.keys(cache).some((f) => f.includes('/node_modules/' + p + '/')));
    await import('${dist}src/checkers.js');
    await import('${dist}src/cli/run.js');
    await import('${dist}src/health/pool.js');
    const { HttpChecker } = await import('${dist}checks/http.js');
    const { DnsChecker } = await import('${dist}checks/dns.js');
    const out = [held()];
    ${steps.map((s) => `${s}; out.push(held());`).join('\n')}
    console.log(JSON.stringify(out));`;
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`${error.message}\n${stderr}`))
          : resolve(JSON.parse(stdout) as string[][]),
    ),
  );
}

t.test(
  'the daemon loads undici, nodemailer and dns-packet only for the checks that use them',
  async (t) => {
    const [start, fresh, kept, dns] = await loadedAfter([
      `new HttpChecker({ path: '/' })`,
      `new HttpChecker({ path: '/', reuse: true })`,
      `new DnsChecker({ name: 'www.example.test' })`,
    ]);
    t.same(start, [], 'the daemon, the catalog and the probe pool: none of them');
    t.same(fresh, [], 'an HTTP check on fresh connections: still none');
    t.same(kept, ['undici'], 'an HTTP check with reuse: undici');
    t.same(dns, ['undici', 'dns-packet'], 'a DNS check: dns-packet');
  },
);

t.test('a library that failed to load is tried again, then kept', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lazy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'late.cjs');
  const load = onFirstUse<{ n: number }>(file);
  t.throws(() => load(), { code: 'MODULE_NOT_FOUND' }, 'not there yet: the error, thrown');
  writeFileSync(file, 'module.exports = { n: 7 };');
  const first = load();
  t.equal(first.n, 7, 'there now: loaded on the next call');
  t.equal(load(), first, 'and kept: the same module after');
  t.end();
});
