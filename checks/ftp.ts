// FTP check on the control connection: greeting 220, optionally AUTH TLS (explicit TLS, RFC
// 4217), optionally a login (USER, then PASS when asked: 331), QUIT. ldirectord's ftp check
// logs in (anonymous by default) and downloads its `request` file over a passive data
// connection to match `receive`; this one stops at the login: a server that greets, accepts
// the login and says goodbye is healthy. No data connection, so no PBSZ/PROT either.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import {
  Dialogue,
  STARTTLS_MODES,
  dialogueFailure,
  validateLogin,
  wire,
  type NumericReply,
} from '../src/health/dialogue.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

/** Users that log in without a password of their own (RFC 1635); they send ANONYMOUS_PASSWORD. */
const ANONYMOUS = ['anonymous', 'ftp'];
/** What an anonymous login gives as its password: by custom an address, here the probe's name. */
export const ANONYMOUS_PASSWORD = 'ipvs-warden@';

export const FTP_OPTIONS = {
  user: opt.text({
    doc: "log in as this user (USER/PASS); `anonymous` (ldirectord's default) needs no password. Without it the check ends after the greeting",
    check: (v, report) => {
      if (/[\r\n\0]/.test(v)) report('no line breaks or NUL');
    },
  }),
  password: opt.secret({ doc: 'the password for `user`' }),
  starttls: opt.text({
    values: STARTTLS_MODES,
    default: 'off',
    doc: 'AUTH TLS after the greeting: off; opportunistic (used when the server accepts it); required (unhealthy when refused or failing)',
  }),
  tls: opt.tls({
    doc: 'certificate checks for AUTH TLS (verified unless `verify: false`; give `servername` or a `ca` whose certificate names the address)',
  }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type FtpCheckOptions = OptionsOf<typeof FTP_OPTIONS>;

function shown(reply: NumericReply): string {
  return `${reply.code} ${printable(reply.lines[0] ?? '')}`;
}

export class FtpChecker implements Checker {
  readonly kind = 'ftp';
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof FTP_OPTIONS>;

  constructor(options: FtpCheckOptions = {}) {
    this.options = normalOptions(FTP_OPTIONS, options);
    this.key = keyOf(this.kind, FTP_OPTIONS, options);
    const o = this.options;
    this.description = [
      'FTP',
      ...(o.starttls === 'off' ? [] : [`AUTH TLS ${o.starttls}`]),
      ...(o.user === undefined ? [] : [`login ${o.user}`]),
    ].join(', ');
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    let stage = 'waiting for the connection';
    let d: Dialogue | undefined;
    try {
      d = await Dialogue.open(run, target, { bindAddress: o.bindAddress });
      stage = 'waiting for the greeting';
      const greeting = await d.readNumeric();
      if (greeting.code !== 220)
        return run.fail(
          `greeting ${shown(greeting)}, expected 220${greeting.code === 120 ? ' (not ready yet)' : ''}`,
        );
      run.step('greeting 220');

      if (o.starttls !== 'off') {
        stage = 'waiting for the AUTH TLS reply';
        await d.send('AUTH TLS');
        const auth = await d.readNumeric();
        if (auth.code !== 234 && o.starttls === 'required')
          return run.fail(`AUTH TLS refused: ${shown(auth)}`);
        if (auth.code !== 234) run.step(`AUTH TLS refused: ${shown(auth)}`);
        else {
          stage = 'in the TLS handshake after AUTH TLS';
          run.step(`AUTH TLS: ${await d.startTls(o.tls ?? { verify: true })}`);
        }
      }

      if (o.user !== undefined) {
        stage = 'waiting for the USER reply';
        await d.send(`USER ${wire(o.user)}`);
        let reply = await d.readNumeric();
        if (reply.code === 331) {
          const anonymous = ANONYMOUS.includes(o.user.toLowerCase());
          stage = 'waiting for the PASS reply';
          await d.send(`PASS ${wire(o.password ?? (anonymous ? ANONYMOUS_PASSWORD : ''))}`);
          reply = await d.readNumeric();
        }
        if (reply.code === 332) return run.fail(`login needs an account (ACCT): ${shown(reply)}`);
        if (reply.code !== 230 && reply.code !== 202)
          return run.fail(`login refused: ${shown(reply)}`);
        run.step(`login ${o.user} ${reply.code}`);
      }

      stage = 'waiting for the QUIT reply';
      await d.send('QUIT');
      run.step(`QUIT ${(await d.farewell(d.readNumeric()))?.code ?? '(closed)'}`);
      return run.ok();
    } catch (error) {
      return dialogueFailure(run, error, stage);
    } finally {
      d?.close();
    }
  }
}

export const ftp = defineCheck({
  kind: 'ftp',
  summary:
    'FTP control connection: greeting 220, optionally AUTH TLS, optionally a login (230), QUIT; healthy when the server greets (and accepts the login)',
  options: FTP_OPTIONS,
  validate(o, report) {
    validateLogin(o, report, ANONYMOUS);
    if (o.tls !== undefined && (o.starttls ?? 'off') === 'off')
      report('tls', 'TLS settings apply to AUTH TLS: set starttls to opportunistic or required');
  },
  create: (o) => new FtpChecker(o),
});
