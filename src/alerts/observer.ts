// The loop's events as alerts: a LoopObserver that asks ./decide.ts what to send and hands it to
// the deliverer, which returns at once; a timer on the injected clock wakes it when a reminder
// (repeat) is due. run.ts tells it the daemon's state (starting, running, reloading, stopping:
// what `on` filters mail by) and each reloaded config.
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { DaemonPhase } from '../config/alerts.js';
import type { Config, VirtualServiceConfig } from '../config/model.js';
import { serverEvent } from '../reconcile/events.js';
import type {
  LoopObserver,
  QuorumEventCount,
  ReconcileLoop,
  ServerRecord,
} from '../reconcile/loop.js';
import {
  NO_ALERTS,
  nextDue,
  onConfig,
  onEvent,
  onTime,
  type AlertContext,
  type AlertEvent,
  type AlertState,
  type Decided,
  type Delivery,
} from './decide.js';

export interface AlertSink {
  send(deliveries: readonly Delivery[]): void;
  /** Told each config put in force, before any alert of it is sent. */
  prepare?(config: Config): void;
}

export class AlertObserver implements LoopObserver {
  private loop: Pick<ReconcileLoop, 'servers'> | null = null;
  private state: AlertState = NO_ALERTS;
  private phase: DaemonPhase = 'starting';
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private config: Config,
    private readonly sink: AlertSink,
    private readonly clock: Clock = systemClock,
  ) {
    sink.prepare?.(config);
  }

  /** The loop whose records give a service's counts. */
  attach(loop: Pick<ReconcileLoop, 'servers'>): void {
    this.loop = loop;
  }

  /** The daemon's state from now on (a reminder held back by `on` goes at its next turn). */
  setPhase(phase: DaemonPhase): void {
    this.phase = phase;
  }

  /** The config a reload put in force (after the loop took it). */
  reload(config: Config): void {
    this.config = config;
    this.sink.prepare?.(config);
    this.state = onConfig(this.state, config);
    this.schedule();
  }

  /** No more alerts are decided; the timer is cancelled. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  transition(record: ServerRecord, from: ServerRecord['status'], to: ServerRecord['status']): void {
    if (to === 'pending' || !this.wanted(record.vs)) return;
    this.decide(serverEvent(this.loop, record, from, to));
  }

  serviceMode(
    vs: VirtualServiceConfig,
    mode: string,
    on: boolean,
    healthy: number,
    servers: number,
  ): void {
    if (mode !== 'fallback' || !this.wanted(vs)) return;
    this.decide({ kind: 'fallback', vs, on, healthy, servers });
  }

  quorum(vs: VirtualServiceConfig, up: boolean, count: QuorumEventCount): void {
    if (!vs.quorum || !this.wanted(vs)) return;
    this.decide({ kind: 'quorum', vs, up, ...count });
  }

  /** Any target at all: most configs have none, and then nothing is counted or kept. */
  private wanted(vs: VirtualServiceConfig): boolean {
    return (
      !this.stopped && (this.config.alerts !== undefined || vs.alerts?.email?.to !== undefined)
    );
  }

  private ctx(): AlertContext {
    // Wall time: alerts carry it (startsAt); a clock step moves a reminder, nothing more.
    return { now: this.clock.now(), phase: this.phase, alerts: this.config.alerts };
  }

  private decide(event: AlertEvent): void {
    this.apply(onEvent(this.state, event, this.ctx()));
  }

  private apply(d: Decided): void {
    this.state = d.state;
    if (d.deliveries.length > 0) this.sink.send(d.deliveries);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const due = nextDue(this.state);
    if (due === null) {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= due) return;
    this.timer?.cancel();
    this.timerAt = due;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.apply(onTime(this.state, this.ctx()));
      },
      Math.max(0, due - this.clock.now()),
      { unref: true },
    );
  }
}
