// Builders with ipvsadm's defaults, wire-level validation shared by every backend, and key text.
import { addressRange, addressToBytes, canonicalAddress } from './address.js';
import { IpvsError } from './errors.js';
import { flat } from '../flat.js';
import {
  isFwmark,
  type DestinationKey,
  type DestinationSpec,
  type Family,
  type ForwardMethod,
  type Protocol,
  type ServiceKey,
  type ServiceSpec,
  type LayoutEntry,
  type TunnelSpec,
} from './model.js';

/** IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN include the NUL. */
const NAME_MAX = 15;
const U32_MAX = 0xffffffff;
/** The kernel keeps weights and thresholds in an int. */
const INT_MAX = 0x7fffffff;
/** The longest persistence timeout in s: the kernel keeps it in a u32 of jiffies-sized ms. */
export const PERSISTENCE_MAX_S = Math.floor(U32_MAX / 1000);

export type ServiceInput = Partial<Omit<ServiceSpec, 'key'>> & { readonly key: ServiceKey };
export type DestinationInput = Partial<Omit<DestinationSpec, 'key' | 'tunnel'>> & {
  readonly key: DestinationKey;
  readonly tunnel?: Partial<TunnelSpec> | null;
};

/** A full service spec with ipvsadm's defaults (wlc, persistence 300 s only when persistent). */
export function serviceSpec(input: ServiceInput): ServiceSpec {
  const persistent = input.persistent ?? false;
  return {
    key: normalizeServiceKey(input.key),
    scheduler: input.scheduler ?? 'wlc',
    schedFlags: input.schedFlags ?? 0,
    persistent,
    timeout: input.timeout ?? (persistent ? 300 : 0),
    netmask: input.netmask ?? (input.key.family === 4 ? 32 : 128),
    onePacket: input.onePacket ?? false,
    pe: input.pe ?? '',
  };
}

/** A full destination spec with ipvsadm's defaults (masq, weight 1, no thresholds, ipip). */
export function destinationSpec(input: DestinationInput): DestinationSpec {
  const fwd: ForwardMethod = input.fwd ?? 'masq';
  return {
    key: normalizeDestinationKey(input.key),
    fwd,
    weight: input.weight ?? 1,
    upperThreshold: input.upperThreshold ?? 0,
    lowerThreshold: input.lowerThreshold ?? 0,
    tunnel:
      fwd === 'tunnel'
        ? {
            type: input.tunnel?.type ?? 'ipip',
            port: input.tunnel?.port ?? 0,
            csum: input.tunnel?.csum ?? false,
            remcsum: input.tunnel?.remcsum ?? false,
          }
        : null,
  };
}

const PROTOCOL_NAMES: Record<Protocol, string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

function hostPort(family: Family, address: string, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** "TCP 10.0.0.1:80", "UDP [2001:db8::1]:53", "FWM 7", "FWM 7 IPv6" — as ipvsadm shows them. */
export function formatServiceKey(key: ServiceKey): string {
  if (isFwmark(key)) return `FWM ${key.fwmark}${key.family === 6 ? ' IPv6' : ''}`;
  return `${PROTOCOL_NAMES[key.protocol]} ${hostPort(key.family, key.address, key.port)}`;
}

export function formatDestinationKey(key: DestinationKey): string {
  return hostPort(key.family, key.address, key.port);
}

export function formatTarget(service: ServiceKey, destination?: DestinationKey): string {
  const svc = formatServiceKey(service);
  return destination ? `${svc} -> ${formatDestinationKey(destination)}` : svc;
}

/** One string per key, equal exactly when the kernel would see the same entry. */
export function serviceId(key: ServiceKey): string {
  return flat(
    isFwmark(key)
      ? `fwm/${key.family}/${key.fwmark}`
      : `${key.protocol}/${key.family}/${key.address}/${key.port}`,
  );
}

export function destinationId(key: DestinationKey): string {
  return flat(`${key.family}/${key.address}/${key.port}`);
}

/** A destination within its service: the id drains, drift, health, metrics and status share. */
export function targetId(service: ServiceKey, destination: DestinationKey): string {
  return targetIdWithin(serviceId(service), destination);
}

/** targetId with the service's id already made (a table's destinations, service by service). */
export function targetIdWithin(sid: string, destination: DestinationKey): string {
  return flat(`${sid}>${destinationId(destination)}`);
}

/** Every destination of a table by its target id. */
export function destinationsByTarget<E extends LayoutEntry>(
  table: readonly E[],
): Map<string, E['destinations'][number]> {
  const out = new Map<string, E['destinations'][number]>();
  for (const e of table) {
    const sid = serviceId(e.service.key);
    for (const d of e.destinations) out.set(targetIdWithin(sid, d.key), d);
  }
  return out;
}

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffff;
const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= U32_MAX;

function invalid(op: string, target: string, detail: string): IpvsError {
  return new IpvsError('EINVAL', { op, target, detail });
}

function checkFamily(family: Family, op: string, what: unknown): void {
  if (family !== 4 && family !== 6) {
    throw invalid(op, JSON.stringify(what), `family must be 4 or 6, got ${String(family)}`);
  }
}

/** The canonical address of an address and port, or EINVAL naming which is wrong. */
function checkHostPort(
  family: Family,
  address: string,
  port: number,
  op: string,
  what: unknown,
): string {
  const canonical = canonicalAddress(family, address);
  if (canonical === null) {
    throw invalid(op, JSON.stringify(what), `address ${address} is not an IPv${family} address`);
  }
  if (!isPort(port)) throw invalid(op, canonical, `port must be 0..65535, got ${port}`);
  return canonical;
}

/** Canonical form of a service key; throws EINVAL naming the field when it cannot be sent. */
export function normalizeServiceKey(key: ServiceKey, op = 'service'): ServiceKey {
  checkFamily(key.family, op, key);
  if (isFwmark(key)) {
    if (!isU32(key.fwmark) || key.fwmark === 0) {
      throw invalid(op, `FWM ${key.fwmark}`, 'fwmark must be an integer in 1..4294967295');
    }
    return { family: key.family, fwmark: key.fwmark };
  }
  if (!(key.protocol in PROTOCOL_NAMES)) {
    throw invalid(
      op,
      JSON.stringify(key),
      `protocol must be tcp, udp or sctp, got ${key.protocol as string}`,
    );
  }
  const address = checkHostPort(key.family, key.address, key.port, op, key);
  return { family: key.family, protocol: key.protocol, address, port: key.port };
}

export function normalizeDestinationKey(key: DestinationKey, op = 'destination'): DestinationKey {
  checkFamily(key.family, op, key);
  const address = checkHostPort(key.family, key.address, key.port, op, key);
  return { family: key.family, address, port: key.port };
}

/**
 * What cannot be put on the wire at all. Everything the kernel itself judges (unknown scheduler,
 * weight above INT_MAX, thresholds the wrong way round) is left to the kernel, or to the memory
 * backend's imitation of it.
 */
export function checkServiceSpec(spec: ServiceSpec, op: string): ServiceSpec {
  const key = normalizeServiceKey(spec.key, op);
  const target = formatServiceKey(key);
  if (!/^[a-z0-9_]{1,15}$/i.test(spec.scheduler) || spec.scheduler.length > NAME_MAX) {
    throw invalid(op, target, `scheduler must be a name of 1..15 letters, got "${spec.scheduler}"`);
  }
  if (spec.pe !== '' && !/^[a-z0-9_]{1,15}$/i.test(spec.pe)) {
    throw invalid(
      op,
      target,
      `persistence engine must be a name of 1..15 letters, got "${spec.pe}"`,
    );
  }
  if (!Number.isInteger(spec.schedFlags) || spec.schedFlags < 0 || spec.schedFlags > 7) {
    throw invalid(
      op,
      target,
      `scheduler flags must be a bit set of 1, 2, 4, got ${spec.schedFlags}`,
    );
  }
  if (!isU32(spec.timeout) || spec.timeout > PERSISTENCE_MAX_S) {
    throw invalid(
      op,
      target,
      `persistence timeout must be 0..${PERSISTENCE_MAX_S} s, got ${spec.timeout}`,
    );
  }
  const maxPrefix = key.family === 4 ? 32 : 128;
  if (!Number.isInteger(spec.netmask) || spec.netmask < 0 || spec.netmask > maxPrefix) {
    throw invalid(
      op,
      target,
      `persistence netmask must be a prefix length 0..${maxPrefix}, got ${spec.netmask}`,
    );
  }
  return { ...spec, key };
}

export function checkDestinationSpec(
  dest: DestinationSpec,
  op: string,
  service: ServiceKey,
): DestinationSpec {
  const key = normalizeDestinationKey(dest.key, op);
  const target = formatTarget(service, key);
  for (const [name, value] of [
    ['weight', dest.weight],
    ['upper threshold', dest.upperThreshold],
    ['lower threshold', dest.lowerThreshold],
  ] as const) {
    if (!isU32(value))
      throw invalid(op, target, `${name} must be an integer 0..${INT_MAX}, got ${value}`);
  }
  if ((dest.fwd === 'tunnel') !== (dest.tunnel !== null)) {
    throw invalid(
      op,
      target,
      'tunnel settings are given exactly when the forwarding method is "tunnel"',
    );
  }
  if (dest.tunnel && !isPort(dest.tunnel.port)) {
    throw invalid(op, target, `tunnel port must be 0..65535, got ${dest.tunnel.port}`);
  }
  return { ...dest, key };
}

/** Schedulers of a stock Debian kernel (ip_vs_twos is not built there). */
export const KERNEL_SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'fo',
  'ovf',
  'mh',
] as const;

/** Persistence engines of a stock kernel (ip_vs_pe_sip). */
export const KERNEL_PERSISTENCE_ENGINES = ['sip'] as const;

/** A value the kernel refuses although it fits the wire: its errno, the field, and why. */
export interface KernelProblem {
  readonly code: 'EINVAL' | 'ERANGE' | 'ENOENT';
  readonly field: 'key' | 'scheduler' | 'pe' | 'netmask' | 'weight' | 'lowerThreshold' | 'tunnel';
  readonly detail: string;
}

/**
 * The kernel's judgement of a service's values (ip_vs_ctl.c: the scheduler and persistence
 * engine modules must exist, an IPv6 persistence prefix is 1..128). One rule for the memory
 * table and the config, so a config that validates is one the kernel accepts.
 */
export function serviceProblem(
  spec: ServiceSpec,
  loaded: {
    readonly schedulers: ReadonlySet<string>;
    readonly engines: ReadonlySet<string>;
  },
): KernelProblem | null {
  if (spec.scheduler !== 'none' && !loaded.schedulers.has(spec.scheduler)) {
    return {
      code: 'ENOENT',
      field: 'scheduler',
      detail: `scheduler module ip_vs_${spec.scheduler} not found`,
    };
  }
  if (spec.pe !== '' && !loaded.engines.has(spec.pe)) {
    return {
      code: 'ENOENT',
      field: 'pe',
      detail: `persistence engine module ip_vs_pe_${spec.pe} not found`,
    };
  }
  if (spec.key.family === 6 && spec.netmask < 1) {
    return { code: 'EINVAL', field: 'netmask', detail: 'IPv6 persistence prefix must be 1..128' };
  }
  return null;
}

/**
 * The kernel's judgement of a destination's values (ip_vs_ctl.c ip_vs_check_udest and
 * ip_vs_genl_set_cmd): another family only through a tunnel, weight and thresholds in an int,
 * the lower threshold never above the upper (whatever the upper is, 0 included), a GUE tunnel
 * with a port, and on add no unspecified, broadcast, multicast or IPv6 link-local address.
 */
export function destinationProblem(
  dest: DestinationSpec,
  service: ServiceKey,
  adding: boolean,
): KernelProblem | null {
  if (dest.key.family !== service.family && dest.fwd !== 'tunnel') {
    return {
      code: 'EINVAL',
      field: 'key',
      detail: `an IPv${dest.key.family} real server in an IPv${service.family} service needs tunnel forwarding`,
    };
  }
  if (dest.weight > INT_MAX) {
    return { code: 'ERANGE', field: 'weight', detail: `weight above ${INT_MAX}` };
  }
  if (dest.lowerThreshold > dest.upperThreshold) {
    return {
      code: 'ERANGE',
      field: 'lowerThreshold',
      detail: `lower threshold ${dest.lowerThreshold} above upper threshold ${dest.upperThreshold}`,
    };
  }
  if (dest.tunnel?.type === 'gue' && dest.tunnel.port === 0) {
    return { code: 'EINVAL', field: 'tunnel', detail: 'a GUE tunnel needs a port' };
  }
  if (adding) {
    const range = addressRange(dest.key.family, dest.key.address);
    const refused = ['unspecified', 'broadcast', 'multicast', 'linkLocal'].includes(range);
    if (refused && !(range === 'linkLocal' && dest.key.family === 4)) {
      return {
        code: 'EINVAL',
        field: 'key',
        detail: `a ${range} address cannot be a real server`,
      };
    }
  }
  return null;
}

/** Fixed-width hex of an address's bytes, so that text order is byte order. */
function addressSortText(family: Family, address: string): string {
  if (family === 4) {
    let out = '';
    for (const part of address.split('.')) out += Number(part).toString(16).padStart(2, '0');
    return out;
  }
  return addressToBytes(family, address).toString('hex');
}

/**
 * Text that sorts as the table is listed: IPv4 before IPv6, address services before fwmark
 * ones, then by address bytes, port and protocol.
 */
export function serviceSortKey(key: ServiceKey): string {
  if (isFwmark(key)) return `${key.family}1${key.fwmark.toString(16).padStart(8, '0')}`;
  return `${key.family}0${addressSortText(key.family, key.address)}${key.port.toString(16).padStart(4, '0')}${key.protocol}`;
}

export function destinationSortKey(key: DestinationKey): string {
  return `${key.family}${addressSortText(key.family, key.address)}${key.port.toString(16).padStart(4, '0')}`;
}

export function compareServiceKeys(a: ServiceKey, b: ServiceKey): number {
  const ka = serviceSortKey(a);
  const kb = serviceSortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function compareDestinationKeys(a: DestinationKey, b: DestinationKey): number {
  const ka = destinationSortKey(a);
  const kb = destinationSortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Destinations in destinationSortKey's order. An all-IPv4 list (the common case) is ordered by
 * address and port as one number read from the canonical text, without building a key string
 * per item: a 10,000-destination dump spent more time on its sort keys than on decoding.
 */
export function sortDestinations<T extends { readonly key: DestinationKey }>(
  items: readonly T[],
): T[] {
  if (!items.every((d) => d.key.family === 4))
    return sortBy(items, (e) => destinationSortKey(e.key));
  const keys = items.map((d) => v4Number(d.key.address) * 0x10000 + d.key.port);
  // The kernel lists a service's destinations newest first, so a table written in order comes
  // back in reverse order: a reversal, without sorting.
  let ascending = true;
  let descending = true;
  let previous = -1;
  for (const k of keys) {
    if (previous > k) ascending = false;
    else if (previous !== -1 && previous < k) descending = false;
    previous = k;
  }
  if (ascending) return items.slice();
  if (descending) return items.slice().reverse();
  return keys
    .map((k, i) => [k, i] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, i]) => items[i] as T);
}

/** A canonical dotted quad as a number (below 2^32). */
function v4Number(text: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return n * 256 + part;
}

/** Sorts by a key computed once per item (a table of 10,000 destinations sorts without re-parsing addresses). */
export function sortBy<T>(items: readonly T[], sortKey: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, k: sortKey(item) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((e) => e.item);
}
