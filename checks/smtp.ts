// SMTP check, three kinds of one protocol: `smtp` (port 25), `submission` (port 587, ldirectord's
// name for it) and `smtps` (port 465, TLS from the first byte). Greeting 220, EHLO (HELO when
// the server knows no EHLO), optionally STARTTLS and EHLO again, then QUIT. keepalived's
// SMTP_CHECK (helo_name) and ldirectord's smtp/submission (greeting, then QUIT) map onto it.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import {
  Dialogue,
  STARTTLS_MODES,
  tlsVariant,
  dialogueFailure,
  type NumericReply,
} from '../src/health/dialogue.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import { defineCheck, opt, type NormalOf, type OptionsOf } from '../src/health/schema.js';

const HELO_NAME = opt.text({
  default: 'localhost',
  doc: 'the name sent with EHLO (keepalived: helo_name); a server may refuse one it cannot resolve',
  check: (v, report) => {
    if (!/^[\x21-\x7e]+$/.test(v)) report('one word of printable ASCII');
  },
});
const BIND = opt.address({ key: 'bind', doc: 'source address of the probe' });

export const SMTP_OPTIONS = {
  heloName: HELO_NAME,
  starttls: opt.text({
    values: STARTTLS_MODES,
    default: 'off',
    doc: 'STARTTLS after EHLO: off; opportunistic (when EHLO offers it); required (unhealthy when not offered or failing)',
  }),
  tls: opt.tls({
    doc: 'certificate checks for STARTTLS (verified unless `verify: false`; give `servername` or a `ca` whose certificate names the address)',
  }),
  bindAddress: BIND,
} as const;
export type SmtpCheckOptions = OptionsOf<typeof SMTP_OPTIONS>;

export const SMTPS_OPTIONS = {
  heloName: HELO_NAME,
  tls: opt.tls({ on: true, doc: 'TLS settings; verified unless `verify: false`' }),
  bindAddress: BIND,
} as const;
export type SmtpsCheckOptions = OptionsOf<typeof SMTPS_OPTIONS>;

type SmtpKind = 'smtp' | 'submission' | 'smtps';
type Normal = NormalOf<typeof SMTP_OPTIONS> | NormalOf<typeof SMTPS_OPTIONS>;

/** One reply as a message shows it: `250 "mail.example ESMTP"`. */
function shown(reply: NumericReply): string {
  return `${reply.code} ${printable(reply.lines[0] ?? '')}`;
}

/** The EHLO reply's keywords in capitals: "STARTTLS", "SIZE", ... (the first line is the name). */
function extensions(reply: NumericReply): Set<string> {
  return new Set(reply.lines.slice(1).map((l) => (l.split(' ')[0] ?? '').toUpperCase()));
}

export class SmtpChecker implements Checker {
  readonly description: string;
  readonly key: string;
  private readonly options: Normal;
  private readonly starttls: 'off' | 'opportunistic' | 'required';

  constructor(kind: 'smtp' | 'submission', options?: SmtpCheckOptions);
  constructor(kind: 'smtps', options?: SmtpsCheckOptions);
  constructor(
    readonly kind: SmtpKind,
    options: SmtpCheckOptions | SmtpsCheckOptions = {},
  ) {
    const v = tlsVariant(
      kind,
      kind === 'smtps',
      { plain: SMTP_OPTIONS, implicit: SMTPS_OPTIONS },
      options,
    );
    this.options = v.options;
    this.key = v.key;
    this.starttls = v.starttls;
    const name = kind === 'smtps' ? 'SMTPS' : kind === 'submission' ? 'SMTP submission' : 'SMTP';
    this.description = `${name} EHLO ${this.options.heloName}${this.starttls === 'off' ? '' : `, STARTTLS ${this.starttls}`}`;
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    let stage = 'waiting for the connection';
    let d: Dialogue | undefined;
    try {
      d = await Dialogue.open(run, target, {
        tls: this.kind === 'smtps' ? o.tls : undefined,
        bindAddress: o.bindAddress,
      });
      stage = 'waiting for the greeting';
      const greeting = await d.readNumeric();
      if (greeting.code !== 220)
        return run.fail(
          `greeting ${shown(greeting)}, expected 220${greeting.code === 554 ? ' (the server refuses this client)' : ''}`,
        );
      run.step('greeting 220');

      let ehlo = await this.hello(d, run, (s) => (stage = s));
      if (!ehlo.ok) return ehlo.result;

      if (this.starttls !== 'off') {
        const offered = ehlo.extensions.has('STARTTLS');
        if (!offered && this.starttls === 'required')
          return run.fail('STARTTLS not offered in the EHLO reply');
        if (!offered) run.step('STARTTLS not offered');
        else {
          stage = 'waiting for the STARTTLS reply';
          await d.send('STARTTLS');
          const reply = await d.readNumeric();
          if (reply.code !== 220) {
            if (this.starttls === 'required') return run.fail(`STARTTLS refused: ${shown(reply)}`);
            run.step(`STARTTLS refused: ${shown(reply)}`);
          } else {
            stage = 'in the TLS handshake after STARTTLS';
            run.step(`STARTTLS: ${await d.startTls(o.tls ?? { verify: true })}`);
            ehlo = await this.hello(d, run, (s) => (stage = s));
            if (!ehlo.ok) return ehlo.result;
          }
        }
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

  /** EHLO; on a 5xx that says EHLO is unknown (RFC 5321 4.1.4), HELO as a client falls back. */
  private async hello(
    d: Dialogue,
    run: ProbeRun,
    setStage: (stage: string) => void,
  ): Promise<{ ok: true; extensions: Set<string> } | { ok: false; result: CheckResult }> {
    setStage('waiting for the EHLO reply');
    await d.send(`EHLO ${this.options.heloName}`);
    const ehlo = await d.readNumeric();
    if (ehlo.code === 250) {
      run.step('EHLO 250');
      return { ok: true, extensions: extensions(ehlo) };
    }
    if (this.starttls === 'required' || ![500, 502].includes(ehlo.code))
      return { ok: false, result: run.fail(`EHLO refused: ${shown(ehlo)}`) };
    run.step(`EHLO ${ehlo.code}`);
    setStage('waiting for the HELO reply');
    await d.send(`HELO ${this.options.heloName}`);
    const helo = await d.readNumeric();
    if (helo.code !== 250) return { ok: false, result: run.fail(`HELO refused: ${shown(helo)}`) };
    run.step('HELO 250');
    return { ok: true, extensions: new Set() };
  }
}

function validateStarttls(
  o: { starttls?: string; tls?: unknown },
  report: (option: 'tls', problem: string) => void,
): void {
  if (o.tls !== undefined && (o.starttls ?? 'off') === 'off')
    report('tls', 'TLS settings apply to STARTTLS: set starttls to opportunistic or required');
}

export const smtp = defineCheck({
  kind: 'smtp',
  summary:
    'SMTP: greeting 220, EHLO 250 (optionally STARTTLS and EHLO again), QUIT; healthy when the server accepts the session',
  options: SMTP_OPTIONS,
  validate: validateStarttls,
  create: (o) => new SmtpChecker('smtp', o),
});

export const submission = defineCheck({
  kind: 'submission',
  summary:
    'SMTP on the submission port (587), as the smtp check: greeting 220, EHLO 250, optionally STARTTLS, QUIT',
  options: SMTP_OPTIONS,
  validate: validateStarttls,
  create: (o) => new SmtpChecker('submission', o),
});

export const smtps = defineCheck({
  kind: 'smtps',
  summary: 'SMTP over TLS from the first byte (port 465): handshake, greeting 220, EHLO 250, QUIT',
  options: SMTPS_OPTIONS,
  create: (o) => new SmtpChecker('smtps', o),
});
