// A config that validates is one whose checks can run: certificate and key files are parsed
// when the config is loaded (every certificate of a bundle, the key, the key against its
// certificate), and HTTP header names, values, host and path are held to what the HTTP client
// sends. Each mistake is a problem at its path that never echoes the file or the value.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/config/load.js';
import { parseConfig } from '../../src/checkers.js';
import { selfSigned } from '../checks/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
const { cert, key } = selfSigned();
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const files: Record<string, string> = {
  'cert.pem': cert,
  'key.pem': key,
  'bundle.pem': `# a comment, as bundles have\n${cert}\n${cert}`,
  // The second certificate cut short: its base64 ends early.
  'broken.pem': `${cert}\n${cert.slice(0, 200)}\n-----END CERTIFICATE-----\n`,
  'other-key.pem': other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  'encrypted-key.pem': other.privateKey
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })
    .toString(),
  'notes.txt': 'SECRET-CONTENT-42: not a certificate\n',
};
for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, join(dir, 'x.yaml'), {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
  }
  return [];
}
/** One https check per line, on one real server each. */
function withChecks(...checks: string[]): string {
  return `virtual_services:
  - address: 10.0.0.1
    port: 443
    checks: []
    real_servers:
${checks.map((c, i) => `      - {address: 10.0.0.${i + 2}, checks: [${c}]}`).join('\n')}
`;
}
const rs = (i: number, rest: string): string =>
  `virtual_services.0.real_servers.${i}.checks.0.${rest}`;

t.test('certificates, bundles and keys that parse and match are accepted', async (t) => {
  t.same(
    problems(
      withChecks(
        '{type: https, tls: {ca_file: bundle.pem, cert_file: cert.pem, key_file: key.pem}}',
        '{type: tcp, tls: {ca_file: cert.pem}}',
      ),
    ),
    [],
  );
});

t.test('a file that is not what its key says is a problem at its path', async (t) => {
  const found = problems(
    withChecks(
      '{type: https, tls: {ca_file: /etc/passwd}}',
      '{type: https, tls: {ca_file: /proc/self/environ}}',
      '{type: https, tls: {ca_file: notes.txt}}',
      '{type: https, tls: {ca_file: broken.pem}}',
      '{type: https, tls: {cert_file: notes.txt, key_file: key.pem}}',
      '{type: https, tls: {cert_file: cert.pem, key_file: notes.txt}}',
      '{type: https, tls: {cert_file: cert.pem, key_file: other-key.pem}}',
      '{type: https, tls: {cert_file: cert.pem, key_file: encrypted-key.pem}}',
      '{type: https, tls: {cert_file: cert.pem}}',
      '{type: tcp, tls: {key_file: key.pem}}',
    ),
  );
  t.match(found, [
    `${rs(0, 'tls.ca_file')}: /etc/passwd holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    `${rs(1, 'tls.ca_file')}: /proc/self/environ holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    `${rs(2, 'tls.ca_file')}: notes.txt holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    new RegExp(
      `^${rs(3, 'tls\\.ca_file')}: certificate 2 of 2 in broken\\.pem cannot be parsed \\(ERR_[A-Z0-9_]+\\)$`,
    ),
    `${rs(4, 'tls.cert_file')}: notes.txt holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    `${rs(5, 'tls.key_file')}: notes.txt holds no PEM private key (no "-----BEGIN PRIVATE KEY-----" line)`,
    `${rs(6, 'tls.key_file')}: other-key.pem does not match the certificate in cert_file cert.pem`,
    `${rs(7, 'tls.key_file')}: encrypted-key.pem is encrypted, and a check has no passphrase to open it`,
    `${rs(8, 'tls.cert_file')}: a client certificate needs its key: give key_file too`,
    `${rs(9, 'tls.key_file')}: a client key needs its certificate: give cert_file too`,
  ]);
  t.equal(found.length, 10, 'one problem each');
  const shown = found.join('\n');
  // A line of each key's and certificate's base64, the note, /etc/passwd, the environment.
  for (const secret of [
    key.split('\n')[1],
    cert.split('\n')[1],
    files['other-key.pem']?.split('\n')[1],
    'SECRET-CONTENT',
    'root:x',
    'PATH=',
  ])
    t.notOk(shown.includes(secret ?? '?'), `${secret ?? '?'} is not echoed`);
});

t.test('header names, values, host and path are what the HTTP client will send', async (t) => {
  const found = problems(
    withChecks(
      '{type: http, headers: {"Bad Name": x, "X-Ok": fine}}',
      '{type: http, headers: {X-Token: "s3cret\\r\\nInjected: 1"}}',
      '{type: http, headers: {X-Token: "s3cret\\0"}}',
      '{type: http, headers: {Authorization: Bearer s3cret, authorization: Bearer s3cret2}}',
      '{type: http, headers: {Expect: 100-continue, Transfer-Encoding: chunked, Content-Length: 5}}',
      '{type: http, headers: {Connection: "close, \\"x\\""}}',
      '{type: http, host: "example.com\\r\\nX-Injected: 1"}',
      '{type: http, host: "exa mple.com"}',
      '{type: http, host: "example.com:99999"}',
      '{type: http, path: "/health check"}',
      '{type: http, path: "/healthz?token=s3cret\\n"}',
      '{type: http, host: "example.com:8080", headers: {x-a: "b c", X-Tab: "a\\tb"}}',
      '{type: http, host: "[2001:db8::1]:443", path: "/a?b=c&d"}',
    ),
  );
  t.same(found, [
    `${rs(0, 'headers.Bad Name')}: not a header name (letters, digits and !#$%&'*+-.^_\`|~ only)`,
    `${rs(1, 'headers.X-Token')}: the value has a CR, LF, NUL or other control character`,
    `${rs(2, 'headers.X-Token')}: the value has a CR, LF, NUL or other control character`,
    `${rs(3, 'headers.authorization')}: given twice (header names are not case-sensitive)`,
    `${rs(4, 'headers.Expect')}: not a header a check may send (the HTTP client refuses it)`,
    `${rs(4, 'headers.Transfer-Encoding')}: not a header a check may send (the HTTP client refuses it)`,
    `${rs(4, 'headers.Content-Length')}: not a header a check may send (the client sets it)`,
    `${rs(5, 'headers.Connection')}: must be a list of tokens, such as close`,
    `${rs(6, 'host')}: must be a host name or address, with an optional :port`,
    `${rs(7, 'host')}: must be a host name or address, with an optional :port`,
    `${rs(8, 'host')}: must be a host name or address, with an optional :port`,
    `${rs(9, 'path')}: must have no spaces or control characters (percent-encode them)`,
    `${rs(10, 'path')}: must have no spaces or control characters (percent-encode them)`,
  ]);
  t.notMatch(found.join('\n'), /s3cret|Injected|Bearer/, 'no value echoed');
});
