// Prometheus metrics (prom-client, an explicit registry). Per real server with node_exporter's
// IPVS labels, so series join with node_ipvs_backend_* in Grafana; per check; per virtual service;
// and the reconciler's own. Kernel numbers are read on scrape, in one table dump per scrape.
// Series follow the config: those of a check or server a reload removed go at the next scrape.
import { createHash } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ROLES } from '../director/role.js';
import type { ProbePoolStats } from '../health/pool.js';
import type { CheckEvent } from '../health/scheduler.js';
import { hostPort } from '../health/probe.js';
import type { IpvsError } from '../ipvs/errors.js';
import { ipvsLabelValues, type IpvsLabel } from '../ipvs/labels.js';
import type { DestinationState, Operation, Stats, TableEntry } from '../ipvs/model.js';
import { destinationsByTarget, targetId } from '../ipvs/spec.js';
import { desiredWeight, type DesiredDestination } from '../reconcile/desired.js';
import type { LoopObserver, ReconcileLoop, ServerRecord } from '../reconcile/loop.js';
import { StateFamily, labelSet, type FamilyJson, type LabelSet, type Sample } from './family.js';
import { HistogramFamily, type HistogramJson, type HistogramSeries } from './histogram.js';

export interface MetricsOptions {
  /** Per-real-server series (off: only per-service and reconciler series). */
  readonly perServer: boolean;
  /** Which of node_exporter's labels the per-server series carry (default all). */
  readonly labels: readonly IpvsLabel[];
  /**
   * How often the event-loop lag monitor takes a sample (default 100 ms). prom-client's 10 ms
   * woke an idle daemon about 200 times a second; how late each check started is measured
   * anyway (check_lateness), so the lag metrics only need to show the long stalls.
   */
  readonly lagResolutionMs?: number;
}

/**
 * A check's series id: 12 hex digits of the SHA-256 of its scheduler run id. The run id tells
 * checks apart (options, target) but is long; the description ("HTTP GET /healthz") does not.
 */
export function checkId(runId: string): string {
  return createHash('sha256').update(runId).digest('hex').slice(0, 12);
}

/** Every kind of kernel operation (the compiler holds this to Operation['op']). */
const OPERATION_KINDS = Object.keys({
  'add-service': 0,
  'update-service': 0,
  'delete-service': 0,
  'add-destination': 0,
  'update-destination': 0,
  'delete-destination': 0,
} satisfies Record<Operation['op'], 0>);
const SERVICE_LABELS = ['service', 'local_address', 'local_port', 'proto', 'local_mark'] as const;
const STATES = ['up', 'down', 'pending'] as const;
/** A check's outcomes; `unknown`: a local result (the probe could not run on this director). */
const OUTCOMES = ['healthy', 'unhealthy', 'unknown'] as const;
type Outcome = (typeof OUTCOMES)[number];
const OUTCOME_LABELS = OUTCOMES.map((outcome) => ({ outcome, set: labelSet({ outcome }) }));
const STATE_LABELS = STATES.map((state) => labelSet({ state }));
const CONNECTION_LABELS = {
  active: labelSet({ state: 'active' }),
  inactive: labelSet({ state: 'inactive' }),
};
const TO_LABELS = { up: labelSet({ to: 'up' }), down: labelSet({ to: 'down' }) };
/** A real server's transitions (a service's, without per-server series) by the state entered. */
interface TransitionCounts {
  readonly labels: LabelSet;
  up: number;
  down: number;
}
/**
 * A check's figures as plain numbers, counted on each result and written into its series when
 * scraped: a labelled prom-client update hashes and validates the labels on every call, which at
 * 10,000 checks a second cost more than the checks' own bookkeeping.
 */
interface CheckFigures {
  /** Its series' labels, with their text made once. */
  readonly labels: LabelSet;
  readonly results: Record<Outcome, number>;
  failures: number;
  /** The last check's duration, in seconds. */
  seconds: number;
}
/** The per-kind histograms' series of one kind, resolved once. */
interface KindSeries {
  readonly duration: HistogramSeries;
  readonly lateness: HistogramSeries;
}
/** A family of the page as JSON: prom-client's, or one written here. */
type PageJson =
  Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number] | FamilyJson | HistogramJson;
/** A real server as one scrape sees it. */
interface ServerRow {
  readonly r: ServerRecord;
  /** Kept with the record from scrape to scrape. */
  readonly labels: LabelSet;
  readonly want: DesiredDestination | undefined;
  readonly kernel: DestinationState | undefined;
}

/**
 * Whether series kept by run or server may have outlived what they count, so a scrape should
 * compare them with the config: after a reload swapped the server records, or when a series was
 * added since the last look (a result of a run the reload removed can land after it). Otherwise
 * not: the comparison walked every server, a few ms a scrape at 10,000.
 */
export class Staleness {
  private seen: ReadonlyMap<string, ServerRecord> | null = null;
  private fresh = false;

  /** A series was added. */
  added(): void {
    this.fresh = true;
  }

  /** Whether to prune against `records` now; once it says so, not again until something changes. */
  due(records: ReadonlyMap<string, ServerRecord>): boolean {
    if (records === this.seen && !this.fresh) return false;
    this.seen = records;
    this.fresh = false;
    return true;
  }
}

export class WardenMetrics implements LoopObserver {
  readonly registry = new Registry();
  private loop: ReconcileLoop | null = null;
  private pool: { stats(): ProbePoolStats } | null = null;
  private scrape: Promise<ServerRow[]> | null = null;
  private readonly checkDuration: HistogramFamily;
  private readonly checkLateness: HistogramFamily;
  private readonly tickDuration: Histogram;
  private readonly operations: Counter;
  private readonly driftRepairs: Counter;
  private readonly hookRuns: Counter;
  private readonly alerts: Counter;
  private readonly reloads: Counter;
  private readonly lastReload: Gauge;
  /** Each check's figures by its run id; pruned when the run goes. */
  private readonly checkSeries = new Map<string, CheckFigures>();
  private readonly kinds = new Map<string, KindSeries>();
  /**
   * Metrics rebuilt from state by each scrape (their collect() resets them first). They are
   * dropped after it: at 10,000 servers their series and label hashes held about 50 MiB between
   * scrapes for nothing.
   */
  private readonly rebuilt: (Gauge | Counter)[] = [];
  /** Renders run one at a time, since each drops the rebuilt series when it ends. */
  private rendering: Promise<void> = Promise.resolve();
  /** The families counted here, written by render() after the registry's. */
  private readonly families: (HistogramFamily | StateFamily)[] = [];
  /** Each real server's labels and their text, made at its first scrape. */
  private readonly serverLabelSets = new WeakMap<ServerRecord, LabelSet>();
  /** Whether this scrape has dropped the series of removed checks already. */
  private checksPruned = false;
  private readonly checksStale = new Staleness();
  /**
   * Transition counts by their labels' JSON (without `to`); pruned when the server goes. Counted
   * and written here, not by a prom-client Counter: at 10,000 servers formatting its series took
   * about 40 ms of each scrape.
   */
  private readonly transitionSeries = new Map<string, TransitionCounts>();
  private readonly transitionsStale = new Staleness();

  constructor(
    private readonly options: MetricsOptions,
    private readonly readTable: () => Promise<TableEntry[]>,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'ipvs_warden_',
      eventLoopMonitoringPrecision: Math.max(1, Math.round(options.lagResolutionMs ?? 100)),
    });
    // prom-client calls collect() with `this` bound to the metric; the metrics object is `self`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;

    // Per check: a merged check (several services, one target) is one series. check_id tells
    // apart checks that share a description; check (the description) is for humans. Series of
    // a check that a reload removed are dropped on the next scrape (whichever metric is read).
    const checkFamily = (
      type: StateFamily['type'],
      name: string,
      help: string,
      samples: (f: CheckFigures) => Iterable<Sample>,
    ): void => {
      this.families.push(
        new StateFamily(type, name, help, function* () {
          self.pruneChecks();
          for (const f of self.checkSeries.values()) yield* samples(f);
        }),
      );
    };
    checkFamily(
      'counter',
      'ipvs_warden_check_results_total',
      'Check results by outcome (healthy, unhealthy; unknown: the probe could not run on this director).',
      (f) =>
        OUTCOME_LABELS.map((o) => ({
          series: f.labels,
          extra: o.set,
          value: f.results[o.outcome],
        })),
    );
    // Per kind, not per check: a histogram per check was 14 series a server (140,000 at 10,000
    // servers, and a second of CPU a scrape); the last duration per check is a gauge (HAProxy's
    // check_duration is one too).
    this.checkDuration = new HistogramFamily(
      'ipvs_warden_check_duration_seconds',
      'How long checks took, connect to verdict, by kind.',
      'kind',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.families.push(this.checkDuration);
    checkFamily(
      'gauge',
      'ipvs_warden_check_last_duration_seconds',
      "How long a check's last run took, connect to verdict.",
      (f) => [{ series: f.labels, value: f.seconds }],
    );
    this.checkLateness = new HistogramFamily(
      'ipvs_warden_check_lateness_seconds',
      'How late a check started against its schedule (event-loop lag, waiting for the concurrency cap, the way to a probe worker).',
      'kind',
      [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.families.push(this.checkLateness);
    checkFamily(
      'gauge',
      'ipvs_warden_check_consecutive_failures',
      'Consecutive failed results of a check (0 after a success).',
      (f) => [{ series: f.labels, value: f.failures }],
    );

    // Both states from a series' first transition, so increase() sees the first of each.
    const transitionFamily = (help: string): void => {
      this.families.push(
        new StateFamily('counter', 'ipvs_warden_server_transitions_total', help, function* () {
          self.pruneTransitions();
          for (const c of self.transitionSeries.values()) {
            yield { series: c.labels, extra: TO_LABELS.up, value: c.up };
            yield { series: c.labels, extra: TO_LABELS.down, value: c.down };
          }
        }),
      );
    };

    if (options.perServer) {
      /** A gauge or counter with one series per real server, read from the scrape's rows. */
      const perServer = (
        type: StateFamily['type'],
        name: string,
        help: string,
        series: (row: ServerRow) => readonly (readonly [LabelSet | undefined, number])[],
      ): void => {
        this.families.push(
          new StateFamily(type, name, help, async () => {
            const rows = await self.rows();
            return (function* () {
              for (const row of rows)
                for (const [extra, value] of series(row))
                  yield { series: row.labels, extra, value };
            })();
          }),
        );
      };
      const one = (value: number | undefined): (readonly [undefined, number])[] =>
        value === undefined ? [] : [[undefined, value]];
      perServer(
        'gauge',
        'ipvs_warden_server_state',
        'Health state of a real server: 1 for its current state (up, down, pending), 0 otherwise.',
        (row) => STATE_LABELS.map((e) => [e, row.r.status === e.labels.state ? 1 : 0] as const),
      );
      perServer(
        'gauge',
        'ipvs_warden_server_maintenance',
        '1 while a real server is in maintenance (config state or flag file).',
        (row) => one(row.want?.maintenance ? 1 : 0),
      );
      perServer(
        'gauge',
        'ipvs_warden_server_desired_weight',
        'The weight the daemon wants for a real server (0 when it wants it out).',
        (row) => one((row.want && desiredWeight(row.want.want)) ?? 0),
      );
      perServer(
        'gauge',
        'ipvs_warden_server_last_transition_timestamp_seconds',
        'When a real server last changed state (Unix time; 0: not since start).',
        (row) => one((row.r.lastTransition ?? 0) / 1000),
      );
      transitionFamily('Health transitions of a real server, by the state entered.');
      // Kernel numbers: only for servers in the table, all from the scrape's one dump.
      perServer(
        'gauge',
        'ipvs_warden_server_kernel_weight',
        'The weight the kernel table holds for a real server.',
        (row) => one(row.kernel?.weight),
      );
      perServer(
        'gauge',
        'ipvs_warden_server_connections',
        'Connections of a real server in the kernel table, by state (active, inactive).',
        (row) =>
          row.kernel
            ? [
                [CONNECTION_LABELS.active, row.kernel.activeConns],
                [CONNECTION_LABELS.inactive, row.kernel.inactiveConns],
              ]
            : [],
      );
      const counters: [string, string, (s: Stats) => bigint][] = [
        ['connections_total', 'Connections scheduled to a real server', (x) => x.conns],
        ['incoming_packets_total', 'Packets to a real server', (x) => x.inPkts],
        ['outgoing_packets_total', 'Packets from a real server', (x) => x.outPkts],
        ['incoming_bytes_total', 'Bytes to a real server', (x) => x.inBytes],
        ['outgoing_bytes_total', 'Bytes from a real server', (x) => x.outBytes],
      ];
      for (const [suffix, help, pick] of counters) {
        perServer('counter', `ipvs_warden_server_${suffix}`, `${help} (kernel counter).`, (row) =>
          one(row.kernel && Number(pick(row.kernel.stats))),
        );
      }
    } else transitionFamily('Health transitions, by the state entered.');

    // Per virtual service.
    const serviceGauge = (
      name: string,
      help: string,
      /** Undefined: no sample for that service now. */
      value: (
        s: NonNullable<ReturnType<ReconcileLoop['desired']>>['services'][number],
      ) => number | undefined,
    ): void => {
      self.rebuilt.push(
        new Gauge({
          name,
          help,
          labelNames: SERVICE_LABELS,
          registers,
          collect() {
            this.reset();
            for (const s of self.loop?.desired()?.services ?? []) {
              if (s.retired) continue;
              const v = value(s);
              if (v === undefined) continue;
              const { local_address, local_port, proto, local_mark } = ipvsLabelValues(s.spec.key);
              this.set({ service: s.name, local_address, local_port, proto, local_mark }, v);
            }
          },
        }),
      );
    };
    serviceGauge(
      'ipvs_warden_service_healthy_servers',
      'Real servers of a virtual service that are up.',
      (s) => s.healthy,
    );
    serviceGauge(
      'ipvs_warden_service_servers',
      'Real servers of a virtual service (not in maintenance).',
      (s) => s.eligible,
    );
    serviceGauge(
      'ipvs_warden_service_desired_weight',
      'Sum of the weights the daemon wants for a virtual service.',
      (s) => s.destinations.reduce((n, d) => n + (desiredWeight(d.want) ?? 0), 0),
    );
    serviceGauge(
      'ipvs_warden_service_fallback_active',
      '1 while the fallback (sorry) server is in.',
      (s) => (s.fallbackActive ? 1 : 0),
    );
    serviceGauge(
      'ipvs_warden_service_healthy_weight',
      'Sum of the configured weights of the healthy real servers of a virtual service (what its quorum counts).',
      (s) => s.healthyWeight,
    );
    serviceGauge(
      'ipvs_warden_service_quorum',
      '1 while a virtual service has quorum (its healthy weight, or any healthy server when no quorum is configured); 0 once lost; absent before its servers have settled.',
      (s) => (s.quorum === undefined ? undefined : s.quorum ? 1 : 0),
    );
    serviceGauge(
      'ipvs_warden_service_panic_active',
      '1 while panic mode keeps every server in.',
      (s) => (s.panic ? 1 : 0),
    );
    serviceGauge(
      'ipvs_warden_service_hold_active',
      '1 while the table of a virtual service is held: too many of its servers cannot be checked from this director (local errors).',
      (s) => (s.held ? 1 : 0),
    );

    // The reconciler.
    this.tickDuration = new Histogram({
      name: 'ipvs_warden_reconcile_duration_seconds',
      help: 'How long a reconcile tick took: table="read" read the kernel table, then planned and applied; table="known" (health transitions alone) planned against the table as the last read left it plus its own operations since.',
      labelNames: ['result', 'table'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    new Gauge({
      name: 'ipvs_warden_reconcile_last_success_timestamp_seconds',
      help: 'When a tick last brought the table in step without a failure (Unix time; 0: never).',
      registers,
      collect() {
        this.set((self.loop?.stats.lastSync ?? 0) / 1000);
      },
    });
    this.operations = new Counter({
      name: 'ipvs_warden_reconcile_operations_total',
      help: 'Kernel operations by kind and result (applied, failed) and errno for failures.',
      labelNames: ['op', 'result', 'errno'],
      registers,
    });
    this.driftRepairs = new Counter({
      name: 'ipvs_warden_drift_repairs_total',
      help: 'Changes to the owned part of the table made by someone else, repaired.',
      registers,
    });
    this.hookRuns = new Counter({
      name: 'ipvs_warden_hook_runs_total',
      help: 'Hook commands run, by hook (server_up, server_down, fallback_on, fallback_off) and result (success, failure, timeout, error, dropped).',
      labelNames: ['hook', 'result'],
      registers,
    });
    this.alerts = new Counter({
      name: 'ipvs_warden_alerts_total',
      help: "Alerts sent, by target (email, or a webhook's name) and result (sent, failed, timeout, dropped).",
      labelNames: ['target', 'result'],
      registers,
    });
    this.reloads = new Counter({
      name: 'ipvs_warden_config_reloads_total',
      help: 'Config reloads by result (success, failure).',
      labelNames: ['result'],
      registers,
    });
    this.lastReload = new Gauge({
      name: 'ipvs_warden_config_last_reload_success_timestamp_seconds',
      help: 'When the config was last loaded successfully (Unix time).',
      registers,
    });
    new Gauge({
      name: 'ipvs_warden_sync_daemon_running',
      help: 'Whether an IPVS connection-sync daemon of the state (master, backup) runs, as the last tick read.',
      labelNames: ['state'],
      registers,
      collect() {
        const running = self.loop?.syncStatus().running ?? [];
        for (const state of ['master', 'backup'])
          this.set({ state }, running.some((d) => d.state === state) ? 1 : 0);
      },
    });
    self.rebuilt.push(
      new Gauge({
        name: 'ipvs_warden_vip_announced',
        help: "1 while a VIP's host route is in daemon.announce.table (the BGP daemon announces it), 0 while withdrawn; per VIP of a service with announce: true.",
        labelNames: ['vip'],
        registers,
        collect() {
          this.reset();
          for (const v of self.loop?.announceStatus() ?? [])
            this.set({ vip: v.vip }, v.announced ? 1 : 0);
        },
      }),
    );
    new Gauge({
      name: 'ipvs_warden_director_drained',
      help: '1 while the director is drained (ipvs-warden director drain): every VIP withdrawn.',
      registers,
      collect() {
        this.set(self.loop?.directorDrained() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ipvs_warden_director_role',
      help: "The director's role from STATE_DIR/role (ipvs-warden role, keepalived's notify): 1 for the current one, all 0 without a role file.",
      labelNames: ['role'],
      registers,
      collect() {
        const role = self.loop?.syncStatus().role ?? null;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ipvs_warden_check_workers_running',
      help: 'Probe worker threads running (daemon.check_workers; 0 without any: probes on the main thread).',
      registers,
      collect() {
        this.set(self.pool?.stats().running ?? 0);
      },
    });
    new Counter({
      name: 'ipvs_warden_check_worker_restarts_total',
      help: 'Probe workers that ended unasked or stopped answering, and were started again.',
      registers,
      collect() {
        this.reset();
        this.inc(self.pool?.stats().restarts ?? 0);
      },
    });
    new Counter({
      name: 'ipvs_warden_check_worker_checks_total',
      help: 'Checks handed to each probe worker (daemon.check_workers): how the probes are spread.',
      labelNames: ['worker'],
      registers,
      collect() {
        this.reset();
        (self.pool?.stats().handed ?? []).forEach((n, i) => this.inc({ worker: String(i) }, n));
      },
    });
    new Gauge({
      name: 'ipvs_warden_check_concurrency_limit',
      help: 'Checks allowed to run at once now: daemon.check_concurrency, or lower (down to check_concurrency_min) while the event loop is late.',
      registers,
      collect() {
        const stats = self.loop?.checkStats();
        if (stats) this.set(stats.limit);
      },
    });
    new Gauge({
      name: 'ipvs_warden_checks_in_flight',
      help: 'Checks in flight now, those waiting on slow servers included: at most daemon.check_concurrency holding a slot, the rest under daemon.check_in_flight_max (exec and ping under exec_concurrency).',
      registers,
      collect() {
        this.set(self.loop?.checkStats().running ?? 0);
      },
    });
    new Gauge({
      name: 'ipvs_warden_checks_in_flight_limit',
      help: 'Checks allowed in flight at once now: from daemon.check_concurrency_min, doubled up to check_concurrency until the first cut, else grown by an eighth while quick answers fill it (up to check_in_flight_max, or half the open-file limit) and cut (down to check_concurrency_min) while the median answer of healthy servers takes over twice its least of the last 30 s and over a quarter of the timeout: they queue at something the servers share (README, Overload).',
      registers,
      collect() {
        const stats = self.loop?.checkStats();
        if (stats) this.set(stats.inFlightLimit);
      },
    });
    new Gauge({
      name: 'ipvs_warden_checks_waiting',
      help: "Checks due and waiting for a slot under the concurrency cap (or a check type's own cap): late already.",
      registers,
      collect() {
        this.set(self.loop?.checkStats().waiting ?? 0);
      },
    });
    new Gauge({
      name: 'ipvs_warden_ready',
      help: '1 once the first reconcile has completed.',
      registers,
      collect() {
        this.set(self.loop?.stats.lastTick != null ? 1 : 0);
      },
    });
    for (const result of ['success', 'failure']) this.reloads.inc({ result }, 0);
    // Every kind of operation has its applied series from the start: one first seen later
    // (the first delete-service after a reload) would add a series, and increase() would miss
    // its first count.
    for (const op of OPERATION_KINDS) this.operations.inc({ op, result: 'applied', errno: '' }, 0);
    this.operations.inc({ op: 'add-destination', result: 'failed', errno: '' }, 0);
    this.driftRepairs.inc(0);
  }

  attach(loop: ReconcileLoop): void {
    this.loop = loop;
  }

  /** The probe workers' figures, read at each scrape. */
  attachPool(pool: { stats(): ProbePoolStats }): void {
    this.pool = pool;
  }

  configLoaded(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'success' : 'failure' });
    if (ok) this.lastReload.setToCurrentTime();
  }

  checkResult(e: CheckEvent): void {
    const kind = e.checker.kind;
    let f = this.checkSeries.get(e.id);
    if (!f) {
      const labels = {
        kind,
        check: e.checker.description,
        check_id: checkId(e.id),
        target: hostPort(e.target),
      };
      // Every outcome from the first result: one first seen later (the first local error)
      // would add a series, and increase() would miss its first count.
      const results = { healthy: 0, unhealthy: 0, unknown: 0 };
      f = { labels: labelSet(labels), results, failures: 0, seconds: 0 };
      this.checkSeries.set(e.id, f);
      this.checksStale.added();
    }
    f.results[e.result.local ? 'unknown' : e.result.healthy ? 'healthy' : 'unhealthy']++;
    f.failures = e.state.failures;
    f.seconds = e.result.durationMs / 1000;
    let series = this.kinds.get(kind);
    if (!series) {
      series = { duration: this.checkDuration.of(kind), lateness: this.checkLateness.of(kind) };
      this.kinds.set(kind, series);
    }
    series.duration.observe(f.seconds);
    series.lateness.observe(e.latenessMs / 1000);
  }

  transition(record: ServerRecord, _from: string, to: string): void {
    if (to !== 'up' && to !== 'down') return;
    const labels = this.transitionLabels(record);
    const key = JSON.stringify(labels);
    let counts = this.transitionSeries.get(key);
    if (!counts) {
      counts = { labels: labelSet(labels), up: 0, down: 0 };
      this.transitionSeries.set(key, counts);
      this.transitionsStale.added();
    }
    counts[to]++;
  }

  private transitionLabels(r: ServerRecord): Record<string, string> {
    return this.options.perServer ? this.labelsOf(r) : { service: r.vs.name };
  }

  /** Drops the series of checks no configured server runs any more (a reload removed them). */
  private pruneChecks(): void {
    // Once a scrape, though each of the three families asks.
    if (this.checksPruned) return;
    this.checksPruned = true;
    if (!this.loop || this.checkSeries.size === 0) return;
    if (!this.checksStale.due(this.loop.records())) return;
    const live = new Set(this.loop.servers().flatMap((r) => r.runs));
    for (const run of this.checkSeries.keys()) if (!live.has(run)) this.checkSeries.delete(run);
  }

  /** Drops the transition series of servers (or services) no longer configured. */
  private pruneTransitions(): void {
    if (!this.loop || this.transitionSeries.size === 0) return;
    if (!this.transitionsStale.due(this.loop.records())) return;
    const live = new Set(this.loop.servers().map((r) => JSON.stringify(this.transitionLabels(r))));
    for (const key of this.transitionSeries.keys())
      if (!live.has(key)) this.transitionSeries.delete(key);
  }

  tick(durationMs: number, ok: boolean, read: boolean): void {
    this.tickDuration.observe(
      { result: ok ? 'success' : 'failure', table: read ? 'read' : 'known' },
      durationMs / 1000,
    );
  }

  operation(operation: Operation, error: IpvsError | null): void {
    this.operations.inc({
      op: operation.op,
      result: error ? 'failed' : 'applied',
      errno: error?.code ?? '',
    });
  }

  drift(changes: number): void {
    this.driftRepairs.inc(changes);
  }

  /** A hook's outcome (src/hooks/runner.ts). */
  hookRun(hook: string, result: string): void {
    this.hookRuns.inc({ hook, result });
  }

  /** An alert's outcome (src/alerts/deliver.ts). */
  alertSent(target: string, result: string): void {
    this.alerts.inc({ target, result });
  }

  private labelsOf(r: ServerRecord): Record<string, string> {
    const all = ipvsLabelValues(r.vs.service.key, r.rs.destination.key);
    const out: Record<string, string> = { service: r.vs.name };
    for (const l of this.options.labels) out[l] = all[l];
    return out;
  }

  /**
   * One scrape: every per-server series comes from the same rows, built once from one table
   * dump. Use this, not registry.metrics(), so the next scrape reads the table again.
   */
  async render(): Promise<string> {
    const parts: Buffer[] = [];
    await this.renderTo((part) => {
      parts.push(typeof part === 'string' ? Buffer.from(part) : part);
    });
    return Buffer.concat(parts).toString('utf8');
  }

  /**
   * One scrape, handed to `write` part by part as it is made, a turn of the event loop between
   * two: at 10,000 checks the page is 7 MB, and writing it whole at the end held the loop for
   * 100-250 ms, every check due meanwhile starting late. Strings go as UTF-8. When `write`
   * returns a promise, the next part waits for it (a compressor's queue draining).
   */
  renderTo(write: (part: string | Buffer) => void | Promise<void>): Promise<void> {
    return this.read(async () => {
      await write(await this.registry.metrics());
      // As prom-client writes a page: a blank line before each family.
      for (const f of this.families) {
        await write('\n');
        for await (const part of f.parts()) await write(part);
      }
    });
  }

  /** One scrape as prom-client's JSON (every series as an object): what tests read. */
  json(): Promise<PageJson[]> {
    return this.read(async () => {
      const all: PageJson[] = await this.registry.getMetricsAsJSON();
      for (const f of this.families) all.push(await f.json());
      return all;
    });
  }

  private read<T>(scrape: () => Promise<T>): Promise<T> {
    const run = this.rendering.then(async () => {
      this.scrape = null;
      this.checksPruned = false;
      try {
        return await scrape();
      } finally {
        this.scrape = null;
        this.checksPruned = false;
        for (const m of this.rebuilt) m.reset();
      }
    });
    // Settles to nothing (the type says so): `run.catch()` would settle to the page and keep
    // the last one alive until the next scrape (7 MiB of strings at 10,000 servers).
    this.rendering = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private rows(): Promise<ServerRow[]> {
    this.scrape ??= this.buildRows();
    return this.scrape;
  }

  private async buildRows(): Promise<ServerRow[]> {
    const loop = this.loop;
    if (!loop) return [];
    const kernel = destinationsByTarget((await this.readTable().catch(() => null)) ?? []);
    const wants = new Map<string, DesiredDestination>();
    for (const s of loop.desired()?.services ?? []) {
      for (const d of s.destinations) {
        if (d.role === 'server') wants.set(targetId(s.spec.key, d.destination.key), d);
      }
    }
    return loop.servers().map((r) => {
      const id = targetId(r.vs.service.key, r.rs.destination.key);
      let labels = this.serverLabelSets.get(r);
      if (!labels) {
        labels = labelSet(this.labelsOf(r));
        this.serverLabelSets.set(r, labels);
      }
      return { r, labels, want: wants.get(id), kernel: kernel.get(id) };
    });
  }
}
