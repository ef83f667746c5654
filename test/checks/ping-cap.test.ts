// Ping checks start a process each, so they share exec checks' process cap
// (daemon.exec_concurrency): with the cap taken, a ping check waits for it inside its own
// deadline and says so, and starts once a slot is free. A stand-in ping that hangs holds it.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PingChecker } from '../../checks/ping.js';
import { execConcurrency, setExecConcurrency } from '../../src/health/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-ping-cap-'));
writeFileSync(join(dir, 'ping'), '#!/bin/sh\nexec sleep 30\n');
chmodSync(join(dir, 'ping'), 0o755);
const path = process.env.PATH;
process.env.PATH = `${dir}:${path ?? '/usr/bin:/bin'}`;
const cap = execConcurrency();
t.teardown(() => {
  process.env.PATH = path;
  setExecConcurrency(cap);
});

t.test('a ping check waits for the process cap within its deadline', async (t) => {
  setExecConcurrency(1);
  const checker = new PingChecker({});
  t.equal(checker.limiter.concurrency, 1, 'the cap exec checks use');
  const target = { family: 4 as const, address: '127.0.0.1', port: 0 };
  const signal = new AbortController().signal;
  const first = checker.check(target, { signal, timeoutMs: 1500 });
  const second = checker.check(target, { signal, timeoutMs: 500 });
  const late = await second;
  t.notOk(late.healthy);
  t.match(late.message, /waiting for a process slot/);
  const held = await first;
  t.match(held.message, /waiting for an echo reply/, 'the first one ran');
  // Once the first ping is gone its slot is free again.
  const third = await checker.check(target, { signal, timeoutMs: 500 });
  t.match(third.message, /waiting for an echo reply/, 'a later one runs');
});
