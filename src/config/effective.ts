// The effective config written back in the file's own syntax, every default filled in: what
// `check-config` prints. Reading it again gives the same config (tested), so it can be saved.
import { stringify } from 'yaml';
import type { TlsOptions } from '../health/options.js';
import { isFwmark, type DestinationSpec } from '../ipvs/model.js';
import type { DaemonSettings } from './daemon.js';
import type { CheckConfig, Config, RealServerConfig, VirtualServiceConfig } from './model.js';

const s = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/** The daemon settings under their file names, as check-config prints them. */
export function effectiveDaemon(d: DaemonSettings): Record<string, unknown> {
  return {
    backend: d.backend,
    resync_interval: s(d.resyncIntervalMs),
    min_tick_interval: s(d.minTickIntervalMs),
    retry_min: s(d.retryMinMs),
    retry_max: s(d.retryMaxMs),
    cleanstop: d.cleanstop,
    maintenance_dir: d.maintenanceDir,
    maintenance_poll: s(d.maintenancePollMs),
    pid_file: d.pidFile,
    log_format: d.logFormat,
    log_level: d.logLevel,
    check_concurrency: d.checkConcurrency,
    exec_concurrency: d.execConcurrency,
    dry_run: d.dryRun,
    listen: d.listen,
    listen_hosts: d.listenHosts.join(','),
    listen_max_connections: d.listenMaxConnections,
    metrics_per_server: d.metricsPerServer,
    metrics_labels: d.metricsLabels.join(','),
  };
}

/** Certificates are shown by size, never by content (a key must not land in a terminal log). */
function tls(t: TlsOptions | undefined): unknown {
  if (!t) return undefined;
  const pem = (x: string | undefined): string | undefined =>
    x === undefined ? undefined : `(PEM, ${x.length} bytes, read from the file)`;
  return clean({
    sni: t.servername,
    verify: t.verify ?? true,
    ca_file: pem(t.ca),
    cert_file: pem(t.cert),
    key_file: pem(t.key),
  });
}

function clean(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function check(c: CheckConfig): Record<string, unknown> {
  const common = { type: c.type, address: c.address?.address, port: c.port };
  switch (c.type) {
    case 'tcp': {
      const o = c.options;
      return clean({
        ...common,
        send: o.send,
        expect: typeof o.expect === 'string' ? o.expect : undefined,
        expect_regex: o.expect instanceof RegExp ? o.expect.source : undefined,
        tls: o.tls ? tls(o.tls) : undefined,
        bind: o.bindAddress,
        max_reply: o.maxReply,
      });
    }
    case 'http':
    case 'https': {
      const o = c.options;
      return clean({
        ...common,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        host: o.host,
        headers: o.headers && Object.keys(o.headers).length > 0 ? o.headers : undefined,
        expect_status: o.expectStatus ?? '200-299',
        body_match: o.bodyMatch?.source,
        body_not_match: o.bodyNotMatch?.source,
        tls: c.type === 'https' ? tls(o.tls) : undefined,
        reuse: o.reuse ?? false,
        bind: o.bindAddress,
        max_body: o.maxBody,
      });
    }
    case 'dns': {
      const o = c.options;
      return clean({
        ...common,
        name: o.name,
        record_type: o.type ?? 'A',
        transport: o.transport ?? 'udp',
        expect_rcode: o.expectRcode ?? ['NOERROR'],
        expect_answer: o.expectAnswer?.source,
        recursion_desired: o.recursionDesired,
        bind: o.bindAddress,
      });
    }
    case 'exec': {
      const o = c.options;
      return clean({
        ...common,
        command: [...o.command],
        dynamic_weight: o.dynamicWeight ?? false,
        max_output: o.maxOutput,
        env: o.env,
      });
    }
  }
}

function destination(d: DestinationSpec): Record<string, unknown> {
  return clean({
    address: d.key.address,
    port: d.key.port,
    fwd: d.fwd,
    weight: d.weight,
    upper_threshold: d.upperThreshold,
    lower_threshold: d.lowerThreshold,
    tunnel: d.tunnel ? clean({ ...d.tunnel, port: d.tunnel.port || undefined }) : undefined,
  });
}

function realServer(rs: RealServerConfig): Record<string, unknown> {
  const d = destination(rs.destination);
  return clean({
    name: rs.name,
    address: d.address,
    port: d.port,
    state: rs.maintenance ? 'maintenance' : 'enabled',
    ...d,
    checks: rs.checks.map(check),
    rise: rs.policy.rise,
    fall: rs.policy.fall,
    initial: rs.policy.initial,
    interval: s(rs.timing.intervalMs),
    fast_interval: s(rs.timing.fastIntervalMs),
    down_interval: s(rs.timing.downIntervalMs),
    timeout: s(rs.timing.timeoutMs),
    jitter: rs.timing.jitter,
    slow_start: s(rs.slowStartMs),
  });
}

const FLAG_NAMES: [number, string][] = [
  [1, 'flag-1'],
  [2, 'flag-2'],
  [4, 'flag-3'],
];

function virtualService(vs: VirtualServiceConfig): Record<string, unknown> {
  const k = vs.service.key;
  const svc = vs.service;
  return clean({
    name: vs.name,
    ...(isFwmark(k)
      ? { fwmark: k.fwmark, family: k.family }
      : { protocol: k.protocol, address: k.address, port: k.port }),
    scheduler: svc.scheduler,
    sched_flags: FLAG_NAMES.filter(([bit]) => svc.schedFlags & bit).map(([, n]) => n),
    persistent: svc.persistent ? `${svc.timeout}s` : false,
    netmask: svc.netmask,
    one_packet: svc.onePacket,
    pe: svc.pe,
    on_failure: vs.onFailure,
    drain_timeout: s(vs.drainTimeoutMs),
    panic_threshold: vs.panicThreshold,
    fallback: vs.fallback
      ? clean({
          ...destination(vs.fallback),
          upper_threshold: undefined,
          lower_threshold: undefined,
        })
      : undefined,
    real_servers: vs.realServers.map(realServer),
  });
}

export function effectiveConfig(config: Config): string {
  return stringify(
    {
      daemon: effectiveDaemon(config.daemon),
      virtual_services: config.virtualServices.map(virtualService),
    },
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}
