// A checker for loop tests: each server's result is what `healthy` says for its address (up
// when unset), answered at once, without a socket.
import type { Checker } from '../../src/health/checker.js';

export function scriptedChecker(healthy: ReadonlyMap<string, boolean>): () => Checker {
  return () => ({
    kind: 'tcp',
    description: 'scripted',
    key: 'scripted',
    check: (target) =>
      Promise.resolve({
        healthy: healthy.get(target.address) ?? true,
        durationMs: 0,
        message: 'scripted',
      }),
  });
}
