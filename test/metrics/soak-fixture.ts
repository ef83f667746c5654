// The soak scenario, shared by test/metrics/soak.test.ts (short) and bench/soak.ts (minutes):
// 1,000 real servers on the memory backend, checked by a checker with no sockets, and reloads
// that add and remove services and change checks, always able to return to the first config.
// What it measures: series in the registry, the loop's servers, the scheduler's runs.
import { parseConfig } from '../../src/checkers.js';
import type { Config } from '../../src/config/model.js';
import type { Checker } from '../../src/health/checker.js';
import type { createChecker } from '../../src/checkers.js';
import type { CheckEvent } from '../../src/health/scheduler.js';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import type { Logger } from '../../src/log.js';
import { WardenMetrics } from '../../src/metrics/metrics.js';
import { ReconcileLoop } from '../../src/reconcile/loop.js';
import { until } from '../checks/servers.js';

/** The base config: 10 services of 100 servers, half with a TCP check, half with HTTP. */
export const SERVICES = 10;
export const SERVERS_PER_SERVICE = 100;

const HEAD = `daemon: {backend: memory, resync_interval: 10s}
defaults: {interval: 1s, fast_interval: 1s, down_interval: 1s, timeout: 500ms, rise: 1, fall: 1}
virtual_services:
`;

/** A service of `n` (< 255) servers at <net>.1, <net>.2, ... (net: three octets). */
function service(name: string, vip: string, net: string, n: number, check: string): string {
  const rs = Array.from({ length: n }, (_, j) => `{address: ${net}.${j + 1}, port: 8080}`).join(
    ', ',
  );
  return `  - {name: ${name}, address: ${vip}, port: 80, checks: [${check}], real_servers: [${rs}]}\n`;
}

const checkOf = (i: number): string =>
  i % 2 === 0 ? '{type: tcp}' : '{type: http, path: /healthz}';

/** The base config's text: 1,000 servers. */
export function baseText(): string {
  let text = HEAD;
  for (let i = 0; i < SERVICES; i++) text += baseService(i, checkOf(i));
  return text;
}

function baseService(i: number, check: string): string {
  return service(`base${i}`, `10.1.0.${i + 1}`, `10.2.${i}`, SERVERS_PER_SERVICE, check);
}

let base: Config | undefined;

/**
 * The config of a round: null is the base; round k (>= 1) leaves out one base service, changes
 * the check of another, and adds two services of 50 servers never seen before. Only what
 * differs from the base is parsed each round, so a round costs the loop's reload, not YAML.
 */
export function soakConfig(round: number | null): Config {
  base ??= parseConfig(baseText(), 'base', {});
  if (round === null) return base;
  const out = round % SERVICES;
  const changed = (round + 5) % SERVICES;
  let text = HEAD + baseService(changed, `{type: http, path: /round-${round}}`);
  for (const x of [0, 1]) {
    // Fresh addresses every round: 10.<3 + round / 128>.<(round mod 128) * 2 + x>.1..50
    const net = `10.${3 + (round >> 7)}.${((round & 0x7f) << 1) | x}`;
    text += service(`extra${round}-${x}`, `10.1.1.${x + 1}`, net, 50, '{type: tcp}');
  }
  const [replaced, ...extras] = parseConfig(text, `round ${round}`, {}).virtualServices;
  const services = base.virtualServices.flatMap((vs, i) =>
    i === out ? [] : i === changed && replaced ? [replaced] : [vs],
  );
  return { ...base, virtualServices: [...services, ...extras] };
}

/** A checker with no sockets: healthy at once. The key follows the options, as the real ones do. */
const trivialChecker: typeof createChecker = (check): Checker => ({
  kind: check.type,
  description: `${check.type} (soak)`,
  key: `${check.type}:${JSON.stringify(check.options)}`,
  check: () => Promise.resolve({ healthy: true, durationMs: 0, message: 'ok' }),
});

/** WardenMetrics that also notes which runs reported, to wait for a whole round of checks. */
class SoakMetrics extends WardenMetrics {
  readonly reported = new Set<string>();
  override checkResult(e: CheckEvent): void {
    this.reported.add(e.id);
    super.checkResult(e);
  }
}

/** Drops info and debug (a soak must not grow a log); keeps what would be worth a look. */
class QuietLog implements Logger {
  readonly problems: string[] = [];
  log(level: string, event: string): void {
    if (level === 'warn' || level === 'error') this.problems.push(`${level} ${event}`);
  }
}

export interface SoakCounts {
  /** Series in the registry, without prom-client's process and Node.js metrics. */
  readonly series: number;
  readonly servers: number;
  readonly runs: number;
}

export class Soak {
  readonly backend = new MemoryBackend();
  readonly log = new QuietLog();
  readonly metrics: SoakMetrics;
  readonly loop: ReconcileLoop;

  constructor() {
    this.metrics = new SoakMetrics(
      { perServer: true, labels: ['remote_address', 'remote_port'] },
      () => this.backend.table(),
    );
    this.loop = new ReconcileLoop(soakConfig(null), {
      backend: this.backend,
      log: this.log,
      observer: this.metrics,
      createChecker: trivialChecker,
    });
    this.metrics.attach(this.loop);
  }

  start(): Promise<void> {
    return this.loop.start();
  }

  reload(round: number | null): Promise<void> {
    return this.loop.reload(soakConfig(round));
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /**
   * Waits until every live check has reported since this call, every server has a state and
   * the loop is idle: then the series are those of the config, nothing half-done.
   */
  async settled(ms = 60_000): Promise<boolean> {
    this.metrics.reported.clear();
    const ok = await until(() => {
      const servers = this.loop.servers();
      return (
        servers.every((r) => r.status !== 'pending') &&
        servers.every((r) => r.runs.every((run) => this.metrics.reported.has(run)))
      );
    }, ms);
    // A tick after the last transition (min_tick_interval may have put it off): the table too.
    this.loop.requestTick('soak settled');
    await this.loop.nextTick();
    return ok;
  }

  /** Every series by name and labels (values left out), sorted. */
  async seriesKeys(): Promise<string[]> {
    const keys: string[] = [];
    for (const m of await this.metrics.json()) {
      if (/^ipvs_warden_(process|nodejs)_/.test(m.name)) continue;
      for (const v of m.values) {
        // A histogram's values name their own series (_bucket, _sum, _count).
        const name = (v as { metricName?: string }).metricName ?? m.name;
        keys.push(`${name}${JSON.stringify(v.labels)}`);
      }
    }
    return keys.sort();
  }

  /** The counts, and the series' keys to tell what differs. */
  async measure(): Promise<{ counts: SoakCounts; keys: string[] }> {
    const keys = await this.seriesKeys();
    const counts = {
      series: keys.length,
      servers: this.loop.servers().length,
      // The scheduler is the loop's own; its count is the truth about timers still running.
      runs: this.loop['scheduler'].stats().checks,
    };
    return { counts, keys };
  }
}
