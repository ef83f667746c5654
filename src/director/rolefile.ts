// Reads STATE_DIR/role for the loop (every maintenance_poll, off the tick): keeps the last good
// role through a malformed or unreadable file, and logs each kind of trouble once.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { parseRoleText, ROLE_FILE, type Role } from './role.js';

export class RoleFile {
  private role: Role | null = null;
  /** The trouble last logged ("" when the last read was good), so each is logged once. */
  private trouble = '';

  constructor(
    private readonly log: Logger,
    private readonly read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
  ) {}

  /** The role last read; null when there is no role file. */
  current(): Role | null {
    return this.role;
  }

  /** Reads the file; true when the role changed. */
  async poll(stateDir: string): Promise<boolean> {
    const file = join(stateDir, ROLE_FILE);
    let next: Role | null;
    try {
      const text = await this.read(file);
      next = parseRoleText(text);
      if (next === null) {
        this.complain(`malformed:${text}`, 'director.role_unreadable', {
          file,
          error: `holds ${JSON.stringify(text.slice(0, 40))}, not master, backup or fault`,
          fix: `write it with "ipvs-warden role master|backup|fault --state-dir ${stateDir}"`,
        });
        return false;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      if (code !== 'ENOENT') {
        this.complain(code, 'director.role_unreadable', {
          file,
          error: code,
          fix: 'make the file readable by the daemon (or remove it: no role file means backup)',
        });
        return false;
      }
      // No file: nobody has told us a role (or it was removed on purpose).
      next = null;
    }
    if (this.trouble) {
      this.log.log('info', 'director.role_readable', { file });
      this.trouble = '';
    }
    if (next === this.role) return false;
    this.log.log('info', 'director.role_changed', { from: this.role, to: next, file });
    this.role = next;
    return true;
  }

  private complain(kind: string, event: string, fields: Record<string, unknown>): void {
    if (kind === this.trouble) return;
    this.trouble = kind;
    this.log.log('warn', event, { ...fields, kept: this.role });
  }
}
