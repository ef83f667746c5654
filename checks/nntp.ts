// NNTP check: greeting 200 (posting allowed) or 201 (no posting), then QUIT (205). ldirectord's
// nntp check passes on any greeting that starts with 2; this one names the code it saw.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { Dialogue, dialogueFailure } from '../src/health/dialogue.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

export const NNTP_OPTIONS = {
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type NntpCheckOptions = OptionsOf<typeof NNTP_OPTIONS>;

/** What a greeting other than 200/201 means (RFC 3977 5.1.1). */
const GREETING_TEXT: Readonly<Record<number, string>> = {
  400: 'service temporarily unavailable',
  502: 'service permanently unavailable',
};

export class NntpChecker implements Checker {
  readonly kind = 'nntp';
  readonly description = 'NNTP';
  readonly key: string;
  private readonly options: NormalOf<typeof NNTP_OPTIONS>;

  constructor(options: NntpCheckOptions = {}) {
    this.options = normalOptions(NNTP_OPTIONS, options);
    this.key = keyOf(this.kind, NNTP_OPTIONS, options);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    let stage = 'waiting for the connection';
    let d: Dialogue | undefined;
    try {
      d = await Dialogue.open(run, target, { bindAddress: this.options.bindAddress });
      stage = 'waiting for the greeting';
      // NNTP replies are one line; a multi-line one (`200-`) is not NNTP, so read one line.
      const greeting = await d.readNumeric(1);
      if (greeting.code !== 200 && greeting.code !== 201) {
        const meaning = GREETING_TEXT[greeting.code];
        return run.fail(
          `greeting ${greeting.code} ${printable(greeting.lines[0] ?? '')}, expected 200 or 201${meaning ? ` (${meaning})` : ''}`,
        );
      }
      run.step(`greeting ${greeting.code}`);
      stage = 'waiting for the QUIT reply';
      await d.send('QUIT');
      run.step(`QUIT ${(await d.farewell(d.readNumeric(1)))?.code ?? '(closed)'}`);
      return run.ok();
    } catch (error) {
      return dialogueFailure(run, error, stage);
    } finally {
      d?.close();
    }
  }
}

export const nntp = defineCheck({
  kind: 'nntp',
  summary: 'NNTP: greeting 200 or 201, QUIT; healthy when the server greets with either',
  options: NNTP_OPTIONS,
  create: (o) => new NntpChecker(o),
});
