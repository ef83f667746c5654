// A probe worker for the pool's tests: the daemon's catalog, plus kinds that show where a probe
// ran (its thread), or that take the worker down (an uncaught throw) or hang it (a loop that
// never yields), or that answer with messages the main thread must drop.
import { parentPort, threadId } from 'node:worker_threads';
import { CATALOG } from '../../checks/index.js';
import type { Checker } from '../../src/health/checker.js';
import { serveProbes } from '../../src/health/pool.js';
import { createWith } from '../../src/health/schema.js';

const port = parentPort;
if (!port) throw new Error('a worker module');

const special = (kind: string, check: Checker['check']): Checker => ({
  kind,
  description: kind,
  key: kind,
  check,
});

/** Checkers of kind `closing` this worker has closed (a forgotten check is closed). */
let closed = 0;

serveProbes(port, (c) => {
  const waitMs = Number(c.options.wait_ms ?? 0);
  switch (c.type) {
    case 'thread':
      return special('thread', async () => {
        await new Promise((r) => setTimeout(r, waitMs));
        return { healthy: true, durationMs: waitMs, message: `thread ${threadId}` };
      });
    case 'busy':
      // Holds the worker's event loop, as a long synchronous turn would.
      return special('busy', async () => {
        const end = performance.now() + waitMs;
        while (performance.now() < end);
        return { healthy: true, durationMs: waitMs, message: 'busy' };
      });
    case 'crash':
      return special('crash', () => {
        setImmediate(() => {
          throw new Error('the crash kind threw');
        });
        return new Promise(() => undefined);
      });
    case 'hang':
      return special('hang', () => {
        for (;;);
      });
    case 'garbage':
      return special('garbage', async () => {
        port.postMessage({ done: [['not', 'a', 'result']] });
        port.postMessage({ done: 'nothing' });
        port.postMessage(null);
        return { healthy: true, durationMs: 0, message: 'after the garbage', weight: 7 };
      });
    case 'closing':
      return {
        ...special('closing', async () => ({ healthy: true, durationMs: 0, message: 'open' })),
        close: async () => {
          closed++;
        },
      };
    case 'closed':
      return special('closed', async () => ({
        healthy: true,
        durationMs: 0,
        message: `${closed} closed`,
      }));
    case 'weight':
      return special('weight', async () => ({
        healthy: true,
        durationMs: 0,
        message: 'w',
        weight: 0,
      }));
    default:
      return createWith(CATALOG, c);
  }
});
