// `ipvs-warden probe KIND TARGET [options]`: one check, once, from the command line, for
// debugging a check before it goes into a config (what keepalived's genhash is for).
import { DnsChecker } from '../../checks/dns.js';
import { ExecChecker } from '../../checks/exec.js';
import { HttpChecker } from '../../checks/http.js';
import { TcpChecker } from '../../checks/tcp.js';
import type { CheckTarget, Checker } from '../health/checker.js';
import { DNS_TYPES, type DnsRecordType } from '../health/options.js';
import { canonicalAddress } from '../ipvs/address.js';

export interface ProbeOptions {
  readonly timeout?: string;
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly header?: string[];
  readonly 'expect-status'?: string;
  readonly 'body-match'?: string;
  readonly 'body-not-match'?: string;
  readonly send?: string;
  readonly expect?: string;
  readonly 'expect-regex'?: string;
  readonly tls?: boolean;
  readonly sni?: string;
  readonly insecure?: boolean;
  readonly reuse?: boolean;
  readonly bind?: string;
  readonly name?: string;
  readonly type?: string;
  readonly 'expect-rcode'?: string;
  readonly 'expect-answer'?: string;
  readonly 'dynamic-weight'?: boolean;
}

export const PROBE_USAGE = `ipvs-warden probe KIND TARGET [options]   run one check once; exit 0 when healthy,
  1 when not, 3 when it could not run for a reason on this machine (descriptors, memory, ports)
  KIND: tcp | http | https | dns | exec      TARGET: 10.0.0.5:8080 or [2001:db8::5]:8080
  --timeout MS (3000)  --bind ADDRESS
  tcp:   --send TEXT  --expect TEXT | --expect-regex RE  --tls  --sni NAME  --insecure
  http:  --method GET  --path /  --host NAME  --header 'Name: value' (repeatable)
         --expect-status 200-299  --body-match RE  --body-not-match RE  --reuse
  https: as http, plus --sni NAME  --insecure (do not verify the certificate)
  dns:   --name NAME  --type A  --tcp  --expect-rcode NOERROR  --expect-answer RE
  exec:  --dynamic-weight -- COMMAND ARGS...   ({address} {port} {family} are replaced)`;

export class ProbeUsageError extends Error {}

/** "10.0.0.5:80", "[2001:db8::5]:80" -> a target. */
export function parseTarget(text: string): CheckTarget {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  const host = m?.[1] ?? '';
  const family = text.startsWith('[') ? 6 : 4;
  const address = canonicalAddress(family, host);
  if (!m || address === null || port > 65535) {
    throw new ProbeUsageError(`target must be ADDRESS:PORT or [IPv6]:PORT, got "${text}"`);
  }
  return { family, address, port };
}

function regex(text: string | undefined, flag: string): RegExp | undefined {
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (e) {
    throw new ProbeUsageError(`${flag}: ${(e as Error).message}`);
  }
}

export function buildChecker(
  kind: string,
  o: ProbeOptions & { tcp?: boolean },
  command: string[] = [],
): Checker {
  const tls = {
    ...(o.sni ? { servername: o.sni } : {}),
    verify: !o.insecure,
  };
  switch (kind) {
    case 'tcp': {
      const expect =
        o['expect-regex'] !== undefined ? regex(o['expect-regex'], '--expect-regex') : o.expect;
      return new TcpChecker({
        ...(o.send !== undefined ? { send: o.send } : {}),
        ...(expect !== undefined ? { expect } : {}),
        ...(o.tls ? { tls } : {}),
        ...(o.bind ? { bindAddress: o.bind } : {}),
      });
    }
    case 'http':
    case 'https': {
      const headers: Record<string, string> = {};
      for (const h of o.header ?? []) {
        const i = h.indexOf(':');
        if (i <= 0) throw new ProbeUsageError(`--header must be "Name: value", got "${h}"`);
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      const bodyMatch = regex(o['body-match'], '--body-match');
      const bodyNotMatch = regex(o['body-not-match'], '--body-not-match');
      try {
        return new HttpChecker({
          ...(o.method ? { method: o.method.toUpperCase() } : {}),
          ...(o.path ? { path: o.path } : {}),
          ...(o.host ? { host: o.host } : {}),
          headers,
          ...(o['expect-status'] ? { expectStatus: o['expect-status'] } : {}),
          ...(bodyMatch ? { bodyMatch } : {}),
          ...(bodyNotMatch ? { bodyNotMatch } : {}),
          ...(kind === 'https' ? { tls } : {}),
          ...(o.reuse ? { reuse: true } : {}),
          ...(o.bind ? { bindAddress: o.bind } : {}),
        });
      } catch (e) {
        throw new ProbeUsageError(`--expect-status: ${(e as Error).message}`);
      }
    }
    case 'dns': {
      if (!o.name) throw new ProbeUsageError('dns needs --name');
      const type = (o.type ?? 'A').toUpperCase();
      if (!DNS_TYPES.includes(type as DnsRecordType)) {
        throw new ProbeUsageError(`--type must be one of ${DNS_TYPES.join(' ')}, got "${o.type}"`);
      }
      const expectAnswer = regex(o['expect-answer'], '--expect-answer');
      return new DnsChecker({
        name: o.name,
        type: type as DnsRecordType,
        transport: o.tcp ? 'tcp' : 'udp',
        ...(o['expect-rcode'] ? { expectRcode: o['expect-rcode'].split(',') } : {}),
        ...(expectAnswer ? { expectAnswer } : {}),
        ...(o.bind ? { bindAddress: o.bind } : {}),
      });
    }
    case 'exec':
      if (command.length === 0) throw new ProbeUsageError('exec needs a command after --');
      return new ExecChecker({ command, ...(o['dynamic-weight'] ? { dynamicWeight: true } : {}) });
    default:
      throw new ProbeUsageError(`KIND must be tcp, http, https, dns or exec, got "${kind}"`);
  }
}

export function timeoutOf(o: ProbeOptions): number {
  const ms = Number(o.timeout ?? 3000);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new ProbeUsageError(`--timeout must be milliseconds > 0, got "${o.timeout}"`);
  return ms;
}
