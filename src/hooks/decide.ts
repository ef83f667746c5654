// Which hooks an event runs, and with what: a pure function of the event and the config, table-
// tested. server_up/server_down on a real server's transition between up and down (not its first
// result after a start or a reload: that is no change, as keepalived does not notify at start);
// fallback_on/fallback_off when a service enters or leaves fallback; quorum_up/quorum_down when it
// gains or loses quorum (again not its first decision after a start). The facts go into the
// arguments ({service} ...) and, always, into WARDEN_* variables; a shell line gets them only
// as variables, so a name can never become shell syntax.
import type { HookCommand, VirtualServiceConfig } from '../config/model.js';
import { isFwmark } from '../ipvs/model.js';
import type { TransitionEvent } from '../reconcile/events.js';

export type HookName =
  'server_up' | 'server_down' | 'fallback_on' | 'fallback_off' | 'quorum_up' | 'quorum_down';

export type HookEvent = TransitionEvent;

/** One command to run, everything resolved. */
export interface HookRun {
  readonly hook: HookName;
  readonly service: string;
  readonly server?: string;
  readonly program: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Run as this user and group (keepalived's `notify_up SCRIPT USER GROUP`); unset: the daemon's. */
  readonly user?: string;
  readonly group?: string;
  /** Runs of one key run one after another, in the order decided (down, then up). */
  readonly key: string;
}

export const SHELL = '/bin/sh';

function protocolOf(vs: VirtualServiceConfig): string {
  const k = vs.service.key;
  return isFwmark(k) ? 'fwm' : k.protocol;
}

/** The facts of an event by placeholder name. */
export function hookFacts(event: HookEvent): Record<string, string> {
  const { vs } = event;
  const common = {
    service: vs.name,
    protocol: protocolOf(vs),
    healthy: String(event.healthy),
    servers: String(event.servers),
    weight: event.kind === 'quorum' ? String(event.weight) : '',
    // The configured quorum weight; without one, quorum is "a server is healthy".
    quorum: String(vs.quorum?.weight ?? ''),
  };
  if (event.kind === 'server') {
    const d = event.rs.destination.key;
    return {
      ...common,
      server: event.rs.name,
      address: d.address,
      port: String(d.port),
      state: event.to,
      from: event.from,
    };
  }
  const k = vs.service.key;
  const [state, from] =
    event.kind === 'fallback'
      ? event.on
        ? ['on', 'off']
        : ['off', 'on']
      : event.up
        ? ['up', 'down']
        : ['down', 'up'];
  return {
    ...common,
    server: '',
    // The virtual service's own address and port (ldirectord's vserver:vport); a fwmark
    // service has neither.
    address: isFwmark(k) ? '' : k.address,
    port: isFwmark(k) ? '0' : String(k.port),
    state,
    from,
  };
}

/** {name} replaced by its fact; an unknown one (refused by the config) is left as written. */
function fill(arg: string, facts: Record<string, string>): string {
  return arg.replace(/\{([a-z_]+)\}/g, (whole, name: string) => facts[name] ?? whole);
}

function command(
  c: HookCommand,
  facts: Record<string, string>,
): { program: string; args: string[] } {
  if ('shell' in c) return { program: SHELL, args: ['-c', c.shell] };
  const [program = '', ...args] = c.argv.map((a) => fill(a, facts));
  return { program, args };
}

export function hooksFor(event: HookEvent): HookRun[] {
  let hook: HookName;
  let c: HookCommand | undefined;
  let timeoutMs: number;
  let key: string;
  let as: { user?: string; group?: string } | undefined;
  if (event.kind === 'server') {
    // The first result after a start (or for a new server) is no transition.
    if (event.from === 'pending' || event.from === event.to) return [];
    const hooks = event.rs.hooks;
    hook = event.to === 'up' ? 'server_up' : 'server_down';
    c = event.to === 'up' ? hooks?.serverUp : hooks?.serverDown;
    timeoutMs = hooks?.timeoutMs ?? 0;
    as = hooks;
    key = `${event.vs.name}\n${event.rs.name}`;
  } else if (event.kind === 'fallback') {
    const hooks = event.vs.hooks;
    hook = event.on ? 'fallback_on' : 'fallback_off';
    c = event.on ? hooks?.fallbackOn : hooks?.fallbackOff;
    timeoutMs = hooks?.timeoutMs ?? 0;
    as = hooks;
    key = event.vs.name;
  } else {
    const hooks = event.vs.hooks;
    hook = event.up ? 'quorum_up' : 'quorum_down';
    c = event.up ? hooks?.quorumUp : hooks?.quorumDown;
    timeoutMs = hooks?.timeoutMs ?? 0;
    as = hooks;
    // One chain per service: its fallback and quorum hooks run in the order decided.
    key = event.vs.name;
  }
  if (!c) return [];
  const facts = hookFacts(event);
  const env: Record<string, string> = { WARDEN_HOOK: hook };
  for (const [name, value] of Object.entries(facts)) env[`WARDEN_${name.toUpperCase()}`] = value;
  return [
    {
      hook,
      service: event.vs.name,
      ...(event.kind === 'server' ? { server: event.rs.name } : {}),
      ...command(c, facts),
      env,
      timeoutMs,
      ...(as?.user !== undefined ? { user: as.user } : {}),
      ...(as?.group !== undefined ? { group: as.group } : {}),
      key,
    },
  ];
}
