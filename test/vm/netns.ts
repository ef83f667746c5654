// The VM lanes that build namespaces share one VM (test:directors runs them one after another),
// so each clears what it is about to create at its start, and what it created at its end.
import { execFileSync } from 'node:child_process';
import { COMMAND_TIMEOUT_MS } from './sh.js';

/** Deletes these namespaces (their veth ends go with them) and these root-namespace links, if present. */
export function clearNetworks(namespaces: readonly string[], links: readonly string[]): void {
  const script = [
    ...namespaces.map((n) => `ip netns del ${n} 2>/dev/null || true`),
    ...links.map((l) => `ip link del ${l} 2>/dev/null || true`),
  ].join('\n');
  execFileSync('sh', ['-c', script], {
    stdio: 'ignore',
    timeout: COMMAND_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
}
