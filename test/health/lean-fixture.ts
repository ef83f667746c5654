// Runs the TCP and HTTP checks once each against the targets given (argv: a port answering
// HTTP 200 on 127.0.0.1, a port nothing listens on) and prints each verdict as a JSON line,
// with whether the lean handles and the connect probe in C were used: lean.test.ts runs it
// with each (IPVS_WARDEN_SOCKETS unset, `lean`, `node`).
import { HttpChecker } from '../../checks/http.js';
import { TcpChecker } from '../../checks/tcp.js';
import type { CheckTarget } from '../../src/health/checker.js';
import { leanSockets } from '../../src/health/lean.js';
import { nativeProbes } from '../../src/health/native.js';

const [open, closed] = process.argv.slice(2).map(Number);
const at = (port: number | undefined): CheckTarget => ({
  family: 4,
  address: '127.0.0.1',
  port: port ?? 0,
});
const context = { signal: new AbortController().signal, timeoutMs: 2000 };
const cases = [
  ['tcp open', new TcpChecker(), at(open)],
  ['tcp expect', new TcpChecker({ send: 'GET / HTTP/1.0\\r\\n\\r\\n', expect: '200' }), at(open)],
  ['tcp closed', new TcpChecker(), at(closed)],
  ['http open', new HttpChecker({ path: '/' }), at(open)],
  ['http 404', new HttpChecker({ path: '/missing' }), at(open)],
  ['http closed', new HttpChecker({ path: '/' }), at(closed)],
] as const;
console.log(
  JSON.stringify({ lean: leanSockets.on, why: leanSockets.why, native: nativeProbes.on }),
);
for (const [name, checker, target] of cases) {
  const r = await checker.check(target, context);
  console.log(JSON.stringify({ name, healthy: r.healthy, message: r.message }));
}
