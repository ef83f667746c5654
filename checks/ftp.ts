// FTP check: greeting 220, optionally AUTH TLS (explicit TLS, RFC 4217), optionally a login
// (USER, then PASS when asked: 331), optionally a download, QUIT. ldirectord's ftp check logs in
// (anonymous by default) and downloads its `request` file over a passive data connection to
// match `receive`: here `request` and `expect`. The data connection goes to the control
// connection's address (EPSV, RFC 2428; after PASV too, whose address is ignored: a server
// cannot send the probe elsewhere), in the clear: a download after AUTH TLS (PROT P, TLS
// session reuse on the data connection) is not offered yet.
import { connect, type Socket } from 'node:net';
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
  request: opt.text({
    doc: "download this file after the login (ldirectord's request), over a passive data connection",
    check: (v, report) => {
      if (/[\r\n\0]/.test(v)) report('no line breaks or NUL');
    },
  }),
  expect: opt.regex({
    doc: "healthy only when the downloaded file matches (ldirectord's receive)",
  }),
  maxReply: opt.int({
    min: 1,
    max: 16 << 20,
    default: 64 * 1024,
    doc: 'bytes of the file read; a longer file is unhealthy',
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

      if (o.request !== undefined) {
        const got = await this.download(d, run, target, o.request, (x) => (stage = x));
        if (typeof got !== 'string') return got;
        if (o.expect && !o.expect.test(got))
          return run.fail(
            `${o.request}: ${got.length} bytes, no match for ${String(o.expect)}: ${printable(got)}`,
          );
        run.step(
          `${o.request}: ${got.length} bytes${o.expect ? `, matched ${String(o.expect)}` : ''}`,
        );
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

  /** TYPE I, EPSV (PASV when refused), RETR over a data connection: the file, or a result. */
  private async download(
    d: Dialogue,
    run: ProbeRun,
    target: CheckTarget,
    file: string,
    stage: (s: string) => void,
  ): Promise<string | CheckResult> {
    stage('waiting for the TYPE reply');
    await d.send('TYPE I');
    const type = await d.readNumeric();
    if (type.code !== 200) return run.fail(`TYPE I refused: ${shown(type)}`);
    stage('waiting for the EPSV reply');
    await d.send('EPSV');
    let passive = await d.readNumeric();
    if (passive.code !== 229) {
      stage('waiting for the PASV reply');
      await d.send('PASV');
      passive = await d.readNumeric();
    }
    const port = dataPort(passive);
    if (port === undefined || port < 1 || port > 65535)
      return run.fail(`no passive data port: ${shown(passive)}`);
    stage(`connecting the data connection (port ${port})`);
    const max = this.options.maxReply;
    let socket: Socket | undefined;
    const onAbort = (): void => void socket?.destroy();
    run.signal.addEventListener('abort', onAbort, { once: true });
    try {
      socket = connect({
        host: target.address,
        port,
        family: target.family,
        ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
      });
      const data = socket;
      const chunks: Buffer[] = [];
      let size = 0;
      const received = new Promise<'whole' | 'too long'>((resolve, reject) => {
        data.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > max) {
            data.destroy();
            resolve('too long');
          } else chunks.push(chunk);
        });
        data.on('end', () => resolve('whole'));
        data.on('error', reject);
        data.on('close', () => (run.signal.aborted ? reject(run.signal.reason) : undefined));
      });
      received.catch(() => undefined);
      stage(`waiting for the RETR ${file} reply`);
      await d.send(`RETR ${wire(file)}`);
      const retr = await d.readNumeric();
      if (retr.code !== 150 && retr.code !== 125)
        return run.fail(`RETR ${file} refused: ${shown(retr)}`);
      stage(`reading ${file}`);
      if ((await received) === 'too long')
        return run.fail(`${file} is longer than max_reply (${max} bytes)`);
      stage(`waiting for the end of ${file}`);
      const done = await d.readNumeric();
      if (done.code !== 226 && done.code !== 250)
        return run.fail(`${file} not sent whole: ${shown(done)}`);
      return Buffer.concat(chunks).toString('latin1');
    } finally {
      run.signal.removeEventListener('abort', onAbort);
      socket?.destroy();
    }
  }
}

/** The data port from an EPSV (`(|||6446|)`) or PASV (`(h1,h2,h3,h4,p1,p2)`) reply. */
export function dataPort(reply: NumericReply): number | undefined {
  const text = reply.lines.join(' ');
  const epsv = /\(([!-~])\1\1(\d{1,5})\1\)/.exec(text);
  if (reply.code === 229 && epsv) return Number(epsv[2]);
  const pasv = /(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})/.exec(text);
  if (reply.code === 227 && pasv) return Number(pasv[5]) * 256 + Number(pasv[6]);
  return undefined;
}

export const ftp = defineCheck({
  kind: 'ftp',
  summary:
    'FTP control connection: greeting 220, optionally AUTH TLS, optionally a login (230), QUIT; healthy when the server greets (and accepts the login)',
  options: FTP_OPTIONS,
  validate(o, report) {
    validateLogin(o, report, ANONYMOUS);
    if (o.request === undefined && o.expect !== undefined)
      report('expect', 'expect judges a download: give request');
    if (o.request !== undefined && o.user === undefined)
      report('request', 'a download needs a login: give user (anonymous, for one)');
    if (o.request !== undefined && (o.starttls ?? 'off') !== 'off')
      report('request', 'a download after AUTH TLS is not supported yet: set starttls off');
    if (o.tls !== undefined && (o.starttls ?? 'off') === 'off')
      report('tls', 'TLS settings apply to AUTH TLS: set starttls to opportunistic or required');
  },
  create: (o) => new FtpChecker(o),
});
