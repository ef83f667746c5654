// A throwaway OpenLDAP server (Debian's slapd) for the LDAP probe tests: a slapd.conf in a temp
// dir, a database loaded with slapadd (dc=example,dc=test and uid=monitor with a password), a
// self-signed certificate for ldaps and StartTLS, run in the foreground as root on loopback
// (ldap:// on 127.0.0.1 and ::1, ldaps:// on 127.0.0.1). Debian's own slapd instance is not used.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, selfSigned, until } from './servers.js';
import { connect } from 'node:net';

export const SUFFIX = 'dc=example,dc=test';
export const USER_DN = `uid=monitor,${SUFFIX}`;
export const USER_PASSWORD = 'm0nitor-secret';

export interface Slapd {
  readonly ldapPort: number;
  readonly ldapsPort: number;
  /** What slapd logged (loglevel stats): ACCEPT, BIND, UNBIND, closed, per connection. */
  log(): string;
  stop(): Promise<void>;
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-slapd-'));
  const { key, cert } = selfSigned();
  writeFileSync(join(dir, 'key.pem'), key);
  writeFileSync(join(dir, 'cert.pem'), cert);
  mkdirSync(join(dir, 'db'));
  const conf = join(dir, 'slapd.conf');
  writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `pidfile ${join(dir, 'slapd.pid')}`,
      `argsfile ${join(dir, 'slapd.args')}`,
      `TLSCertificateFile ${join(dir, 'cert.pem')}`,
      `TLSCertificateKeyFile ${join(dir, 'key.pem')}`,
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "cn=admin,${SUFFIX}"`,
      `directory ${join(dir, 'db')}`,
      'maxsize 10485760',
      '',
    ].join('\n'),
  );
  const hash = execFileSync('slappasswd', ['-s', USER_PASSWORD], { encoding: 'utf8' }).trim();
  writeFileSync(
    join(dir, 'data.ldif'),
    [
      `dn: ${SUFFIX}`,
      'objectClass: dcObject',
      'objectClass: organization',
      'dc: example',
      'o: Example',
      '',
      `dn: ${USER_DN}`,
      'objectClass: inetOrgPerson',
      'uid: monitor',
      'cn: Monitor',
      'sn: Monitor',
      'description: health probe account',
      `userPassword: ${hash}`,
      '',
    ].join('\n'),
  );
  execFileSync('slapadd', ['-f', conf, '-l', join(dir, 'data.ldif')], { stdio: 'ignore' });
  const ldapPort = await freePort();
  const ldapsPort = await freePort();
  const urls = `ldap://127.0.0.1:${ldapPort}/ ldap://[::1]:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`;
  const slapd = spawn('slapd', ['-f', conf, '-h', urls, '-d', 'stats'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  slapd.stderr.setEncoding('utf8');
  slapd.stderr.on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => slapd.once('exit', () => resolve()));
  const up = await until(
    () =>
      new Promise<boolean>((resolve) => {
        const s = connect(ldapsPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    10_000,
  );
  if (!up) {
    slapd.kill();
    throw new Error(`slapd did not start: ${log.slice(-2000)}`);
  }
  return {
    ldapPort,
    ldapsPort,
    log: () => log,
    stop: async () => {
      slapd.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
