// The fwmark services that carry data-path checks (src/health/datapath.ts): for each real server
// with data_path, one IPVS fwmark service whose only destination is that server, reached by its
// own method (DR or TUN). Made from the config, so they are owned, reconciled, repaired on drift,
// retired on reload and removed by cleanstop like any service. Pure.
import { DATA_PATH_MARK_COUNT } from './daemon.js';
import type { RealServerConfig, VirtualServiceConfig } from './model.js';
import { destinationId, serviceId, serviceSpec } from '../ipvs/spec.js';
import { isFwmark } from '../ipvs/model.js';

/** FNV-1a: a mark that stays with its server across reloads, whatever else is added. */
function slotOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % DATA_PATH_MARK_COUNT;
}

/**
 * Gives each data-path server its mark (from `base`, skipping the marks of configured fwmark
 * services) and appends the service that carries it. Servers are taken in the order of their
 * ids, so two servers whose marks would clash get the same ones on every load.
 */
export function withDataPath(
  services: readonly VirtualServiceConfig[],
  base: number,
): VirtualServiceConfig[] {
  const taken = new Set<number>();
  for (const vs of services) if (isFwmark(vs.service.key)) taken.add(vs.service.key.fwmark);
  const wanting: { id: string; vs: number; rs: number }[] = [];
  services.forEach((vs, i) =>
    vs.realServers.forEach((rs, j) => {
      if (rs.dataPath)
        wanting.push({
          id: `${serviceId(vs.service.key)} ${destinationId(rs.destination.key)}`,
          vs: i,
          rs: j,
        });
    }),
  );
  if (wanting.length === 0) return [...services];
  wanting.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const marks = new Map<string, number>();
  for (const w of wanting) {
    let slot = slotOf(w.id);
    while (taken.has(base + slot)) slot = (slot + 1) % DATA_PATH_MARK_COUNT;
    taken.add(base + slot);
    marks.set(`${w.vs} ${w.rs}`, base + slot);
  }
  const out: VirtualServiceConfig[] = services.map((vs, i) => ({
    ...vs,
    realServers: vs.realServers.map((rs, j) => {
      const mark = marks.get(`${i} ${j}`);
      return mark !== undefined && rs.dataPath ? { ...rs, dataPath: { ...rs.dataPath, mark } } : rs;
    }),
  }));
  for (const vs of out)
    for (const rs of vs.realServers) if (rs.dataPath) out.push(carrier(vs, rs, rs.dataPath.mark));
  return out;
}

/** The fwmark service of one data-path server: that server alone, always in, at weight 1. */
function carrier(
  vs: VirtualServiceConfig,
  rs: RealServerConfig,
  mark: number,
): VirtualServiceConfig {
  const server: RealServerConfig = {
    name: rs.name,
    destination: { ...rs.destination, weight: 1, upperThreshold: 0, lowerThreshold: 0 },
    maintenance: false,
    checks: [],
    timing: rs.timing,
    policy: rs.policy,
    slowStartMs: 0,
  };
  return {
    name: `${vs.name} data path ${rs.name}`,
    service: serviceSpec({
      key: { family: rs.destination.key.family, fwmark: mark },
      scheduler: 'rr',
    }),
    onFailure: 'remove',
    drainTimeoutMs: 0,
    fallback: null,
    panicThreshold: 0,
    holdThreshold: 0,
    announce: false,
    dataPathFor: { service: vs.name, server: rs.name },
    realServers: [server],
  };
}

/**
 * What the director lacks for the data-path checks of `config`, given its
 * net.ipv4.conf.all.accept_local ("0", "1", or null when unreadable): replies come from the VIP,
 * one of the director's own addresses, which the kernel drops as martians without it. Null when
 * nothing is missing (or cannot be known).
 */
export function acceptLocalProblem(
  services: readonly VirtualServiceConfig[],
  acceptLocal: string | null,
): string | null {
  const v4 = services.some((vs) =>
    vs.realServers.some((rs) => rs.dataPath && rs.dataPath.family === 4),
  );
  if (!v4 || acceptLocal === null || acceptLocal.trim() !== '0') return null;
  return "net.ipv4.conf.all.accept_local is 0: the replies of data-path checks come from the VIP, one of this director's own addresses, and are dropped as martians unless the interface towards the real servers accepts them; every data-path check will fail. Fix: sysctl -w net.ipv4.conf.all.accept_local=1 (and in /etc/sysctl.d/)";
}
