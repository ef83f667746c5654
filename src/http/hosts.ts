// Which Host headers the listener answers. A browser puts in Host the name it resolved, so a web
// page that rebinds its own name to this address (DNS rebinding) to read /status arrives with its
// own name, and is refused. Answered: the listener's address (any address when it listens on all
// of them: an address is never a rebound name), localhost when it listens on loopback, and the
// names daemon.listen_hosts adds; each with the listener's port or none. A request with no Host
// at all is answered too: only HTTP/1.0 may leave it out (Node refuses HTTP/1.1 without one), and
// no browser does. Pure.
import { canonicalAddress } from '../ipvs/address.js';

export interface HostPolicy {
  readonly port: number;
  /** Canonical addresses answered; null when any address is (the listener is on all of them). */
  readonly addresses: ReadonlySet<string> | null;
  /** Lower case, without a trailing dot. */
  readonly names: ReadonlySet<string>;
}

/** An address (IPv6 bracketed or not) in canonical text, or null when the text is a name. */
function address(text: string): string | null {
  return canonicalAddress(4, text) ?? canonicalAddress(6, text);
}

const name = (text: string): string => text.toLowerCase().replace(/\.$/, '');

/**
 * The policy of a listener bound to `bound` (its socket address) for `listen`'s host part (a
 * name, an address, or "" for all addresses), with `extra` names and addresses.
 */
export function hostPolicy(
  bound: { address: string; port: number },
  listenHost: string,
  extra: readonly string[],
): HostPolicy {
  const own = address(bound.address) ?? bound.address;
  const everywhere = own === '0.0.0.0' || own === '::';
  const loopback = own.startsWith('127.') || own === '::1';
  const addresses = new Set([own]);
  const names = new Set<string>();
  for (const x of [...extra, listenHost]) {
    if (x === '') continue;
    const a = address(x);
    if (a === null) names.add(name(x));
    else addresses.add(a);
  }
  if (everywhere || loopback) names.add('localhost');
  return { port: bound.port, addresses: everywhere ? null : addresses, names };
}

/** Whether a request with this Host header is answered. */
export function hostAllowed(header: string | undefined, policy: HostPolicy): boolean {
  if (header === undefined) return true;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(header);
  if (!m) return false;
  if (m[3] !== undefined && Number(m[3]) !== policy.port) return false;
  const host = m[1] ?? name(m[2] ?? '');
  const a = m[1] !== undefined ? canonicalAddress(6, m[1]) : canonicalAddress(4, host);
  if (a !== null) return policy.addresses === null || policy.addresses.has(a);
  return m[1] === undefined && policy.names.has(host);
}
