// Run by exec.test.ts as the daemon runs under its systemd unit: an unprivileged user holding
// CAP_NET_ADMIN as an ambient capability (set up with setpriv). Runs caps.sh as a plain child
// (what any child of this process gets) writing to $2, then as an exec check writing to $3,
// then that check as another user, with dynamic weight (a user it may not become); prints the
// two check results as one JSON line.
import { execFileSync } from 'node:child_process';
import { ExecChecker } from '../../checks/exec.js';

const [caps = '', own = '', child = ''] = process.argv.slice(2);
execFileSync(caps, [own]);
const target = { family: 4, address: '10.0.0.5', port: 80 } as const;
const ctx = { signal: new AbortController().signal, timeoutMs: 5000 };
const plain = await new ExecChecker({ command: [caps, child] }).check(target, ctx);
const asOther = await new ExecChecker({
  command: [caps, `${child}.other`],
  user: 'daemon',
  dynamicWeight: true,
}).check(target, ctx);
process.stdout.write(`${JSON.stringify({ plain, asOther })}\n`);
