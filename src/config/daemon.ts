// Daemon settings: one convict schema, so every key has a doc, a default, a type and an
// environment variable (which wins over the file, as convict orders it). README's table is this.
import convict from 'convict';
import { canonicalAddress, familyOf } from '../ipvs/address.js';
import { IPVS_LABELS, type IpvsLabel } from '../ipvs/labels.js';
import { DEFAULT_STATE_DIR } from '../director/statedir.js';
import {
  multicastFamily,
  SYNC_DEFAULT_GROUP,
  SYNC_DEFAULT_PORT,
  SYNC_DEFAULT_TTL,
  SYNC_IFNAME_MAX,
  syncMaxLenBounds,
} from '../ipvs/sync.js';
import { formatMs, parseDuration, type Path, type Problem } from './reader.js';

const HOUR_MS = 3_600_000;
/**
 * daemon.announce.table: in FRR's import-table range (1..252) and clear of the tables policy
 * routing examples use (100, 200).
 */
export const ANNOUNCE_DEFAULT_TABLE = 240;
/** daemon.announce.protocol: named neither in iproute2's rt_protos nor FRR's (186..197). */
export const ANNOUNCE_DEFAULT_PROTOCOL = 250;
/**
 * Protocol numbers with an owner: the kernel's own (0..4; `ip route add` writes 3, boot), and
 * those iproute2 (/etc/iproute2/rt_protos) and FRR (rt_protos.d/frr.conf) name. Routes of one of
 * these are someone else's: announcing under it would take them for ours.
 */
export const OWNED_PROTOCOLS: Readonly<Record<number, string>> = {
  0: 'unspec',
  1: 'redirect',
  2: 'kernel',
  3: 'boot (what `ip route add` writes)',
  4: 'static',
  8: 'gated',
  9: 'ra',
  10: 'mrt',
  11: 'zebra',
  12: 'bird',
  13: 'dnrouted',
  14: 'xorp',
  15: 'ntk',
  16: 'dhcp',
  18: 'keepalived',
  42: 'babel',
  99: 'openr',
  186: 'bgp (FRR)',
  187: 'isis (FRR)',
  188: 'ospf (FRR)',
  189: 'rip (FRR)',
  190: 'ripng (FRR)',
  191: 'nhrp (FRR)',
  192: 'eigrp (FRR)',
  193: 'ldp (FRR)',
  194: 'sharp (FRR)',
  195: 'pbr (FRR)',
  196: 'static (FRR)',
  197: 'openfabric (FRR)',
};
/** More probe workers than this cannot help on any director we know (each costs a heap). */
export const MAX_CHECK_WORKERS = 64;
/** How many fwmarks data-path checks may use, from `data_path_marks` on. */
export const DATA_PATH_MARK_COUNT = 65_536;
/** A DNS name as a Host header carries it (a trailing dot allowed); underscores, as some have. */
const HOST_NAME =
  /^(?=.{1,254}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

convict.addFormat({
  name: 'duration',
  validate(value: unknown) {
    if (parseDuration(value) === null) {
      throw new Error('must be a duration like 500ms, 2s, 5m or a number of seconds');
    }
  },
  // Environment variables arrive as text: "10" means 10 seconds, as in the file.
  coerce: (value: string) => (/^\d+(\.\d+)?$/.test(value) ? Number(value) : value),
});

export { IPVS_LABELS, type IpvsLabel };

/** "127.0.0.1:9476", "[::1]:9476", ":9476" (every address) -> host and port, or null. */
export function parseListen(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

const schema = {
  backend: {
    doc: 'Where the table lives: netlink (the kernel) or memory (a table in the process, for trying things out)',
    format: ['netlink', 'memory'],
    default: 'netlink',
    env: 'WARDEN_BACKEND',
  },
  resync_interval: {
    doc: 'Full resync: re-read the kernel table and repair drift at least this often',
    format: 'duration',
    default: '10s',
    env: 'WARDEN_RESYNC_INTERVAL',
  },
  min_tick_interval: {
    doc: 'Least time between one reconcile tick and the next, so a burst of transitions shares one tick (kube-proxy min-sync-period); a server going down waits at most as long as the last tick of its kind (with or without a table read) took; while checks wait for a slot, a tick starts no sooner than twice as long as the last of its kind took after that one ended',
    format: 'duration',
    default: '250ms',
    env: 'WARDEN_MIN_TICK_INTERVAL',
  },
  retry_min: {
    doc: 'First retry of a failed kernel operation; the wait doubles on each failure',
    format: 'duration',
    default: '1s',
    env: 'WARDEN_RETRY_MIN',
  },
  retry_max: {
    doc: 'Longest wait between retries of failed kernel operations',
    format: 'duration',
    default: '30s',
    env: 'WARDEN_RETRY_MAX',
  },
  cleanstop: {
    doc: 'On SIGTERM/SIGINT remove the configured virtual services (false: leave the table, traffic keeps flowing)',
    format: Boolean,
    default: false,
    env: 'WARDEN_CLEANSTOP',
  },
  maintenance_dir: {
    doc: 'A directory of flag files; a file named like a real server puts it in maintenance ("" = off)',
    format: String,
    default: '',
    env: 'WARDEN_MAINTENANCE_DIR',
  },
  maintenance_poll: {
    doc: 'How often the maintenance directory is read',
    format: 'duration',
    default: '1s',
    env: 'WARDEN_MAINTENANCE_POLL',
  },
  state_dir: {
    doc: "Where `ipvs-warden role` and `ipvs-warden director drain` leave the director's state for the daemon to read (read every maintenance_poll)",
    format: String,
    default: DEFAULT_STATE_DIR,
    env: 'WARDEN_STATE_DIR',
  },
  pid_file: {
    doc: 'Write the process id here ("" = none); `ipvs-warden reload` signals the process it names',
    format: String,
    default: '',
    env: 'WARDEN_PID_FILE',
  },
  log_format: {
    doc: 'json (one object a line), text, or auto (text on a terminal, json otherwise)',
    format: ['auto', 'json', 'text'],
    default: 'auto',
    env: 'WARDEN_LOG_FORMAT',
  },
  log_level: {
    doc: 'Least severe level logged; debug adds every check result',
    format: ['debug', 'info', 'warn', 'error'],
    default: 'info',
    env: 'WARDEN_LOG_LEVEL',
  },
  check_concurrency: {
    doc: 'Checks running at once per event loop that probes: the main thread, or each probe worker (check_workers); more wait (late), none are dropped',
    format: 'nat',
    default: 256,
    env: 'WARDEN_CHECK_CONCURRENCY',
  },
  check_concurrency_min: {
    doc: 'Fewest checks running at once while the event loop is late (over 50 ms; with no CPU to spare, over 150 ms or a sixth of the shortest timeout) and checks wait for a slot: the cap halves down to this and grows back when the loop keeps time, so an overloaded director still applies what its checks find; check_concurrency or more: a fixed cap (always fixed with check_workers)',
    format: 'nat',
    default: 16,
    env: 'WARDEN_CHECK_CONCURRENCY_MIN',
  },
  check_in_flight_max: {
    doc: 'Most checks in flight at once (0: half the open-file limit). A check waiting on its server for 50 ms gives its slot of check_concurrency back while the loops that probe have CPU to spare, so slow servers do not hold back the others; this bounds them. check_concurrency or less: a check keeps its slot until it ends',
    format: 'nat',
    default: 0,
    env: 'WARDEN_CHECK_IN_FLIGHT_MAX',
  },
  check_workers: {
    doc: 'Worker threads that run the probes (0: on the main thread); beside the main thread, for more checks a second than one core can probe (exec, ping and data-path checks stay on the main thread)',
    format: 'nat',
    default: 0,
    env: 'WARDEN_CHECK_WORKERS',
  },
  exec_concurrency: {
    doc: 'Processes checks run at once (exec commands, ping)',
    format: 'nat',
    default: 32,
    env: 'WARDEN_EXEC_CONCURRENCY',
  },
  data_path_marks: {
    doc: 'The first of the 65,536 firewall marks data-path checks use (one IPVS fwmark service per real server checked so); marks of configured fwmark services are skipped',
    format: 'nat',
    default: 0x7a100000,
    env: 'WARDEN_DATA_PATH_MARKS',
  },
  listen: {
    doc: 'The HTTP listener for /metrics, /healthz, /readyz, /status ("" = none); loopback by default',
    format: String,
    default: '127.0.0.1:9476',
    env: 'WARDEN_LISTEN',
  },
  listen_hosts: {
    doc: 'Host names (or addresses) the listener answers besides its own address and, on loopback, localhost; comma-separated. Others get a 421, so a web page cannot read it by rebinding its name to this address',
    format: String,
    default: '',
    env: 'WARDEN_LISTEN_HOSTS',
  },
  listen_max_connections: {
    doc: 'Connections the listener keeps open at once; more are closed as they arrive, so idle clients cannot use up the descriptors the probes need',
    format: 'nat',
    default: 256,
    env: 'WARDEN_LISTEN_MAX_CONNECTIONS',
  },
  metrics_per_server: {
    doc: 'Per-real-server metric series (false: per check, per service and reconciler only, for huge tables)',
    format: Boolean,
    default: true,
    env: 'WARDEN_METRICS_PER_SERVER',
  },
  metrics_lag_resolution: {
    doc: 'How often the event-loop lag metrics (nodejs_eventloop_lag_*) take a sample; each sample wakes the daemon, and a stall shorter than this may not show',
    format: 'duration',
    default: '100ms',
    env: 'WARDEN_METRICS_LAG_RESOLUTION',
  },
  metrics_labels: {
    doc: "node_exporter's IPVS labels the per-server series carry, comma-separated",
    format: String,
    default: 'local_address,local_port,remote_address,remote_port,proto,local_mark',
    env: 'WARDEN_METRICS_LABELS',
  },
  dry_run: {
    doc: 'Probe and plan, log the operations, change nothing (also --dry-run)',
    format: Boolean,
    default: false,
    env: 'WARDEN_DRY_RUN',
  },
  announce: {
    table: {
      doc: "The routing table the VIPs' host routes go in, for the BGP daemon to export (BIRD `kernel table`, FRR `ip import-table`, which takes 1..252); not main, local or default",
      format: 'nat',
      default: ANNOUNCE_DEFAULT_TABLE,
      env: 'WARDEN_ANNOUNCE_TABLE',
    },
    protocol: {
      doc: "The routes' protocol number (rtm_protocol, `proto` in `ip route`): the daemon's routes in the table are the ones of this number; 5..255, not one iproute2 or a routing daemon names",
      format: 'nat',
      default: ANNOUNCE_DEFAULT_PROTOCOL,
      env: 'WARDEN_ANNOUNCE_PROTOCOL',
    },
    metric: {
      doc: "The routes' metric (RTA_PRIORITY); BIRD reads it as krt_metric",
      format: 'nat',
      default: 0,
      env: 'WARDEN_ANNOUNCE_METRIC',
    },
    withdraw_hold: {
      doc: "When a quorum loss withdraws a VIP and leaves its service no healthy server, the service's destinations stay as they are this long, the time the routers take to stop sending new flows here: such a flow meets the servers last seen up instead of none, and those that went down no longer than this before the loss go back in (they fail together when this director's view fails, and other directors still send them flows); 0: drained at once",
      format: 'duration',
      default: '3s',
      env: 'WARDEN_ANNOUNCE_WITHDRAW_HOLD',
    },
  },
  sync: {
    state: {
      doc: 'The IPVS connection-sync daemon(s) to keep running: master, backup, both, follow-role (master while STATE_DIR/role says master, else backup: see `ipvs-warden role`), or none (leave any running one alone)',
      format: ['none', 'master', 'backup', 'both', 'follow-role'],
      default: 'none',
      env: 'WARDEN_SYNC_STATE',
    },
    interface: {
      doc: 'The interface sync messages are sent and received on (needed unless state is none)',
      format: String,
      default: '',
      env: 'WARDEN_SYNC_INTERFACE',
    },
    sync_id: {
      doc: 'Sync id 0..255 sent by a master; a backup takes only messages of its id (0: any)',
      format: 'nat',
      default: 0,
      env: 'WARDEN_SYNC_ID',
    },
    group: {
      doc: 'The IPv4 or IPv6 multicast group of sync messages',
      format: String,
      default: SYNC_DEFAULT_GROUP,
      env: 'WARDEN_SYNC_GROUP',
    },
    port: {
      doc: 'The UDP port of sync messages',
      format: 'port',
      default: SYNC_DEFAULT_PORT,
      env: 'WARDEN_SYNC_PORT',
    },
    ttl: {
      doc: 'The multicast TTL of sync messages, 1..255',
      format: 'nat',
      default: SYNC_DEFAULT_TTL,
      env: 'WARDEN_SYNC_TTL',
    },
    max_packet_length: {
      doc: "Largest sync message payload (0: the interface's MTU minus the IP and UDP headers)",
      format: 'nat',
      default: 0,
      env: 'WARDEN_SYNC_MAX_PACKET_LENGTH',
    },
  },
};

interface SchemaEntry {
  doc: string;
  default: unknown;
  env: string;
}

/** The schema's leaves under dotted keys ("sync.state"). */
function leaves(node: object, prefix = ''): [string, SchemaEntry][] {
  return Object.entries(node).flatMap(([key, value]: [string, unknown]) =>
    value !== null && typeof value === 'object' && 'doc' in value
      ? [[prefix + key, value as SchemaEntry] as [string, SchemaEntry]]
      : leaves(value as object, `${prefix}${key}.`),
  );
}
const LEAVES = new Map(leaves(schema));

/**
 * Keys the running daemon reads only at start; a reload that changes one says so
 * (`config.restart_needed`). Every other key takes effect on reload. A test holds the two
 * lists to the schema, so a new key must be put in one of them.
 */
export const RESTART_ONLY_KEYS = [
  'backend',
  'listen',
  'listen_hosts',
  'listen_max_connections',
  'metrics_per_server',
  'metrics_lag_resolution',
  'metrics_labels',
  'check_concurrency',
  'check_concurrency_min',
  'check_in_flight_max',
  'check_workers',
  'log_format',
  'pid_file',
] as const;

/** Keys applied on reload: the loop reads them on every use, the shell sets the rest. */
export const RELOADABLE_KEYS = [
  'resync_interval',
  'min_tick_interval',
  'retry_min',
  'retry_max',
  'cleanstop',
  'maintenance_dir',
  'maintenance_poll',
  'state_dir',
  'log_level',
  'exec_concurrency',
  'data_path_marks',
  'dry_run',
  'announce.table',
  'announce.protocol',
  'announce.metric',
  'announce.withdraw_hold',
  'sync.state',
  'sync.interface',
  'sync.sync_id',
  'sync.group',
  'sync.port',
  'sync.ttl',
  'sync.max_packet_length',
] as const;

/** The connection-sync daemon(s) wanted; `none` leaves whatever runs alone. */
export interface SyncSettings {
  /** follow-role: master or backup as the director's role says (src/director/role.ts). */
  readonly state: 'none' | 'master' | 'backup' | 'both' | 'follow-role';
  readonly interface: string;
  readonly syncId: number;
  /** Canonical text. */
  readonly group: string;
  readonly port: number;
  readonly ttl: number;
  /** 0: the kernel derives it from the interface's MTU. */
  readonly maxPacketLength: number;
}

/** Where VIP announcements go (the routes the site's BGP daemon exports). */
export interface AnnounceRouteSettings {
  readonly table: number;
  readonly protocol: number;
  readonly metric: number;
  /** After a quorum loss withdrew the VIP, the servers stay this long (ms). */
  readonly withdrawHoldMs: number;
}

export interface DaemonSettings {
  readonly backend: 'netlink' | 'memory';
  readonly resyncIntervalMs: number;
  readonly minTickIntervalMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly cleanstop: boolean;
  readonly maintenanceDir: string;
  readonly maintenancePollMs: number;
  /** Role and drain flag files (absolute path). */
  readonly stateDir: string;
  readonly pidFile: string;
  readonly logFormat: 'auto' | 'json' | 'text';
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly checkConcurrency: number;
  /** The adaptive cap's floor; at or above checkConcurrency the cap is fixed (the scheduler clamps). */
  readonly checkConcurrencyMin: number;
  /** The bound on checks in flight (`inFlightMax`); 0: from the open-file limit. */
  readonly checkInFlightMax: number;
  /** Worker threads for probes; 0: on the main thread. */
  readonly checkWorkers: number;
  readonly execConcurrency: number;
  /** The first fwmark of data-path checks (DATA_PATH_MARK_COUNT of them). */
  readonly dataPathMarks: number;
  readonly dryRun: boolean;
  readonly listen: string;
  readonly listenHosts: readonly string[];
  readonly listenMaxConnections: number;
  readonly metricsPerServer: boolean;
  readonly metricsLagResolutionMs: number;
  readonly metricsLabels: readonly IpvsLabel[];
  readonly announce: AnnounceRouteSettings;
  readonly sync: SyncSettings;
}

/** Every key with its doc, default and environment variable (the README's table is held to it). */
export function daemonSchema(): { key: string; doc: string; default: unknown; env: string }[] {
  return [...LEAVES].map(([key, s]) => ({
    key,
    doc: s.doc,
    default: s.default,
    env: s.env,
  }));
}

/**
 * Validates the `daemon:` section (undefined: all defaults) with `env` over it. Problems carry
 * paths under `daemon`, and name the environment variable when the bad value came from one.
 */
export function readDaemonSettings(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  problems: Problem[],
): DaemonSettings | undefined {
  const config = convict(schema, { env, args: [] });
  const at = (key: string): Path => ['daemon', ...key.split('.')];
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    problems.push({ path: ['daemon'], message: 'must be a mapping of settings' });
    return undefined;
  }
  /** Keys convict refused: the range checks below do not judge them again. */
  const refused = new Set<string>();
  try {
    if (raw !== undefined) config.load(raw);
    config.validate({ allowed: 'strict' });
  } catch (e) {
    for (const line of (e as Error).message.split('\n')) {
      const unknown = /^configuration param '(.+)' not declared in the schema$/.exec(line);
      if (unknown?.[1] !== undefined) {
        problems.push({ path: at(unknown[1]), message: 'unknown key' });
        continue;
      }
      const m = /^([\w.]+): (.*)$/.exec(line);
      const key = m?.[1] ?? '';
      refused.add(key);
      const entry = LEAVES.get(key);
      const fromEnv = entry && env[entry.env] !== undefined ? ` (from ${entry.env})` : '';
      problems.push({ path: at(key), message: `${m?.[2] ?? line}${fromEnv}` });
    }
    // A value convict refused hides nothing else: the other keys are still judged below.
  }
  const v = config.getProperties();
  const ms = (value: unknown): number => parseDuration(value) ?? 0;
  // convict checks types; these are the ranges that keep the loop sane.
  const least = (key: string, value: number, min: number, what: string): void => {
    if (value < min && !refused.has(key))
      problems.push({
        path: at(key),
        message: `must be at least ${what}, got ${String((v as Record<string, unknown>)[key])}`,
      });
  };
  // Past an hour none of these does its job, and Node's timers cannot hold past TIMER_MAX_MS.
  const most = (key: string, value: number, max: number): void => {
    if (value > max && !refused.has(key))
      problems.push({
        path: at(key),
        message: `must be at most ${formatMs(max)}, got ${String((v as Record<string, unknown>)[key])}`,
      });
  };
  least('resync_interval', ms(v.resync_interval), 100, '100ms');
  least('retry_min', ms(v.retry_min), 10, '10ms');
  if (!refused.has('retry_min')) least('retry_max', ms(v.retry_max), ms(v.retry_min), 'retry_min');
  least('maintenance_poll', ms(v.maintenance_poll), 100, '100ms');
  least('metrics_lag_resolution', ms(v.metrics_lag_resolution), 1, '1ms');
  // The CLI and the daemon may run in different directories: a relative path would name two places.
  if (!v.state_dir.startsWith('/'))
    problems.push({
      path: at('state_dir'),
      message: `must be an absolute path (for example "/run/ipvs-warden"), got "${v.state_dir}"`,
    });
  const timers = [
    'resync_interval',
    'min_tick_interval',
    'retry_min',
    'retry_max',
    'maintenance_poll',
    'metrics_lag_resolution',
  ] as const;
  for (const key of timers) {
    most(key, ms(v[key]), HOUR_MS);
  }
  least('check_concurrency', v.check_concurrency, 1, '1');
  least('check_concurrency_min', v.check_concurrency_min, 1, '1');
  least('exec_concurrency', v.exec_concurrency, 1, '1');
  if (v.check_workers > MAX_CHECK_WORKERS)
    problems.push({
      path: at('check_workers'),
      message: `must be 0..${MAX_CHECK_WORKERS} (0: probes on the main thread; about one a core is the most that helps), got ${v.check_workers}`,
    });
  least('listen_max_connections', v.listen_max_connections, 1, '1');
  if (v.data_path_marks < 1 || v.data_path_marks > 2 ** 32 - DATA_PATH_MARK_COUNT)
    problems.push({
      path: at('data_path_marks'),
      message: `must be 1..${2 ** 32 - DATA_PATH_MARK_COUNT} (a 32-bit mark with ${DATA_PATH_MARK_COUNT} after it), got ${v.data_path_marks}`,
    });
  if (v.listen !== '' && !refused.has('listen') && !parseListen(v.listen)) {
    problems.push({
      path: at('listen'),
      message: `must be ADDRESS:PORT ("127.0.0.1:9476", "[::1]:9476") or "", got "${v.listen}"`,
    });
  }
  const hosts = v.listen_hosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (const h of hosts) {
    if (!HOST_NAME.test(h) && familyOf(h) === null) {
      problems.push({
        path: at('listen_hosts'),
        message: `"${h}" is not a host name or an address (without a port)`,
      });
    }
  }
  const labels = (refused.has('metrics_labels') ? '' : v.metrics_labels)
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  for (const l of labels) {
    if (!(IPVS_LABELS as readonly string[]).includes(l)) {
      problems.push({
        path: at('metrics_labels'),
        message: `"${l}" is not one of ${IPVS_LABELS.join(', ')}`,
      });
    }
  }
  const { table, protocol, metric } = v.announce;
  if (
    !refused.has('announce.table') &&
    (table < 1 || (table >= 253 && table <= 255) || table > 0xffffffff)
  )
    problems.push({
      path: at('announce.table'),
      message: `must be a table of its own, 1..252 or 256..4294967295 (253 default, 254 main and 255 local carry the director's own routes), got ${table}`,
    });
  if (!refused.has('announce.protocol') && (protocol > 255 || OWNED_PROTOCOLS[protocol]))
    problems.push({
      path: at('announce.protocol'),
      message:
        protocol > 255
          ? `must be 5..255 (a u8), got ${protocol}`
          : `${protocol} is ${OWNED_PROTOCOLS[protocol]}'s: routes of it are not ours; pick an unnamed number (the default is ${ANNOUNCE_DEFAULT_PROTOCOL})`,
    });
  if (!refused.has('announce.metric') && metric > 0xffffffff)
    problems.push({ path: at('announce.metric'), message: `must be 0..4294967295, got ${metric}` });
  const withdrawHoldMs = ms(v.announce.withdraw_hold);
  // Longer than a minute is no router's withdrawal: it would keep dead servers in for nothing.
  if (!refused.has('announce.withdraw_hold') && withdrawHoldMs > 60_000)
    problems.push({
      path: at('announce.withdraw_hold'),
      message: `must be at most 1m (the routers' time to move new flows away), got ${v.announce.withdraw_hold}`,
    });
  const sync = readSync(v.sync, refused, at, problems);
  if (problems.length > 0 || !sync) return undefined;
  return {
    backend: v.backend as DaemonSettings['backend'],
    resyncIntervalMs: ms(v.resync_interval),
    minTickIntervalMs: ms(v.min_tick_interval),
    retryMinMs: ms(v.retry_min),
    retryMaxMs: ms(v.retry_max),
    cleanstop: v.cleanstop,
    maintenanceDir: v.maintenance_dir,
    maintenancePollMs: ms(v.maintenance_poll),
    stateDir: v.state_dir,
    pidFile: v.pid_file,
    logFormat: v.log_format as DaemonSettings['logFormat'],
    logLevel: v.log_level as DaemonSettings['logLevel'],
    checkConcurrency: v.check_concurrency,
    checkConcurrencyMin: v.check_concurrency_min,
    checkInFlightMax: v.check_in_flight_max,
    checkWorkers: v.check_workers,
    execConcurrency: v.exec_concurrency,
    dataPathMarks: v.data_path_marks,
    dryRun: v.dry_run,
    listen: v.listen,
    listenHosts: hosts,
    listenMaxConnections: v.listen_max_connections,
    metricsPerServer: v.metrics_per_server,
    metricsLagResolutionMs: ms(v.metrics_lag_resolution),
    metricsLabels: labels as IpvsLabel[],
    announce: { table, protocol, metric, withdrawHoldMs },
    sync,
  };
}

/** `daemon.sync`: the ranges and addresses the kernel would refuse, each at its path. */
function readSync(
  v: {
    state: string;
    interface: string;
    sync_id: number;
    group: string;
    port: number;
    ttl: number;
    max_packet_length: number;
  },
  refused: Set<string>,
  at: (key: string) => Path,
  problems: Problem[],
): SyncSettings | undefined {
  const before = problems.length;
  const bad = (key: string, message: string): void => {
    if (!refused.has(`sync.${key}`)) problems.push({ path: at(`sync.${key}`), message });
  };
  const family = multicastFamily(v.group);
  if (family === null)
    bad(
      'group',
      `must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address, got "${v.group}"`,
    );
  if (v.sync_id > 255) bad('sync_id', `must be 0..255, got ${v.sync_id}`);
  if (v.ttl < 1 || v.ttl > 255) bad('ttl', `must be 1..255, got ${v.ttl}`);
  // Outside these the kernel would clamp the length, and the running daemon would never match.
  const { min, max } = syncMaxLenBounds(family ?? 4);
  if (v.max_packet_length !== 0 && (v.max_packet_length < min || v.max_packet_length > max))
    bad(
      'max_packet_length',
      `must be 0 (from the MTU) or ${min}..${max} for an IPv${family ?? 4} group, got ${v.max_packet_length}`,
    );
  if (v.interface.length > SYNC_IFNAME_MAX || /[\s/]/.test(v.interface))
    bad(
      'interface',
      `must be an interface name of at most ${SYNC_IFNAME_MAX} characters, got "${v.interface}"`,
    );
  else if (v.interface === '' && v.state !== 'none')
    bad('interface', `is needed when state is ${v.state} (e.g. interface: eth0)`);
  if (problems.length > before) return undefined;
  return {
    state: v.state as SyncSettings['state'],
    interface: v.interface,
    syncId: v.sync_id,
    group: canonicalAddress(family ?? 4, v.group) ?? v.group,
    port: v.port,
    ttl: v.ttl,
    maxPacketLength: v.max_packet_length,
  };
}
