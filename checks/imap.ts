// IMAP check, two kinds: `imap` (port 143, optionally STARTTLS) and `imaps` (port 993, TLS from
// the first byte). Greeting `* OK` (or PREAUTH), optionally LOGIN, LOGOUT. ldirectord's imap
// and imaps (greeting, LOGIN when a login is configured) map onto it.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import {
  Dialogue,
  STARTTLS_MODES,
  tlsVariant,
  ServerFault,
  dialogueFailure,
  validateLogin,
  wire,
} from '../src/health/dialogue.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import { defineCheck, opt, type NormalOf, type OptionsOf } from '../src/health/schema.js';

const USER = opt.text({
  doc: 'log in as this user (LOGIN); without it the check ends after the greeting',
});
const PASSWORD = opt.secret({ doc: 'the password for `user`' });
const BIND = opt.address({ key: 'bind', doc: 'source address of the probe' });

export const IMAP_OPTIONS = {
  user: USER,
  password: PASSWORD,
  starttls: opt.text({
    values: STARTTLS_MODES,
    default: 'off',
    doc: 'STARTTLS after the greeting: off; opportunistic (used when the server accepts it); required (unhealthy when refused or failing)',
  }),
  tls: opt.tls({
    doc: 'certificate checks for STARTTLS (verified unless `verify: false`; give `servername` or a `ca` whose certificate names the address)',
  }),
  bindAddress: BIND,
} as const;
export type ImapCheckOptions = OptionsOf<typeof IMAP_OPTIONS>;

export const IMAPS_OPTIONS = {
  user: USER,
  password: PASSWORD,
  tls: opt.tls({ on: true, doc: 'TLS settings; verified unless `verify: false`' }),
  bindAddress: BIND,
} as const;
export type ImapsCheckOptions = OptionsOf<typeof IMAPS_OPTIONS>;

type Normal = NormalOf<typeof IMAP_OPTIONS> | NormalOf<typeof IMAPS_OPTIONS>;

/** Untagged lines read before a tagged reply at most (a CAPABILITY, a BYE, alerts). */
const MAX_UNTAGGED = 100;

/**
 * An IMAP string (RFC 3501 4.3) as the segments of a command: a quoted string when the text is
 * 7-bit without CR, LF or NUL (backslash and quote escaped), else a synchronising literal
 * (`{n}`, then the bytes once the server says `+`). Latin1, as Dialogue.send writes it.
 */
export function imapString(text: string): { quoted: string } | { literal: string } {
  const bytes = wire(text);
  // 7-bit, and none of NUL, CR, LF: a quoted string can carry it.
  const quotable = Buffer.from(bytes, 'latin1').every(
    (b) => b > 0 && b < 0x80 && b !== 13 && b !== 10,
  );
  if (quotable) return { quoted: `"${bytes.replace(/[\\"]/g, (c) => `\\${c}`)}"` };
  return { literal: bytes };
}

interface Tagged {
  readonly status: 'OK' | 'NO' | 'BAD';
  /** As a message shows it: `NO "[AUTHENTICATIONFAILED] Authentication failed."`. */
  readonly shown: string;
}

class Session {
  private count = 0;
  constructor(private readonly d: Dialogue) {}

  /** Sends a command made of parts (literals wait for the server's `+`); its tagged reply. */
  async command(...parts: (string | { quoted: string } | { literal: string })[]): Promise<Tagged> {
    const tag = `w${++this.count}`;
    let line = tag;
    for (const part of parts) {
      if (typeof part === 'string') line += ` ${part}`;
      else if ('quoted' in part) line += ` ${part.quoted}`;
      else {
        await this.d.send(`${line} {${part.literal.length}}`);
        const go = await this.continuation(tag);
        if (go) return go;
        line = part.literal;
      }
    }
    await this.d.send(line);
    return this.tagged(tag);
  }

  /** Waits for `+` (go on) or the command's tagged reply (refused before the literal). */
  private async continuation(tag: string): Promise<Tagged | undefined> {
    for (let i = 0; i < MAX_UNTAGGED; i++) {
      const line = await this.d.readLine();
      if (line.startsWith('+')) return undefined;
      if (line.startsWith(`${tag} `)) return parseTagged(line.slice(tag.length + 1));
      if (!line.startsWith('* ')) throw notImap(line);
    }
    throw new ServerFault(`more than ${MAX_UNTAGGED} untagged lines before a reply`);
  }

  private async tagged(tag: string): Promise<Tagged> {
    for (let i = 0; i < MAX_UNTAGGED; i++) {
      const line = await this.d.readLine();
      if (line.startsWith(`${tag} `)) return parseTagged(line.slice(tag.length + 1));
      if (!line.startsWith('* ') && !line.startsWith('+')) throw notImap(line);
    }
    throw new ServerFault(`more than ${MAX_UNTAGGED} untagged lines before a reply`);
  }
}

function parseTagged(rest: string): Tagged {
  const m = /^(OK|NO|BAD)(?: (.*))?$/i.exec(rest);
  if (!m) throw notImap(rest);
  const status = m[1]?.toUpperCase() as Tagged['status'];
  return { status, shown: `${status}${m[2] ? ` ${printable(m[2])}` : ''}` };
}

function notImap(line: string): ServerFault {
  return new ServerFault(`reply is not in the protocol: ${printable(line)}`);
}

export class ImapChecker implements Checker {
  readonly description: string;
  readonly key: string;
  private readonly options: Normal;
  private readonly starttls: 'off' | 'opportunistic' | 'required';

  constructor(kind: 'imap', options?: ImapCheckOptions);
  constructor(kind: 'imaps', options?: ImapsCheckOptions);
  constructor(
    readonly kind: 'imap' | 'imaps',
    options: ImapCheckOptions | ImapsCheckOptions = {},
  ) {
    const v = tlsVariant(
      kind,
      kind === 'imaps',
      { plain: IMAP_OPTIONS, implicit: IMAPS_OPTIONS },
      options,
    );
    this.options = v.options;
    this.key = v.key;
    this.starttls = v.starttls;
    const user = this.options.user;
    this.description = [
      kind === 'imaps' ? 'IMAPS' : 'IMAP',
      ...(this.starttls === 'off' ? [] : [`STARTTLS ${this.starttls}`]),
      ...(user === undefined ? [] : [`login ${user}`]),
    ].join(', ');
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    let stage = 'waiting for the connection';
    let d: Dialogue | undefined;
    try {
      d = await Dialogue.open(run, target, {
        tls: this.kind === 'imaps' ? o.tls : undefined,
        bindAddress: o.bindAddress,
      });
      const session = new Session(d);
      stage = 'waiting for the greeting';
      const greeting = await d.readLine();
      const g = /^\* (OK|PREAUTH|BYE)\b ?(.*)$/i.exec(greeting);
      if (!g) throw notImap(greeting);
      const kind = g[1]?.toUpperCase();
      if (kind === 'BYE')
        return run.fail(`greeting BYE ${printable(g[2] ?? '')} (the server refuses the session)`);
      run.step(`greeting ${kind}`);
      const preauth = kind === 'PREAUTH';

      if (this.starttls !== 'off' && !preauth) {
        stage = 'waiting for the STARTTLS reply';
        const reply = await session.command('STARTTLS');
        if (reply.status !== 'OK' && this.starttls === 'required')
          return run.fail(`STARTTLS refused: ${reply.shown}`);
        if (reply.status !== 'OK') run.step(`STARTTLS refused: ${reply.shown}`);
        else {
          stage = 'in the TLS handshake after STARTTLS';
          run.step(`STARTTLS: ${await d.startTls(o.tls ?? { verify: true })}`);
        }
      } else if (this.starttls === 'required')
        return run.fail('preauthenticated in the clear: STARTTLS is not possible');

      if (o.user !== undefined && preauth) run.step('preauthenticated: no LOGIN');
      else if (o.user !== undefined) {
        stage = 'waiting for the LOGIN reply';
        const login = await session.command(
          'LOGIN',
          imapString(o.user),
          imapString(o.password ?? ''),
        );
        if (login.status === 'NO') return run.fail(`login refused: ${login.shown}`);
        if (login.status === 'BAD') return run.fail(`LOGIN not understood: ${login.shown}`);
        run.step(`login ${o.user} OK`);
      }

      stage = 'waiting for the LOGOUT reply';
      const logout = await d.farewell(session.command('LOGOUT'));
      run.step(`LOGOUT ${logout?.status ?? '(closed)'}`);
      return run.ok();
    } catch (error) {
      return dialogueFailure(run, error, stage);
    } finally {
      d?.close();
    }
  }
}

export const imap = defineCheck({
  kind: 'imap',
  summary:
    'IMAP: greeting * OK, optionally STARTTLS, optionally LOGIN, LOGOUT; healthy when the server greets (and accepts the login)',
  options: IMAP_OPTIONS,
  validate(o, report) {
    validateLogin(o, report);
    if (o.tls !== undefined && (o.starttls ?? 'off') === 'off')
      report('tls', 'TLS settings apply to STARTTLS: set starttls to opportunistic or required');
  },
  create: (o) => new ImapChecker('imap', o),
});

export const imaps = defineCheck({
  kind: 'imaps',
  summary:
    'IMAP over TLS from the first byte (port 993): handshake, greeting * OK, optionally LOGIN, LOGOUT',
  options: IMAPS_OPTIONS,
  validate: validateLogin,
  create: (o) => new ImapChecker('imaps', o),
});
