// A probe worker that takes 1.5 s to start (as node does in an emulated VM) before it serves
// the daemon's checks: the pool must wait for it, not take it for stuck.
import { parentPort } from 'node:worker_threads';
import { CATALOG } from '../../checks/index.js';
import { serveProbes } from '../../src/health/pool.js';
import { createWith } from '../../src/health/schema.js';

await new Promise((r) => setTimeout(r, 1500));
if (!parentPort) throw new Error('a worker module');
serveProbes(parentPort, (c) => createWith(CATALOG, c));
