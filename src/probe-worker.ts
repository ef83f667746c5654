// A probe worker's module (daemon.check_workers): the checks of checks/, served to the main
// thread's ProbePool (src/health/pool.ts). It loads the catalog alone, not the config.
import { parentPort } from 'node:worker_threads';
import { CATALOG } from '../checks/index.js';
import { serveProbes } from './health/pool.js';
import { createWith } from './health/schema.js';

if (!parentPort) throw new Error('probe-worker.js runs as a worker thread of the daemon');
serveProbes(parentPort, (check) => createWith(CATALOG, check));
