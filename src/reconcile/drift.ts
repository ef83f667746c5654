// Drift: what changed in the owned part of the table that this daemon did not change. After each
// tick the loop keeps what the table should now hold (what it read, plus the operations that
// succeeded); a difference at the next read was made by someone else (ipvsadm by hand).
import type {
  DestinationLayout,
  DestinationSpec,
  LayoutEntry,
  Operation,
  ServiceKey,
  ServiceSpec,
} from '../ipvs/model.js';
import { operationSubject } from '../ipvs/backend.js';
import {
  destinationId,
  formatServiceKey,
  formatTarget,
  serviceId,
  targetId,
  targetIdWithin,
} from '../ipvs/spec.js';
import { destinationDiff, serviceDiff } from './plan.js';

type Item = { readonly sid: string } & (
  | { readonly kind: 'service'; readonly spec: ServiceSpec }
  | { readonly kind: 'destination'; readonly service: ServiceKey; readonly spec: DestinationSpec }
);

/** The owned part of a table, by service id and target id; each item knows its service's id. */
export type Snapshot = ReadonlyMap<string, Item>;

export function snapshot(table: readonly LayoutEntry[], owned: ReadonlySet<string>): Snapshot {
  const out = new Map<string, Item>();
  for (const e of table) {
    const sid = serviceId(e.service.key);
    if (!owned.has(sid)) continue;
    out.set(sid, { sid, kind: 'service', spec: e.service });
    for (const d of e.destinations) {
      out.set(targetIdWithin(sid, d.key), {
        sid,
        kind: 'destination',
        service: e.service.key,
        spec: d,
      });
    }
  }
  return out;
}

/** The snapshot after operations the kernel accepted. */
export function afterOperations(before: Snapshot, done: readonly Operation[]): Snapshot {
  // A tick that changed nothing (most of them) keeps what it read, uncopied.
  if (done.length === 0) return before;
  const out = new Map(before);
  for (const o of done) {
    switch (o.op) {
      case 'add-service':
      case 'update-service': {
        const sid = serviceId(o.service.key);
        out.set(sid, { sid, kind: 'service', spec: o.service });
        break;
      }
      case 'delete-service': {
        const sid = serviceId(o.service);
        for (const [k, item] of [...out]) if (item.sid === sid) out.delete(k);
        break;
      }
      case 'add-destination':
      case 'update-destination':
        out.set(targetId(o.service, o.destination.key), {
          sid: serviceId(o.service),
          kind: 'destination',
          service: o.service,
          spec: o.destination,
        });
        break;
      case 'delete-destination':
        out.delete(targetId(o.service, o.destination));
        break;
    }
  }
  return out;
}

/**
 * The table after operations the kernel accepted, as a tick that does not read it plans against:
 * an added destination has no connections, an updated one keeps its counts (which are as old
 * as the read). Entries and destination lists no operation touched are shared, not copied.
 */
export function layoutAfter(
  before: readonly LayoutEntry[],
  done: readonly Operation[],
): LayoutEntry[] {
  if (done.length === 0) return [...before];
  const entries = new Map<string, LayoutEntry>();
  for (const e of before) entries.set(serviceId(e.service.key), e);
  // The destinations of each service an operation touches, by id, in the table's order.
  const touched = new Map<string, Map<string, DestinationLayout>>();
  const destinationsOf = (sid: string): Map<string, DestinationLayout> | undefined => {
    let m = touched.get(sid);
    if (!m) {
      const e = entries.get(sid);
      if (!e) return undefined; // not in the table: the kernel refuses such an operation
      m = new Map(e.destinations.map((d) => [destinationId(d.key), d]));
      touched.set(sid, m);
    }
    return m;
  };
  for (const o of done) {
    switch (o.op) {
      case 'add-service':
      case 'update-service': {
        const sid = serviceId(o.service.key);
        entries.set(sid, {
          service: o.service,
          destinations: entries.get(sid)?.destinations ?? [],
        });
        break;
      }
      case 'delete-service': {
        const sid = serviceId(o.service);
        entries.delete(sid);
        touched.delete(sid);
        break;
      }
      case 'add-destination':
      case 'update-destination': {
        const m = destinationsOf(serviceId(o.service));
        const id = destinationId(o.destination.key);
        const had = m?.get(id);
        m?.set(id, {
          ...o.destination,
          activeConns: had?.activeConns ?? 0,
          inactiveConns: had?.inactiveConns ?? 0,
          persistentConns: had?.persistentConns ?? 0,
        });
        break;
      }
      case 'delete-destination':
        destinationsOf(serviceId(o.service))?.delete(destinationId(o.destination));
        break;
    }
  }
  const out: LayoutEntry[] = [];
  for (const [sid, e] of entries) {
    const m = touched.get(sid);
    out.push(m ? { service: e.service, destinations: [...m.values()] } : e);
  }
  return out;
}

/** The snapshot key an operation is about: its service's id, or its destination's target id. */
export function operationKey(o: Operation): string {
  const { service, destination } = operationSubject(o);
  return destination ? targetId(service, destination) : serviceId(service);
}

/** The part of a snapshot whose services are in `owned`. */
export function ownedPart(s: Snapshot, owned: ReadonlySet<string>): Snapshot {
  // Usually all of it (no reload since): then the snapshot itself, uncopied.
  let all = true;
  for (const item of s.values())
    if (!owned.has(item.sid)) {
      all = false;
      break;
    }
  if (all) return s;
  return new Map([...s].filter(([, item]) => owned.has(item.sid)));
}

/**
 * The snapshot without the entries in `ids` (targets whose last operation has no known
 * outcome); a service id takes its destinations with it.
 */
export function without(s: Snapshot, ids: ReadonlySet<string>): Snapshot {
  if (ids.size === 0) return s;
  return new Map([...s].filter(([id, item]) => !ids.has(id) && !ids.has(item.sid)));
}

/** What differs between what the table should hold and what it holds, as readable lines. */
export function drift(expected: Snapshot, observed: Snapshot): string[] {
  const out: string[] = [];
  const name = (i: Item): string =>
    i.kind === 'service' ? formatServiceKey(i.spec.key) : formatTarget(i.service, i.spec.key);
  for (const [id, want] of expected) {
    const have = observed.get(id);
    if (!have) {
      out.push(`${name(want)} was deleted`);
      continue;
    }
    const diff =
      want.kind === 'service' && have.kind === 'service'
        ? serviceDiff(have.spec, want.spec)
        : want.kind === 'destination' && have.kind === 'destination'
          ? destinationDiff(have.spec, want.spec)
          : [];
    if (diff.length > 0) out.push(`${name(want)} was changed: ${diff.join(', ')}`);
  }
  for (const [id, have] of observed) if (!expected.has(id)) out.push(`${name(have)} was added`);
  return out;
}
