// The two kernel settings that decide whether a persistent service's clients leave a failed real
// server when the daemon takes it out (Documentation/networking/ipvs-sysctl.rst). Both default
// to 0, and the daemon cannot do their work itself: IPVS has no request that expires a template
// or a connection entry. Pure: the daemon reads /proc and logs what this returns.
import type { VirtualServiceConfig } from './model.js';

/** As read from /proc/sys/net/ipv4/vs/ (null: unreadable, so nothing can be said). */
export interface PersistenceSysctls {
  readonly expireNodestConn: string | null;
  readonly expireQuiescentTemplate: string | null;
}

export interface SysctlProblem {
  /** The warning's event name. */
  readonly event: string;
  readonly sysctl: string;
  readonly problem: string;
}

const MAX_NAMED = 3;

/** What the director's settings cost the persistent services of `services`; [] when nothing. */
export function persistenceProblems(
  services: readonly VirtualServiceConfig[],
  sysctls: PersistenceSysctls,
): SysctlProblem[] {
  const names = services.filter((vs) => vs.service.persistent).map((vs) => vs.name);
  if (names.length === 0) return [];
  const which =
    names.length <= MAX_NAMED
      ? names.join(', ')
      : `${names.slice(0, MAX_NAMED).join(', ')} and ${names.length - MAX_NAMED} more`;
  const off = (v: string | null): boolean => v !== null && v.trim() === '0';
  const fix = (sysctl: string): string =>
    `Fix: sysctl -w ${sysctl}=1 in the director's network namespace (and in /etc/sysctl.d/)`;
  const problems: SysctlProblem[] = [];
  if (off(sysctls.expireQuiescentTemplate)) {
    const sysctl = 'net.ipv4.vs.expire_quiescent_template';
    problems.push({
      event: 'persistence.expire_quiescent_template_off',
      sysctl,
      // ip_vs_check_template expires a template whose server has weight 0 only with it.
      problem: `${sysctl} is 0: while a failed real server of a persistent service (${which}) drains or is quiesced at weight 0, the kernel keeps sending its persistent clients to it, new connections included, until their template expires. ${fix(sysctl)}`,
    });
  }
  if (off(sysctls.expireNodestConn)) {
    const sysctl = 'net.ipv4.vs.expire_nodest_conn';
    problems.push({
      event: 'persistence.expire_nodest_conn_off',
      sysctl,
      // ip_vs_in never reschedules a persistent service's connection entry (cp->control), and
      // drops every packet for one whose server is gone until the entry times out.
      problem: `${sysctl} is 0: after a real server of a persistent service (${which}) is deleted, a client whose address and port match a connection the kernel still holds for it (2 minutes in TIME_WAIT, 15 established) has every packet dropped, a new connection's included. ${fix(sysctl)}`,
    });
  }
  return problems;
}
