// The validated config as the rest of the daemon sees it: every default filled in, every
// inherited setting resolved, addresses canonical. Nothing here is raw YAML.
import type {
  DnsCheckOptions,
  ExecCheckOptions,
  HttpCheckOptions,
  TcpCheckOptions,
} from '../health/options.js';
import type { HealthPolicy } from '../health/policy.js';
import type { CheckTiming } from '../health/timing.js';
import type { DestinationSpec, Family, ServiceSpec } from '../ipvs/model.js';
import type { DaemonSettings } from './daemon.js';

export type CheckConfig = (
  | { readonly type: 'tcp'; readonly options: TcpCheckOptions }
  | { readonly type: 'http' | 'https'; readonly options: HttpCheckOptions }
  | { readonly type: 'dns'; readonly options: DnsCheckOptions }
  | { readonly type: 'exec'; readonly options: ExecCheckOptions }
) & {
  /** Probe this address/port instead of the real server's (keepalived connect_ip, ldirectord checkport). */
  readonly address?: { readonly family: Family; readonly address: string };
  readonly port?: number;
  /** The TLS files, resolved: check-config names them (their content never leaves the process). */
  readonly tlsFiles?: TlsFiles;
};

export interface TlsFiles {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export type FailureAction = 'quiesce' | 'remove';

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
  readonly realServers: readonly RealServerConfig[];
}

export interface Config {
  readonly daemon: DaemonSettings;
  readonly virtualServices: readonly VirtualServiceConfig[];
}
