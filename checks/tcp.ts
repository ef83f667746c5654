// TCP check: connect (optionally TLS), optionally send a string and expect a reply that
// contains a string or matches a regex. Healthy on connect when nothing is expected.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { openProbeConnection, type ProbeConnection } from '../src/health/datapath.js';
import { nativeConnectCheck, type ConnectOutcome } from '../src/health/native.js';
import {
  ProbeRun,
  checkMessage,
  durationSince,
  endedResult,
  printable,
  unescape,
} from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

export const TCP_OPTIONS = {
  send: opt.text({
    doc: 'sent after connecting; `\\r \\n \\t \\0 \\\\ \\xHH` are understood (it may log in, as Redis AUTH does)',
    secrecy: 'secret',
  }),
  expect: opt.text({ doc: 'healthy when the reply contains this text (escapes understood)' }),
  expectRegex: opt.regex({ doc: 'healthy when the reply matches this regex' }),
  tls: opt.tls({ doc: 'TLS first; the certificate is verified unless `verify: false`' }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
  maxReply: opt.int({
    min: 1,
    max: 16 << 20,
    default: 64 * 1024,
    doc: 'bytes of reply kept for matching; more without a match is unhealthy',
  }),
} as const;
export type TcpCheckOptions = OptionsOf<typeof TCP_OPTIONS>;

export class TcpChecker implements Checker {
  readonly kind = 'tcp';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalOf<typeof TCP_OPTIONS>;
  private readonly send: Buffer | undefined;
  private readonly expect: RegExp | string | undefined;
  /** Only a connect (no TLS, nothing sent or expected): the probe engine can run it whole. */
  private readonly bare: boolean;
  /** A healthy connect's message by target: one string for every check of a server. */
  private readonly connected = new WeakMap<CheckTarget, string>();

  constructor(options: TcpCheckOptions = {}) {
    this.options = normalOptions(TCP_OPTIONS, options);
    const o = this.options;
    this.send = o.send === undefined ? undefined : Buffer.from(unescape(o.send), 'latin1');
    this.expect = o.expectRegex ?? (o.expect === undefined ? undefined : unescape(o.expect));
    this.description = o.tls ? 'TLS connect' : 'TCP connect';
    this.key = keyOf(this.kind, TCP_OPTIONS, options);
    this.bare = o.send === undefined && this.expect === undefined && !o.tls;
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    // A caller's cancel hook (a probe worker's) and the data path take the general way below.
    if (this.bare && context.cancel === undefined && target.dataPath === undefined)
      return this.connectOnly(target, context);
    return this.probe(target, context);
  }

  /**
   * A bare connect run whole by the probe engine (native.ts: the socket in C, the deadline and
   * the signal there): no ProbeRun, deadline timer, watch or handle of its own, and its results
   * in the same words as the general way's. The general way where the engine is not here.
   */
  private connectOnly(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const started = performance.now();
    const { timeoutMs } = context;
    return new Promise<CheckResult>((resolve) => {
      const done = (outcome: ConnectOutcome): void => {
        if (outcome === 'connected') {
          const message = this.connectedMessage(target);
          resolve({ healthy: true, durationMs: durationSince(started), message });
          return;
        }
        const ending = typeof outcome === 'string' ? outcome : { error: outcome };
        const stage = 'waiting for the connection';
        resolve(endedResult(this.description, target, started, ending, timeoutMs, stage));
      };
      const { family, address, port } = target;
      const bind = this.options.bindAddress;
      if (!nativeConnectCheck(family, address, port, bind, timeoutMs, context.signal, done))
        resolve(this.probe(target, context));
    });
  }

  private connectedMessage(target: CheckTarget): string {
    let message = this.connected.get(target);
    if (message === undefined) {
      message = checkMessage(this.description, target, 'connected');
      this.connected.set(target, message);
    }
    return message;
  }

  private probe(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const maxReply = this.options.maxReply;
    const { send, expect } = this;
    return new Promise<CheckResult>((resolve) => {
      // Assigned once the handlers that close over it exist.
      // eslint-disable-next-line prefer-const
      let connection: ProbeConnection | undefined;
      let stage = 'waiting for the connection';
      let reply = '';
      let finished = false;
      const finish = (result: CheckResult): void => {
        if (finished) return;
        finished = true;
        run.unwatch(onAbort);
        // What was sent and not answered may still be unread: a plain close lets it arrive.
        if (send !== undefined && reply.length === 0) connection?.close();
        else connection?.reset();
        resolve(result);
      };
      const onAbort = (): void => finish(run.failWith(run.reason, stage));
      if (run.aborted) {
        resolve(run.failWith(run.reason, stage));
        return;
      }
      run.watch(onAbort);

      connection = openProbeConnection(
        target,
        this.options.bindAddress,
        this.options.tls,
        {
          connected: () => {
            run.step('connected');
            const tls = connection?.tlsProtocol();
            if (tls !== undefined) run.step(`TLS ${tls}`.trim());
            // Written by the connection itself (below), before this is told.
            if (send) run.step(`sent ${send.length} bytes`);
            if (expect === undefined) {
              finish(run.ok());
              return;
            }
            stage = `waiting for a reply matching ${printable(String(expect))}`;
          },
          data: (chunk) => {
            reply += chunk.toString('latin1');
            if (expect === undefined) return;
            const matched =
              typeof expect === 'string' ? reply.includes(expect) : expect.test(reply);
            if (matched) finish(run.ok(`reply matched ${printable(String(expect))}`));
            else if (reply.length > maxReply)
              finish(run.fail(`no match in the first ${maxReply} bytes of reply`));
          },
          ended: () =>
            finish(
              run.fail(
                reply.length === 0
                  ? 'connection closed without a reply'
                  : `connection closed; reply ${printable(reply)} did not match ${printable(String(expect))}`,
              ),
            ),
          failed: (error) => finish(run.failWith(error, stage)),
        },
        send ? { text: '', body: send } : expect === undefined ? 'nothing' : undefined,
      );
    });
  }
}

export const tcp = defineCheck({
  kind: 'tcp',
  summary:
    'connects (optionally over TLS), optionally sends a string and expects a reply; healthy on connect when nothing is expected',
  options: TCP_OPTIONS,
  validate(o, report) {
    if (o.expect !== undefined && o.expectRegex !== undefined)
      report('expectRegex', 'give expect or expect_regex, not both');
  },
  create: (o) => new TcpChecker(o),
});
