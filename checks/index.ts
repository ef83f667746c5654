// Every check kind the daemon offers, in the order the README and `probe` list them. A check is
// one file in this directory that exports its declaration; it is listed here once (a test fails
// naming a file that declares a check and is missing from this list).
import { catalogOf } from '../src/health/schema.js';
import { dns } from './dns.js';
import { exec } from './exec.js';
import { http, https } from './http.js';
import { tcp } from './tcp.js';

export const CATALOG = catalogOf([tcp, http, https, dns, exec]);
