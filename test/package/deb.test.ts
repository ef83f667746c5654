// The packages, built from a copy of the repository (prepack rewrites dist/, which other test
// files are reading): `npm pack`'s tarball installs with `npm install -g` and runs; `npm run
// package:deb`'s .deb has the layout the man page's FILES names, passes lintian (overrides
// justified in deploy/debian/lintian-overrides), runs unpacked, and installs, removes and
// purges on this machine (CI's throwaway Debian 12, as root), leaving nothing of itself.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FILES } from '../../src/cli/manpage.js';
import { NODE_START_FLAGS } from '../../src/v8-flags.js';
import { until } from '../checks/servers.js';
import { exitWithin, spawnDaemon } from '../cli/daemon.js';

t.setTimeout(300_000);
const root = new URL('../../../', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'warden-pkg-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
const src = join(scratch, 'src');
for (const f of [
  'src',
  'checks',
  'test',
  'bench',
  'deploy',
  'README.md',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
])
  cpSync(join(root, f), join(src, f), { recursive: true });
symlinkSync(realpathSync(join(root, 'node_modules')), join(src, 'node_modules'));
const sh = (cmd: string, args: string[], cwd = src): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });

const out = join(scratch, 'out');
const started = Date.now();
const deb = sh('npm', ['run', '-s', 'package:deb', '--', out]).trim();
t.comment(`package:deb: ${deb} in ${Date.now() - started} ms`);
sh('npm', ['pack', '--silent', '--pack-destination', out]);
const tarball = join(out, readdirSync(out).find((f) => f.endsWith('.tgz')) ?? 'none');

t.test('npm pack: the tarball installs with npm install -g and runs', async (t) => {
  const prefix = join(scratch, 'global');
  sh('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], scratch);
  const bin = join(prefix, 'bin', 'ipvs-warden');
  t.match(sh(bin, ['--version'], scratch), /^ipvs-warden \d+\.\d+\.\d+\n$/);
  const example = join(prefix, 'lib/node_modules/ipvs-warden/deploy/ipvs-warden.yaml');
  t.match(sh(bin, ['check-config', '--config', example], scratch), /: valid\n/);
});

t.test('the .deb: control, layout, conffile', async (t) => {
  const field = (f: string): string => sh('dpkg-deb', ['-f', deb, f]).trim();
  t.equal(field('Architecture'), sh('dpkg', ['--print-architecture']).trim());
  t.match(field('Depends'), /^nodejs \(>= 20\.18\), systemd, libc6/);
  const files = sh('dpkg-deb', ['-c', deb])
    .split('\n')
    .map((l) =>
      l
        .split(/\s+/)
        .slice(5)
        .join(' ')
        .replace(/^\./, '')
        .replace(/ -> .*/, ''),
    );
  for (const want of [
    '/usr/bin/ipvs-warden',
    '/usr/lib/ipvs-warden/dist/src/main.js',
    '/usr/lib/ipvs-warden/dist/src/native/probe.node',
    '/usr/lib/ipvs-warden/node_modules/yaml/package.json',
    '/usr/share/man/man8/ipvs-warden.8.gz',
    '/usr/share/man/man5/ipvs-warden.yaml.5.gz',
    '/usr/share/doc/ipvs-warden/copyright',
    '/usr/share/doc/ipvs-warden/changelog.Debian.gz',
    ...FILES.map(([path]) => path).filter((p) => !p.startsWith('/run/')),
  ])
    t.ok(files.includes(want), want);
  t.notOk(
    files.some((f) => f.includes('/node_modules/typescript/') || f.includes('/tap/')),
    'no dev modules',
  );
  const ctrl = join(scratch, 'control');
  sh('dpkg-deb', ['-e', deb, ctrl]);
  t.equal(sh('cat', [join(ctrl, 'conffiles')]), '/etc/ipvs-warden/ipvs-warden.yaml\n');
});

t.test('lintian passes (each override justified beside it)', async (t) => {
  const r = spawnSync(
    'lintian',
    [
      '--pedantic',
      '--display-experimental',
      '--fail-on',
      'error,warning,info,pedantic,experimental',
      deb,
    ],
    { encoding: 'utf8' },
  );
  t.equal(r.stdout, '', 'no tags');
  t.equal(r.status, 0);
});

t.test('unpacked into a scratch root, the program runs', async (t) => {
  const x = join(scratch, 'x');
  sh('dpkg', ['-x', deb, x]);
  const main = join(x, 'usr/lib/ipvs-warden/dist/src/main.js');
  t.match(sh('node', [main, '--version']), /^ipvs-warden /);
  t.match(
    sh('node', [main, 'check-config', '--config', join(x, 'etc/ipvs-warden/ipvs-warden.yaml')]),
    /: valid\n/,
  );
  // The connect probe in C, built by prepack and stripped, loads from where it was installed.
  const native = join(x, 'usr/lib/ipvs-warden/dist/src/health/native.js');
  t.equal(
    execFileSync(
      'node',
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(native)}); console.log(JSON.stringify(m.nativeProbes))`,
      ],
      { encoding: 'utf8', env: { ...process.env, IPVS_WARDEN_SOCKETS: undefined } },
    ).trim(),
    '{"on":true,"why":""}',
  );
  t.match(
    sh('cat', [join(x, 'usr/bin/ipvs-warden')]),
    `exec /usr/bin/node ${NODE_START_FLAGS.join(' ')} /usr/lib/ipvs-warden/dist/src/main.js "$@"`,
  );
});

const installed = (): string =>
  spawnSync('dpkg-query', ['-W', '-f=${Status}', 'ipvs-warden'], { encoding: 'utf8' }).stdout;

t.test(
  'installs, runs, removes and purges on this machine',
  {
    skip:
      process.getuid?.() !== 0
        ? 'needs root'
        : installed().includes('installed')
          ? 'ipvs-warden is installed here already'
          : false,
  },
  async (t) => {
    t.teardown(() => {
      spawnSync('dpkg', ['--purge', 'ipvs-warden']);
    });
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', deb],
      { env, stdio: 'ignore' },
    );
    t.equal(installed(), 'install ok installed');
    t.match(sh('/usr/bin/ipvs-warden', ['--version']), /^ipvs-warden /);
    t.match(
      sh('/usr/bin/ipvs-warden', ['check-config', '--config', '/etc/ipvs-warden/ipvs-warden.yaml']),
      /: valid\n/,
    );
    // The packaged command starts node as the package means to (V8 reads these only at start).
    const config = join(scratch, 'run.yaml');
    writeFileSync(
      config,
      `daemon: {backend: memory, log_format: json, listen: "127.0.0.1:0", state_dir: ${scratch}}
virtual_services:
  - {address: 192.0.2.1, port: 80, checks: [], real_servers: [{address: 192.0.2.11}]}
`,
    );
    const daemon = spawnDaemon(config, undefined, false, ['/usr/bin/ipvs-warden']);
    t.teardown(() => daemon.proc.kill('SIGKILL'));
    const started = (): Record<string, unknown> | undefined =>
      daemon.events.find((e) => e.event === 'daemon.started');
    t.ok(await until(() => started() !== undefined, 20_000), 'the installed daemon starts');
    t.same(started()?.node_flags, NODE_START_FLAGS, "node runs with the package's flags");
    // Stopped before the package is removed from under it.
    daemon.proc.kill('SIGTERM');
    t.same(await exitWithin(daemon), { code: 0, signal: null }, 'and stops');
    t.match(
      sh('getent', ['passwd', 'ipvs-warden']),
      /^ipvs-warden:x:\d+:\d+:.*:\/nonexistent:\/usr\/sbin\/nologin\n$/,
    );
    t.match(sh('man', ['-w', 'ipvs-warden.yaml']), '/usr/share/man/man5/ipvs-warden.yaml.5.gz');
    t.ok(existsSync('/lib/systemd/system/ipvs-warden.service'));
    t.equal(
      spawnSync('systemctl', ['is-active', 'ipvs-warden']).status === 0,
      false,
      'not started',
    );

    execFileSync('dpkg', ['--remove', 'ipvs-warden'], { env, stdio: 'ignore' });
    t.equal(installed(), 'deinstall ok config-files');
    t.notOk(existsSync('/usr/bin/ipvs-warden'), 'program gone');
    t.notOk(existsSync('/usr/lib/ipvs-warden'), 'modules gone');
    t.ok(existsSync('/etc/ipvs-warden/ipvs-warden.yaml'), 'the conffile stays until purge');

    execFileSync('dpkg', ['--purge', 'ipvs-warden'], { env, stdio: 'ignore' });
    t.equal(installed(), '');
    t.notOk(existsSync('/etc/ipvs-warden'), 'purge removes /etc/ipvs-warden');
    t.notOk(existsSync('/usr/share/man/man8/ipvs-warden.8.gz'));
  },
);
