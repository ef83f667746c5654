// Decisions about real servers that the loop used to make inline, as pure functions: a server's
// status from its checks' states, the health a new check starts from (adoption), and which
// removed services are drained before they go. The loop only reads, calls these, and writes.
import type { VirtualServiceConfig } from '../config/model.js';
import type { HealthState } from '../health/policy.js';
import { serviceId } from '../ipvs/spec.js';
import type { RetiredService, ServerHealth } from './desired.js';

/**
 * A real server's status from the states of its checks (undefined: a check not started yet).
 * It is up only when every check is up, and down when any is:
 *
 *   checks   every state known  all up  settled  any check down after `fall` failures  status
 *   none     -                  -       -        -                                      up       (ldirectord's checktype = on)
 *   some     no                 -       -        -                                      pending
 *   some     yes                yes     yes      -                                      up
 *   some     yes                yes     no       (every check has a result: up)         up / pending
 *   some     yes                no      yes      -                                      down
 *   some     yes                no      no       yes                                    down
 *   some     yes                no      no       no                                     pending  (an initial "down" is not yet a result)
 *
 * "Settled" means the server was up or down once: after that it never returns to pending, so a
 * reload that restarts a check does not take a known server out of the pool's decisions.
 */
export function serverStatus(
  states: readonly (HealthState | undefined)[],
  settled: boolean,
  fall: number,
): ServerHealth['status'] {
  if (states.length === 0) return 'up';
  // One pass and nothing allocated: it runs on every check's result.
  let allUp = true;
  let allChecked = true;
  let fallen = false;
  for (const s of states) {
    if (s === undefined) return 'pending';
    if (!s.checked) allChecked = false;
    if (!s.up) {
      allUp = false;
      if (s.failures >= fall) fallen = true;
    }
  }
  if (allUp) return settled || allChecked ? 'up' : 'pending';
  return settled || fallen ? 'down' : 'pending';
}

/**
 * The state a server's new checks start from. What the daemon knew wins (a reload keeps health);
 * else what the kernel shows (a restart adopts the table without a flap: a server in with a
 * weight is trusted until its checks say otherwise, one at weight 0 is not); else the config.
 */
export function initialHealth(
  known: ServerHealth['status'] | undefined,
  kernelWeight: number | undefined,
  configured: 'up' | 'down',
): 'up' | 'down' {
  if (known !== undefined) return known === 'up' ? 'up' : 'down';
  if (kernelWeight !== undefined) return kernelWeight > 0 ? 'up' : 'down';
  return configured;
}

/**
 * The services a reload leaves to drain: every service configured before and not now, plus
 * those still draining from earlier reloads, unless the new config has them again.
 */
export function retiredAfterReload(
  before: readonly VirtualServiceConfig[],
  after: readonly VirtualServiceConfig[],
  retired: readonly RetiredService[],
): RetiredService[] {
  const now = new Set(after.map((v) => serviceId(v.service.key)));
  const out = retired.filter((r) => !now.has(serviceId(r.spec.key)));
  const listed = new Set(out.map((r) => serviceId(r.spec.key)));
  for (const vs of before) {
    const id = serviceId(vs.service.key);
    if (now.has(id) || listed.has(id)) continue;
    out.push({ name: vs.name, spec: vs.service, drainTimeoutMs: vs.drainTimeoutMs });
  }
  return out;
}

/** Retired services still to drain: those the table still has (after the tick's deletions). */
export function stillRetired(
  retired: readonly RetiredService[],
  present: ReadonlySet<string>,
): RetiredService[] {
  return retired.filter((r) => present.has(serviceId(r.spec.key)));
}
