// SIP check: an OPTIONS request (RFC 3261 11) over UDP or TCP; healthy on a final response whose
// status is in the expected set (default 200, as keepalived and ldirectord want). Provisional
// 1xx responses are noted and waited past; responses to another request (Call-ID or CSeq not
// ours) are ignored. Over UDP the socket is connected, so the kernel's "port unreachable" fails
// the check at once, and the request is retransmitted as a non-INVITE client transaction does
// (timer E: T1, doubling to T2) until the deadline. ldirectord's check_sip sends the same
// request (its request URI, To, From and Contact are `sip:LOGIN`: here `uri`) and wants the
// first line to be "SIP/2.0 200 OK"; it does not wait past a 1xx, nor retransmit.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { parseStatusSet } from '../src/health/options.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
  type Report,
} from '../src/health/schema.js';

/** Bytes of one response over TCP (headers and body) kept; more is unhealthy. */
export const MAX_MESSAGE = 64 * 1024;
/** RFC 3261 17.1.2.2: retransmit at T1, doubling, at most every T2. */
const T1 = 500;
const T2 = 4000;

const statusSet = (value: string, report: Report): void => {
  try {
    parseStatusSet(value);
  } catch (error) {
    report((error as Error).message);
  }
};

export const SIP_OPTIONS = {
  transport: opt.text({ values: ['udp', 'tcp'], default: 'udp', doc: 'transport of the request' }),
  uri: opt.text({
    example: 'sip:alice@192.0.2.1',
    doc: "request URI and To (default `sip:ADDRESS:PORT` of the target); ldirectord's `sip:LOGIN`",
    check: (value: string, report: Report) => {
      if (!/^sips?:[^\s<>]+$/i.test(value)) report('not a SIP URI (sip:user@host[:port])');
    },
  }),
  from: opt.text({
    example: 'sip:warden@192.0.2.2',
    doc: 'From URI (default `sip:warden@` the probe’s own address)',
    check: (value: string, report: Report) => {
      if (!/^sips?:[^\s<>]+$/i.test(value)) report('not a SIP URI (sip:user@host)');
    },
  }),
  expectStatus: opt.text({
    default: '200',
    example: '200,404',
    doc: 'final statuses that are healthy: "200", "200-299", "200,404"',
    check: statusSet,
  }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type SipCheckOptions = OptionsOf<typeof SIP_OPTIONS>;

/** What one message from the server is. */
export type SipMessage =
  | { kind: 'response'; status: number; reason: string; callId?: string; cseq?: string }
  | { kind: 'request'; method: string }
  | { kind: 'garbage' };

/** Parses a SIP message's start line and the headers the check matches on (RFC 3261 7). */
export function parseSipMessage(text: string): SipMessage {
  const end = text.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? text : text.slice(0, end)).split(/\r?\n/);
  const start = lines[0] ?? '';
  const request = /^([A-Z]+) \S+ SIP\/2\.0$/.exec(start);
  if (request) return { kind: 'request', method: request[1] ?? '' };
  const status = /^SIP\/2\.0 ([1-6]\d\d) ([^\r\n]*)$/.exec(start);
  if (!status) return { kind: 'garbage' };
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of lines.slice(1)) {
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'garbage' };
    last = line.slice(0, colon).trim().toLowerCase();
    if (last === 'i') last = 'call-id';
    if (last === 'l') last = 'content-length';
    // The first of a repeated header is the one that counts for these.
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  const callId = headers.get('call-id');
  const cseq = headers.get('cseq')?.replace(/\s+/g, ' ');
  return {
    kind: 'response',
    status: Number(status[1]),
    reason: (status[2] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 80),
    ...(callId === undefined ? {} : { callId }),
    ...(cseq === undefined ? {} : { cseq }),
  };
}

/** `host` as it goes in a SIP URI or Via (IPv6 in brackets). */
function uriHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

interface Local {
  readonly address: string;
  readonly port: number;
}

/** How far one check's exchange is, for its messages. */
interface Exchange {
  stage: string;
  /** Times the request went out (UDP retransmits it). */
  sent: number;
  /** Messages that answered something else (another Call-ID or CSeq, a request). */
  ignored: number;
}

function waitingFor({ stage, sent, ignored }: Exchange): string {
  const notes = [
    sent > 1 ? `request sent ${sent} times` : '',
    ignored > 0
      ? `ignored ${ignored} message${ignored === 1 ? '' : 's'} not answering the request`
      : '',
  ].filter(Boolean);
  return notes.length ? `${stage} (${notes.join('; ')})` : stage;
}

/** What a transport needs from the check. */
interface Probe {
  readonly target: CheckTarget;
  readonly run: ProbeRun;
  readonly request: (local: Local) => Buffer;
  /** One message from the server; `onProvisional` for a 1xx. */
  readonly judge: (text: string, onProvisional?: () => void) => void;
  readonly finish: (result: CheckResult) => void;
  /** Run once when the check ends, whichever way. */
  readonly closers: (() => void)[];
  readonly state: Exchange;
}

export class SipChecker implements Checker {
  readonly kind = 'sip';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalOf<typeof SIP_OPTIONS>;
  private readonly accept: (status: number) => boolean;

  constructor(options: SipCheckOptions = {}) {
    this.options = normalOptions(SIP_OPTIONS, options);
    const o = this.options;
    this.accept = parseStatusSet(o.expectStatus);
    this.description = `SIP OPTIONS${o.uri ? ` ${o.uri}` : ''} over ${o.transport}`;
    this.key = keyOf(this.kind, SIP_OPTIONS, options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    const uri = o.uri ?? `sip:${uriHost(target.address)}:${target.port}`;
    const callId = `${randomBytes(12).toString('hex')}@ipvs-warden`;
    const branch = `z9hG4bK${randomBytes(10).toString('hex')}`;
    const tag = randomBytes(6).toString('hex');
    const cseq = 1 + (randomBytes(2).readUInt16BE(0) % 30000);
    const request = (local: Local): Buffer => {
      const via = `SIP/2.0/${o.transport.toUpperCase()} ${uriHost(local.address)}:${local.port}`;
      const contactParams = o.transport === 'tcp' ? ';transport=tcp' : '';
      return Buffer.from(
        [
          `OPTIONS ${uri} SIP/2.0`,
          `Via: ${via};branch=${branch};rport`,
          'Max-Forwards: 70',
          `From: <${o.from ?? `sip:warden@${uriHost(local.address)}`}>;tag=${tag}`,
          `To: <${uri}>`,
          `Call-ID: ${callId}`,
          `CSeq: ${cseq} OPTIONS`,
          `Contact: <sip:warden@${uriHost(local.address)}:${local.port}${contactParams}>`,
          'Accept: application/sdp',
          'User-Agent: ipvs-warden',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
        'utf8',
      );
    };

    return new Promise<CheckResult>((resolve) => {
      let finished = false;
      const state: Exchange = { stage: 'waiting for a final reply', sent: 0, ignored: 0 };
      let lastProvisional = '';
      const closers: (() => void)[] = [];
      const finish = (result: CheckResult): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        for (const close of closers) close();
        resolve(result);
      };
      const onAbort = (): void => finish(run.failWith(run.signal.reason, waitingFor(state)));
      if (run.signal.aborted) {
        resolve(run.failWith(run.signal.reason, waitingFor(state)));
        return;
      }
      run.signal.addEventListener('abort', onAbort, { once: true });

      /** One message from the server; `onProvisional` for a 1xx (UDP slows its retransmits). */
      const judge = (text: string, onProvisional?: () => void): void => {
        if (finished) return;
        const m = parseSipMessage(text);
        if (m.kind === 'garbage') {
          finish(run.fail(`not a SIP reply: ${printable(text)}`));
          return;
        }
        if (m.kind === 'request' || m.callId !== callId || m.cseq !== `${cseq} OPTIONS`) {
          state.ignored++;
          return;
        }
        const line = `${m.status} ${m.reason}`.trim();
        if (m.status < 200) {
          if (line !== lastProvisional) run.step(line);
          lastProvisional = line;
          onProvisional?.();
          return;
        }
        finish(
          this.accept(m.status)
            ? run.ok(`reply ${line}`)
            : run.fail(`reply ${line}, expected ${o.expectStatus}`),
        );
      };
      const exchange = { target, run, request, judge, finish, closers, state };
      if (o.transport === 'udp') this.udp(exchange);
      else this.tcp(exchange);
    });
  }

  private udp({ target, run, request, judge, finish, closers, state }: Probe): void {
    const socket: UdpSocket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    let interval = T1;
    closers.push(() => {
      closed = true;
      clearTimeout(timer);
      socket.close();
    });
    socket.on('error', (error) => finish(run.failWith(error, waitingFor(state))));
    // Only the connected peer's datagrams arrive; each is one whole message (64 KiB at most).
    socket.on('message', (msg) => {
      judge(msg.toString('utf8'), () => {
        // Proceeding: retransmit every T2 (RFC 3261 17.1.2.2).
        interval = T2;
      });
    });
    let message: Buffer | undefined;
    const send = (): void => {
      if (closed || !message) return;
      socket.send(message, (error) => {
        if (closed) return;
        if (error) {
          finish(run.failWith(error, 'sending'));
          return;
        }
        if (++state.sent === 1) run.step(`sent ${message?.length ?? 0} bytes`);
        timer = setTimeout(send, interval);
        interval = Math.min(interval * 2, T2);
      });
    };
    const start = (): void => {
      if (closed) return;
      socket.connect(target.port, target.address, () => {
        if (closed) return;
        message = request(socket.address());
        send();
      });
    };
    if (this.options.bindAddress) socket.bind(0, this.options.bindAddress, start);
    else start();
  }

  private tcp({ target, run, request, judge, finish, closers, state }: Probe): void {
    const socket: Socket = connect({
      host: target.address,
      port: target.port,
      family: target.family,
      ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
    });
    closers.push(() => socket.destroy());
    let buf = Buffer.alloc(0);
    state.stage = 'waiting for the connection';
    socket.on('connect', () => {
      run.step('connected');
      run.connected = true;
      const message = request({ address: socket.localAddress ?? '', port: socket.localPort ?? 0 });
      socket.write(message);
      run.step(`sent ${message.length} bytes`);
      state.stage = 'waiting for a final reply';
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // Messages one after another (RFC 3261 18.3): headers, a blank line, Content-Length
      // bytes of body. CRLFs between them are keep-alives (RFC 5626 4.4.1).
      for (;;) {
        let skip = 0;
        while (buf[skip] === 0x0d || buf[skip] === 0x0a) skip++;
        if (skip) buf = buf.subarray(skip);
        if (buf.length === 0) return;
        // Another protocol's greeting or garbage shows in the first bytes.
        const head = buf.subarray(0, 8).toString('latin1');
        if (!'SIP/2.0 '.startsWith(head) && !/^[A-Z]+ /.test(head) && !/^[A-Z]+$/.test(head)) {
          finish(run.fail(`not a SIP reply: ${printable(buf.toString('utf8'))}`));
          return;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > MAX_MESSAGE)
            finish(run.fail(`reply headers longer than ${MAX_MESSAGE} bytes`));
          return;
        }
        const headers = buf.subarray(0, end).toString('utf8');
        const lengthHeader = /^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$/im.exec(headers);
        const bodyLength = Number(lengthHeader?.[1] ?? 0);
        const total = end + 4 + bodyLength;
        if (total > MAX_MESSAGE) {
          finish(run.fail(`a reply of ${total} bytes, more than ${MAX_MESSAGE}`));
          return;
        }
        if (buf.length < total) return;
        const message = buf.subarray(0, total).toString('utf8');
        buf = buf.subarray(total);
        judge(message);
        if (socket.destroyed) return;
      }
    });
    socket.on('end', () =>
      finish(
        run.fail(
          buf.length === 0
            ? `connection closed by the server ${waitingFor(state)}`
            : `connection closed after part of a reply: ${printable(buf.toString('utf8'))}`,
        ),
      ),
    );
    socket.on('error', (error) => finish(run.failWith(error, waitingFor(state))));
  }
}

export const sip = defineCheck({
  kind: 'sip',
  summary:
    'sends a SIP OPTIONS request over UDP or TCP; healthy on a final response in expect_status (default 200)',
  options: SIP_OPTIONS,
  create: (o) => new SipChecker(o),
});
