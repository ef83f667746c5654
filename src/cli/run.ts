// `ipvs-warden run`: the daemon's shell. Loads the config, opens the backend, runs the loop, and
// turns signals into reload (SIGHUP) and stop (SIGTERM, SIGINT). A bad config at start exits 1; a
// bad config on reload is logged and the running one stays in force. The signals are caught from
// the program's first moment (./signals.ts): one that comes while starting waits until the daemon
// is ready, one that comes while stopping is noted; none ends the process.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { busyShareOf, openFilesLimit } from '../health/admission.js';
import { setExecConcurrency } from '../health/processes.js';
import { leanSockets } from '../health/lean.js';
import { nativeProbes } from '../health/native.js';
import { ProbePool } from '../health/pool.js';
import { RESTART_ONLY_KEYS } from '../config/daemon.js';
import { acceptLocalProblem } from '../config/datapath.js';
import { persistenceProblems } from '../config/persistence.js';
import { effectiveDaemon } from '../config/effective.js';
import { ConfigError, formatProblem, metricsLabelsProblem } from '../config/load.js';
import { createChecker, loadConfigFile, parseConfig } from '../checkers.js';
import type { ConfigFormat } from '../config/foreign.js';
import { formatPath } from '../config/reader.js';
import type { Config } from '../config/model.js';
import { formatTable } from './table.js';
import { demoConfig, startDemoServers, unownedDemoService, ShowingBackend } from '../demo.js';
import type { IpvsBackend } from '../ipvs/backend.js';
import { SharedRead } from '../ipvs/shared-read.js';
import { createLogger, type Level, type Logger } from '../log.js';
import { startListener, type Listener } from '../http/server.js';
import { WardenMetrics } from '../metrics/metrics.js';
import { ReconcileLoop, observers } from '../reconcile/loop.js';
import { MemoryRouteTable, NetlinkRouteTable } from '../announce/routes.js';
import { HookObserver } from '../hooks/observer.js';
import { HookRunner } from '../hooks/runner.js';
import { AlertDeliverer } from '../alerts/deliver.js';
import { AlertObserver } from '../alerts/observer.js';
import { PidFile, PidFileError } from './pidfile.js';
import type { DaemonSignals } from './signals.js';
import type { HeapModes } from '../v8-flags.js';

export interface RunOptions {
  readonly configFile: string | undefined;
  /** The config file's format (default: recognised from its name and content). */
  readonly format?: ConfigFormat;
  readonly demo: boolean;
  readonly dryRun: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly openBackend: (kind: 'netlink' | 'memory') => Promise<IpvsBackend>;
  /** Caught since the program started (main.ts makes it before loading anything else). */
  readonly signals: DaemonSignals;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  /** V8's heap settings for reading a config and for running (main.ts: src/v8-flags.ts). */
  readonly heap?: HeapModes;
}

function withDryRun(config: Config, dryRun: boolean): Config {
  return dryRun ? { ...config, daemon: { ...config.daemon, dryRun: true } } : config;
}

/** The process's soft limit on open files (node raised it to the hard one at start); 0: unknown. */
function openFiles(): number {
  try {
    return openFilesLimit(readFileSync('/proc/self/limits', 'utf8')) ?? 0;
  } catch {
    return 0;
  }
}

function makeLogger(config: Config, out: NodeJS.WriteStream): Logger & { level: Level } {
  const format =
    config.daemon.logFormat === 'auto' ? (out.isTTY ? 'text' : 'json') : config.daemon.logFormat;
  // A log stream that closes (journald restarted, `| head`) must not stop the daemon: EPIPE
  // arrives as an 'error' event, fatal with no listener. The table matters more than the log:
  // lines after it are dropped.
  let closed = false;
  out.on('error', () => {
    closed = true;
  });
  return createLogger({
    format,
    level: config.daemon.logLevel,
    write: (line) => {
      if (!closed) out.write(line);
    },
  });
}

export async function runDaemon(o: RunOptions): Promise<number> {
  const demo = o.demo ? await startDemoServers() : null;
  const source = o.configFile ?? '(embedded demo config)';
  /** The config, read (off the event loop, under a deadline) and validated again on each reload. */
  const load = async (): Promise<Config> =>
    withDryRun(
      demo
        ? parseConfig(demoConfig(demo), source, o.env)
        : await loadConfigFile(o.configFile ?? '', o.env, o.format ? { format: o.format } : {}),
      o.dryRun,
    );
  let config: Config;
  try {
    config = await load();
  } catch (e) {
    await demo?.close();
    if (e instanceof ConfigError) {
      o.stderr.write(`ipvs-warden: the config is not valid, nothing was changed\n${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const log = makeLogger(config, o.stdout);
  o.signals.onIgnored((signal) =>
    log.log('info', 'daemon.signal_ignored', { signal, note: 'stopping already' }),
  );
  // Locked before the kernel or the port is touched, so a second daemon is refused first. The
  // file taken at start is the one released at stop, whatever a reload says.
  let pidFile: PidFile | null = null;
  try {
    if (config.daemon.pidFile) pidFile = PidFile.claim(config.daemon.pidFile);
  } catch (e) {
    await demo?.close();
    if (!(e instanceof PidFileError)) throw e;
    o.stderr.write(`ipvs-warden: ${e.message}\n`);
    return 1;
  }
  // On every way out (an error from the backend included): the lock goes with the process anyway.
  process.once('exit', () => pidFile?.release());
  let backend = await o.openBackend(config.daemon.backend);
  if (demo) {
    for (const r of await backend.apply(unownedDemoService())) if (r.error) throw r.error;
    const inner = backend;
    backend = new ShowingBackend(inner, (table) => {
      void inner.info().then((info) => o.stdout.write(`\n${formatTable(info, table)}\n`));
    });
    o.stdout.write(
      `ipvs-warden demo: the in-memory table, real servers web1..web3 on 127.0.0.1:${demo.ports.join(', ')}, ` +
        `a sorry server on :${demo.sorryPort}.\nweb2 fails 6 s after start for 10 s, every 30 s. Ctrl-C stops.\n` +
        `In another terminal: node dist/src/main.js status, or open http://127.0.0.1:9476/ in a browser (curl 127.0.0.1:9476/metrics)\n\n`,
    );
  }
  setExecConcurrency(config.daemon.execConcurrency);

  const shared = new SharedRead(() => backend.table());
  const table: () => ReturnType<IpvsBackend['table']> = shared.read;
  const metrics = new WardenMetrics(
    {
      perServer: config.daemon.metricsPerServer,
      labels: config.daemon.metricsLabels,
      lagResolutionMs: config.daemon.metricsLagResolutionMs,
    },
    table,
  );
  metrics.configLoaded(true);
  // Hooks run off the loop: the observer hands them to the runner, which returns at once.
  const hookRunner = new HookRunner({
    log,
    onResult: (hook, result) => metrics.hookRun(hook, result),
  });
  const hooks = new HookObserver(hookRunner);
  // Alerts (email, webhooks) likewise: decided on the loop, sent off it.
  const alertDeliverer = new AlertDeliverer({
    log,
    onResult: (target, result) => metrics.alertSent(target, result),
  });
  const alerts = new AlertObserver(config, alertDeliverer);
  // VIP announcements: the kernel's routing tables beside the kernel's IPVS, a table in the
  // process beside the in-memory one.
  const routes = backend.kind === 'netlink' ? new NetlinkRouteTable() : new MemoryRouteTable();
  // Probes on worker threads when asked for; the scheduler and the table stay here.
  const { checkWorkers } = config.daemon;
  const pool =
    checkWorkers > 0
      ? new ProbePool({
          threads: checkWorkers,
          worker: new URL('../probe-worker.js', import.meta.url),
          onWorkerExit: (thread, reason) =>
            log.log('error', 'check_worker.exited', {
              thread,
              reason,
              note: 'started again in 1 s; the checks it held end as local results (not counted as failures)',
            }),
        })
      : null;
  // Checks give their slots back only while every loop that probes has CPU to spare.
  const mainBusy = busyShareOf(performance.eventLoopUtilization);
  const busyShare = pool ? () => Math.max(mainBusy(), pool.busyShare()) : mainBusy;
  const loop = new ReconcileLoop(config, {
    backend,
    routes,
    log,
    openFiles: openFiles(),
    busyShare,
    // A write ends the shared read's life: /status and /metrics show the table after it.
    observer: observers(metrics, hooks, alerts, { operation: shared.invalidate }),
    ...(pool ? { createChecker: (check) => pool.wrap(check, createChecker(check)) } : {}),
  });
  metrics.attach(loop);
  if (pool) metrics.attachPool(pool);
  hooks.attach(loop);
  alerts.attach(loop);
  let listener: Listener | null = null;
  if (config.daemon.listen) {
    try {
      listener = await startListener(config.daemon.listen, loop, metrics, table, {
        hosts: config.daemon.listenHosts,
        maxConnections: config.daemon.listenMaxConnections,
      });
      log.log('info', 'http.listening', {
        url: listener.url,
        endpoints: '/ /metrics /healthz /readyz /status /events',
      });
    } catch (e) {
      // A taken port must not keep the table unmanaged: the daemon runs, without its listener.
      log.log('error', 'http.failed', {
        listen: config.daemon.listen,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
  log.log('info', 'daemon.starting', {
    pid: process.pid,
    config: source,
    backend: backend.kind,
    services: config.virtualServices.length,
    dry_run: config.daemon.dryRun,
    // TCP and HTTP probes on libuv's handles, or on net.Socket and why (src/health/lean.ts).
    probe_sockets: leanSockets.on ? 'lean' : `net.Socket (${leanSockets.why})`,
    // Plain TCP and HTTP checks' sockets in C (src/native/probe.c), or on probe_sockets and why
    // not (named connect_probes before the HTTP exchange moved there too).
    native_probes: nativeProbes.on ? 'native' : `probe_sockets (${nativeProbes.why})`,
    // Checks waiting on slow servers give their slot of check_concurrency back, under this.
    checks_in_flight_max: loop.maxInFlight,
  });
  /** What data-path checks and persistent services need of the director, said at each load. */
  const warnKernel = (c: Config): void => {
    const sysctl = (path: string): string | null => {
      try {
        return readFileSync(`/proc/sys/net/${path}`, 'utf8');
      } catch {
        // Not Linux's /proc (a test, a container without it), or no ip_vs: nothing to say.
        return null;
      }
    };
    const problem = acceptLocalProblem(c.virtualServices, sysctl('ipv4/conf/all/accept_local'));
    if (problem) log.log('warn', 'data_path.accept_local_off', { problem });
    const persistence = persistenceProblems(c.virtualServices, {
      expireNodestConn: sysctl('ipv4/vs/expire_nodest_conn'),
      expireQuiescentTemplate: sysctl('ipv4/vs/expire_quiescent_template'),
    });
    for (const p of persistence) log.log('warn', p.event, { sysctl: p.sysctl, problem: p.problem });
  };
  if (backend.kind === 'netlink') warnKernel(config);

  /** A reload refused before the loop sees it: counted, logged, the running config kept. */
  const refuse = (problems: string[]): void => {
    metrics.configLoaded(false);
    log.log('error', 'config.invalid', {
      config: source,
      problems,
      note: 'the running config stays in force',
    });
  };
  /** Reads the file again and hands it to the loop, which applies reloads one at a time. */
  const reload = async (): Promise<void> => {
    o.heap?.reading();
    try {
      await reloadWith();
    } finally {
      o.heap?.running();
    }
  };
  const reloadWith = async (): Promise<void> => {
    log.log('info', 'config.reloading', { config: source });
    let next: Config;
    try {
      next = await load();
    } catch (e) {
      refuse(
        e instanceof ConfigError ? e.problems.map((x) => formatProblem(e.file, x)) : [String(e)],
      );
      return;
    }
    // The running process keeps its metrics labels until a restart: the new servers must not
    // collide under those, whatever labels the file now names.
    const { metricsPerServer, metricsLabels } = config.daemon;
    const clash = metricsLabelsProblem(
      { ...next, daemon: { ...next.daemon, metricsPerServer, metricsLabels } },
      o.env,
    );
    if (clash) {
      refuse([`${formatPath(clash.path)} (in force until a restart): ${clash.message}`]);
      return;
    }
    const before = effectiveDaemon(config.daemon);
    const after = effectiveDaemon(next.daemon);
    for (const key of RESTART_ONLY_KEYS) {
      if (String(after[key]) !== String(before[key])) {
        log.log('warn', 'config.restart_needed', {
          key: `daemon.${key}`,
          running: before[key],
          file: after[key],
          note: 'takes effect on restart',
        });
      }
    }
    alerts.setPhase('reloading');
    await loop.reload(next).then(
      () => {
        alerts.reload(next);
        metrics.configLoaded(true);
        log.level = next.daemon.logLevel;
        setExecConcurrency(next.daemon.execConcurrency);
        config = next;
        if (backend.kind === 'netlink') warnKernel(next);
      },
      (e: unknown) => {
        // The loop kept the running state; the next SIGHUP is handled as usual.
        metrics.configLoaded(false);
        log.log('error', 'config.reload_failed', {
          config: source,
          error: e instanceof Error ? e.message : String(e),
          note: 'the running config stays in force',
        });
      },
    );
    alerts.setPhase('running');
  };

  // Reads are async now: one reload at a time, in the order asked, so an older read never
  // lands after a newer one.
  let reloading = Promise.resolve();
  const onHup = (): void => {
    reloading = reloading.then(reload).catch((e: unknown) => {
      log.log('error', 'config.reload_failed', { config: source, error: String(e) });
    });
  };
  const onRejection = (e: unknown): void => {
    log.log('error', 'daemon.unexpected', {
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  };
  process.on('unhandledRejection', onRejection);

  // A stop asked for while starting: the loop never starts, so the table is not touched.
  const started = !o.signals.stopping;
  if (started) {
    try {
      await loop.start();
      const v8Flags = o.heap?.running() ?? [];
      // node_flags: whether node was started as the package starts it (NODE_START_FLAGS).
      log.log('info', 'daemon.started', {
        ticks: loop.stats.ticks,
        v8_flags: v8Flags,
        node_flags: process.execArgv,
      });
      alerts.setPhase('running');
    } catch (e) {
      log.log('error', 'daemon.start_failed', {
        error: e instanceof Error ? e.message : String(e),
      });
      await loop.stop().catch(() => undefined);
      await pool?.close();
      await listener?.close();
      await backend.close();
      await demo?.close();
      return 1;
    }
    // The SIGHUPs that came while starting are one reload now; each later one is a reload.
    o.signals.onReload(onHup);
  }
  const signal = await o.signals.stopped();
  log.log('info', 'daemon.stopping', { signal, cleanstop: config.daemon.cleanstop });
  alerts.setPhase('stopping');
  if (started) {
    await loop
      .stop()
      .catch((e: unknown) => log.log('error', 'daemon.stop_failed', { error: String(e) }));
  }
  await pool?.close();
  // Hooks still running end within their deadlines; none starts any more.
  await hookRunner.stop();
  // Alerts being sent end within their deadlines; waiting ones are dropped (and counted).
  alerts.stop();
  await alertDeliverer.stop();
  process.off('unhandledRejection', onRejection);
  await listener?.close();
  await backend.close();
  routes.close();
  await demo?.close();
  pidFile?.release();
  log.log('info', 'daemon.stopped', {
    applied: loop.stats.operationsApplied,
    failed: loop.stats.operationsFailed,
  });
  return 0;
}
