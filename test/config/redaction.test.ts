// Secrets stay in the process unless the operator asks: a token in a check's query string, an
// Authorization header, an exec environment value and a TCP check's send text appear neither
// in check-config's output (which systemd's ExecStartPre sends to the journal) nor in a check's
// description (logs, /status, the metric label) or result message. --show-secrets prints them,
// and that output reads back as the same config.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { HttpChecker } from '../../checks/http.js';
import { createChecker } from '../../src/checkers.js';
import { CATALOG } from '../../src/checkers.js';
import { effectiveConfig } from '../../src/config/effective.js';
import { redactQuery } from '../../src/health/options.js';
import { loadConfigFile } from '../../src/checkers.js';
import { listen, selfSigned } from '../checks/servers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-secret-'));
const { cert, key } = selfSigned();
writeFileSync(join(dir, 'client.pem'), cert);
writeFileSync(join(dir, 'client.key'), key);
const SECRETS = ['s3cr3t-query', 's3cr3t-header', 's3cr3t-env', 's3cr3t-send'];
const config = join(dir, 'warden.yaml');
writeFileSync(
  config,
  `daemon: {backend: memory}
virtual_services:
  - address: 10.0.0.1
    port: 443
    real_servers:
      - address: 10.0.0.2
        checks:
          - type: https
            path: /healthz?token=s3cr3t-query&verbose
            headers: {Authorization: Bearer s3cr3t-header, X-Check: warden}
            tls: {cert_file: client.pem, key_file: client.key, verify: false}
          - {type: exec, command: [/usr/lib/check, "{address}"], env: {API_KEY: s3cr3t-env}}
          - {type: tcp, send: "AUTH s3cr3t-send\\r\\nPING\\r\\n", expect: PONG}
`,
);

function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], (error, out, err) =>
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, out, err }),
    );
  });
}

t.test('check-config shows no secret by default, and --show-secrets shows them', async (t) => {
  const shown = await cli('check-config', '--config', config);
  t.equal(shown.code, 0, shown.err);
  for (const s of SECRETS) t.notOk(shown.out.includes(s), `${s} is not shown`);
  t.notOk(shown.out.includes('BEGIN'), 'no key or certificate content either');
  t.match(shown.out, /authorization: <redacted>/);
  t.match(shown.out, /x-check: <redacted>/);
  t.match(shown.out, /API_KEY: <redacted>/);
  t.match(shown.out, /path: \/healthz\?token=…&…/);
  t.match(shown.out, /--show-secrets/, 'says how to see them');

  const all = await cli('check-config', '--config', config, '--show-secrets');
  t.equal(all.code, 0, all.err);
  for (const s of SECRETS) t.ok(all.out.includes(s), `${s} is shown when asked`);
  t.notOk(all.out.includes('BEGIN'), 'files are named, never printed');
  t.match(all.out, new RegExp(`key_file: ${join(dir, 'client.key')}`));

  // What --show-secrets printed is the config: saved and read again, it is the same.
  const again = join(dir, 'effective.yaml');
  writeFileSync(again, all.out);
  const first = await loadConfigFile(config, {});
  const second = await loadConfigFile(again, {});
  t.equal(
    effectiveConfig(second, CATALOG, { showSecrets: true }),
    effectiveConfig(first, CATALOG, { showSecrets: true }),
  );
  // The same checks: a checker's key is made of its whole normalised option set.
  const checks = (c: typeof first): unknown[] =>
    c.virtualServices.flatMap((v) =>
      v.realServers.flatMap((r) => r.checks.map((x) => [createChecker(x).key, x.tlsFiles])),
    );
  t.same(checks(second), checks(first));
  t.equal(checks(first).length, 3);
});

t.test(
  'check-config --quiet prints the verdict alone, and refuses as check-config does',
  async (t) => {
    const quiet = await cli('check-config', '--quiet', '--config', config);
    t.equal(quiet.code, 0, quiet.err);
    t.equal(quiet.out, `# ${config}: valid\n`, 'no config, so no secret either');
    const shown = await cli('check-config', '--config', config);
    const saved = join(dir, 'quiet-saved.yaml');
    writeFileSync(saved, shown.out);
    const [loud, hushed] = [
      await cli('check-config', '--config', saved),
      await cli('check-config', '--quiet', '--config', saved),
    ];
    t.equal(hushed.code, 1);
    t.equal(hushed.out, '');
    t.equal(hushed.err, loud.err, 'the same problems, named the same way');
  },
);

t.test('the redacted output is refused as a config, not run with placeholders', async (t) => {
  const shown = await cli('check-config', '--config', config);
  const saved = join(dir, 'saved.yaml');
  writeFileSync(saved, shown.out);
  const r = await cli('check-config', '--config', saved);
  t.equal(r.code, 1);
  t.match(r.err, /path: has a secret check-config hid \(…\): print it with --show-secrets/);
  t.match(r.err, /headers\.authorization: is <redacted>, a secret check-config hid/);
  t.match(r.err, /env\.API_KEY: is <redacted>, a secret check-config hid/);
  t.match(r.err, /send: is <redacted>, a secret check-config hid/);
});

t.test("a check's description and result messages hold no query value", async (t) => {
  const c = await loadConfigFile(config, {});
  const checks = c.virtualServices[0]?.realServers[0]?.checks ?? [];
  const descriptions = checks.map((x) => createChecker(x).description);
  t.same(descriptions, ['HTTPS GET /healthz?token=…&…', 'exec /usr/lib/check', 'TCP connect']);

  const srv = await listen(createServer((_req, res) => res.writeHead(503).end()));
  t.teardown(() => srv.stop());
  const checker = new HttpChecker({ path: '/healthz?token=s3cr3t-query' });
  const down = await checker.check(srv.target, {
    signal: new AbortController().signal,
    timeoutMs: 5000,
  });
  t.notOk(down.healthy);
  t.match(down.message, /^HTTP GET \/healthz\?token=… -> 127\.0\.0\.1:\d+: connected; status 503/);
  t.notOk(down.message.includes('s3cr3t'));
});

t.test('a query is shown by its names alone', async (t) => {
  t.equal(redactQuery('/healthz'), '/healthz');
  t.equal(redactQuery('/healthz?'), '/healthz?…');
  t.equal(redactQuery('/a?token=x&token=y&flag'), '/a?token=…&token=…&…');
  t.equal(redactQuery('/a?k=v=w#frag'), '/a?k=…');
});
