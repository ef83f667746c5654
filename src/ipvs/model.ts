// The IPVS table as data: identities (keys) apart from settings (specs) and from live state.
// Keys are what the kernel looks entries up by; everything a diff compares starts from them.

export type Family = 4 | 6;
export type Protocol = 'tcp' | 'udp' | 'sctp';
/** Forwarding method (IP_VS_CONN_F_FWD_MASK): ipvsadm's -m, -g, -i, plus the two the kernel reports. */
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
/** IP_VS_CONN_F_TUNNEL_TYPE_*. */
export type TunnelType = 'ipip' | 'gue' | 'gre';

export interface AddressServiceKey {
  readonly family: Family;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
}
export interface FwmarkServiceKey {
  readonly family: Family;
  readonly fwmark: number;
}
export type ServiceKey = AddressServiceKey | FwmarkServiceKey;

export const isFwmark = (key: ServiceKey): key is FwmarkServiceKey => 'fwmark' in key;

export interface ServiceSpec {
  readonly key: ServiceKey;
  /** Scheduler name ("wlc", "mh", ...), or "none". */
  readonly scheduler: string;
  /**
   * Scheduler flags as a bit set: 1 = flag-1 (IP_VS_SVC_F_SCHED1: sh-fallback, mh-fallback),
   * 2 = flag-2 (sh-port, mh-port), 4 = flag-3.
   */
  readonly schedFlags: number;
  /** IP_VS_SVC_F_PERSISTENT (ipvsadm -p). */
  readonly persistent: boolean;
  /** Persistence timeout in seconds. */
  readonly timeout: number;
  /** Persistence granularity as a prefix length: 0..32 for IPv4, 1..128 for IPv6. */
  readonly netmask: number;
  /** IP_VS_SVC_F_ONEPACKET (ipvsadm -o). */
  readonly onePacket: boolean;
  /** Persistence engine ("sip"), or "" for none. */
  readonly pe: string;
}

export interface DestinationKey {
  readonly family: Family;
  readonly address: string;
  readonly port: number;
}

export interface TunnelSpec {
  readonly type: TunnelType;
  /** UDP port for GUE (required by the kernel for GUE); 0 otherwise. */
  readonly port: number;
  /** IP_VS_TUNNEL_ENCAP_FLAG_CSUM */
  readonly csum: boolean;
  /** IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM */
  readonly remcsum: boolean;
}

export interface DestinationSpec {
  readonly key: DestinationKey;
  readonly fwd: ForwardMethod;
  /** 0 quiesces: no new connections, existing ones continue. */
  readonly weight: number;
  /** Connection thresholds; 0 means no limit. */
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  /** Encapsulation, present exactly when fwd is "tunnel". */
  readonly tunnel: TunnelSpec | null;
}

/** The kernel's 64-bit counters and rate estimates (struct ip_vs_kstats via *_STATS64). */
export interface Stats {
  readonly conns: bigint;
  readonly inPkts: bigint;
  readonly outPkts: bigint;
  readonly inBytes: bigint;
  readonly outBytes: bigint;
  readonly cps: bigint;
  readonly inPps: bigint;
  readonly outPps: bigint;
  readonly inBps: bigint;
  readonly outBps: bigint;
}

export interface ServiceState extends ServiceSpec {
  readonly stats: Stats;
}

/** A destination's settings and connection counts: what a reconcile compares. */
export interface DestinationLayout extends DestinationSpec {
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistentConns: number;
}

export interface DestinationState extends DestinationLayout {
  readonly stats: Stats;
}

/** A service and its destinations without statistics (IpvsBackend.layout). */
export interface LayoutEntry {
  readonly service: ServiceSpec;
  readonly destinations: readonly DestinationLayout[];
}

export interface TableEntry extends LayoutEntry {
  readonly service: ServiceState;
  readonly destinations: readonly DestinationState[];
}

export interface IpvsInfo {
  /** "1.2.1" */
  readonly version: string;
  /** Connection hash table size. */
  readonly connTableSize: number;
}

export type SyncDaemonRole = 'master' | 'backup';

/**
 * A connection-sync daemon (ipvsadm --start-daemon). One of each role may run at a time. Read
 * back, every field is what the kernel holds: the defaults it filled in, `maxPacketLength` as it
 * clamped or derived it from the interface's MTU.
 */
export interface SyncDaemonSpec {
  readonly state: SyncDaemonRole;
  /** The multicast interface (IFNAMSIZ - 1 characters at most). */
  readonly interface: string;
  /** 0..255; a backup accepts only messages of its sync id (0: every id). */
  readonly syncId: number;
  /** IPv4 or IPv6 multicast group; the kernel's default is 224.0.0.81. */
  readonly group: string;
  /** UDP port (base); the kernel's default is 8848. */
  readonly port: number;
  /** Multicast TTL, 1..255; the kernel's default is 1. */
  readonly ttl: number;
  /** UDP payload size; 0 asks the kernel for the interface's MTU minus the headers. */
  readonly maxPacketLength: number;
}

export type SyncDaemonState = SyncDaemonSpec;

/** Connection timeouts in seconds (ipvsadm --set). */
export interface Timeouts {
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

export const ZERO_STATS: Stats = Object.freeze({
  conns: 0n,
  inPkts: 0n,
  outPkts: 0n,
  inBytes: 0n,
  outBytes: 0n,
  cps: 0n,
  inPps: 0n,
  outPps: 0n,
  inBps: 0n,
  outBps: 0n,
});

/** A kernel-table write; the unit that `IpvsBackend.apply` pipelines and reports on. */
export type Operation =
  | { readonly op: 'add-service'; readonly service: ServiceSpec }
  | { readonly op: 'update-service'; readonly service: ServiceSpec }
  | { readonly op: 'delete-service'; readonly service: ServiceKey }
  | {
      readonly op: 'add-destination';
      readonly service: ServiceKey;
      readonly destination: DestinationSpec;
    }
  | {
      readonly op: 'update-destination';
      readonly service: ServiceKey;
      readonly destination: DestinationSpec;
    }
  | {
      readonly op: 'delete-destination';
      readonly service: ServiceKey;
      readonly destination: DestinationKey;
    };
