// The effective config written back in the file's own syntax, every default filled in: what
// `check-config` prints. Secrets (as src/health/options.ts declares them) are shown as
// <redacted> unless asked for; with them, reading it again gives the same config (tested).
import { stringify } from 'yaml';
import {
  DNS_SECRECY,
  EXEC_SECRECY,
  HTTP_SECRECY,
  TCP_SECRECY,
  redactOptions,
} from '../health/options.js';
import { isFwmark, type DestinationSpec } from '../ipvs/model.js';
import type { DaemonSettings } from './daemon.js';
import type {
  CheckConfig,
  Config,
  RealServerConfig,
  TlsFiles,
  VirtualServiceConfig,
} from './model.js';

export interface EffectiveOptions {
  /** Print secret values (header values, exec env values, a query, send): for the operator. */
  readonly showSecrets?: boolean;
}

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

/**
 * TLS files by their (resolved) names, never their content: a key must not land in a terminal
 * or the journal, and the name reads back as the same file.
 */
function tls(
  verify: boolean | undefined,
  servername: string | undefined,
  files: TlsFiles,
): unknown {
  return clean({
    sni: servername,
    verify: verify ?? true,
    ca_file: files.ca,
    cert_file: files.cert,
    key_file: files.key,
  });
}

function clean(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** A check with its secret options replaced, unless they are to be shown. */
function shown(c: CheckConfig, showSecrets: boolean): CheckConfig {
  if (showSecrets) return c;
  switch (c.type) {
    case 'tcp':
      return { ...c, options: redactOptions(c.options, TCP_SECRECY) };
    case 'http':
    case 'https':
      return { ...c, options: redactOptions(c.options, HTTP_SECRECY) };
    case 'dns':
      return { ...c, options: redactOptions(c.options, DNS_SECRECY) };
    case 'exec':
      return { ...c, options: redactOptions(c.options, EXEC_SECRECY) };
  }
}

function check(c: CheckConfig): Record<string, unknown> {
  const common = { type: c.type, address: c.address?.address, port: c.port };
  const files = c.tlsFiles ?? {};
  switch (c.type) {
    case 'tcp': {
      const o = c.options;
      return clean({
        ...common,
        send: o.send,
        expect: typeof o.expect === 'string' ? o.expect : undefined,
        expect_regex: o.expect instanceof RegExp ? o.expect.source : undefined,
        tls: o.tls ? tls(o.tls.verify, o.tls.servername, files) : undefined,
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
        tls: c.type === 'https' ? tls(o.tls?.verify, o.tls?.servername, files) : undefined,
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
        user: o.user,
        group: o.group,
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

function realServer(rs: RealServerConfig, showSecrets: boolean): Record<string, unknown> {
  const d = destination(rs.destination);
  return clean({
    name: rs.name,
    address: d.address,
    port: d.port,
    state: rs.maintenance ? 'maintenance' : 'enabled',
    ...d,
    checks: rs.checks.map((c) => check(shown(c, showSecrets))),
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

function virtualService(vs: VirtualServiceConfig, showSecrets: boolean): Record<string, unknown> {
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
    hold_threshold: vs.holdThreshold,
    fallback: vs.fallback
      ? clean({
          ...destination(vs.fallback),
          upper_threshold: undefined,
          lower_threshold: undefined,
        })
      : undefined,
    real_servers: vs.realServers.map((rs) => realServer(rs, showSecrets)),
  });
}

export function effectiveConfig(config: Config, options: EffectiveOptions = {}): string {
  const showSecrets = options.showSecrets ?? false;
  return stringify(
    {
      daemon: effectiveDaemon(config.daemon),
      virtual_services: config.virtualServices.map((vs) => virtualService(vs, showSecrets)),
    },
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}
