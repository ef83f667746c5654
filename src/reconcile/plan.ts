// plan(desired, observed): the smallest ordered list of kernel operations that takes the observed
// table to the desired one, each with its reason. Pure; drains are the one memory it needs (when
// each began), passed in and handed back.
//
// Drain (kubernetes' graceful termination): a destination on its way out gets weight 0 and is
// deleted when its active connections reach zero or the drain timeout passes; UDP at once, as
// there is no connection to finish. Inactive connections (TIME_WAIT, closing) are finished and
// do not hold a drain: TIME_WAIT alone would keep every drained server for two minutes. Unconfigured destinations of an owned service drain the same way.
import type {
  DestinationLayout,
  DestinationSpec,
  LayoutEntry,
  Operation,
  ServiceSpec,
  TunnelSpec,
} from '../ipvs/model.js';
import { destinationId, formatDestinationKey, serviceId, targetId } from '../ipvs/spec.js';
import type { Desired } from './desired.js';

export interface PlannedOperation {
  readonly operation: Operation;
  readonly reason: string;
  /** The virtual service's name in the config. */
  readonly service: string;
}

export interface Plan {
  readonly operations: readonly PlannedOperation[];
  /** Drains under way: target id -> when it began. */
  readonly drains: ReadonlyMap<string, number>;
  /** When to look again although nothing else happens (a drain to check); null: no need. */
  readonly wakeAt: number | null;
}

/** How often a drain looks at the connection counts. */
export const DRAIN_POLL_MS = 1000;

/** The settings of a service that differ, as "scheduler wlc -> rr"; empty when equal. */
export function serviceDiff(want: ServiceSpec, have: ServiceSpec): string[] {
  const out: string[] = [];
  const fields = [
    'scheduler',
    'schedFlags',
    'persistent',
    'timeout',
    'netmask',
    'onePacket',
    'pe',
  ] as const;
  for (const f of fields) {
    if (want[f] !== have[f]) out.push(`${f} ${String(have[f])} -> ${String(want[f])}`);
  }
  return out;
}

const NO_DIFF: readonly string[] = Object.freeze([]);
const DESTINATION_FIELDS = ['fwd', 'weight', 'upperThreshold', 'lowerThreshold'] as const;

function sameTunnel(a: TunnelSpec | null, b: TunnelSpec | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.type === b.type && a.port === b.port && a.csum === b.csum && a.remcsum === b.remcsum;
}

/** The settings of a destination that differ; empty when equal. */
export function destinationDiff(want: DestinationSpec, have: DestinationSpec): readonly string[] {
  // Every tick compares every destination, and almost all are equal: no array unless one differs.
  let out: string[] | undefined;
  for (const f of DESTINATION_FIELDS) {
    if (want[f] !== have[f]) (out ??= []).push(`${f} ${String(have[f])} -> ${String(want[f])}`);
  }
  if (!sameTunnel(want.tunnel, have.tunnel))
    (out ??= []).push(`tunnel ${JSON.stringify(have.tunnel)} -> ${JSON.stringify(want.tunnel)}`);
  return out ?? NO_DIFF;
}

const STAGE: Record<Operation['op'], number> = {
  'add-service': 0,
  'update-service': 0,
  'add-destination': 1,
  'update-destination': 1,
  'delete-destination': 2,
  'delete-service': 3,
};

/**
 * `connections`: whether the destinations' connection counts in `observed` were just read
 * (`read`), or are as a table read some time ago left them (`stale`: the loop's tick for health
 * transitions plans against the table as last read plus its own operations). A stale count of
 * zero may hide connections opened since, so a drain then never ends on the count: the
 * destination goes to weight 0, and a tick that reads the table deletes it.
 */
export function plan(
  desired: Desired,
  observed: readonly LayoutEntry[],
  drains: ReadonlyMap<string, number>,
  now: number,
  connections: 'read' | 'stale' = 'read',
): Plan {
  const counted = connections === 'read';
  const byId = new Map(observed.map((e) => [serviceId(e.service.key), e]));
  const ops: PlannedOperation[] = [];
  const nextDrains = new Map<string, number>();
  let wakeAt: number | null = null;
  const wake = (t: number): void => {
    wakeAt = wakeAt === null ? t : Math.min(wakeAt, t);
  };

  for (const svc of desired.services) {
    const entry = byId.get(serviceId(svc.spec.key));
    const push = (operation: Operation, reason: string): void => {
      ops.push({ operation, reason, service: svc.name });
    };
    const key = svc.spec.key;
    if (svc.retired && !entry) continue;
    if (!svc.retired) {
      if (!entry) push({ op: 'add-service', service: svc.spec }, 'configured, not in the table');
      else {
        const diff = serviceDiff(svc.spec, entry.service);
        if (diff.length > 0)
          push({ op: 'update-service', service: svc.spec }, `settings differ: ${diff.join(', ')}`);
      }
    }
    // The table's destinations by id, each to its place in the list; a flag per place marks the
    // ones the config wants (a set of 10,000 fresh ids was half of what a tick spent planning).
    const listed = entry?.destinations ?? [];
    const have = new Map<string, number>();
    listed.forEach((d, i) => have.set(destinationId(d.key), i));
    const wanted = new Uint8Array(listed.length);
    let remaining = have.size;

    const drainOut = (d: DestinationLayout, why: string): void => {
      const id = targetId(key, d.key);
      const conns = d.activeConns;
      const udp = 'protocol' in key && key.protocol === 'udp';
      if (udp || svc.drainTimeoutMs === 0 || (counted && conns === 0)) {
        const how = udp
          ? 'UDP, at once'
          : counted && conns === 0
            ? 'no active connections'
            : 'no drain';
        push({ op: 'delete-destination', service: key, destination: d.key }, `${why} (${how})`);
        remaining--;
        return;
      }
      const began = drains.get(id) ?? now;
      if (now - began >= svc.drainTimeoutMs) {
        push(
          { op: 'delete-destination', service: key, destination: d.key },
          `${why} (drain timeout ${svc.drainTimeoutMs / 1000} s passed${counted ? ` with ${conns} active connections` : ''})`,
        );
        remaining--;
        return;
      }
      nextDrains.set(id, began);
      wake(Math.min(began + svc.drainTimeoutMs, now + DRAIN_POLL_MS));
      if (d.weight !== 0) {
        push(
          { op: 'update-destination', service: key, destination: { ...specOf(d), weight: 0 } },
          counted
            ? `${why}: draining ${conns} active connections (up to ${svc.drainTimeoutMs / 1000} s)`
            : `${why}: draining, its connections counted at the next table read (up to ${svc.drainTimeoutMs / 1000} s)`,
        );
      }
    };

    const updateIfDiffers = (o: DestinationLayout, spec: DestinationSpec, why: string): void => {
      const diff = destinationDiff(spec, o);
      if (diff.length > 0) {
        push(
          { op: 'update-destination', service: key, destination: spec },
          `${why}: ${diff.join(', ')}`,
        );
      }
    };

    for (const dd of svc.destinations) {
      const at = have.get(destinationId(dd.destination.key));
      const o = at === undefined ? undefined : listed[at];
      if (at !== undefined) wanted[at] = 1;
      const what = dd.role === 'fallback' ? 'fallback' : 'server';
      switch (dd.want.kind) {
        case 'in':
          if (!o) {
            push(
              { op: 'add-destination', service: key, destination: dd.want.spec },
              `${what} ${dd.want.reason}`,
            );
          } else updateIfDiffers(o, dd.want.spec, `${what} ${dd.want.reason}`);
          break;
        case 'zero':
          if (o) updateIfDiffers(o, dd.want.spec, `${what} ${dd.want.reason}`);
          break;
        case 'out':
          if (o) drainOut(o, `${what} ${dd.want.reason}`);
          break;
        case 'keep':
          break;
      }
    }
    for (const at of have.values()) {
      const o = listed[at];
      if (wanted[at] === 1 || o === undefined) continue;
      drainOut(
        o,
        svc.retired
          ? `${formatDestinationKey(o.key)}: service removed from the config`
          : `${formatDestinationKey(o.key)} not in the config`,
      );
    }
    if (svc.retired && remaining === 0) {
      push({ op: 'delete-service', service: key }, 'removed from the config, drained');
    }
  }
  ops.sort((a, b) => STAGE[a.operation.op] - STAGE[b.operation.op]);
  return { operations: ops, drains: nextDrains, wakeAt };
}

function specOf(d: DestinationLayout): DestinationSpec {
  return {
    key: d.key,
    fwd: d.fwd,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    tunnel: d.tunnel,
  };
}
