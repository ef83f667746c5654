// The validated config as the rest of the daemon sees it: every default filled in, every
// inherited setting resolved, addresses canonical. Nothing here is raw YAML.
import type { HealthPolicy } from '../health/policy.js';
import type { CheckTiming } from '../health/timing.js';
import type { DestinationSpec, Family, ServiceSpec } from '../ipvs/model.js';
import type { AlertsConfig, ServiceAlerts } from './alerts.js';
import type { DaemonSettings } from './daemon.js';

/**
 * A check as the config read it: its kind and its options, each validated by the kind's
 * declaration (checks/*.ts), which also makes its probe.
 */
export interface CheckConfig {
  readonly type: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Probe this address/port instead of the real server's (keepalived connect_ip, ldirectord checkport). */
  readonly address?: { readonly family: Family; readonly address: string };
  readonly port?: number;
  /** The TLS files, resolved: check-config names them (their content never leaves the process). */
  readonly tlsFiles?: TlsFiles;
  /** Secrets given as a file or an environment variable, by config key: check-config names them. */
  readonly secretSources?: Readonly<Record<string, SecretSource>>;
}

/** Where a secret came from (a literal has none). */
export interface SecretSource {
  readonly file?: string;
  readonly env?: string;
}

export interface TlsFiles {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export type FailureAction = 'quiesce' | 'remove';

/**
 * A hook's command: a program and its arguments (no shell; placeholders such as {service}
 * replaced in each argument), or a shell line, run with /bin/sh -c only when asked for (its
 * facts are in WARDEN_* variables, never pasted into the line).
 */
export type HookCommand = { readonly argv: readonly string[] } | { readonly shell: string };

/** The hooks a real server runs: its own, or inherited from its service and `defaults`. */
export interface ServerHooks {
  readonly serverUp?: HookCommand;
  readonly serverDown?: HookCommand;
  /** Each run is killed (its whole process group) after this. */
  readonly timeoutMs: number;
  /** Run as this user (name or uid) and group; unset: the daemon's user. */
  readonly user?: string;
  readonly group?: string;
}

/** The hooks a virtual service runs when it enters or leaves fallback, or gains or loses quorum. */
export interface ServiceHooks {
  readonly fallbackOn?: HookCommand;
  readonly fallbackOff?: HookCommand;
  readonly quorumUp?: HookCommand;
  readonly quorumDown?: HookCommand;
  readonly timeoutMs: number;
  readonly user?: string;
  readonly group?: string;
}

/**
 * keepalived's quorum: the healthy weight (the sum of the configured weights of the healthy real
 * servers) a service needs. It is lost below `weight - hysteresis` and gained again at
 * `weight + hysteresis`, so a pool at the edge does not flap.
 */
export interface Quorum {
  readonly weight: number;
  readonly hysteresis: number;
}

export interface RealServerConfig {
  /** `address:port`, or the configured name. */
  readonly name: string;
  /** The destination with its configured weight (the weight it has when healthy). */
  readonly destination: DestinationSpec;
  /** Put in maintenance from the config: weight 0, existing connections continue. */
  readonly maintenance: boolean;
  /** Empty: no checks, always healthy (ldirectord's checktype = on). */
  readonly checks: readonly CheckConfig[];
  readonly timing: CheckTiming;
  readonly policy: HealthPolicy;
  /** A recovered server's weight ramps up over this window (0: at once). */
  readonly slowStartMs: number;
  /** Commands run when it goes up or down; absent when none is configured. */
  readonly hooks?: ServerHooks;
  /**
   * Its checks go through the virtual service's data path: to the VIP and port, with this
   * fwmark, which an IPVS fwmark service of this server alone (`dataPathFor`) forwards to it.
   */
  readonly dataPath?: {
    readonly mark: number;
    readonly family: Family;
    readonly address: string;
    readonly port: number;
  };
}

export interface VirtualServiceConfig {
  /** The configured name, or the service as ipvsadm shows it. */
  readonly name: string;
  readonly service: ServiceSpec;
  readonly onFailure: FailureAction;
  /** A removed server is deleted when its connections reach zero or this passes (0: at once). */
  readonly drainTimeoutMs: number;
  /** Added while no real server is healthy (ldirectord's fallback). */
  readonly fallback: DestinationSpec | null;
  /** Below this fraction of healthy servers every server stays in rotation (0: off). */
  readonly panicThreshold: number;
  /**
   * Above this fraction of servers that this director cannot check (local errors: descriptors,
   * memory, ports), the service's table is held as it is (0: off).
   */
  readonly holdThreshold: number;
  /**
   * Absent: the service has quorum while any real server is healthy. Lost quorum brings the
   * fallback in and, when set, takes the healthy servers out (keepalived's sorry server).
   */
  readonly quorum?: Quorum;
  /**
   * Its VIP is announced (a host route the site's BGP daemon exports, daemon.announce) while it
   * has quorum, the daemon runs and the director is not drained. Always false for fwmark.
   */
  readonly announce: boolean;
  /** Commands run when it enters or leaves fallback or quorum; absent when none is configured. */
  readonly hooks?: ServiceHooks;
  /**
   * Made by the daemon, not written: the fwmark service that carries the data-path checks of
   * one real server (its virtual service's name and the server's name).
   */
  readonly dataPathFor?: { readonly service: string; readonly server: string };
  /** What it overrides of the top level's email alerts; absent when it writes none. */
  readonly alerts?: ServiceAlerts;
  readonly realServers: readonly RealServerConfig[];
}

export interface Config {
  readonly daemon: DaemonSettings;
  readonly virtualServices: readonly VirtualServiceConfig[];
  /** Where transitions are announced (email, webhooks); absent: nowhere. */
  readonly alerts?: AlertsConfig;
}
