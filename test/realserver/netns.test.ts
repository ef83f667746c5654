// `ipvs-warden realserver` for real: the built CLI run inside a fresh user+network namespace
// (unshare -rn: root there, the host untouched), judged with `ip -j addr` and /proc/sys. TUN
// needs the ipip (and ip6_tunnel) module, which not every kernel has: without it those tests
// skip, saying so, and the test that the refusal names the module runs instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

interface Run {
  readonly code: number;
  readonly out: string;
}

function run(file: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) =>
    execFile(file, args, { timeout: 60_000 }, (error, out, err) =>
      resolve({
        code: typeof error?.code === 'number' ? error.code : error ? -1 : 0,
        out: out + err,
      }),
    ),
  );
}

/** A process holding a new network namespace (in a new user namespace unless `plain`). */
class Netns {
  private constructor(
    private readonly holder: ChildProcess,
    private readonly userns: boolean,
  ) {}

  static async open(plain = false): Promise<Netns> {
    const holder = spawn('unshare', [plain ? '-n' : '-rn', 'sleep', 'infinity'], {
      stdio: 'ignore',
    });
    const ours = await readlink('/proc/self/ns/net');
    // unshare execs sleep in place: the pid is the holder's once its namespace differs.
    for (let i = 0; i < 200; i++) {
      const theirs = await readlink(`/proc/${holder.pid}/ns/net`).catch(() => ours);
      if (
        theirs !== ours &&
        (await readlink(`/proc/${holder.pid}/exe`).catch(() => '')).endsWith('sleep')
      )
        return new Netns(holder, !plain);
      if (holder.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    holder.kill();
    throw new Error('unshare did not start a namespace');
  }

  /** A command inside the namespaces. */
  exec(...argv: string[]): Promise<Run> {
    const ns = this.userns ? ['-U', '--preserve-credentials', '-n'] : ['-n'];
    return run('nsenter', ['-t', String(this.holder.pid), ...ns, '--', ...argv]);
  }

  cli(...args: string[]): Promise<Run> {
    return this.exec(process.execPath, main, 'realserver', ...args);
  }

  async addresses(device: string): Promise<string[]> {
    const r = await this.exec('ip', '-j', 'addr', 'show', 'dev', device);
    if (r.code !== 0) throw new Error(r.out);
    const [link] = JSON.parse(r.out) as {
      flags: string[];
      addr_info: { local: string; prefixlen: number; nodad?: boolean }[];
    }[];
    return (link?.addr_info ?? []).map(
      (a) => `${a.local}/${a.prefixlen}${a.nodad ? ' nodad' : ''}`,
    );
  }

  async up(device: string): Promise<boolean> {
    const r = await this.exec('ip', '-j', 'link', 'show', 'dev', device);
    const [link] = JSON.parse(r.out) as { flags: string[] }[];
    return link?.flags.includes('UP') ?? false;
  }

  async sysctl(key: string): Promise<string> {
    return (await this.exec('cat', `/proc/sys/${key.replace(/\./g, '/')}`)).out.trim();
  }

  close(): void {
    this.holder.kill();
  }
}

const unshareWorks = (await run('unshare', ['-rn', 'true'])).code === 0;
const hasIpip =
  unshareWorks && (await run('unshare', ['-rn', 'ip', 'link', 'show', 'tunl0'])).code === 0;
const hasIp6tnl =
  unshareWorks && (await run('unshare', ['-rn', 'ip', 'link', 'show', 'ip6tnl0'])).code === 0;
const noNamespaces = unshareWorks ? false : 'unshare -rn does not work here (user namespaces off?)';
if (!hasIpip) {
  console.error(
    'realserver: TUN apply SKIPPED: this kernel has no ipip module (no tunl0 in a new namespace); the QEMU kernel lane with ipip loaded runs it',
  );
}

const VIPS = '10.0.0.100,2001:db8::100';

t.test(
  'DR: check reports what is missing, apply sets it, check passes, apply again does nothing',
  { skip: noNamespaces },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    const before = await ns.cli('--vip', VIPS, '--mode', 'dr', '--check');
    t.equal(before.code, 1, before.out);
    t.match(before.out, /^MISSING +lo is down/m);
    t.match(before.out, /^MISSING +VIP 10\.0\.0\.100 not on lo/m);
    t.match(before.out, /^MISSING +VIP 2001:db8::100 not on lo/m);
    t.match(before.out, /^WRONG +arp_ignore is 0 on all: /m);
    t.match(before.out, /^WRONG +arp_announce is 0 on all: /m);

    const apply = await ns.cli('--vip', VIPS, '--mode', 'dr', '--apply');
    t.equal(apply.code, 0, apply.out);
    t.match(apply.out, /^applied +net\.ipv4\.conf\.all\.arp_ignore = 1 \(was 0\)$/m);
    t.match(apply.out, /^done: 5 changes applied/m);
    t.ok(await ns.up('lo'), 'lo is up');
    const lo = await ns.addresses('lo');
    t.ok(lo.includes('10.0.0.100/32'), lo.join(', '));
    t.ok(lo.includes('2001:db8::100/128 nodad'), lo.join(', '));
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_ignore'), '1');
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_announce'), '2');

    const after = await ns.cli('--vip', VIPS, '--mode', 'dr', '--check');
    t.equal(after.code, 0, after.out);
    t.match(
      after.out,
      /^all 5 settings in place for a DR real server of 10\.0\.0\.100, 2001:db8::100$/m,
    );

    const again = await ns.cli('--vip', `${VIPS},10.0.0.100`, '--mode', 'dr', '--apply');
    t.equal(again.code, 0, again.out);
    t.match(again.out, /^nothing to do: all 5 settings already in place$/m);
    t.notMatch(again.out, /applied/);
    t.same(await ns.addresses('lo'), lo, 'no address added twice');
  },
);

t.test(
  'DR: a conflict apply will not resolve is refused before anything changes',
  { skip: noNamespaces },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    // The VIP on lo as /24, and on a veth (an interface that answers ARP).
    for (const cmd of [
      ['ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'lo'],
      ['ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
      ['ip', 'addr', 'add', '10.0.0.100/32', 'dev', 'v0'],
    ]) {
      const r = await ns.exec(...cmd);
      if (r.code !== 0 && cmd.includes('veth'))
        return t.pass('the VIP elsewhere', { skip: `no veth here: ${r.out}` });
      t.equal(r.code, 0, r.out);
    }
    const apply = await ns.cli('--vip', '10.0.0.100', '--mode', 'dr', '--apply');
    t.equal(apply.code, 1, apply.out);
    t.match(
      apply.out,
      /^BY HAND +VIP 10\.0\.0\.100 is on lo as \/24, not \/32: .*ip addr del 10\.0\.0\.100\/24 dev lo/m,
    );
    t.match(apply.out, /^BY HAND +VIP 10\.0\.0\.100 is also on v0: v0 answers ARP for it/m);
    t.match(apply.out, /^refused: nothing was changed/m);
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_ignore'), '0', 'arp_ignore untouched');
    t.notOk(await ns.up('lo'), 'lo untouched');
    const check = await ns.cli('--vip', '10.0.0.100', '--mode', 'dr', '--check');
    t.equal(check.code, 1, check.out);
  },
);

t.test(
  'DR: a step failing midway stops there and says what was changed',
  { skip: noNamespaces },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    // The kernel refuses an IPv6 address on lo (EACCES) once IPv6 is off there.
    t.equal((await ns.exec('sysctl', '-w', 'net.ipv6.conf.lo.disable_ipv6=1')).code, 0);
    const apply = await ns.cli('--vip', VIPS, '--mode', 'dr', '--apply');
    t.equal(apply.code, 1, apply.out);
    t.match(apply.out, /^applied +lo up/m);
    t.match(apply.out, /^applied +VIP 10\.0\.0\.100\/32 on lo/m);
    t.match(apply.out, /^FAILED +VIP 2001:db8::100\/128 on lo: .*EACCES.*IPv6 is disabled on lo/m);
    t.match(apply.out, /^not run +net\.ipv4\.conf\.all\.arp_ignore = 1$/m);
    t.match(
      apply.out,
      /^stopped: 2 of 5 changes made and left in place \(lo up; VIP 10\.0\.0\.100\/32 on lo\)$/m,
    );
    t.same(await ns.addresses('lo'), ['127.0.0.1/8', '10.0.0.100/32']);
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_ignore'), '0', 'the steps not run were not run');
  },
);

t.test(
  'apply without privilege refuses and changes nothing',
  { skip: noNamespaces || (process.getuid?.() !== 0 && 'needs root, to drop it') },
  async (t) => {
    // A plain network namespace (no user namespace) entered as nobody: no CAP_NET_ADMIN there.
    const ns = await Netns.open(true);
    t.teardown(() => ns.close());
    const r = await ns.exec(
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      process.execPath,
      main,
      'realserver',
      '--vip',
      '10.0.0.100',
      '--mode',
      'dr',
      '--apply',
    );
    t.equal(r.code, 1, r.out);
    t.match(r.out, /^DENIED +adding addresses and setting links up needs CAP_NET_ADMIN/m);
    t.match(r.out, /^DENIED +\/proc\/sys\/net\/ipv4\/conf\/all\/arp_ignore is not writable/m);
    t.match(r.out, /^refused: nothing was changed$/m);
    t.notOk(await ns.up('lo'));
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_ignore'), '0');
  },
);

/** The heredocs of --print: path -> content. */
function printedFiles(script: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of script.matchAll(/^cat > (\S+) <<'(\w+)'\n([\s\S]*?)\n\2$/gm)) {
    files.set(m[1] ?? '', `${m[3] ?? ''}\n`);
  }
  return files;
}

t.test('--print: its commands, run by sh, satisfy --check', { skip: noNamespaces }, async (t) => {
  const ns = await Netns.open();
  t.teardown(() => ns.close());
  const printed = await ns.cli('--vip', VIPS, '--mode', 'dr');
  t.equal(printed.code, 0);
  const now = printed.out.slice(
    printed.out.indexOf('# Now:'),
    printed.out.indexOf('# At every boot:'),
  );
  const commands = now.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.equal(commands.length, 5, commands.join('; '));
  const sh = await ns.exec('sh', '-ec', commands.join('\n'));
  t.equal(sh.code, 0, sh.out);
  const check = await ns.cli('--vip', VIPS, '--mode', 'dr', '--check');
  t.equal(check.code, 0, check.out);
});

t.test(
  '--print: the boot files (sysctl.d by sysctl -p, interfaces.d by ifup) satisfy --check',
  { skip: noNamespaces },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    const dir = await mkdtemp(join(tmpdir(), 'warden-realserver-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const files = printedFiles((await ns.cli('--vip', VIPS, '--mode', 'dr')).out);
    const sysctl = files.get('/etc/sysctl.d/90-ipvs-warden-realserver.conf');
    const stanzas = files.get('/etc/network/interfaces.d/ipvs-warden-realserver');
    t.ok(sysctl && stanzas, [...files.keys()].join(', '));
    await writeFile(join(dir, 'sysctl.conf'), sysctl ?? '');
    const p = await ns.exec('sysctl', '-p', join(dir, 'sysctl.conf'));
    t.equal(p.code, 0, p.out);
    const ifup = await run('sh', ['-c', 'command -v ifup']);
    if (ifup.code !== 0) {
      console.error(
        'realserver: the ifupdown stanzas are NOT tested: ifup is not installed (apt-get install ifupdown)',
      );
      return t.pass('the ifupdown stanzas', { skip: 'ifup is not installed' });
    }
    // Debian's stock file beside ours, as ifupdown reads them at boot.
    await mkdir(join(dir, 'interfaces.d'));
    await mkdir(join(dir, 'state'));
    await writeFile(join(dir, 'interfaces.d', 'ipvs-warden-realserver'), stanzas ?? '');
    await writeFile(
      join(dir, 'interfaces'),
      `auto lo\niface lo inet loopback\n\nsource ${dir}/interfaces.d/*\n`,
    );
    const up = await ns.exec(
      'ifup',
      '-i',
      join(dir, 'interfaces'),
      `--state-dir=${join(dir, 'state')}`,
      '-a',
    );
    t.equal(up.code, 0, up.out);
    const check = await ns.cli('--vip', VIPS, '--mode', 'dr', '--check');
    t.equal(check.code, 0, check.out);
  },
);

t.test(
  'TUN without the ipip module: check and apply name it, nothing changes',
  { skip: noNamespaces || (hasIpip && 'this kernel has ipip (the TUN test below runs)') },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    for (const action of ['--check', '--apply']) {
      const r = await ns.cli('--vip', '10.0.0.100', '--mode', 'tun', action);
      t.equal(r.code, 1, r.out);
      t.match(
        r.out,
        /^BY HAND +tunl0 does not exist: the ipip module is not loaded \(modprobe ipip/m,
      );
    }
    t.notOk(await ns.up('lo'));
    t.equal(await ns.sysctl('net.ipv4.conf.all.arp_ignore'), '0');
  },
);

t.test(
  'TUN: apply brings tunl0 (and ip6tnl0) up with the VIPs and rp_filter 0',
  {
    skip:
      noNamespaces ||
      (!hasIpip && 'this kernel has no ipip module (no tunl0); run it in the VM lane'),
  },
  async (t) => {
    const ns = await Netns.open();
    t.teardown(() => ns.close());
    const vips = hasIp6tnl ? VIPS : '10.0.0.100';
    // As systemd's 50-default.conf leaves it: strict reverse-path filtering.
    await ns.exec(
      'sysctl',
      '-w',
      'net.ipv4.conf.all.rp_filter=1',
      'net.ipv4.conf.tunl0.rp_filter=1',
    );
    const before = await ns.cli('--vip', vips, '--mode', 'tun', '--check');
    t.equal(before.code, 1, before.out);
    t.match(before.out, /^MISSING +tunl0 is down/m);
    t.match(before.out, /^WRONG +rp_filter is 1 on tunl0/m);
    const apply = await ns.cli('--vip', vips, '--mode', 'tun', '--apply');
    t.equal(apply.code, 0, apply.out);
    t.ok(await ns.up('tunl0'));
    t.ok((await ns.addresses('tunl0')).includes('10.0.0.100/32'));
    t.equal(await ns.sysctl('net.ipv4.conf.tunl0.rp_filter'), '0');
    t.equal(await ns.sysctl('net.ipv4.conf.all.rp_filter'), '0');
    if (hasIp6tnl) {
      t.ok(await ns.up('ip6tnl0'));
      t.ok((await ns.addresses('ip6tnl0')).includes('2001:db8::100/128 nodad'));
    }
    const check = await ns.cli('--vip', vips, '--mode', 'tun', '--check');
    t.equal(check.code, 0, check.out);
    const again = await ns.cli('--vip', vips, '--mode', 'tun', '--apply');
    t.match(again.out, /^nothing to do/m);
  },
);

t.test('usage errors exit 2 with the reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--vip', '10.0.0.1'], /realserver needs --mode dr or --mode tun/],
    [['--vip', '10.0.0.1', '--mode', 'nat'], /--mode must be dr or tun, got "nat"/],
    [['--mode', 'dr'], /--vip ADDRESS is required/],
    [['--vip', '10.0.0.1/32', '--mode', 'dr'], /give the address alone/],
    [
      ['--vip', '10.0.0.1', '--mode', 'dr', '--apply', '--check'],
      /one of --print, --apply, --check/,
    ],
    [['--vip', '10.0.0.1', '--mode', 'dr', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = await run(process.execPath, [main, 'realserver', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.out, message, args.join(' '));
  }
});
