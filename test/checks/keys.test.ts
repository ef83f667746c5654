// Merge keys: identical checks of one target run once, so a check's key must change with every
// option that changes what it does, and only with those. The tables are keyed by the option
// types, so an option added later does not compile here until it has a row.
import t, { type Test } from 'tap';
import { DnsChecker } from '../../checks/dns.js';
import { ExecChecker } from '../../checks/exec.js';
import { HttpChecker } from '../../checks/http.js';
import { TcpChecker } from '../../checks/tcp.js';
import type { Checker } from '../../src/health/checker.js';
import type {
  DnsCheckOptions,
  ExecCheckOptions,
  HttpCheckOptions,
  TcpCheckOptions,
  TlsOptions,
} from '../../src/health/options.js';

/** For each option: the base with that one option changed. */
function everyOptionChangesTheKey<O>(
  t: Test,
  make: (options: O) => Checker,
  base: O,
  changed: { readonly [K in keyof Required<O>]: O },
): void {
  const baseKey = make(base).key;
  const keys = new Map<string, string>();
  for (const [option, variant] of Object.entries<O>(changed)) {
    const key = make(variant).key;
    t.not(key, baseKey, `${option} changes the key`);
    const twin = keys.get(key);
    t.notOk(twin, `${option} and ${twin ?? ''} make different keys`);
    keys.set(key, option);
  }
}

const tls: TlsOptions = { servername: 'a.example', verify: true, ca: 'CA', cert: 'C', key: 'K' };
const tlsChanged: { readonly [K in keyof Required<TlsOptions>]: TlsOptions } = {
  servername: { ...tls, servername: 'b.example' },
  verify: { ...tls, verify: false },
  ca: { ...tls, ca: 'CA2' },
  cert: { ...tls, cert: 'C2' },
  key: { ...tls, key: 'K2' },
};

t.test('two checks that differ only in maxReply or maxBody are not merged', async (t) => {
  t.not(new TcpChecker({ maxReply: 100 }).key, new TcpChecker({ maxReply: 200 }).key);
  t.not(new TcpChecker({ maxReply: 100 }).key, new TcpChecker({}).key);
  const body = { bodyMatch: /ok/ };
  t.not(
    new HttpChecker({ ...body, maxBody: 100 }).key,
    new HttpChecker({ ...body, maxBody: 200 }).key,
  );
});

t.test('tcp: every option changes the key', async (t) => {
  const base: TcpCheckOptions = {
    send: 'PING\\r\\n',
    expect: '+PONG',
    tls,
    bindAddress: '127.0.0.1',
    maxReply: 1024,
  };
  everyOptionChangesTheKey(t, (o) => new TcpChecker(o), base, {
    send: { ...base, send: 'PING' },
    expect: { ...base, expect: /\+PONG/ },
    tls: { ...base, tls: tlsChanged.servername },
    bindAddress: { ...base, bindAddress: '127.0.0.2' },
    maxReply: { ...base, maxReply: 2048 },
  });
  everyOptionChangesTheKey(
    t,
    (o: TlsOptions) => new TcpChecker({ ...base, tls: o }),
    tls,
    tlsChanged,
  );
});

t.test('http: every option changes the key', async (t) => {
  const base: HttpCheckOptions = {
    method: 'GET',
    path: '/healthz',
    host: 'www.example',
    headers: { 'x-a': '1' },
    expectStatus: '200',
    bodyMatch: /ok/,
    bodyNotMatch: /error/,
    tls,
    reuse: false,
    bindAddress: '127.0.0.1',
    maxBody: 1024,
  };
  everyOptionChangesTheKey(t, (o) => new HttpChecker(o), base, {
    method: { ...base, method: 'HEAD' },
    path: { ...base, path: '/' },
    host: { ...base, host: 'other.example' },
    headers: { ...base, headers: { 'x-a': '2' } },
    expectStatus: { ...base, expectStatus: '200-299' },
    bodyMatch: { ...base, bodyMatch: /ok/i },
    bodyNotMatch: { ...base, bodyNotMatch: /fail/ },
    tls: { ...base, tls: tlsChanged.verify },
    reuse: { ...base, reuse: true },
    bindAddress: { ...base, bindAddress: '127.0.0.2' },
    maxBody: { ...base, maxBody: 2048 },
  });
  everyOptionChangesTheKey(
    t,
    (o: TlsOptions) => new HttpChecker({ ...base, tls: o }),
    tls,
    tlsChanged,
  );
});

t.test('dns: every option changes the key', async (t) => {
  const base: DnsCheckOptions = {
    name: 'www.example',
    type: 'A',
    transport: 'udp',
    expectRcode: ['NOERROR'],
    expectAnswer: /^10\./,
    recursionDesired: true,
    bindAddress: '127.0.0.1',
  };
  everyOptionChangesTheKey(t, (o) => new DnsChecker(o), base, {
    name: { ...base, name: 'mail.example' },
    type: { ...base, type: 'AAAA' },
    transport: { ...base, transport: 'tcp' },
    expectRcode: { ...base, expectRcode: ['NOERROR', 'NXDOMAIN'] },
    expectAnswer: { ...base, expectAnswer: /^10\.0/ },
    recursionDesired: { ...base, recursionDesired: false },
    bindAddress: { ...base, bindAddress: '127.0.0.2' },
  });
});

t.test('exec: every option changes the key', async (t) => {
  const base: ExecCheckOptions = {
    command: ['/usr/lib/check', '{address}'],
    dynamicWeight: false,
    maxOutput: 4096,
    env: { A: '1' },
  };
  everyOptionChangesTheKey(t, (o) => new ExecChecker(o), base, {
    command: { ...base, command: ['/usr/lib/check', '{port}'] },
    dynamicWeight: { ...base, dynamicWeight: true },
    maxOutput: { ...base, maxOutput: 100 },
    env: { ...base, env: { A: '2' } },
    user: { ...base, user: 'nobody' },
    group: { ...base, group: 'daemon' },
  });
});

t.test('an explicit default is the same check as an omitted one', async (t) => {
  t.equal(new TcpChecker({}).key, new TcpChecker({ maxReply: 64 * 1024 }).key);
  t.equal(
    new TcpChecker({ tls: {} }).key,
    new TcpChecker({ tls: { verify: true } }).key,
    'tls verify defaults to true',
  );
  t.equal(
    new HttpChecker({}).key,
    new HttpChecker({
      method: 'GET',
      path: '/',
      headers: {},
      expectStatus: '200-299',
      reuse: false,
      maxBody: 64 * 1024,
    }).key,
  );
  t.equal(
    new DnsChecker({ name: 'a.example' }).key,
    new DnsChecker({
      name: 'a.example',
      type: 'A',
      transport: 'udp',
      expectRcode: ['noerror'],
      recursionDesired: true,
    }).key,
  );
  t.equal(
    new ExecChecker({ command: ['x'] }).key,
    new ExecChecker({ command: ['x'], dynamicWeight: false, maxOutput: 4096, env: {} }).key,
  );
});

t.test('the order of keys in a mapping does not matter; a regex is not its text', async (t) => {
  t.equal(
    new HttpChecker({ headers: { a: '1', b: '2' } }).key,
    new HttpChecker({ headers: { b: '2', a: '1' } }).key,
  );
  t.equal(
    new ExecChecker({ command: ['x'], env: { A: '1', B: '2' } }).key,
    new ExecChecker({ command: ['x'], env: { B: '2', A: '1' } }).key,
  );
  t.not(new TcpChecker({ expect: '/ok/' }).key, new TcpChecker({ expect: /ok/ }).key);
  t.not(new TcpChecker({ expect: /ok/ }).key, new TcpChecker({ expect: /ok/i }).key);
  t.not(new TcpChecker({}).key, new TcpChecker({ tls: {} }).key, 'TLS on is another check');
});
