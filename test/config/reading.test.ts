// Reading a config never freezes or exhausts the process: only regular files are read, up to a
// bound, and the daemon's loader reads off the event loop with a deadline. /dev/zero, a FIFO, a
// directory and a huge (sparse) file are each refused with a problem, as is a FIFO ca_file.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Deadline, readFileBounded } from '../../src/config/files.js';
import { ConfigError, LIMITS } from '../../src/config/load.js';
import { loadConfigFile, parseConfig } from '../../src/checkers.js';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-read-'));

const fifo = join(dir, 'fifo.yaml');
execFileSync('mkfifo', [fifo]);
const directory = join(dir, 'dir.yaml');
mkdirSync(directory);
/** Sparse: 20 GiB long, no blocks written. */
const huge = join(dir, 'huge.yaml');
writeFileSync(huge, '');
truncateSync(huge, 20 * 2 ** 30);
const caFifo = join(dir, 'ca.pem');
execFileSync('mkfifo', [caFifo]);
const withCaFifo = join(dir, 'ca-fifo.yaml');
writeFileSync(
  withCaFifo,
  `virtual_services:
  - address: 10.0.0.1
    port: 443
    checks: [{type: https, tls: {ca_file: ca.pem}}]
    real_servers: [{address: 10.0.0.2}]
`,
);

const CASES: readonly (readonly [name: string, file: string, problem: RegExp])[] = [
  [
    '/dev/zero',
    '/dev/zero',
    /^\/dev\/zero: \(top level\): cannot read: not a regular file \(a character device\)$/,
  ],
  ['a FIFO', fifo, /: \(top level\): cannot read: not a regular file \(a FIFO\)$/],
  ['a directory', directory, /: \(top level\): cannot read: not a regular file \(a directory\)$/],
  [
    'a 20 GiB sparse file',
    huge,
    /: \(top level\): cannot read: 21474836480 bytes, more than the 16 MiB a config may be$/,
  ],
  [
    'a FIFO ca_file',
    withCaFifo,
    /:4: virtual_services\[0\]\.checks\[0\]\.tls\.ca_file: cannot read ca\.pem: not a regular file \(a FIFO\)$/,
  ],
];

function problemOf(load: () => unknown): string {
  try {
    load();
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n').slice(1).join('\n').trim();
    throw e;
  }
  return 'accepted';
}
async function problemOfAsync(load: () => Promise<unknown>): Promise<string> {
  try {
    await load();
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n').slice(1).join('\n').trim();
    throw e;
  }
  return 'accepted';
}

t.test(
  "loadConfigFile (the daemon's, off the event loop) refuses each with a problem",
  async (t) => {
    for (const [name, file, problem] of CASES)
      t.match(await problemOfAsync(() => loadConfigFile(file, {})), problem, name);
  },
);

t.test('a read past the deadline is a problem, not a wait', async (t) => {
  const deadline = new Deadline(0);
  await new Promise((r) => setTimeout(r, 5));
  t.same(await readFileBounded(withCaFifo, 1024, 'a test file may be', deadline), {
    problem: 'not read within 0ms',
  });
  const ok = new Deadline(60_000);
  t.match(await readFileBounded(withCaFifo, 1024, 'a test file may be', ok), { text: /^virtual/ });
  t.match(await readFileBounded(withCaFifo, 10, 'a test file may be', ok), {
    problem: /^\d+ bytes, more than the 10 bytes a test file may be$/,
  });
  ok.clear();
});

t.test('too many services, real servers or checks: refused before validating them', async (t) => {
  const services = Array.from(
    { length: LIMITS.services + 1 },
    (_, i) => `  - {address: 10.0.0.1, port: ${i % 65536}}`,
  );
  t.equal(
    problemOf(() => parseConfig(`virtual_services:\n${services.join('\n')}\n`, 'x.yaml', {})),
    'x.yaml:2: virtual_services: 10,001 virtual services, more than the 10,000 a config may have',
  );
  // Aliases make 100,100 servers (and 200,200 checks) of a short text: counted as expanded.
  const rs = Array.from({ length: 1001 }, (_, i) => `{address: 10.1.${i >> 8}.${i & 255}}`);
  const checks = Array.from({ length: 2002 }, () => '{type: tcp}');
  const vs = Array.from(
    { length: 99 },
    (_, i) => `  - {address: 10.0.0.2, port: ${i + 1}, real_servers: *rs, checks: *c}`,
  );
  const text = `virtual_services:
  - {address: 10.0.0.2, port: 100, real_servers: &rs [${rs.join(', ')}], checks: &c [${checks.join(', ')}]}
${vs.join('\n')}
`;
  t.equal(
    problemOf(() => parseConfig(text, 'x.yaml', {})),
    [
      'x.yaml:2: virtual_services: 100,100 real servers in all, more than the 100,000 a config may have',
      'x.yaml:2: virtual_services: 200,200 checks written, more than the 200,000 a config may have',
    ].join('\n  '),
  );
});

t.test('check-config refuses each: exit 1, the problem, no trace', async (t) => {
  for (const [name, file, problem] of CASES) {
    const r = await new Promise<{ code: number | string; err: string }>((resolve) => {
      execFile(
        process.execPath,
        [main, 'check-config', '--config', file],
        // A guard, not a measure: before the fix a FIFO hung here for good.
        { timeout: 60_000 },
        (error, _out, err) =>
          resolve({ code: error ? (error.code ?? error.signal ?? 'killed') : 0, err }),
      );
    });
    t.equal(r.code, 1, name);
    t.match(r.err.trim().split('\n')[1]?.trim(), problem, name);
  }
});
