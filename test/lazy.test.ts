// Libraries loaded on first use (src/lazy.ts): the daemon's own modules and a probe worker's
// leave undici, nodemailer, dns-packet, pg and mysql2 out until a check or an alert config needs
// one, and a load that failed is tried again.
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
    const { PgsqlChecker } = await import('${dist}checks/pgsql.js');
    const { MysqlChecker } = await import('${dist}checks/mysql.js');
    const { AlertDeliverer } = await import('${dist}src/alerts/deliver.js');
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

t.test(
  'pg and mysql2 when a checker that logs in is made, the alert libraries with the config',
  async (t) => {
    // Made, not at the first login or the first alert: node remembers a package it could not read
    // (out of descriptors) as not there, which no later load undoes (pgsql.test.ts shows it).
    const [start, bare, pg, mysql] = await loadedAfter([
      `new PgsqlChecker(); new MysqlChecker()`,
      `new PgsqlChecker({ user: 'u' })`,
      `new MysqlChecker({ user: 'u' })`,
    ]);
    t.same(start, [], 'none before');
    t.same(bare, [], 'checks that do not log in: none');
    t.same(pg, ['pg'], 'a PostgreSQL login: pg');
    t.same(mysql, ['pg', 'mysql2'], 'a MySQL login: mysql2');
    const deliverer = 'new AlertDeliverer({ log: { log() {} } })';
    const [, none, email, webhook] = await loadedAfter([
      `${deliverer}.prepare({ virtualServices: [{}], alerts: { webhooks: [] } })`,
      `${deliverer}.prepare({ virtualServices: [{}], alerts: { email: { to: ['ops@example.test'] }, webhooks: [] } })`,
      `${deliverer}.prepare({ virtualServices: [], alerts: { webhooks: [{ url: 'http://127.0.0.1:9/' }] } })`,
    ]);
    t.same(none, [], 'a config without alerts: neither');
    t.same(email, ['nodemailer'], 'mail alerts: nodemailer');
    t.same(webhook, ['undici', 'nodemailer'], 'webhooks: undici');
    // A service's own mail address with no top-level mail sends mail too.
    const [, own] = await loadedAfter([
      `${deliverer}.prepare({ virtualServices: [{ alerts: { email: { to: ['a@example.test'] } } }], alerts: { webhooks: [] } })`,
    ]);
    t.same(own, ['nodemailer'], "a service's own mail: nodemailer");
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
