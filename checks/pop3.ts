// POP3 check, two kinds: `pop3` (port 110, optionally STLS) and `pop3s` (port 995, TLS from the
// first byte). Greeting +OK, optionally USER/PASS, QUIT. ldirectord's pop and pops (greeting,
// login when a login is configured) map onto it.
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
  doc: 'log in as this user (USER/PASS); without it the check ends after the greeting',
  check: (v, report) => {
    if (/[\r\n\0]/.test(v)) report('no line breaks or NUL');
  },
});
const PASSWORD = opt.secret({ doc: 'the password for `user`' });
const BIND = opt.address({ key: 'bind', doc: 'source address of the probe' });

export const POP3_OPTIONS = {
  user: USER,
  password: PASSWORD,
  starttls: opt.text({
    values: STARTTLS_MODES,
    default: 'off',
    doc: 'STLS after the greeting: off; opportunistic (used when the server accepts it); required (unhealthy when refused or failing)',
  }),
  tls: opt.tls({
    doc: 'certificate checks for STLS (verified unless `verify: false`; give `servername` or a `ca` whose certificate names the address)',
  }),
  bindAddress: BIND,
} as const;
export type Pop3CheckOptions = OptionsOf<typeof POP3_OPTIONS>;

export const POP3S_OPTIONS = {
  user: USER,
  password: PASSWORD,
  tls: opt.tls({ on: true, doc: 'TLS settings; verified unless `verify: false`' }),
  bindAddress: BIND,
} as const;
export type Pop3sCheckOptions = OptionsOf<typeof POP3S_OPTIONS>;

type Normal = NormalOf<typeof POP3_OPTIONS> | NormalOf<typeof POP3S_OPTIONS>;

interface Status {
  readonly ok: boolean;
  /** As a message shows it: `-ERR "[AUTH] Authentication failed."`. */
  readonly shown: string;
}

/** One status line: `+OK ...` or `-ERR ...`; anything else breaks the protocol. */
async function status(d: Dialogue): Promise<Status> {
  const line = await d.readLine();
  const m = /^(\+OK|-ERR)(?: (.*))?$/i.exec(line);
  if (!m) throw new ServerFault(`reply is not in the protocol: ${printable(line)}`);
  const ok = m[1]?.toUpperCase() === '+OK';
  return { ok, shown: `${ok ? '+OK' : '-ERR'}${m[2] ? ` ${printable(m[2])}` : ''}` };
}

export class Pop3Checker implements Checker {
  readonly description: string;
  readonly key: string;
  private readonly options: Normal;
  private readonly starttls: 'off' | 'opportunistic' | 'required';

  constructor(kind: 'pop3', options?: Pop3CheckOptions);
  constructor(kind: 'pop3s', options?: Pop3sCheckOptions);
  constructor(
    readonly kind: 'pop3' | 'pop3s',
    options: Pop3CheckOptions | Pop3sCheckOptions = {},
  ) {
    const v = tlsVariant(
      kind,
      kind === 'pop3s',
      { plain: POP3_OPTIONS, implicit: POP3S_OPTIONS },
      options,
    );
    this.options = v.options;
    this.key = v.key;
    this.starttls = v.starttls;
    const user = this.options.user;
    this.description = [
      kind === 'pop3s' ? 'POP3S' : 'POP3',
      ...(this.starttls === 'off' ? [] : [`STLS ${this.starttls}`]),
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
        tls: this.kind === 'pop3s' ? o.tls : undefined,
        bindAddress: o.bindAddress,
      });
      stage = 'waiting for the greeting';
      const greeting = await status(d);
      if (!greeting.ok) return run.fail(`greeting ${greeting.shown}, expected +OK`);
      run.step('greeting +OK');

      if (this.starttls !== 'off') {
        stage = 'waiting for the STLS reply';
        await d.send('STLS');
        const stls = await status(d);
        if (!stls.ok && this.starttls === 'required')
          return run.fail(`STLS refused: ${stls.shown}`);
        if (!stls.ok) run.step(`STLS refused: ${stls.shown}`);
        else {
          stage = 'in the TLS handshake after STLS';
          run.step(`STLS: ${await d.startTls(o.tls ?? { verify: true })}`);
        }
      }

      if (o.user !== undefined) {
        stage = 'waiting for the USER reply';
        await d.send(`USER ${wire(o.user)}`);
        const user = await status(d);
        if (!user.ok) return run.fail(`login refused at USER: ${user.shown}`);
        stage = 'waiting for the PASS reply';
        await d.send(`PASS ${wire(o.password ?? '')}`);
        const pass = await status(d);
        if (!pass.ok) return run.fail(`login refused: ${pass.shown}`);
        run.step(`login ${o.user} +OK`);
      }

      stage = 'waiting for the QUIT reply';
      await d.send('QUIT');
      const quit = await d.farewell(status(d));
      run.step(`QUIT ${quit ? (quit.ok ? '+OK' : '-ERR') : '(closed)'}`);
      return run.ok();
    } catch (error) {
      return dialogueFailure(run, error, stage);
    } finally {
      d?.close();
    }
  }
}

export const pop3 = defineCheck({
  kind: 'pop3',
  summary:
    'POP3: greeting +OK, optionally STLS, optionally USER/PASS, QUIT; healthy when the server greets (and accepts the login)',
  options: POP3_OPTIONS,
  validate(o, report) {
    validateLogin(o, report);
    if (o.tls !== undefined && (o.starttls ?? 'off') === 'off')
      report('tls', 'TLS settings apply to STLS: set starttls to opportunistic or required');
  },
  create: (o) => new Pop3Checker('pop3', o),
});

export const pop3s = defineCheck({
  kind: 'pop3s',
  summary:
    'POP3 over TLS from the first byte (port 995): handshake, greeting +OK, optionally USER/PASS, QUIT',
  options: POP3S_OPTIONS,
  validate: validateLogin,
  create: (o) => new Pop3Checker('pop3s', o),
});
