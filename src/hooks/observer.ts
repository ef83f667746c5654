// The loop's events as hook runs: a LoopObserver that asks hooksFor() what to run and hands it to
// the runner, which returns at once. The counts a server hook carries ({healthy} {servers}) are
// taken from the loop's records only when that server has a hook to run.
import type { VirtualServiceConfig } from '../config/model.js';
import type {
  LoopObserver,
  QuorumEventCount,
  ReconcileLoop,
  ServerRecord,
} from '../reconcile/loop.js';
import { serverEvent } from '../reconcile/events.js';
import { hooksFor, type HookRun } from './decide.js';

export interface HookSink {
  run(runs: readonly HookRun[]): void;
}

export class HookObserver implements LoopObserver {
  private loop: Pick<ReconcileLoop, 'servers'> | null = null;

  constructor(private readonly runner: HookSink) {}

  /** The loop whose records give a service's counts. */
  attach(loop: Pick<ReconcileLoop, 'servers'>): void {
    this.loop = loop;
  }

  transition(record: ServerRecord, from: ServerRecord['status'], to: ServerRecord['status']): void {
    const h = record.rs.hooks;
    if (to === 'pending' || !(to === 'up' ? h?.serverUp : h?.serverDown)) return;
    this.runner.run(hooksFor(serverEvent(this.loop, record, from, to)));
  }

  serviceMode(
    vs: VirtualServiceConfig,
    mode: string,
    on: boolean,
    healthy: number,
    servers: number,
  ): void {
    if (mode !== 'fallback' || !vs.hooks) return;
    this.runner.run(hooksFor({ kind: 'fallback', vs, on, healthy, servers }));
  }

  quorum(vs: VirtualServiceConfig, up: boolean, count: QuorumEventCount): void {
    if (!vs.hooks) return;
    this.runner.run(hooksFor({ kind: 'quorum', vs, up, ...count }));
  }
}
