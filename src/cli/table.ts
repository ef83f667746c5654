// `ipvs-warden table`: the kernel table as operators know it from `ipvsadm -Ln --stats`, with
// weights, connection counts and counters on one screen; or as JSON with exact 64-bit counters.
import { maskFromPrefix } from '../ipvs/address.js';
import type {
  DestinationState,
  IpvsInfo,
  ServiceState,
  Stats,
  SyncDaemonState,
  TableEntry,
} from '../ipvs/model.js';
import { isFwmark } from '../ipvs/model.js';
import { formatDestinationKey } from '../ipvs/spec.js';

const FWD_NAMES: Record<DestinationState['fwd'], string> = {
  masq: 'Masq',
  local: 'Local',
  tunnel: 'Tunnel',
  route: 'Route',
  bypass: 'Bypass',
};

/** Scheduler flag names as ipvsadm prints them for sh and mh, flag-N for the rest. */
function schedFlagNames(scheduler: string, flags: number): string[] {
  const names: string[] = [];
  for (const [bit, n] of [
    [1, 1],
    [2, 2],
    [4, 3],
  ] as const) {
    if (!(flags & bit)) continue;
    if ((scheduler === 'sh' || scheduler === 'mh') && n < 3)
      names.push(`${scheduler}-${n === 1 ? 'fallback' : 'port'}`);
    else names.push(`flag-${n}`);
  }
  return names;
}

function dotted(prefix: number): string {
  const m = maskFromPrefix(prefix);
  return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join('.');
}

/** The service line exactly as `ipvsadm -Ln` prints it. */
export function serviceLine(s: ServiceState): string {
  const k = s.key;
  const head = isFwmark(k)
    ? `FWM  ${k.fwmark}${k.family === 6 ? ' IPv6' : ''}`
    : `${k.protocol.toUpperCase().padEnd(4)} ${formatDestinationKey(k)}`;
  let line = `${head} ${s.scheduler}`;
  const flags = schedFlagNames(s.scheduler, s.schedFlags);
  if (flags.length > 0) line += ` (${flags.join(',')})`;
  if (s.persistent) {
    line += ` persistent ${s.timeout}`;
    const full = k.family === 4 ? 32 : 128;
    if (s.netmask !== full) line += ` mask ${k.family === 4 ? dotted(s.netmask) : s.netmask}`;
    if (s.pe) line += ` pe ${s.pe}`;
  }
  if (s.onePacket) line += ' ops';
  return line;
}

/** The destination columns exactly as `ipvsadm -Ln` prints them. */
export function destinationLine(d: DestinationState): string {
  return `  -> ${formatDestinationKey(d.key).padEnd(28)} ${FWD_NAMES[d.fwd].padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactiveConns).padEnd(10)}`;
}

/** ipvsadm's shortening of counters without --exact (print_largenum): K from 1e8, M, G, T. */
export function humanCount(n: bigint): string {
  if (n < 100_000_000n) return String(n);
  if (n < 1_000_000_000n) return `${n / 1_000n}K`;
  if (n < 100_000_000_000n) return `${n / 1_000_000n}M`;
  if (n < 100_000_000_000_000n) return `${n / 1_000_000_000n}G`;
  return `${n / 1_000_000_000_000n}T`;
}

function statColumns(s: Stats, exact: boolean): string {
  const f = exact ? String : humanCount;
  return [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes]
    .map((v) => ` ${f(v).padStart(8)}`)
    .join('');
}

const WIDTH = 70;
/** The ipvsadm part of a line, then the counters from column WIDTH (or after a space when longer). */
const row = (line: string, stats: string): string =>
  `${line.length >= WIDTH ? `${line} ` : line.padEnd(WIDTH)}${stats}`;

/** A sync daemon's line exactly as `ipvsadm --list --daemon` prints it. */
export function daemonLine(d: SyncDaemonState): string {
  return `${d.state} sync daemon (mcast=${d.interface}, syncid=${d.syncId}, maxlen=${d.maxPacketLength}, group=${d.group}, port=${d.port}, ttl=${d.ttl})`;
}

export function formatTable(
  info: IpvsInfo,
  table: readonly TableEntry[],
  options: { exact?: boolean; daemons?: readonly SyncDaemonState[] } = {},
): string {
  const exact = options.exact ?? false;
  const lines = [
    `IP Virtual Server version ${info.version} (size=${info.connTableSize})`,
    'Prot LocalAddress:Port Scheduler Flags',
    row(
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes']
        .map((h) => ` ${h.padStart(8)}`)
        .join(''),
    ),
  ];
  for (const { service, destinations } of table) {
    lines.push(row(serviceLine(service), statColumns(service.stats, exact)));
    for (const d of destinations) lines.push(row(destinationLine(d), statColumns(d.stats, exact)));
  }
  // After a blank line, so the table above still reads line for line as ipvsadm -Ln.
  const daemons = options.daemons ?? [];
  if (daemons.length > 0) lines.push('', ...daemons.map(daemonLine));
  return `${lines.map((l) => l.trimEnd()).join('\n')}\n`;
}

/** JSON with 64-bit counters as exact numbers (JSON numbers have no size limit; readers choose). */
export function tableJson(
  info: IpvsInfo,
  table: readonly TableEntry[],
  daemons: readonly SyncDaemonState[] = [],
): string {
  const doc = {
    ...info,
    services: table.map((e) => ({ ...e.service, destinations: e.destinations })),
    sync_daemons: daemons,
  };
  const mark = '\u0000bigint:';
  const text = JSON.stringify(
    doc,
    (_k, v: unknown) => (typeof v === 'bigint' ? `${mark}${v}` : v),
    2,
  );
  return `${text.replace(/"\\u0000bigint:(\d+)"/g, '$1')}\n`;
}
