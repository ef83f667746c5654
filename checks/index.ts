// Every check kind the daemon offers, in the order the README and `probe` list them. A check is
// one file in this directory that exports its declaration; it is listed here once (a test fails
// naming a declaration that is missing from this list).
import { catalogOf } from '../src/health/schema.js';
import { dns } from './dns.js';
import { exec } from './exec.js';
import { ftp } from './ftp.js';
import { http, https } from './http.js';
import { imap, imaps } from './imap.js';
import { ldap, ldaps } from './ldap.js';
import { mysql } from './mysql.js';
import { nntp } from './nntp.js';
import { pgsql } from './pgsql.js';
import { ping } from './ping.js';
import { pop3, pop3s } from './pop3.js';
import { radius } from './radius.js';
import { sip } from './sip.js';
import { smtp, smtps, submission } from './smtp.js';
import { tcp } from './tcp.js';
import { udp } from './udp.js';

export const CATALOG = catalogOf([
  tcp,
  http,
  https,
  dns,
  smtp,
  submission,
  smtps,
  pop3,
  pop3s,
  imap,
  imaps,
  ftp,
  nntp,
  ldap,
  ldaps,
  mysql,
  pgsql,
  sip,
  radius,
  udp,
  ping,
  exec,
]);
