// DNS check: a query sent to the real server's own address and port, over UDP or TCP; healthy
// on an expected rcode and, when configured, an answer that matches (keepalived's DNS_CHECK
// passes on any NOERROR; this one can check what the answer says).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type * as DnsPacket from 'dns-packet';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import { onFirstUse, preload } from '../src/lazy.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

type Answer = DnsPacket.Answer;
/** dns-packet is loaded by the first DNS check made (src/lazy.ts). */
const dnsPacketLib = onFirstUse<typeof DnsPacket>('dns-packet');

/** An answer as an operator reads it: A/AAAA the address, MX "10 mail.example", SRV "0 5 5060 sip.example". */
export function answerText(a: Answer): string {
  const data: unknown = 'data' in a ? a.data : undefined;
  switch (a.type) {
    case 'MX': {
      const d = data as { preference: number; exchange: string };
      return `${d.preference} ${d.exchange}`;
    }
    case 'SRV': {
      const d = data as { priority?: number; weight?: number; port?: number; target: string };
      return `${d.priority ?? 0} ${d.weight ?? 0} ${d.port ?? 0} ${d.target}`;
    }
    case 'SOA': {
      const d = data as { mname: string; rname: string; serial?: number };
      return `${d.mname} ${d.rname} ${d.serial ?? 0}`;
    }
    case 'TXT': {
      const parts = Array.isArray(data) ? (data as (Buffer | string)[]) : [data as Buffer | string];
      return parts.map((p) => p.toString()).join('');
    }
    default:
      return typeof data === 'string' ? data : JSON.stringify(data);
  }
}

export const DNS_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'NS', 'SOA', 'TXT', 'PTR', 'SRV'] as const;
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const;

export const DNS_OPTIONS = {
  name: opt.text({ required: true, doc: 'the name to ask for' }),
  type: opt.text({
    key: 'record_type',
    flag: 'type',
    values: DNS_TYPES,
    upper: true,
    default: 'A',
    doc: 'the record type asked for',
  }),
  transport: opt.text({ values: ['udp', 'tcp'], default: 'udp', doc: '`udp` or `tcp`' }),
  expectRcode: opt.list({
    values: RCODES,
    upper: true,
    default: ['NOERROR'],
    doc: 'healthy response codes, one or a list',
  }),
  expectAnswer: opt.regex({
    doc: 'healthy only when an answer of the asked type, as text, matches (MX `10 mx.example`)',
  }),
  recursionDesired: opt.bool({ default: true, doc: 'set the RD bit' }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type DnsCheckOptions = OptionsOf<typeof DNS_OPTIONS>;

export class DnsChecker implements Checker {
  readonly kind = 'dns';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalOf<typeof DNS_OPTIONS>;

  constructor(options: DnsCheckOptions) {
    this.options = normalOptions(DNS_OPTIONS, options);
    const o = this.options;
    this.description = `DNS ${o.type} ${o.name} over ${o.transport}`;
    this.key = keyOf(this.kind, DNS_OPTIONS, options);
    preload(dnsPacketLib);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    let dnsPacket: typeof DnsPacket;
    try {
      dnsPacket = dnsPacketLib();
    } catch (error) {
      return run.failWith(error, 'loading dns-packet');
    }
    const id = randomInt(0, 0x10000);
    const query = {
      type: 'query' as const,
      id,
      flags: this.options.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0,
      questions: [{ type: this.options.type, name: this.options.name }],
    };
    let reply: Buffer;
    try {
      reply =
        this.options.transport === 'udp'
          ? await this.udp(target, dnsPacket.encode(query), id, run)
          : await this.tcp(target, dnsPacket.streamEncode(query), run);
    } catch (error) {
      if (error instanceof BadReply) return run.fail(error.message);
      return run.failWith(error, 'waiting for the reply');
    }
    let packet: DnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(reply);
    } catch (error) {
      return run.fail(`malformed reply: ${(error as Error).message}`);
    }
    if (packet.id !== id || !packet.flag_qr)
      return run.fail(`reply does not answer the query (id ${packet.id ?? '?'}, expected ${id})`);
    const question = packet.questions?.[0];
    if (
      question &&
      (question.name.toLowerCase() !== this.options.name.toLowerCase() ||
        question.type !== this.options.type)
    ) {
      return run.fail(`reply is for ${question.type} ${question.name}, not the query`);
    }
    if (packet.flag_tc) return run.fail('reply truncated (TC); use transport tcp');
    const rcode = (packet as { rcode?: string }).rcode ?? 'NOERROR';
    const answers = (packet.answers ?? [])
      .filter((a) => a.type === this.options.type)
      .map(answerText);
    const summary = `reply ${rcode}, ${answers.length} answer${answers.length === 1 ? '' : 's'}${answers.length ? `: ${answers.slice(0, 3).join(', ')}` : ''}`;
    const rcodes = this.options.expectRcode;
    if (!(rcodes as readonly string[]).includes(rcode))
      return run.fail(`reply ${rcode}, expected ${rcodes.join(' or ')}`);
    const expect = this.options.expectAnswer;
    if (expect && !answers.some((a) => expect.test(a))) {
      return run.fail(`${summary}; no answer matches ${String(expect)}`);
    }
    return run.ok(summary);
  }

  /** One datagram out; the first datagram back from the target with our id is the reply. */
  private udp(target: CheckTarget, query: Buffer, id: number, run: ProbeRun): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const socket: UdpSocket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
      // Once: an abort, an error, a reply and the send's callback can each end the exchange,
      // and some come after another (a send completing after the abort closed the socket);
      // a second close() would throw from inside that callback.
      let finished = false;
      const done = (err: unknown, reply?: Buffer): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        socket.close();
        if (reply) resolve(reply);
        else reject(err);
      };
      const onAbort = (): void => done(run.signal.reason);
      run.signal.addEventListener('abort', onAbort, { once: true });
      socket.on('error', (err) => done(err));
      socket.on('message', (msg, from) => {
        // Anything from elsewhere, or with another id (a late or spoofed reply), is ignored.
        if (from.port !== target.port || msg.length < 2 || msg.readUInt16BE(0) !== id) return;
        done(null, msg);
      });
      // A connected socket hears the kernel's "port unreachable": a dead server fails at once
      // (ECONNREFUSED) instead of at the deadline, and replies from elsewhere never arrive.
      // Each step checks it is still wanted: a closed socket throws on connect and send.
      const send = (): void => {
        if (finished) return;
        socket.connect(target.port, target.address, () => {
          if (finished) return;
          socket.send(query, (err) => {
            if (err) done(err);
            else if (!finished) run.step(`sent ${query.length} bytes`);
          });
        });
      };
      if (this.options.bindAddress) socket.bind(0, this.options.bindAddress, send);
      else send();
    });
  }

  /** A length-prefixed query over a connection; the first length-prefixed message is the reply. */
  private tcp(target: CheckTarget, query: Buffer, run: ProbeRun): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const socket: Socket = connect({
        host: target.address,
        port: target.port,
        family: target.family,
        ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
      });
      let finished = false; // once, as for UDP
      const done = (err: unknown, reply?: Buffer): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (reply) resolve(reply);
        else reject(err);
      };
      const onAbort = (): void => done(run.signal.reason);
      run.signal.addEventListener('abort', onAbort, { once: true });
      socket.on('connect', () => {
        run.step('connected');
        socket.write(query);
      });
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
          done(null, buf.subarray(2, 2 + buf.readUInt16BE(0)));
      });
      socket.on('end', () =>
        done(
          new BadReply(
            buf.length === 0
              ? 'connection closed without a reply'
              : `connection closed after ${buf.length} bytes of a reply: ${printable(buf.toString('latin1'), 20)}`,
          ),
        ),
      );
      socket.on('error', (err) => done(err));
    });
  }
}

class BadReply extends Error {}

export const dns = defineCheck({
  kind: 'dns',
  summary:
    "a query to the server's own address, over UDP or TCP; healthy on an expected rcode and, when configured, an answer that matches",
  options: DNS_OPTIONS,
  create: (o) => new DnsChecker(o),
});
