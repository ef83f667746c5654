// The director's VRRP role: what `ipvs-warden role` is told (by hand or by keepalived's notify
// scripts), what the role file holds, and what the role means for the connection-sync daemon.
// Pure: the CLI (src/cli/role.ts) and the loop's poll (src/director/rolefile.ts) do the I/O.
import type { SyncDaemonRole } from '../ipvs/model.js';

export const ROLES = ['master', 'backup', 'fault'] as const;
export type Role = (typeof ROLES)[number];

/** The file under daemon.state_dir that holds the role (one word and a newline). */
export const ROLE_FILE = 'role';

/** What a role file holds ("master\n"), or null when it holds anything else. */
export function parseRoleText(text: string): Role | null {
  const word = text.trim().toLowerCase();
  return (ROLES as readonly string[]).includes(word) ? (word as Role) : null;
}

export function roleText(role: Role): string {
  return `${role}\n`;
}

/** keepalived's states as its `notify` script gets them (keepalived/vrrp/vrrp_notify.c). */
const KEEPALIVED_STATES: Readonly<Record<string, Role>> = {
  MASTER: 'master',
  BACKUP: 'backup',
  FAULT: 'fault',
  // keepalived stopping gives up the VIP, as a backup does; the peer takes over.
  STOP: 'backup',
};

export type RoleArgs =
  | { readonly kind: 'show' }
  | { readonly kind: 'set'; readonly role: Role; readonly from: string }
  | { readonly kind: 'error'; readonly message: string };

/**
 * `role` arguments: none (show), one role word, or the four keepalived appends to a `notify`
 * script: `INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP PRIORITY`.
 */
export function parseRoleArgs(args: readonly string[]): RoleArgs {
  if (args.length === 0) return { kind: 'show' };
  if (args.length === 1) {
    const role = parseRoleText(args[0] ?? '');
    if (role && args[0] === role) return { kind: 'set', role, from: 'command line' };
    return {
      kind: 'error',
      message: `role must be master, backup or fault, got "${args[0]}"`,
    };
  }
  const [type = '', name = '', state = '', priority = ''] = args;
  if (args.length === 4 && (type === 'INSTANCE' || type === 'GROUP')) {
    const role = KEEPALIVED_STATES[state];
    if (!role)
      return {
        kind: 'error',
        message: `keepalived notify state must be MASTER, BACKUP, FAULT or STOP, got "${state}"`,
      };
    if (!/^\d{1,3}$/.test(priority))
      return {
        kind: 'error',
        message: `keepalived notify priority must be a number 0..255, got "${priority}"`,
      };
    return { kind: 'set', role, from: `keepalived ${type.toLowerCase()} ${name} ${state}` };
  }
  return {
    kind: 'error',
    message: `role takes master, backup or fault (or keepalived's notify arguments "INSTANCE NAME STATE PRIORITY"), got "${args.join(' ')}"`,
  };
}

/**
 * `daemon.sync.state: follow-role`: the sync daemon keepalived's `lvs_sync_daemon` would run.
 *
 * | role          | daemon |
 * | ------------- | ------ |
 * | master        | master |
 * | backup        | backup |
 * | fault         | backup |
 * | none (no file)| backup |
 *
 * Without a role file we do not know we hold the VIP: a backup daemon only listens, so a wrong
 * guess costs nothing, while a second master would send a stale table to the real master's
 * peer. A fault director keeps receiving so that it is current when it recovers.
 */
export function syncRoleFor(role: Role | null): SyncDaemonRole {
  return role === 'master' ? 'master' : 'backup';
}
