// The connection-sync daemon's spec: checked as the kernel checks it (ip_vs_genl_new_daemon,
// start_sync_thread), its defaults, and its text for logs.
import { addressToBytes, canonicalAddress, familyOf } from './address.js';
import { IpvsError } from './errors.js';
import type { Family, SyncDaemonRole, SyncDaemonSpec } from './model.js';

/** The kernel's defaults (IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT, the TTL start_sync_thread sets). */
export const SYNC_DEFAULT_GROUP = '224.0.0.81';
export const SYNC_DEFAULT_PORT = 8848;
export const SYNC_DEFAULT_TTL = 1;
/** IP_VS_IFNAME_MAXLEN - 1: the kernel's policy refuses a longer name. */
export const SYNC_IFNAME_MAX = 15;
export const SYNC_ROLES: readonly SyncDaemonRole[] = ['master', 'backup'];

/** The family of a multicast group, or null when the text is not a multicast address. */
export function multicastFamily(text: string): Family | null {
  const family = familyOf(text);
  if (family === null) return null;
  const bytes = addressToBytes(family, text);
  const first = bytes[0] ?? 0;
  if (family === 4) return first >= 224 && first <= 239 ? 4 : null;
  return first === 0xff ? 6 : null;
}

/** What is wrong with a spec, or null; the kernel answers EINVAL (ENODEV for the interface). */
export function syncDaemonProblem(s: SyncDaemonSpec): string | null {
  if (s.state !== 'master' && s.state !== 'backup')
    return `state must be master or backup, got ${String(s.state)}`;
  if (s.interface === '' || s.interface.length > SYNC_IFNAME_MAX || /[\s/\0]/.test(s.interface))
    return `interface must be a name of 1..${SYNC_IFNAME_MAX} characters without spaces or "/", got ${JSON.stringify(s.interface)}`;
  if (!Number.isInteger(s.syncId) || s.syncId < 0 || s.syncId > 255)
    return `sync id must be 0..255, got ${s.syncId}`;
  if (multicastFamily(s.group) === null)
    return `group must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address, got ${s.group}`;
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535)
    return `port must be 1..65535, got ${s.port}`;
  if (!Number.isInteger(s.ttl) || s.ttl < 1 || s.ttl > 255)
    return `ttl must be 1..255, got ${s.ttl}`;
  if (!Number.isInteger(s.maxPacketLength) || s.maxPacketLength < 0 || s.maxPacketLength > 65535)
    return `max packet length must be 0..65535, got ${s.maxPacketLength}`;
  return null;
}

/** The spec with its group in canonical text; EINVAL for what the kernel would refuse. */
export function checkSyncDaemonSpec(s: SyncDaemonSpec, op: string): SyncDaemonSpec {
  const problem = syncDaemonProblem(s);
  if (problem) throw new IpvsError('EINVAL', { op, target: s.state, detail: problem });
  const family = multicastFamily(s.group) ?? 4;
  return { ...s, group: canonicalAddress(family, s.group) ?? s.group };
}

/**
 * What start_sync_thread keeps of a requested max length, as Debian 12's kernel (6.1) answered
 * in the kernel lane: at most 65535 minus the IP and UDP headers for either role; a backup's at
 * least 1024 (a master keeps a shorter one). `min` is the least both roles keep as asked.
 */
export function syncMaxLenBounds(family: Family): { min: number; max: number } {
  return { min: BACKUP_MIN_MAXLEN, max: 65535 - syncHeaderLength(family) };
}

export const BACKUP_MIN_MAXLEN = 1024;

/** IP and UDP headers: what the kernel takes off the MTU for a length it derives. */
export function syncHeaderLength(family: Family): number {
  return family === 4 ? 20 + 8 : 40 + 8;
}

/** "master on eth0, sync id 7, 224.0.0.81:8848 ttl 1, max packet 1472" for logs and errors. */
export function formatSyncDaemon(s: SyncDaemonSpec): string {
  const group = s.group.includes(':') ? `[${s.group}]` : s.group;
  const maxlen = s.maxPacketLength === 0 ? 'from MTU' : String(s.maxPacketLength);
  return `${s.state} on ${s.interface}, sync id ${s.syncId}, ${group}:${s.port} ttl ${s.ttl}, max packet ${maxlen}`;
}
