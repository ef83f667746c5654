// RADIUS check: an Access-Request (RFC 2865) with a user and password hidden with the shared
// secret, signed with a Message-Authenticator (RFC 3579); healthy on a verified reply of the
// expected kind (Access-Accept by default, as ldirectord's check_pwd). A reply whose authenticator
// does not verify comes from a server with another secret. The codec is ours, on node:crypto:
// the packet is a header and a few attributes, and npm's `radius` needs dictionary files read
// at run time for what is here a page of code.
import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { exchange, type Verdict } from '../src/health/datagram.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

/** Packet codes and attribute types (RFC 2865 §3, §5; RFC 3162; RFC 3579). */
const CODE = {
  ACCESS_REQUEST: 1,
  ACCESS_ACCEPT: 2,
  ACCESS_REJECT: 3,
  ACCESS_CHALLENGE: 11,
} as const;
const CODE_NAME: Readonly<Record<number, string>> = {
  1: 'Access-Request',
  2: 'Access-Accept',
  3: 'Access-Reject',
  4: 'Accounting-Request',
  5: 'Accounting-Response',
  11: 'Access-Challenge',
  12: 'Status-Server',
};
const ATTR = {
  USER_NAME: 1,
  USER_PASSWORD: 2,
  NAS_IP_ADDRESS: 4,
  REPLY_MESSAGE: 18,
  NAS_IDENTIFIER: 32,
  MESSAGE_AUTHENTICATOR: 80,
  NAS_IPV6_ADDRESS: 95,
} as const;
const HEADER = 20;
/** RFC 2865 §3: the largest packet. */
const MAX_PACKET = 4096;

const REPLY_KIND = {
  accept: CODE.ACCESS_ACCEPT,
  reject: CODE.ACCESS_REJECT,
  challenge: CODE.ACCESS_CHALLENGE,
};

export const RADIUS_OPTIONS = {
  secret: opt.secret({
    doc: 'the shared secret this director has as a client of the server',
    required: true,
  }),
  user: opt.text({ default: 'ipvs-warden', doc: 'User-Name of the Access-Request' }),
  password: opt.secret({
    default: '',
    doc: 'User-Password (hidden with the secret, RFC 2865 §5.2)',
  }),
  nasIdentifier: opt.text({
    doc: "NAS-Identifier sent; without it the request carries NAS-IP-Address (or NAS-IPv6-Address), the probe's source",
  }),
  expect: opt.list({
    values: ['accept', 'reject', 'challenge'],
    default: ['accept'],
    doc: 'replies that are healthy: accept (ldirectord); add reject to count a server that answers, with our secret, as up',
  }),
  messageAuthenticator: opt.bool({
    default: true,
    doc: 'sign the request (RFC 3579); a server drops a signed request with a wrong secret unanswered',
  }),
  tries: opt.int({
    min: 1,
    max: 10,
    default: 3,
    doc: 'the request is sent this many times, evenly over the timeout, until a reply',
  }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the probe' }),
} as const;
export type RadiusCheckOptions = OptionsOf<typeof RADIUS_OPTIONS>;

/** RFC 2865 §5.2: the password padded to 16-octet blocks, each XORed with MD5(secret + previous). */
export function hidePassword(password: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  const length = Math.max(16, Math.ceil(password.length / 16) * 16);
  const out = Buffer.alloc(length);
  password.copy(out);
  let previous = authenticator;
  for (let i = 0; i < length; i += 16) {
    const b = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) out[i + j] = (out[i + j] ?? 0) ^ (b[j] ?? 0);
    previous = out.subarray(i, i + 16);
  }
  return out;
}

function attribute(type: number, value: Buffer): Buffer {
  if (value.length > 253) throw new RangeError(`attribute ${type} longer than 253 octets`);
  return Buffer.concat([Buffer.from([type, value.length + 2]), value]);
}

export interface AccessRequest {
  readonly id: number;
  readonly authenticator: Buffer;
  readonly secret: string;
  readonly user: string;
  readonly password: string;
  readonly nas: { readonly identifier: string } | { readonly address: string };
  readonly messageAuthenticator: boolean;
}

/** An Access-Request; the Message-Authenticator first, as the Blast-RADIUS advisories ask. */
export function encodeAccessRequest(r: AccessRequest): Buffer {
  const secret = Buffer.from(r.secret, 'utf8');
  const attrs: Buffer[] = [];
  if (r.messageAuthenticator) attrs.push(attribute(ATTR.MESSAGE_AUTHENTICATOR, Buffer.alloc(16)));
  attrs.push(attribute(ATTR.USER_NAME, Buffer.from(r.user, 'utf8')));
  attrs.push(
    attribute(
      ATTR.USER_PASSWORD,
      hidePassword(Buffer.from(r.password, 'utf8'), secret, r.authenticator),
    ),
  );
  if ('identifier' in r.nas)
    attrs.push(attribute(ATTR.NAS_IDENTIFIER, Buffer.from(r.nas.identifier, 'utf8')));
  else {
    const address = ipaddr.process(r.nas.address);
    const bytes = Buffer.from(address.toByteArray());
    attrs.push(
      attribute(address.kind() === 'ipv4' ? ATTR.NAS_IP_ADDRESS : ATTR.NAS_IPV6_ADDRESS, bytes),
    );
  }
  const body = Buffer.concat(attrs);
  const header = Buffer.alloc(4);
  header.writeUInt8(CODE.ACCESS_REQUEST, 0);
  header.writeUInt8(r.id, 1);
  header.writeUInt16BE(HEADER + body.length, 2);
  const packet = Buffer.concat([header, r.authenticator, body]);
  if (r.messageAuthenticator) {
    // RFC 3579 §3.2: HMAC-MD5 over the packet with the attribute's value zeroed, keyed by the secret.
    createHmac('md5', secret)
      .update(packet)
      .digest()
      .copy(packet, HEADER + 2);
  }
  return packet;
}

export interface RadiusReply {
  readonly code: number;
  readonly id: number;
  readonly attributes: readonly { type: number; value: Buffer; offset: number }[];
}

/** A reply's header and attributes; throws a text for the operator on a malformed one. */
export function decodeReply(msg: Buffer): RadiusReply {
  if (msg.length < HEADER) throw new Error(`${msg.length} bytes, shorter than a RADIUS header`);
  const length = msg.readUInt16BE(2);
  // RFC 2865 §3: octets past Length are padding; fewer than Length is not a packet.
  if (length < HEADER || length > MAX_PACKET || length > msg.length)
    throw new Error(`Length field ${length} in a datagram of ${msg.length} bytes`);
  const attributes: { type: number; value: Buffer; offset: number }[] = [];
  for (let at = HEADER; at < length;) {
    const type = msg.readUInt8(at);
    const len = at + 1 < length ? msg.readUInt8(at + 1) : 0;
    if (len < 2 || at + len > length)
      throw new Error(`attribute ${type} at ${at} runs past the packet`);
    attributes.push({ type, value: msg.subarray(at + 2, at + len), offset: at });
    at += len;
  }
  return { code: msg.readUInt8(0), id: msg.readUInt8(1), attributes };
}

/**
 * True when the reply was made with our secret: its Response Authenticator (RFC 2865 §3) and, if
 * present, its Message-Authenticator (RFC 3579 §3.2, over the packet with the request's
 * authenticator in place and the attribute zeroed).
 */
export function verifyReply(
  msg: Buffer,
  reply: RadiusReply,
  requestAuth: Buffer,
  secret: Buffer,
): boolean {
  const packet = Buffer.from(msg.subarray(0, msg.readUInt16BE(2)));
  const given = Buffer.from(packet.subarray(4, HEADER));
  requestAuth.copy(packet, 4);
  const expected = createHash('md5').update(packet).update(secret).digest();
  if (!timingSafeEqual(given, expected)) return false;
  const ma = reply.attributes.find((a) => a.type === ATTR.MESSAGE_AUTHENTICATOR);
  if (!ma) return true;
  if (ma.value.length !== 16) return false;
  const signed = Buffer.from(ma.value);
  packet.fill(0, ma.offset + 2, ma.offset + 18);
  return timingSafeEqual(signed, createHmac('md5', secret).update(packet).digest());
}

export function codeName(code: number): string {
  return CODE_NAME[code] ?? `code ${code}`;
}

export class RadiusChecker implements Checker {
  readonly kind = 'radius';
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof RADIUS_OPTIONS>;
  private readonly healthyCodes: ReadonlySet<number>;

  constructor(options: RadiusCheckOptions) {
    this.options = normalOptions(RADIUS_OPTIONS, options);
    this.healthyCodes = new Set(this.options.expect.map((e) => REPLY_KIND[e]));
    // The user is shown (it says which account the check uses); the password never.
    this.description = `RADIUS Access-Request for ${printable(this.options.user, 40)}`;
    this.key = keyOf(this.kind, RADIUS_OPTIONS, options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const o = this.options;
    const id = randomInt(0, 256);
    const authenticator = randomBytes(16);
    const secret = Buffer.from(o.secret, 'utf8');
    const request = (nas: AccessRequest['nas']): Buffer =>
      encodeAccessRequest({
        id,
        authenticator,
        secret: o.secret,
        user: o.user,
        password: o.password,
        nas,
        messageAuthenticator: o.messageAuthenticator,
      });
    const wanted = o.expect.join(' or ');
    const onReply = (msg: Buffer): Verdict | undefined => {
      // A reply to another request (another id) is a stray: the kernel already dropped any
      // datagram from another address or port.
      if (msg.length >= 2 && msg.readUInt8(1) !== id) return undefined;
      let reply: RadiusReply;
      try {
        reply = decodeReply(msg);
      } catch (error) {
        return {
          healthy: false,
          text: `malformed reply (${(error as Error).message}): ${printable(msg.toString('latin1'), 40)}`,
        };
      }
      if (!verifyReply(msg, reply, authenticator, secret))
        return {
          healthy: false,
          text: `${codeName(reply.code)} whose authenticator does not verify: the shared secret is probably wrong`,
        };
      const message = reply.attributes.find((a) => a.type === ATTR.REPLY_MESSAGE);
      const said = message ? ` (${printable(message.value.toString('utf8'), 60)})` : '';
      const text = `${codeName(reply.code)}${said}`;
      if (this.healthyCodes.has(reply.code)) return { healthy: true, text };
      if (reply.code === CODE.ACCESS_REJECT)
        return {
          healthy: false,
          text: `${text}: the server is up but refused the credentials; expected ${wanted}`,
        };
      return { healthy: false, text: `${text}, expected ${wanted}` };
    };
    let payload: Buffer;
    try {
      // The NAS-IP-Address is the socket's, known once connected; the identifier, now.
      payload = request(
        o.nasIdentifier !== undefined ? { identifier: o.nasIdentifier } : { address: '0.0.0.0' },
      );
    } catch (error) {
      return Promise.resolve(run.fail(`cannot encode the request: ${(error as Error).message}`));
    }
    return exchange(target, run, context, {
      payload,
      bindAddress: o.bindAddress,
      tries: o.tries,
      waitingFor: o.messageAuthenticator
        ? 'waiting for a reply (a server drops a request signed with another secret unanswered)'
        : 'waiting for a reply',
      onReply,
      onConnected: (local) =>
        o.nasIdentifier !== undefined ? undefined : request({ address: local.address }),
    });
  }
}

export const radius = defineCheck({
  kind: 'radius',
  summary:
    'sends an Access-Request (user, password hidden with the shared secret, Message-Authenticator) over UDP; healthy on a verified reply of the expected kind (Access-Accept by default)',
  options: RADIUS_OPTIONS,
  validate(o, report) {
    if (Buffer.byteLength(o.password ?? '', 'utf8') > 128)
      report('password', 'at most 128 bytes (RFC 2865 §5.2)');
    if (Buffer.byteLength(o.user ?? '', 'utf8') > 253) report('user', 'at most 253 bytes');
    if (o.nasIdentifier !== undefined && Buffer.byteLength(o.nasIdentifier, 'utf8') > 253)
      report('nasIdentifier', 'at most 253 bytes');
    if (o.secret === '') report('secret', 'must not be empty');
    if (o.expect !== undefined && o.expect.length === 0)
      report('expect', 'name at least one reply');
  },
  create: (o) => new RadiusChecker(o),
});
