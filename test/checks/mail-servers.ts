// Real mail, FTP and news servers for the dialogue checks' tests, each a throwaway instance on
// loopback with its own config in a temp dir, started by the test and stopped in its teardown
// (the Debian services stay as they are): exim4 (SMTP, STARTTLS, SMTPS), dovecot (IMAP, POP3,
// their TLS ports, a passwd-file user), vsftpd (anonymous FTP, AUTH TLS) and jamnntpd (NNTP).
// Why these: exim4 runs as one foreground process from one file (`exim4 -bdf -oX PORTS -C
// FILE`) where a postfix instance needs a config dir, a queue tree and its master; dovecot and
// vsftpd start from one file each; jamnntpd is a 300 KB standalone NNTP daemon where inn2 is a
// news system with its own history, spool and cron.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, copyFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckTarget } from '../../src/health/checker.js';
import { freePort, selfSigned } from './servers.js';

export interface Running {
  readonly dir: string;
  /** Log lines the server wrote to stdout and stderr, for a failing test's diagnosis. */
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Resolves once something accepts connections on 127.0.0.1:port (or the process exits). */
async function accepting(port: number, child: ChildProcess, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > end) throw new Error(`nothing listening on port ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Spawns a server in the foreground and waits for its first port (test/alerts starts its exim with it too). */
export async function run(
  dir: string,
  command: string,
  args: readonly string[],
  port: number,
): Promise<Running> {
  // In a process group of its own: stop() ends the server and the children it forked for
  // connections (exim's write their log lines late, and would make the removed dir again).
  const child = spawn(command, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const group = child.pid;
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const signal = (name: NodeJS.Signals | 0): boolean => {
    try {
      if (group !== undefined) process.kill(-group, name);
      return group !== undefined;
    } catch {
      return false; // ESRCH: nothing left in the group
    }
  };
  const stop = async (): Promise<void> => {
    signal('SIGTERM');
    const end = Date.now() + 5000;
    while (signal(0) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    signal('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await accepting(port, child);
  } catch (error) {
    await stop();
    throw new Error(`${command}: ${(error as Error).message}\n${output}`, { cause: error });
  }
  return { dir, output: () => output, stop };
}

function writeCert(dir: string): { cert: string; key: string } {
  const { cert, key } = selfSigned();
  writeFileSync(join(dir, 'cert.pem'), cert);
  writeFileSync(join(dir, 'key.pem'), key, { mode: 0o600 });
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

const v4 = (port: number): CheckTarget => ({ family: 4, address: '127.0.0.1', port });
const v6 = (port: number): CheckTarget => ({ family: 6, address: '::1', port });

export interface Exim extends Running {
  readonly smtp: CheckTarget;
  readonly smtp6: CheckTarget;
  readonly smtps: CheckTarget;
}

/**
 * exim4 on 127.0.0.1 and ::1: SMTP with STARTTLS offered to 127.0.0.1 only (so ::1 is a server
 * that does not offer it), SMTPS on a second port; EHLO from `refused.test` is refused (550).
 */
export async function startExim(): Promise<Exim> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-exim-'));
  const [smtp, smtps] = [await freePort(), await freePort()];
  const tls = writeCert(dir);
  mkdirSync(join(dir, 'spool'));
  const conf = join(dir, 'exim.conf');
  writeFileSync(
    conf,
    [
      'primary_hostname = warden.test',
      `spool_directory = ${dir}/spool`,
      `log_file_path = ${dir}/%slog`,
      `pid_file_path = ${dir}/exim.pid`,
      'exim_user = Debian-exim',
      'exim_group = Debian-exim',
      'keep_environment =',
      `daemon_smtp_ports = ${smtp} : ${smtps}`,
      `tls_on_connect_ports = ${smtps}`,
      'local_interfaces = <; 127.0.0.1 ; ::1',
      `tls_certificate = ${tls.cert}`,
      `tls_privatekey = ${tls.key}`,
      'tls_advertise_hosts = <; 127.0.0.1',
      'host_lookup =',
      'rfc1413_hosts =',
      'acl_smtp_helo = acl_check_helo',
      'acl_smtp_rcpt = acl_check_rcpt',
      'begin acl',
      'acl_check_helo:',
      '  deny condition = ${if eq{$sender_helo_name}{refused.test}}',
      '  accept',
      'acl_check_rcpt:',
      '  deny',
      '',
    ].join('\n'),
  );
  // exim opens its logs and reads the key as its own user; it trusts a -C file only from root.
  execFileSync('chown', ['-R', 'Debian-exim:Debian-exim', dir]);
  execFileSync('chown', ['root:root', conf]);
  chmodSync(dir, 0o755);
  const r = await run(dir, 'exim4', ['-bdf', '-oX', `${smtp}:${smtps}`, '-C', conf], smtp);
  return { ...r, smtp: v4(smtp), smtp6: v6(smtp), smtps: v4(smtps) };
}

export interface Dovecot extends Running {
  readonly imap: CheckTarget;
  readonly imap6: CheckTarget;
  readonly imaps: CheckTarget;
  readonly pop3: CheckTarget;
  readonly pop3s: CheckTarget;
}

/** The user and password in dovecot's passwd-file. A password with a quote and a backslash. */
export const MAIL_USER = 'warden';
export const MAIL_PASSWORD = 'se"cr\\et pass';

/** dovecot with IMAP, IMAPS, POP3 and POP3S on loopback; one user (MAIL_USER) in a passwd-file. */
export async function startDovecot(): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-dove-'));
  chmodSync(dir, 0o755); // dovecot's auth process reads the passwd-file as its own user
  const [imap, imaps, pop3, pop3s] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const tls = writeCert(dir);
  for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
  execFileSync('chown', ['dovenull:dovenull', join(dir, 'mail')]);
  writeFileSync(join(dir, 'users'), `${MAIL_USER}:{PLAIN}${MAIL_PASSWORD}\n`);
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = warden-test-${imap}
log_path = /dev/stderr
protocols = imap pop3
listen = 127.0.0.1, ::1
ssl = yes
ssl_cert = <${tls.cert}
ssl_key = <${tls.key}
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:${dir}/mail/%u
passdb {
  driver = passwd-file
  args = ${dir}/users
}
userdb {
  driver = static
  args = uid=dovenull gid=dovenull home=${dir}/mail/%u
}
service imap-login {
  inet_listener imap {
    port = ${imap}
  }
  inet_listener imaps {
    port = ${imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${pop3}
  }
  inet_listener pop3s {
    port = ${pop3s}
    ssl = yes
  }
}
`,
  );
  const r = await run(dir, 'dovecot', ['-F', '-c', conf], imap);
  return {
    ...r,
    imap: v4(imap),
    imap6: v6(imap),
    imaps: v4(imaps),
    pop3: v4(pop3),
    pop3s: v4(pop3s),
  };
}

export interface Vsftpd extends Running {
  readonly ftp: CheckTarget;
}

/** vsftpd, anonymous only (any other user is refused with 530), AUTH TLS offered. */
export async function startVsftpd(): Promise<Vsftpd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ftp-'));
  const port = await freePort();
  const tls = writeCert(dir);
  for (const d of ['root', 'empty']) mkdirSync(join(dir, d), { mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'root', 'hello.txt'), 'hello from vsftpd\n');
  const conf = join(dir, 'vsftpd.conf');
  writeFileSync(
    conf,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'background=NO',
      'anonymous_enable=YES',
      'local_enable=NO',
      `anon_root=${dir}/root`,
      `secure_chroot_dir=${dir}/empty`,
      'xferlog_enable=NO',
      'ssl_enable=YES',
      'allow_anon_ssl=YES',
      'force_anon_logins_ssl=NO',
      'force_anon_data_ssl=NO',
      `rsa_cert_file=${tls.cert}`,
      `rsa_private_key_file=${tls.key}`,
      // Containers often refuse the syscalls vsftpd's seccomp filter installs.
      'seccomp_sandbox=NO',
      '',
    ].join('\n'),
  );
  const r = await run(dir, 'vsftpd', [conf], port);
  return { ...r, ftp: v4(port) };
}

export interface Jamnntpd extends Running {
  readonly nntp: CheckTarget;
}

/**
 * jamnntpd with one (empty) group. It listens on every address (it has no option for one);
 * its allow file admits 127.0.0.1 only, or, with `deny`, nobody (its greeting is then 502).
 */
export async function startJamnntpd(deny = false): Promise<Jamnntpd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-nntp-'));
  const port = await freePort();
  writeFileSync(join(dir, 'groups'), `warden.test A 2:1/1 ${dir}/area\n`);
  writeFileSync(join(dir, 'allow'), deny ? '192.0.2.1 * -\n' : '127.0.0.1 * -\n');
  writeFileSync(join(dir, 'users'), '');
  copyFileSync('/etc/jamnntpd.xlat', join(dir, 'xlat'));
  const r = await run(
    dir,
    'jamnntpd',
    [
      '-p',
      String(port),
      '-g',
      join(dir, 'groups'),
      '-a',
      join(dir, 'allow'),
      '-u',
      join(dir, 'users'),
      '-x',
      join(dir, 'xlat'),
      '-l',
      join(dir, 'log'),
      '-noecholog',
    ],
    port,
  );
  return { ...r, nntp: v4(port) };
}
