// Which alerts the loop's events make, for which targets, and when a condition that lasts is
// announced again: pure functions of the events, the config, the daemon's state and the time,
// table-tested. The deliverer (./deliver.ts) sends what these decide.
//
// Following ldirectord (ld_emailalert_send, ld_emailalert_resend), with the differences said:
// - A real server going down fires (ldirectord: "Deleted"/"Quiescent" mail), coming back up
//   resolves ("Added"/"Restored"); a service entering fallback fires, leaving it resolves.
// - The first result after a start (or for a server a reload adds) is no transition, as hooks
//   (src/hooks/decide.ts): pending -> up says nothing. Unlike hooks, pending -> down fires: a
//   server found down at start is news (ldirectord mails it too), and Alertmanager forgets an
//   alert a restarted director no longer sends. ldirectord also mails "Added" for every server
//   at start and "Purged" for each at stop; we do not.
// - repeat (emailalertfreq): while a condition fires, it is announced again every `repeat`;
//   for email only a down real server ("Inaccessible real server"), as ldirectord; for
//   webhooks every firing condition (Alertmanager ends an alert that is not sent again).
// - on (emailalertstatus): mail is sent only in the listed daemon states; the condition is
//   recorded whatever the state (as ldirectord records it before its filter), so a repeat
//   goes out once the state is one listed.
// - quorum_down fires and quorum_up resolves for a service with a configured quorum (without
//   one, lost quorum is "no server healthy", which the server alerts already say).
import {
  emailFor,
  type AlertsConfig,
  type DaemonPhase,
  type EmailAlerts,
  type WebhookTarget,
} from '../config/alerts.js';
import type { Config, VirtualServiceConfig } from '../config/model.js';
import { isFwmark } from '../ipvs/model.js';
import type { TransitionEvent } from '../reconcile/events.js';
import { destinationId, formatServiceKey, serviceId } from '../ipvs/spec.js';

export type AlertEvent = TransitionEvent;

export type AlertName =
  'server_down' | 'server_up' | 'fallback_on' | 'fallback_off' | 'quorum_down' | 'quorum_up';

/** What an alert says, whatever the target. */
export interface Alert {
  /** The condition: one real server of a service, or a service's fallback. */
  readonly key: string;
  readonly name: AlertName;
  /** server_down, fallback_on: the condition holds; the others end it. */
  readonly firing: boolean;
  /** A reminder of a condition still firing. */
  readonly repeat: boolean;
  readonly service: string;
  /** The service has a name of its own (ldirectord's servicename goes into the subject). */
  readonly named: boolean;
  /** The service as ldirectord's get_virtual writes it: 10.0.0.1:80, [2001:db8::1]:80, fwmark 5. */
  readonly virtual: string;
  readonly protocol: string;
  /** The real server's name, or the fallback's address:port. */
  readonly server: string;
  /** Its address:port ([v6]:port). */
  readonly endpoint: string;
  readonly address: string;
  readonly port: number;
  /** The weight the server now has in the table (0 when quiesced; the configured one when up). */
  readonly weight: number | null;
  readonly quiesce: boolean;
  readonly healthy: number;
  readonly servers: number;
  readonly message: string;
  /** When the condition began (ms since the epoch). */
  readonly since: number;
  readonly at: number;
  readonly phase: DaemonPhase;
}

export type Target =
  | { readonly kind: 'email'; readonly name: 'email'; readonly email: EmailAlerts }
  | { readonly kind: 'webhook'; readonly name: string; readonly webhook: WebhookTarget };

export interface Delivery {
  readonly target: Target;
  readonly alert: Alert;
}

interface Firing {
  readonly target: Target;
  /** The firing alert, its facts as last announced. */
  readonly alert: Alert;
  readonly service: string;
  readonly destination: string | null;
  readonly lastSent: number;
}

export interface AlertState {
  /** By target name and condition key. */
  readonly firing: ReadonlyMap<string, Firing>;
}

export const NO_ALERTS: AlertState = { firing: new Map() };

export interface AlertContext {
  /** Wall time (ms since the epoch): alerts carry it. */
  readonly now: number;
  readonly phase: DaemonPhase;
  readonly alerts: AlertsConfig | undefined;
}

export interface Decided {
  readonly state: AlertState;
  readonly deliveries: readonly Delivery[];
}

const slot = (target: Target, key: string): string => `${target.name}\n${key}`;

function hostPort(family: 4 | 6, address: string, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Where a service's alerts go: its email settings (its own over the top level's), the webhooks. */
export function targetsFor(vs: VirtualServiceConfig, alerts: AlertsConfig | undefined): Target[] {
  const out: Target[] = [];
  const email = emailFor(alerts?.email, vs.alerts);
  if (email) out.push({ kind: 'email', name: 'email', email });
  for (const w of alerts?.webhooks ?? []) out.push({ kind: 'webhook', name: w.name, webhook: w });
  return out;
}

function repeatOf(t: Target): number {
  return t.kind === 'email' ? t.email.repeatMs : t.webhook.repeatMs;
}

/** Whether a firing condition is announced again to this target. */
function reminds(t: Target, a: Alert): boolean {
  if (repeatOf(t) <= 0) return false;
  return t.kind === 'webhook' || a.name === 'server_down';
}

/** Whether the target takes an alert now (email: in the daemon states `on` lists). */
function accepts(t: Target, phase: DaemonPhase): boolean {
  return t.kind === 'webhook' || t.email.on.includes(phase);
}

function serviceFacts(vs: VirtualServiceConfig) {
  const k = vs.service.key;
  return {
    service: vs.name,
    named: vs.name !== formatServiceKey(k),
    virtual: isFwmark(k) ? `fwmark ${k.fwmark}` : hostPort(k.family, k.address, k.port),
    protocol: isFwmark(k) ? 'fwm' : k.protocol,
    quiesce: vs.onFailure === 'quiesce',
  };
}

/** The alert an event makes; null for no transition. */
export function alertOf(event: AlertEvent, now: number, phase: DaemonPhase): Alert | null {
  const { vs } = event;
  const common = { ...serviceFacts(vs), healthy: event.healthy, servers: event.servers };
  const sid = serviceId(vs.service.key);
  if (event.kind === 'server') {
    if (event.from === event.to || (event.from === 'pending' && event.to === 'up')) return null;
    const d = event.rs.destination;
    const down = event.to === 'down';
    return {
      ...common,
      key: `${sid}>${destinationId(d.key)}`,
      name: down ? 'server_down' : 'server_up',
      firing: down,
      repeat: false,
      server: event.rs.name,
      endpoint: hostPort(d.key.family, d.key.address, d.key.port),
      address: d.key.address,
      port: d.key.port,
      weight: down ? (common.quiesce ? 0 : null) : d.weight,
      message: event.message ?? '',
      since: now,
      at: now,
      phase,
    };
  }
  if (event.kind === 'quorum') {
    const q = vs.quorum;
    if (!q) return null;
    const k = vs.service.key;
    return {
      ...common,
      key: `${sid}#quorum`,
      name: event.up ? 'quorum_up' : 'quorum_down',
      firing: !event.up,
      repeat: false,
      server: common.virtual,
      endpoint: common.virtual,
      address: isFwmark(k) ? '' : k.address,
      port: isFwmark(k) ? 0 : k.port,
      weight: event.weight,
      quiesce: false,
      message: `healthy weight ${event.weight}, quorum ${q.weight}${q.hysteresis ? ` (hysteresis ${q.hysteresis})` : ''}`,
      since: now,
      at: now,
      phase,
    };
  }
  const fb = vs.fallback;
  if (!fb) return null;
  return {
    ...common,
    key: `${sid}#fallback`,
    name: event.on ? 'fallback_on' : 'fallback_off',
    firing: event.on,
    repeat: false,
    server: hostPort(fb.key.family, fb.key.address, fb.key.port),
    endpoint: hostPort(fb.key.family, fb.key.address, fb.key.port),
    address: fb.key.address,
    port: fb.key.port,
    weight: event.on ? fb.weight : null,
    quiesce: false,
    message: `${event.healthy} of ${event.servers} real servers healthy`,
    since: now,
    at: now,
    phase,
  };
}

/** An event: the alerts it makes, to each target the service has. */
export function onEvent(state: AlertState, event: AlertEvent, ctx: AlertContext): Decided {
  const made = alertOf(event, ctx.now, ctx.phase);
  if (!made) return { state, deliveries: [] };
  const firing = new Map(state.firing);
  const deliveries: Delivery[] = [];
  const sid = serviceId(event.vs.service.key);
  const did = event.kind === 'server' ? destinationId(event.rs.destination.key) : null;
  for (const target of targetsFor(event.vs, ctx.alerts)) {
    const at = slot(target, made.key);
    const before = firing.get(at);
    // A condition announced again keeps its start (Alertmanager's startsAt).
    const alert = before ? { ...made, since: before.alert.since } : made;
    if (made.firing)
      firing.set(at, { target, alert, service: sid, destination: did, lastSent: ctx.now });
    else firing.delete(at);
    if (accepts(target, ctx.phase)) deliveries.push({ target, alert });
  }
  return { state: { firing }, deliveries };
}

/** Reminders due at ctx.now. */
export function onTime(state: AlertState, ctx: AlertContext): Decided {
  let firing: Map<string, Firing> | null = null;
  const deliveries: Delivery[] = [];
  for (const [at, f] of state.firing) {
    if (!reminds(f.target, f.alert) || ctx.now - f.lastSent < repeatOf(f.target)) continue;
    firing ??= new Map(state.firing);
    const alert: Alert = { ...f.alert, repeat: true, at: ctx.now, phase: ctx.phase };
    firing.set(at, { ...f, alert, lastSent: ctx.now });
    if (accepts(f.target, ctx.phase)) deliveries.push({ target: f.target, alert });
  }
  return { state: firing ? { firing } : state, deliveries };
}

/** When the next reminder is due; null when none will be. */
export function nextDue(state: AlertState): number | null {
  let next: number | null = null;
  for (const f of state.firing.values()) {
    if (!reminds(f.target, f.alert)) continue;
    const due = f.lastSent + repeatOf(f.target);
    next = next === null ? due : Math.min(next, due);
  }
  return next;
}

/**
 * After a reload: each firing condition under the new config's settings for its target; one
 * whose service, server or target is gone is forgotten (Alertmanager ends it at its endsAt).
 */
export function onConfig(state: AlertState, config: Config): AlertState {
  const services = new Map(config.virtualServices.map((vs) => [serviceId(vs.service.key), vs]));
  const firing = new Map<string, Firing>();
  for (const [at, f] of state.firing) {
    const vs = services.get(f.service);
    if (!vs) continue;
    if (
      f.destination !== null &&
      !vs.realServers.some((rs) => destinationId(rs.destination.key) === f.destination)
    )
      continue;
    if (f.destination === null && !(f.alert.name.startsWith('quorum') ? vs.quorum : vs.fallback))
      continue;
    const target = targetsFor(vs, config.alerts).find((t) => t.name === f.target.name);
    if (target) firing.set(at, { ...f, target });
  }
  return { firing };
}
