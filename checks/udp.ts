// UDP check (keepalived's UDP_CHECK): send a datagram, healthy on a reply (that contains a
// text, matches a regex or begins with given bytes, when asked). ICMP port unreachable fails at
// once; silence fails at the deadline, or, with require_reply off (keepalived without
// require_reply), silence is healthy and only the ICMP unreachable fails.
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { exchange, type Verdict } from '../src/health/datagram.js';
import { ProbeRun, printable, unescape } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

/** Hex with optional spaces or colons between bytes: "12 34 01 00", "12:34", "123401". */
const HEX = /^(?:[0-9a-fA-F]{2}[\s:]*)*$/;

function hexBytes(text: string): Buffer {
  return Buffer.from(text.replace(/[\s:]/g, ''), 'hex');
}

const hexCheck = (value: string, report: (problem: string) => void): void => {
  if (!HEX.test(value.trim())) report('hex bytes, two digits each ("0a 1b 2c" or "0a1b2c")');
};

export const UDP_OPTIONS = {
  payload: opt.text({
    doc: 'the datagram sent; `\\r \\n \\t \\0 \\\\ \\xHH` are understood (default empty). Secret: it may carry a community or key',
    secrecy: 'secret',
  }),
  payloadHex: opt.text({
    example: '0a1b2c',
    doc: 'the datagram sent, as hex bytes (keepalived\'s payload): "12 34 01 00"',
    secrecy: 'secret',
    check: hexCheck,
  }),
  expect: opt.text({ doc: 'healthy when the reply contains this text (escapes understood)' }),
  expectRegex: opt.regex({ doc: 'healthy when the reply (as latin1 text) matches this regex' }),
  expectHex: opt.text({
    example: '0a',
    doc: "healthy when the reply begins with these hex bytes (keepalived's require_reply HEX)",
    check: hexCheck,
  }),
  requireReply: opt.bool({
    default: true,
    doc: 'a reply is needed; off: silence until the timeout is healthy too, and only ICMP port unreachable fails (keepalived without require_reply)',
  }),
  maxReply: opt.int({
    min: 1,
    max: 65535,
    default: 4096,
    doc: 'a reply longer than this many bytes is unhealthy',
  }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type UdpCheckOptions = OptionsOf<typeof UDP_OPTIONS>;

export class UdpChecker implements Checker {
  readonly kind = 'udp';
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof UDP_OPTIONS>;
  private readonly payload: Buffer;
  private readonly expect: string | RegExp | Buffer | undefined;

  constructor(options: UdpCheckOptions = {}) {
    this.options = normalOptions(UDP_OPTIONS, options);
    const o = this.options;
    this.payload =
      o.payloadHex !== undefined
        ? hexBytes(o.payloadHex)
        : Buffer.from(unescape(o.payload ?? ''), 'latin1');
    this.expect =
      o.expectRegex ??
      (o.expectHex !== undefined
        ? hexBytes(o.expectHex)
        : o.expect === undefined
          ? undefined
          : unescape(o.expect));
    this.description = 'UDP request';
    this.key = keyOf(this.kind, UDP_OPTIONS, options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const { maxReply, requireReply } = this.options;
    const expect = this.expect;
    const shown = (): string =>
      Buffer.isBuffer(expect) ? `bytes ${expect.toString('hex')}` : printable(String(expect));
    const onReply = (msg: Buffer): Verdict => {
      if (msg.length > maxReply)
        return {
          healthy: false,
          text: `reply of ${msg.length} bytes, more than max_reply ${maxReply}`,
        };
      const text = msg.toString('latin1');
      const got = `reply of ${msg.length} bytes`;
      if (expect === undefined || !requireReply) return { healthy: true, text: got };
      const matched = Buffer.isBuffer(expect)
        ? msg.subarray(0, expect.length).equals(expect)
        : typeof expect === 'string'
          ? text.includes(expect)
          : expect.test(text);
      if (matched) return { healthy: true, text: `${got} matched ${shown()}` };
      const seen = Buffer.isBuffer(expect)
        ? `begins ${msg.subarray(0, Math.min(16, msg.length)).toString('hex')}`
        : printable(text);
      return { healthy: false, text: `${got} ${seen} did not match ${shown()}` };
    };
    return exchange(target, run, context, {
      payload: this.payload,
      bindAddress: this.options.bindAddress,
      waitingFor:
        expect === undefined ? 'waiting for a reply' : `waiting for a reply matching ${shown()}`,
      onReply,
      ...(requireReply
        ? {}
        : {
            onSilence: (): Verdict => ({
              healthy: true,
              text: `no reply and no ICMP unreachable within ${context.timeoutMs} ms (require_reply off)`,
            }),
          }),
    });
  }
}

export const udp = defineCheck({
  kind: 'udp',
  summary:
    'sends a datagram and expects a reply (optionally matching); ICMP port unreachable fails at once; with require_reply off, silence is healthy',
  options: UDP_OPTIONS,
  validate(o, report) {
    if (o.payload !== undefined && o.payloadHex !== undefined)
      report('payloadHex', 'give payload or payload_hex, not both');
    const expects = [o.expect, o.expectRegex, o.expectHex].filter((e) => e !== undefined);
    if (expects.length > 1) report('expect', 'give one of expect, expect_regex and expect_hex');
    if (expects.length > 0 && o.requireReply === false)
      report('requireReply', 'an expected reply needs require_reply');
  },
  create: (o) => new UdpChecker(o),
});
