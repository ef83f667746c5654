// `ipvs-warden probe` as an operator runs it: the real command against a real server.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseTarget } from '../../src/cli/probe.js';
import { listen } from '../checks/servers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], (error, out, err) =>
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, out, err }),
    );
  });
}

t.test('targets', async (t) => {
  t.same(parseTarget('10.0.0.5:80'), { family: 4, address: '10.0.0.5', port: 80 });
  t.same(parseTarget('[2001:DB8::5]:443'), { family: 6, address: '2001:db8::5', port: 443 });
  t.throws(() => parseTarget('10.0.0.5'), /ADDRESS:PORT/);
  t.throws(() => parseTarget('10.0.0.5:70000'), /ADDRESS:PORT/);
});

t.test('exit status 0 when healthy, 1 when not, 2 for a usage error', async (t) => {
  const srv = await listen(
    createServer((req, res) => ((res.statusCode = req.url === '/ok' ? 200 : 500), res.end())),
  );
  const target = `127.0.0.1:${srv.target.port}`;
  const ok = await cli('probe', 'http', target, '--path', '/ok');
  t.equal(ok.code, 0);
  t.match(
    ok.out,
    /^healthy in [\d.]+ ms: HTTP GET \/ok -> 127\.0\.0\.1:\d+: connected; status 200\n$/,
  );
  const bad = await cli('probe', 'http', target, '--path', '/fail');
  t.equal(bad.code, 1);
  t.match(bad.out, /^UNHEALTHY in [\d.]+ ms: .*status 500, expected 200-299\n$/);
  const usage = await cli('probe', 'http', target, '--expect-status', 'two hundred');
  t.equal(usage.code, 2);
  t.match(usage.err, /^ipvs-warden: --expect-status: "two hundred" is not a status/);
  const tcp = await cli(
    'probe',
    'tcp',
    target,
    '--send',
    'GET /ok HTTP/1.0\\r\\n\\r\\n',
    '--expect-regex',
    '^HTTP/1\\.1 200',
  );
  t.equal(tcp.code, 0, tcp.out);
  await srv.stop();
});

t.test('probe exec and dns from the command line', async (t) => {
  const exec = await cli(
    'probe',
    'exec',
    '10.0.0.5:80',
    '--dynamic-weight',
    '--',
    '/bin/sh',
    '-c',
    'echo $0:$1; exit 12',
    '{address}',
    '{port}',
  );
  t.equal(exec.code, 0);
  t.match(
    exec.out,
    /^healthy in [\d.]+ ms: exec \/bin\/sh -> 10\.0\.0\.5:80: exited 12 \(weight 10\)\n$/,
  );
  const noCommand = await cli('probe', 'exec', '10.0.0.5:80');
  t.equal(noCommand.code, 2);
  t.match(noCommand.err, /exec needs a command after --/);
  const dns = await cli('probe', 'dns', '127.0.0.1:1', '--name', 'x.test', '--type', 'srv');
  t.equal(dns.code, 1);
  t.match(
    dns.out,
    /^UNHEALTHY in [\d.]+ ms: DNS SRV x\.test over udp -> 127\.0\.0\.1:1: sent \d+ bytes; connection refused \(ECONNREFUSED\)\n$/,
  );
  const badType = await cli('probe', 'dns', '127.0.0.1:53', '--name', 'x.test', '--type', 'AXFR');
  t.equal(badType.code, 2);
  t.match(badType.err, /--type: must be one of A, AAAA/);
});

t.test('the flags are the declaration: every config key of a kind has its flag', async (t) => {
  const help = await cli('probe', 'tcp', '--help');
  t.equal(help.code, 0);
  for (const flag of [
    '--send',
    '--expect',
    '--expect-regex',
    '--expect-regex-flags',
    '--tls',
    '--sni',
    '--insecure',
    '--ca-file',
    '--bind',
    '--max-reply',
  ])
    t.match(help.out, `  ${flag}`, flag);
  t.match(help.out, /--max-reply N\s+bytes of reply kept .* \(default 65536\)/);
  const bad = await cli('probe', 'tcp', '127.0.0.1:1', '--max-reply', '0');
  t.equal(bad.code, 2);
  t.match(bad.err, /^ipvs-warden: --max-reply: must be a whole number 1\.\.16777216, got 0/);
  const unknown = await cli('probe', 'dns', '127.0.0.1:1', '--name', 'x', '--send', 'x');
  t.equal(unknown.code, 2, 'a flag of another kind is refused');
  const flags = await cli(
    'probe',
    'http',
    '127.0.0.1:1',
    '--body-match-flags',
    'g',
    '--body-match',
    'ok',
  );
  t.match(flags.err, /--body-match: flags must be from i, m, s, u/);
});

t.test('a protocol check from the command line, its password from the environment', async (t) => {
  // An FTP control connection of the test's own (vsftpd's own tests are test/checks/ftp.test.ts):
  // enough dialogue to log in, so the password's way from the flag to the wire is seen.
  const { createServer: createTcpServer } = await import('node:net');
  const seen: string[] = [];
  const ftp = createTcpServer((socket) => {
    socket.write('220 test ftp\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let at;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        seen.push(line);
        if (line.startsWith('USER ')) socket.write('331 password please\r\n');
        else if (line === 'PASS s3cret-pw') socket.write('230 in\r\n');
        else if (line.startsWith('PASS ')) socket.write('530 Login incorrect.\r\n');
        else if (line === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('500 ?\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => ftp.listen(0, '127.0.0.1', resolve));
  t.teardown(() => void ftp.close());
  const port = (ftp.address() as { port: number }).port;
  const run = (pw: string) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        [main, 'probe', 'ftp', `127.0.0.1:${port}`, '--user', 'alice', '--password-env', 'FTP_PW'],
        { env: { ...process.env, FTP_PW: pw } },
        (error, out, err) =>
          resolve({ code: typeof error?.code === 'number' ? error.code : 0, out: out + err }),
      ),
    );
  const ok = await run('s3cret-pw');
  t.equal(ok.code, 0, ok.out);
  t.ok(seen.includes('PASS s3cret-pw'), 'the password from the environment was sent');
  t.notMatch(ok.out, 's3cret');
  const refused = await run('wrong-pw');
  t.equal(refused.code, 1, refused.out);
  t.match(refused.out, /login refused/);
  t.notMatch(refused.out, 'wrong-pw');
  const unset = await cli(
    'probe',
    'ftp',
    `127.0.0.1:${port}`,
    '--user',
    'a',
    '--password-env',
    'NOPE_UNSET',
  );
  t.equal(unset.code, 2);
  t.match(unset.err, /--password-env: the environment variable NOPE_UNSET is not set/);
});

t.test('probe http: a case-insensitive match, the digest, a body, HTTP/1.0, a proxy', async (t) => {
  const seen: { version: string; url: string; body: string }[] = [];
  const srv = await listen(
    createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ version: req.httpVersion, url: req.url ?? '', body });
        res.end('Status: OK\n');
      });
    }),
  );
  t.teardown(() => srv.stop());
  const target = `127.0.0.1:${srv.target.port}`;
  const ci = await cli(
    'probe',
    'http',
    target,
    '--body-match',
    'status: ok',
    '--body-match-flags',
    'i',
  );
  t.equal(ci.code, 0, ci.out);
  const cs = await cli('probe', 'http', target, '--body-match', 'status: ok');
  t.equal(cs.code, 1, 'without the flag the case matters');
  t.match(cs.out, /body does not match \/status: ok\/\n$/);

  // What an operator runs instead of genhash, then puts in the config.
  const shown = await cli('probe', 'http', target, '--show-digest');
  t.equal(shown.code, 0);
  const md5 = /; md5 ([0-9a-f]{32})\n$/.exec(shown.out)?.[1] ?? '';
  t.equal(md5, createHash('md5').update('Status: OK\n').digest('hex'), 'the body md5');
  t.equal((await cli('probe', 'http', target, '--digest', md5)).code, 0);
  const wrong = await cli('probe', 'http', target, '--digest', 'd41d8cd98f00b204e9800998ecf8427e');
  t.equal(wrong.code, 1);
  t.match(wrong.out, `has md5 ${md5}, expected d41d8cd98f00b204e9800998ecf8427e\n`);
  const bad = await cli('probe', 'http', target, '--digest', 'xyz');
  t.equal(bad.code, 2);
  t.match(bad.err, /--digest: must be an MD5 digest: 32 hex digits/);

  const posted = await cli(
    'probe',
    'http',
    target,
    '--method',
    'POST',
    '--body',
    'a=1',
    '--http-version',
    '1.0',
  );
  t.equal(posted.code, 0, posted.out);
  t.match(posted.out, /HTTP POST \/ HTTP\/1\.0 -> /);
  t.same(seen.at(-1), { version: '1.0', url: '/', body: 'a=1' });
  const proxied = await cli('probe', 'http', target, '--proxy-url', 'http://www.example.test/x');
  t.equal(proxied.code, 0, proxied.out);
  t.equal(seen.at(-1)?.url, 'http://www.example.test/x');
  const both = await cli('probe', 'http', target, '--proxy-url', 'http://x.test/', '--path', '/');
  t.equal(both.code, 2);
  t.match(both.err, /--proxy-url: give path or proxy_url, not both/);
});
