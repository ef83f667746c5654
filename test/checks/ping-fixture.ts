// Run by ping.test.ts inside a network namespace the test made, possibly as the daemon runs
// under its systemd unit (an unprivileged user, its capabilities and system-call filter): runs
// the ping checks given as JSON in argv[2] and prints their results as one JSON line, with the
// ping processes of this one still alive 200 ms after the last check (none, if each was killed).
import { readFileSync, readdirSync } from 'node:fs';
import { PingChecker, type PingCheckOptions } from '../../checks/ping.js';
import type { CheckTarget } from '../../src/health/checker.js';

interface Case {
  readonly target: CheckTarget;
  readonly options?: PingCheckOptions;
  readonly timeoutMs: number;
}

/** Children of this process named ping that are not yet dead (zombies do not count). */
function livePings(): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
    if (m && m[1] === 'ping' && m[2] !== 'Z' && Number(m[3]) === process.pid) n++;
  }
  return n;
}

const cases = JSON.parse(process.argv[2] ?? '[]') as Case[];
const results = [];
for (const c of cases)
  results.push(
    await new PingChecker(c.options ?? {}).check(c.target, {
      signal: new AbortController().signal,
      timeoutMs: c.timeoutMs,
    }),
  );
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(`${JSON.stringify({ results, livePings: livePings() })}\n`);
