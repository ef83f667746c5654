// The HTTP(S) probe against nginx from Debian's packages (nginx-light), on 127.0.0.1 and ::1.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HttpChecker } from '../../checks/http.js';
import { freePort, selfSigned, until, nginxConf } from './servers.js';

const ctx = () => ({ signal: new AbortController().signal, timeoutMs: 3000 });

t.test('nginx', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-nginx-'));
  const { key, cert } = selfSigned();
  writeFileSync(join(dir, 'key.pem'), key);
  writeFileSync(join(dir, 'cert.pem'), cert);
  const [http, https] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'nginx.conf'),
    nginxConf(
      dir,
      `  server {
    listen 127.0.0.1:${http}; listen [::1]:${http};
    listen 127.0.0.1:${https} ssl; listen [::1]:${https} ssl;
    ssl_certificate ${dir}/cert.pem; ssl_certificate_key ${dir}/key.pem;
    server_name warden.test;
    location = /healthz { return 200 "status: ok\\n"; }
    location = /down { return 503 "maintenance\\n"; }
  }
  server {
    listen 127.0.0.1:${http};
    server_name other.test;
    location / { return 404; }
  }
`,
    ),
  );
  const nginx: ChildProcess = spawn(
    'nginx',
    ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')],
    {
      stdio: 'inherit',
    },
  );
  t.teardown(() => void nginx.kill());
  const up = new HttpChecker({ path: '/healthz' });
  const v4 = { family: 4, address: '127.0.0.1', port: http } as const;
  t.ok(await until(async () => (await up.check(v4, ctx())).healthy, 5000), 'nginx is up');

  const ok = await new HttpChecker({ path: '/healthz', bodyMatch: /status: ok/ }).check(v4, ctx());
  t.ok(ok.healthy);
  t.match(ok.message, /^HTTP GET \/healthz -> 127\.0\.0\.1:\d+: connected; status 200$/);
  const down = await new HttpChecker({ path: '/down' }).check(
    { family: 6, address: '::1', port: http },
    ctx(),
  );
  t.notOk(down.healthy);
  t.match(
    down.message,
    /^HTTP GET \/down -> \[::1\]:\d+: connected; status 503, expected 200-299$/,
  );
  const vhost = await new HttpChecker({ path: '/healthz', host: 'other.test' }).check(v4, ctx());
  t.notOk(vhost.healthy, 'the Host header selects the virtual host');
  t.match(vhost.message, /status 404/);
  const tls = await new HttpChecker({
    path: '/healthz',
    tls: { servername: 'warden.test', ca: cert },
  }).check({ family: 6, address: '::1', port: https }, ctx());
  t.ok(tls.healthy, tls.message);
  t.match(
    tls.message,
    /^HTTPS GET \/healthz -> \[::1\]:\d+: connected; TLS TLSv1\.[23]; status 200$/,
  );
  const strict = await new HttpChecker({
    path: '/healthz',
    tls: { servername: 'warden.test' },
  }).check({ family: 4, address: '127.0.0.1', port: https }, ctx());
  t.notOk(strict.healthy, 'an untrusted certificate fails');
});
