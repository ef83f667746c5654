// `defaults:` and `virtual_services:`: validated by hand (convict does not do lists of objects),
// every problem recorded at its path. Settings are inherited downward: defaults -> virtual service
// -> real server, the nearest one written wins.
import { DEFAULT_POLICY, type HealthPolicy } from '../health/policy.js';
import { DEFAULT_TIMING, type CheckTiming } from '../health/timing.js';
import type {
  DestinationSpec,
  Family,
  ForwardMethod,
  Protocol,
  ServiceKey,
  ServiceSpec,
  TunnelSpec,
} from '../ipvs/model.js';
import { flat } from '../flat.js';
import { IpvsError } from '../ipvs/errors.js';
import { isFwmark } from '../ipvs/model.js';
import {
  KERNEL_PERSISTENCE_ENGINES,
  KERNEL_SCHEDULERS,
  PERSISTENCE_MAX_S,
  checkDestinationSpec,
  checkServiceSpec,
  destinationId,
  destinationProblem,
  destinationSpec,
  formatDestinationKey,
  formatServiceKey,
  serviceId,
  serviceProblem,
  serviceSpec,
  type KernelProblem,
} from '../ipvs/spec.js';
import { readServiceAlerts } from './alerts.js';
import { readCheck, type CheckReading } from './checks.js';
import {
  HOOK_KEYS,
  SERVER_HOOK_KEYS,
  inheritHooks,
  readHooks,
  serverHooks,
  serviceHooks,
  type HookSettings,
} from './hooks.js';
import type {
  CheckConfig,
  FailureAction,
  Quorum,
  RealServerConfig,
  VirtualServiceConfig,
} from './model.js';
import {
  checkKeys,
  defined,
  describe,
  isObj,
  readAddress,
  readBool,
  readDuration,
  readEnum,
  readInt,
  readNumber,
  readString,
  type Obj,
  type Path,
  type Problems,
} from './reader.js';

/** Settings a real server has; also written at virtual-service and defaults level. */
export const SERVER_KEYS = [
  'fwd',
  'weight',
  'upper_threshold',
  'lower_threshold',
  'tunnel',
  'checks',
  'rise',
  'fall',
  'initial',
  'interval',
  'fast_interval',
  'down_interval',
  'timeout',
  'jitter',
  'slow_start',
  'data_path',
];
/** Settings of a virtual service; also written at defaults level. */
export const SERVICE_KEYS = [
  'scheduler',
  'sched_flags',
  'persistent',
  'netmask',
  'one_packet',
  'pe',
  'on_failure',
  'drain_timeout',
  'panic_threshold',
  'hold_threshold',
  'quorum',
  'announce',
  'hooks',
];
export const VS_KEYS = [
  'name',
  'protocol',
  'address',
  'port',
  'fwmark',
  'family',
  'fallback',
  'alerts',
  'real_servers',
];
export const RS_KEYS = ['name', 'address', 'port', 'state', 'hooks'];
/** What a real server's mapping may hold: its own keys and the settings it can override. */
const REAL_SERVER_KEYS: readonly string[] = [...RS_KEYS, ...SERVER_KEYS];
export const FALLBACK_KEYS = ['address', 'port', 'fwd', 'weight'];
const TUNNEL_KEYS = ['type', 'port', 'csum', 'remcsum'];
const FWD: readonly ForwardMethod[] = ['masq', 'route', 'tunnel'];
/** ipvsadm's names for the scheduler flags, as bits of IP_VS_SVC_F_SCHED1..3. */
const SCHED_FLAGS: Record<string, number> = {
  'flag-1': 1,
  'flag-2': 2,
  'flag-3': 4,
  'sh-fallback': 1,
  'sh-port': 2,
  'mh-fallback': 1,
  'mh-port': 2,
};
const HOUR = 3_600_000;
/** Check intervals: 100ms keeps a check from hammering; beyond an hour it no longer checks health. */
const INTERVAL = { min: 100, max: HOUR };
/** The kernel takes a persistence timeout in seconds that fit in a u32 of ms (ipvsadm's limit). */
const PERSISTENCE = { min: 1000, max: PERSISTENCE_MAX_S * 1000 };
/** ipvsadm -w accepts 0..65535. */
const WEIGHT_MAX = 65535;

interface ServerSettings {
  /**
   * Keys whose value was refused, here or at the nearest level that wrote them: a rule that
   * reads one stays silent (its problem is already reported, and the default in its place
   * would make a problem that is not there).
   */
  refused?: ReadonlySet<string>;
  fwd?: ForwardMethod;
  weight?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  tunnel?: Partial<TunnelSpec>;
  checks?: readonly CheckConfig[];
  rise?: number;
  fall?: number;
  initial?: 'up' | 'down';
  intervalMs?: number;
  fastIntervalMs?: number;
  downIntervalMs?: number;
  timeoutMs?: number;
  jitter?: number;
  slowStartMs?: number;
  dataPath?: boolean;
}

interface ServiceSettings {
  refused?: ReadonlySet<string>;
  scheduler?: string;
  schedFlags?: number;
  persistent?: number | false;
  netmask?: number;
  onePacket?: boolean;
  pe?: string;
  onFailure?: FailureAction;
  drainTimeoutMs?: number;
  panicThreshold?: number;
  holdThreshold?: number;
  quorum?: Quorum;
  announce?: boolean;
}

/** Shared by every level that refused nothing (most do): no set of its own for each real server. */
const NONE: ReadonlySet<string> = new Set();

/** The keys directly under `path` that problems recorded since `before` are about. */
function refusedSince(p: Problems, before: number, path: Path): ReadonlySet<string> {
  if (p.list.length === before) return NONE;
  const keys = new Set<string>();
  for (const x of p.list.slice(before)) {
    const key = x.path[path.length];
    if (x.path.length > path.length && path.every((part, i) => x.path[i] === part))
      keys.add(String(key));
  }
  return keys;
}

/** Both sets in one, without a copy when either is empty. */
function union(a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): ReadonlySet<string> {
  if (!a || a.size === 0) return b;
  if (b.size === 0) return a;
  return new Set([...a, ...b]);
}

/** `own` over `upper`: a key written at this level, valid or not, hides the one above. */
function inherit<S extends { refused?: ReadonlySet<string> }>(upper: S, own: S, written: Obj): S {
  const above = upper.refused?.size
    ? new Set([...upper.refused].filter((k) => written[k] === undefined))
    : NONE;
  // Object.assign, not a spread: V8 gave each spread copy a map of its own (measured), so every
  // read of a setting missed its inline cache; keys added in turn share maps.
  return Object.assign({}, upper, own, { refused: union(above, own.refused ?? NONE) });
}

function readServerSettings(o: Obj, path: Path, p: Problems, ctx: CheckReading): ServerSettings {
  const at = (key: string): Path => [...path, key];
  const before = p.list.length;
  let tunnel: Partial<TunnelSpec> | undefined;
  if (o.tunnel !== undefined) {
    if (!isObj(o.tunnel)) p.add(at('tunnel'), `must be a mapping of ${TUNNEL_KEYS.join(', ')}`);
    else {
      checkKeys(o.tunnel, TUNNEL_KEYS, at('tunnel'), p);
      tunnel = defined<Partial<TunnelSpec>>({
        type: readEnum(
          o.tunnel.type,
          ['ipip', 'gue', 'gre'] as const,
          [...at('tunnel'), 'type'],
          p,
        ),
        port: readInt(o.tunnel.port, 1, 65535, [...at('tunnel'), 'port'], p),
        csum: readBool(o.tunnel.csum, [...at('tunnel'), 'csum'], p),
        remcsum: readBool(o.tunnel.remcsum, [...at('tunnel'), 'remcsum'], p),
      });
    }
  }
  let checks: CheckConfig[] | undefined;
  if (o.checks !== undefined) {
    if (!Array.isArray(o.checks)) {
      p.add(at('checks'), `must be a list of checks ([] for none), got ${describe(o.checks)}`);
    } else {
      checks = [];
      o.checks.forEach((c: unknown, i) => {
        const check = readCheck(c, [...at('checks'), i], p, ctx);
        if (check) checks?.push(check);
      });
    }
  }
  const settings = defined<ServerSettings>({
    fwd: readEnum(o.fwd, FWD, at('fwd'), p),
    weight: readInt(o.weight, 0, WEIGHT_MAX, at('weight'), p),
    upperThreshold: readInt(o.upper_threshold, 0, 0x7fffffff, at('upper_threshold'), p),
    lowerThreshold: readInt(o.lower_threshold, 0, 0x7fffffff, at('lower_threshold'), p),
    tunnel,
    checks,
    rise: readInt(o.rise, 1, 1000, at('rise'), p),
    fall: readInt(o.fall, 1, 1000, at('fall'), p),
    initial: readEnum(o.initial, ['up', 'down'] as const, at('initial'), p),
    intervalMs: readDuration(o.interval, INTERVAL, at('interval'), p),
    fastIntervalMs: readDuration(o.fast_interval, INTERVAL, at('fast_interval'), p),
    downIntervalMs: readDuration(o.down_interval, INTERVAL, at('down_interval'), p),
    timeoutMs: readDuration(o.timeout, { min: 10, max: HOUR }, at('timeout'), p),
    jitter: readNumber(o.jitter, 0, 1, at('jitter'), p),
    slowStartMs: readDuration(o.slow_start, { min: 0, max: HOUR }, at('slow_start'), p),
    dataPath: readBool(o.data_path, at('data_path'), p),
  });
  return Object.assign(settings, { refused: refusedSince(p, before, path) });
}

/** The largest healthy weight a quorum may ask for (IPVS weights are 32-bit). */
const MAX_QUORUM = 2 ** 31 - 1;

/**
 * `quorum: 30` or `quorum: {weight: 30, hysteresis: 5}` (keepalived's quorum and hysteresis). A
 * hysteresis at or above the weight is allowed, as keepalived allows it: quorum is then lost
 * only when no healthy weight is left.
 */
function readQuorum(raw: unknown, path: Path, p: Problems): Quorum | undefined {
  if (raw === undefined) return undefined;
  if (!isObj(raw)) {
    const weight = readInt(raw, 1, MAX_QUORUM, path, p);
    return weight === undefined ? undefined : { weight, hysteresis: 0 };
  }
  checkKeys(raw, ['weight', 'hysteresis'], path, p);
  if (raw.weight === undefined) {
    p.add([...path, 'weight'], 'is required: the healthy weight the service needs');
    return undefined;
  }
  const weight = readInt(raw.weight, 1, MAX_QUORUM, [...path, 'weight'], p);
  const hysteresis = readInt(raw.hysteresis ?? 0, 0, MAX_QUORUM, [...path, 'hysteresis'], p);
  if (weight === undefined || hysteresis === undefined) return undefined;
  return { weight, hysteresis };
}

function readServiceSettings(o: Obj, path: Path, p: Problems): ServiceSettings {
  const at = (key: string): Path => [...path, key];
  const before = p.list.length;
  let schedFlags: number | undefined;
  if (o.sched_flags !== undefined) {
    const list = typeof o.sched_flags === 'string' ? [o.sched_flags] : o.sched_flags;
    if (!Array.isArray(list)) p.add(at('sched_flags'), 'must be a list of flag names');
    else {
      schedFlags = 0;
      list.forEach((f: unknown, i) => {
        const bit = typeof f === 'string' ? SCHED_FLAGS[f] : undefined;
        if (bit === undefined) {
          p.add(
            [...at('sched_flags'), i],
            `must be one of ${Object.keys(SCHED_FLAGS).join(', ')}, got ${describe(f)}`,
          );
        } else schedFlags = (schedFlags ?? 0) | bit;
      });
    }
  }
  let persistent: number | false | undefined;
  if (o.persistent === false) persistent = false;
  else if (o.persistent === true) persistent = 300;
  else if (o.persistent !== undefined) {
    const ms = readDuration(o.persistent, PERSISTENCE, at('persistent'), p);
    if (ms !== undefined) persistent = Math.round(ms / 1000);
  }
  const scheduler = readString(o.scheduler, at('scheduler'), p);
  const settings = defined<ServiceSettings>({
    scheduler,
    schedFlags,
    persistent,
    netmask: readInt(o.netmask, 0, 128, at('netmask'), p),
    onePacket: readBool(o.one_packet, at('one_packet'), p),
    pe: readEnum(o.pe, ['sip', ''] as const, at('pe'), p),
    onFailure: readEnum(o.on_failure, ['quiesce', 'remove'] as const, at('on_failure'), p),
    drainTimeoutMs: readDuration(
      o.drain_timeout,
      { min: 0, max: 24 * HOUR },
      at('drain_timeout'),
      p,
    ),
    panicThreshold: readNumber(o.panic_threshold, 0, 1, at('panic_threshold'), p),
    holdThreshold: readNumber(o.hold_threshold, 0, 1, at('hold_threshold'), p),
    quorum: readQuorum(o.quorum, at('quorum'), p),
    announce: readBool(o.announce, at('announce'), p),
  });
  return Object.assign(settings, { refused: refusedSince(p, before, path) });
}

function pick(o: Obj, keys: readonly string[]): Obj {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k)));
}

/**
 * A service key as far as it could be read. When part of it is wrong the rest still judges the
 * service's settings and real servers, so one mistake in the key hides nothing else.
 */
interface KeyRead {
  /** The whole key, when every part of it is valid. */
  readonly key: ServiceKey | undefined;
  /** From the address, or a fwmark service's `family`, when that is valid. */
  readonly family: Family | undefined;
  readonly kind: Protocol | 'fwmark' | undefined;
  /** The port a real server defaults to (0 for fwmark), when valid. */
  readonly port: number | undefined;
}

function readServiceKey(o: Obj, path: Path, p: Problems): KeyRead {
  const at = (key: string): Path => [...path, key];
  if (o.fwmark !== undefined) {
    for (const k of ['protocol', 'address', 'port']) {
      if (o[k] !== undefined)
        p.add(at(k), 'not with fwmark: a firewall-mark service has no address');
    }
    const fwmark = readInt(o.fwmark, 1, 0xffffffff, at('fwmark'), p);
    const family = o.family ?? 4;
    if (family !== 4 && family !== 6) {
      p.add(at('family'), `must be 4 or 6, got ${describe(family)}`);
    }
    const fam = family === 4 || family === 6 ? family : undefined;
    return {
      key: fwmark === undefined || !fam ? undefined : { family: fam, fwmark },
      family: fam,
      kind: 'fwmark',
      port: 0,
    };
  }
  if (o.family !== undefined) p.add(at('family'), 'only for fwmark services (the address says it)');
  const protocol = readEnum<Protocol>(
    o.protocol ?? 'tcp',
    ['tcp', 'udp', 'sctp'],
    at('protocol'),
    p,
  );
  let addr: { family: Family; address: string } | undefined;
  let port: number | undefined;
  if (o.address === undefined) {
    p.add(path, 'needs address and port (or fwmark)');
    port = readInt(o.port, 0, 65535, at('port'), p);
  } else {
    addr = readAddress(o.address, at('address'), p);
    port = readInt(o.port ?? null, 0, 65535, at('port'), p);
  }
  return {
    key:
      protocol && addr && port !== undefined
        ? { family: addr.family, protocol, address: addr.address, port }
        : undefined,
    family: addr?.family,
    kind: protocol,
    port,
  };
}

/**
 * The key a service's kernel rules are judged with. Those rules read its family alone, so a
 * service whose address or port is wrong is still judged, as a firewall mark of its family.
 */
function judgedKey(k: KeyRead): ServiceKey | undefined {
  return k.key ?? (k.family ? { family: k.family, fwmark: 1 } : undefined);
}

/** A server's fields that make its destination, which the kernel's rules read. */
const DESTINATION_KEYS = [
  'address',
  'port',
  'fwd',
  'weight',
  'upper_threshold',
  'lower_threshold',
  'tunnel',
];
/** Resolved settings of one real server: inherited ones under its own. */
function realServer(
  raw: Obj,
  inherited: ServerSettings,
  inheritedHooks: HookSettings,
  svc: KeyRead,
  path: Path,
  p: Problems,
  ctx: CheckReading,
): RealServerConfig | undefined {
  checkKeys(raw, REAL_SERVER_KEYS, path, p);
  const at = (k: string): Path => [...path, k];
  const before = p.list.length;
  const s = inherit(inherited, readServerSettings(raw, path, p, ctx), raw);
  const addr = readAddress(raw.address ?? null, at('address'), p);
  // No port of its own and none from a service whose port is wrong: that problem is the service's.
  const port = readInt(raw.port ?? svc.port, 0, 65535, at('port'), p);
  const state = readEnum(raw.state, ['enabled', 'maintenance'] as const, at('state'), p);
  const name = readString(raw.name, at('name'), p);
  const hooks = serverHooks(
    inheritHooks(inheritedHooks, readHooks(raw.hooks, SERVER_HOOK_KEYS, at('hooks'), p)),
  );
  const refused = union(s.refused, refusedSince(p, before, path));
  const fwd = s.fwd ?? 'masq';
  if (s.tunnel && fwd !== 'tunnel' && !refused.has('fwd'))
    p.add(at('tunnel'), 'only with fwd: tunnel');
  const upper = s.upperThreshold ?? 0;
  const lower = s.lowerThreshold ?? 0;
  const checks =
    s.checks ?? (svc.kind === 'tcp' ? [{ type: 'tcp' as const, options: {} }] : undefined);
  if (checks === undefined) {
    if (svc.kind !== undefined && !refused.has('checks'))
      p.add(
        at('checks'),
        'a UDP, SCTP or fwmark service has no default check: give checks (dns, exec, ...), or checks: [] for none',
      );
  } else {
    checks.forEach((c, i) => {
      if (!c.port && port === 0 && !ctx.catalog.get(c.type)?.portless)
        p.add([...at('checks'), i, 'port'], 'required: the real server has no port');
    });
  }
  const timing: CheckTiming = {
    intervalMs: s.intervalMs ?? DEFAULT_TIMING.intervalMs,
    fastIntervalMs:
      s.fastIntervalMs ?? Math.min(DEFAULT_TIMING.fastIntervalMs, s.intervalMs ?? Infinity),
    downIntervalMs: s.downIntervalMs ?? s.intervalMs ?? DEFAULT_TIMING.downIntervalMs,
    timeoutMs: s.timeoutMs ?? DEFAULT_TIMING.timeoutMs,
    jitter: s.jitter ?? DEFAULT_TIMING.jitter,
  };
  if (timing.timeoutMs > timing.intervalMs && !refused.has('timeout') && !refused.has('interval')) {
    p.add(
      at('timeout'),
      `(${timing.timeoutMs} ms) must not exceed interval (${timing.intervalMs} ms)`,
    );
  }
  if (!addr || port === undefined) return undefined;
  const policy: HealthPolicy = {
    rise: s.rise ?? DEFAULT_POLICY.rise,
    fall: s.fall ?? DEFAULT_POLICY.fall,
    initial: s.initial ?? DEFAULT_POLICY.initial,
  };
  const destination = destinationSpec({
    key: { family: addr.family, address: addr.address, port },
    fwd,
    weight: s.weight ?? 1,
    upperThreshold: upper,
    lowerThreshold: lower,
    tunnel: s.tunnel ?? null,
  });
  const judged = judgedKey(svc);
  if (judged && !DESTINATION_KEYS.some((k) => refused.has(k)))
    kernelRules(destination, judged, path, p);
  if (s.dataPath && checks)
    dataPathRules(checks, fwd, svc, raw.data_path === undefined ? path : at('data_path'), p);
  if (p.list.length > before || !checks || !svc.key) return undefined;
  const key = svc.key;
  const vip = 'address' in key ? key : undefined;
  return {
    name: name ?? flat(formatDestinationKey(destination.key)),
    destination,
    maintenance: state === 'maintenance',
    checks,
    timing,
    policy,
    slowStartMs: s.slowStartMs ?? 0,
    ...(hooks ? { hooks } : {}),
    // The mark is given once every service is read (dataPathServices).
    ...(s.dataPath && vip
      ? { dataPath: { mark: 0, family: vip.family, address: vip.address, port: vip.port } }
      : {}),
  };
}

/** The checks data_path can send through the virtual service (they open TCP connections). */
export const DATA_PATH_CHECKS = ['tcp', 'http', 'https'];

/**
 * data_path: the checks reach the server through the VIP as DR or TUN traffic does, so the
 * server must be reached by one of those, at the service's own address and port.
 */
function dataPathRules(
  checks: readonly CheckConfig[],
  fwd: ForwardMethod,
  svc: KeyRead,
  path: Path,
  p: Problems,
): void {
  if (svc.kind === 'fwmark') {
    p.add(
      path,
      "data_path needs the virtual service's address and port: a fwmark service has none",
    );
    return;
  }
  if (fwd === 'masq')
    p.add(
      path,
      'data_path is for fwd: route (DR) or tunnel (TUN): through NAT the director reaches the server at its own address, which the ordinary check already probes',
    );
  if (svc.kind === 'udp' || svc.kind === 'sctp')
    p.add(
      path,
      `data_path works with TCP services (the checks ${DATA_PATH_CHECKS.join(', ')}), not ${svc.kind}`,
    );
  for (const c of checks) {
    if (!DATA_PATH_CHECKS.includes(c.type))
      p.add(
        path,
        `data_path: the ${c.type} check cannot go through the data path (${DATA_PATH_CHECKS.join(', ')} can)`,
      );
    else if (c.address || c.port !== undefined)
      p.add(
        path,
        'data_path: a check with its own address or port does not probe through the VIP; remove one or the other',
      );
  }
}

function readFallback(
  raw: unknown,
  svc: KeyRead,
  path: Path,
  p: Problems,
): DestinationSpec | null | undefined {
  if (raw === undefined || raw === null) return null;
  if (!isObj(raw)) {
    p.add(path, `must be a mapping of ${FALLBACK_KEYS.join(', ')}, got ${describe(raw)}`);
    return undefined;
  }
  checkKeys(raw, FALLBACK_KEYS, path, p);
  const addr = readAddress(raw.address ?? null, [...path, 'address'], p);
  const port = readInt(raw.port ?? svc.port, 0, 65535, [...path, 'port'], p);
  const before = p.list.length;
  const fwd = readEnum(raw.fwd, FWD, [...path, 'fwd'], p);
  const weight = readInt(raw.weight, 1, WEIGHT_MAX, [...path, 'weight'], p);
  if (!addr || port === undefined) return undefined;
  const dest = destinationSpec(
    defined({ key: { family: addr.family, address: addr.address, port }, fwd, weight }),
  );
  const judged = judgedKey(svc);
  if (judged && p.list.length === before) kernelRules(dest, judged, path, p);
  return p.list.length > before ? undefined : dest;
}

/** What the kernel has (src/ipvs/spec.ts): a config naming another module would never apply. */
const KERNEL = {
  schedulers: new Set<string>(KERNEL_SCHEDULERS),
  engines: new Set<string>(KERNEL_PERSISTENCE_ENGINES),
};

/** Where the config writes the field a kernel rule names, and how to mend it. */
const RULE_KEYS: Record<KernelProblem['field'], readonly [key: string, fix: string]> = {
  key: ['address', ''],
  weight: ['weight', ''],
  lowerThreshold: ['lower_threshold', 'give an upper_threshold at least as large'],
  tunnel: ['tunnel', 'give the tunnel a port'],
  scheduler: ['scheduler', `use one of ${KERNEL_SCHEDULERS.join(', ')}`],
  pe: ['pe', 'use sip, or no persistence engine'],
  netmask: ['netmask', 'an IPv6 prefix length is 1..128'],
};

function addKernelProblem(problem: KernelProblem | null, path: Path, p: Problems): void {
  if (!problem) return;
  const [key, fix] = RULE_KEYS[problem.field];
  p.add(
    [...path, key],
    `${problem.detail}: the kernel refuses it (${problem.code})${fix ? `; ${fix}` : ''}`,
  );
}

/**
 * The rules the kernel (and the memory table, from the same functions) applies to what this
 * config built: the wire limits, then the kernel's own. A config that validates applies.
 */
function kernelRules(dest: DestinationSpec, service: ServiceKey, path: Path, p: Problems): void {
  try {
    checkDestinationSpec(dest, 'config', service);
  } catch (e) {
    p.add(path, e instanceof IpvsError ? (e.detail ?? e.message) : String(e));
    return;
  }
  addKernelProblem(destinationProblem(dest, service, true), path, p);
}

function serviceKernelRules(spec: ServiceSpec, path: Path, p: Problems): void {
  const problem = serviceProblem(spec, KERNEL);
  if (problem) return addKernelProblem(problem, path, p);
  try {
    checkServiceSpec(spec, 'config');
  } catch (e) {
    p.add(path, e instanceof IpvsError ? (e.detail ?? e.message) : String(e));
  }
}

/** Reads `defaults` and `virtual_services`; problems are recorded, valid services returned. */
export function readVirtualServices(
  defaultsRaw: unknown,
  servicesRaw: unknown,
  p: Problems,
  ctx: CheckReading,
): VirtualServiceConfig[] {
  let defaultsServer: ServerSettings = {};
  let defaultsService: ServiceSettings = {};
  let defaultsHooks: HookSettings = {};
  if (defaultsRaw !== undefined) {
    if (!isObj(defaultsRaw)) p.add(['defaults'], 'must be a mapping of settings');
    else {
      checkKeys(defaultsRaw, [...SERVER_KEYS, ...SERVICE_KEYS], ['defaults'], p);
      defaultsServer = readServerSettings(defaultsRaw, ['defaults'], p, ctx);
      defaultsService = readServiceSettings(defaultsRaw, ['defaults'], p);
      defaultsHooks = readHooks(defaultsRaw.hooks, HOOK_KEYS, ['defaults', 'hooks'], p);
    }
  }
  if (!Array.isArray(servicesRaw)) {
    p.add(
      ['virtual_services'],
      `must be a list of virtual services, got ${describe(servicesRaw ?? null)}`,
    );
    return [];
  }
  const out: VirtualServiceConfig[] = [];
  const seen = new Map<string, number>();
  servicesRaw.forEach((raw: unknown, i) => {
    const path: Path = ['virtual_services', i];
    if (!isObj(raw)) {
      p.add(path, `must be a mapping, got ${describe(raw)}`);
      return;
    }
    checkKeys(raw, [...VS_KEYS, ...SERVICE_KEYS, ...SERVER_KEYS], path, p);
    const before = p.list.length;
    // A wrong key still lets the rest be judged: its real servers, checks and fallback too.
    const keyRead = readServiceKey(raw, path, p);
    const { key } = keyRead;
    const svc = inherit(defaultsService, readServiceSettings(raw, path, p), raw);
    const server = inherit(
      defaultsServer,
      readServerSettings(pick(raw, SERVER_KEYS), path, p, ctx),
      raw,
    );
    const name = readString(raw.name, [...path, 'name'], p);
    const hooks = inheritHooks(
      defaultsHooks,
      readHooks(raw.hooks, HOOK_KEYS, [...path, 'hooks'], p),
    );
    if (key) {
      const id = serviceId(key);
      const dup = seen.get(id);
      if (dup !== undefined)
        p.add(path, `${formatServiceKey(key)} is already virtual_services[${dup}]`);
      seen.set(id, i);
    }
    const family = keyRead.family;
    const maxMask = family === 4 ? 32 : 128;
    if (
      family !== undefined &&
      svc.netmask !== undefined &&
      (svc.netmask > maxMask || (family === 6 && svc.netmask < 1))
    ) {
      p.add(
        [...path, 'netmask'],
        `must be a prefix length ${family === 4 ? 0 : 1}..${maxMask} for IPv${family}`,
      );
    }
    // A fwmark service has no address to announce; `announce` from defaults passes it by.
    if (keyRead.kind === 'fwmark' && raw.announce === true) {
      p.add(
        [...path, 'announce'],
        'a fwmark service has no VIP of its own to announce: set announce on an address service of the same VIP (protocol, address, port), or remove it here',
      );
    }
    if (svc.onePacket && keyRead.kind !== undefined && keyRead.kind !== 'udp') {
      p.add([...path, 'one_packet'], 'only for UDP services');
    }
    const fallback = readFallback(raw.fallback, keyRead, [...path, 'fallback'], p);
    const alerts = readServiceAlerts(raw.alerts, [...path, 'alerts'], p);
    const servers: RealServerConfig[] = [];
    const seenRs = new Map<string, number>();
    const rsList = raw.real_servers ?? [];
    if (!Array.isArray(rsList)) {
      p.add([...path, 'real_servers'], `must be a list, got ${describe(rsList)}`);
    } else {
      rsList.forEach((rsRaw: unknown, j) => {
        const rsPath: Path = [...path, 'real_servers', j];
        if (!isObj(rsRaw)) {
          p.add(rsPath, `must be a mapping with an address, got ${describe(rsRaw)}`);
          return;
        }
        const rs = realServer(rsRaw, server, hooks, keyRead, rsPath, p, ctx);
        if (!rs) return;
        const rid = destinationId(rs.destination.key);
        const dupRs = seenRs.get(rid);
        if (dupRs !== undefined) {
          p.add(
            rsPath,
            `${formatDestinationKey(rs.destination.key)} is already real_servers[${dupRs}]`,
          );
        }
        seenRs.set(rid, j);
        servers.push(rs);
      });
    }
    if (fallback && seenRs.has(destinationId(fallback.key))) {
      p.add([...path, 'fallback'], 'is also a real server of this service');
    }
    const judged = judgedKey(keyRead);
    const refused = union(svc.refused, refusedSince(p, before, path));
    /** The spec, with the settings in `skip` left at their defaults. */
    const spec = (k: ServiceKey, skip: ReadonlySet<string>): ServiceSpec => {
      const keep = <T>(name: string, value: T): T | undefined =>
        skip.has(name) ? undefined : value;
      const persistent = keep('persistent', svc.persistent);
      const on = persistent !== undefined && persistent !== false;
      return serviceSpec(
        defined({
          key: k,
          scheduler: keep('scheduler', svc.scheduler),
          schedFlags: keep('sched_flags', svc.schedFlags),
          persistent: on,
          timeout: on ? persistent : 0,
          netmask: keep('netmask', svc.netmask),
          onePacket: svc.onePacket,
          pe: keep('pe', svc.pe),
        }),
      );
    };
    // Judged with its refused settings at their defaults, none of which the kernel refuses: so
    // a wrong netmask hides no unknown scheduler, and a refused value is not judged twice.
    if (judged) serviceKernelRules(spec(judged, refused), path, p);
    if (p.list.length > before || fallback === undefined || !key) return;
    out.push({
      name: name ?? formatServiceKey(key),
      service: spec(key, new Set()),
      onFailure: svc.onFailure ?? 'remove',
      drainTimeoutMs: svc.drainTimeoutMs ?? 300_000,
      fallback,
      panicThreshold: svc.panicThreshold ?? 0,
      holdThreshold: svc.holdThreshold ?? 0.5,
      announce: key !== undefined && !isFwmark(key) && (svc.announce ?? false),
      ...defined({ quorum: svc.quorum, hooks: serviceHooks(hooks), alerts }),
      realServers: servers,
    });
  });
  return out;
}
