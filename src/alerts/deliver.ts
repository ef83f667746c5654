// Sends the alerts ./decide.ts decides, off the loop: `send` returns at once and nothing a tick
// awaits waits on a mail server or a webhook. Each target's alerts go one after another, in the
// order decided (a resolve never overtakes its firing alert), each under a deadline; at most
// `maxQueued` wait per target, more are dropped. Every outcome is logged and counted.
import { hostname, userInfo } from 'node:os';
import { emailFor, type EmailAlerts } from '../config/alerts.js';
import type { Config } from '../config/model.js';
import { onFirstUse, preload } from '../lazy.js';
import type { Logger } from '../log.js';
import type { Delivery } from './decide.js';
import { mail, webhookBody, type Mail } from './format.js';

export type AlertResult = 'sent' | 'failed' | 'timeout' | 'dropped';
export const ALERT_RESULTS: readonly AlertResult[] = ['sent', 'failed', 'timeout', 'dropped'];

/** How a message leaves; tests may substitute. Each rejects on failure and honours `signal`. */
export interface Senders {
  email(m: Mail, settings: EmailAlerts, signal: AbortSignal): Promise<void>;
  webhook(url: string, body: string, signal: AbortSignal): Promise<void>;
  /** Gets ready for the kinds a config uses (loads their libraries now; see realSenders). */
  prepare?(kinds: { readonly email: boolean; readonly webhook: boolean }): void;
}

/** A response body read for a failure's message, at most this much. */
const REPLY_BYTES = 512;

/** Sender of the mail when `from` is not given: user@hostname, as ldirectord's Net::SMTP path. */
function defaultFrom(): string {
  let user = 'root';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid: root's name is as good as any.
  }
  return `${user}@${hostname()}`;
}

// Loaded when a config with such alerts is put in force (src/lazy.ts), not by the first alert:
// that one often comes when things go wrong, out of descriptors perhaps, and node remembers a
// package it could not read as not there until a restart. A config without them loads neither.
const nodemailer = onFirstUse<typeof import('nodemailer')>('nodemailer');
const undici = onFirstUse<typeof import('undici')>('undici');

/** How much later than our deadline nodemailer's own timeouts are (the backstop). */
const BACKSTOP_MS = 1000;

/**
 * nodemailer's transport options for `e`. The deadline that judges time is ours (`signal`,
 * AlertDeliverer); nodemailer's own timers are a backstop a second later. It times the greeting
 * from its connect by the wall clock, so at the same value its timer could fire first on a busy
 * loop, and one silent server was 'failed' or 'timeout' by chance (email.test.ts, once in CI).
 * Pure.
 */
export function smtpOptions(e: EmailAlerts) {
  const backstopMs = e.timeoutMs + BACKSTOP_MS;
  return {
    host: e.smtp.host,
    port: e.smtp.port,
    secure: e.tls === 'implicit',
    requireTLS: e.tls === 'starttls',
    ignoreTLS: e.tls === 'none',
    connectionTimeout: backstopMs,
    greetingTimeout: backstopMs,
    socketTimeout: backstopMs,
    ...(e.user !== undefined ? { auth: { user: e.user, pass: e.password ?? '' } } : {}),
  };
}

export const realSenders: Senders = {
  prepare(kinds) {
    if (kinds.email) preload(nodemailer);
    if (kinds.webhook) preload(undici);
  },
  async email(m, e, signal) {
    const { createTransport } = nodemailer();
    const transport = createTransport(smtpOptions(e));
    const aborted = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error('deadline passed')), { once: true });
    });
    try {
      await Promise.race([
        transport.sendMail({
          from: e.from ?? defaultFrom(),
          to: [...e.to],
          subject: m.subject,
          text: m.text,
        }),
        aborted,
      ]);
    } finally {
      transport.close();
    }
  },
  async webhook(url, body, signal) {
    const { request } = undici();
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'ipvs-warden' },
      body,
      signal,
    });
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await res.body.dump();
      return;
    }
    let said = '';
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      said += chunk.toString('utf8');
      if (said.length >= REPLY_BYTES) break;
    }
    await res.body.dump().catch(() => undefined);
    throw new Error(
      `HTTP ${res.statusCode}${said ? `: ${said.slice(0, REPLY_BYTES).replace(/\s+/g, ' ').trim()}` : ''}`,
    );
  },
};

export interface DelivererOptions {
  readonly log: Logger;
  readonly senders?: Senders;
  /** Called once per alert with its outcome (the metric). */
  readonly onResult?: (target: string, result: AlertResult) => void;
  /** Alerts waiting or being sent, per target, at most; one more is dropped. */
  readonly maxQueued?: number;
  /** This director's name in the alerts (default: the host name). */
  readonly host?: string;
}

export class AlertDeliverer {
  private readonly log: Logger;
  private readonly senders: Senders;
  private readonly onResult: (target: string, result: AlertResult) => void;
  private readonly maxQueued: number;
  private readonly host: string;
  private readonly chains = new Map<string, { last: Promise<void>; pending: number }>();
  private readonly all = new Set<Promise<void>>();
  private stopping = false;

  constructor(o: DelivererOptions) {
    this.log = o.log;
    this.senders = o.senders ?? realSenders;
    this.onResult = o.onResult ?? (() => undefined);
    this.maxQueued = o.maxQueued ?? 100;
    this.host = o.host ?? hostname();
  }

  /** Gets the senders ready for what `config` can send (mail: any service's, its own too). */
  prepare(config: Config): void {
    this.senders.prepare?.({
      email: config.virtualServices.some((vs) => emailFor(config.alerts?.email, vs.alerts)),
      webhook: (config.alerts?.webhooks.length ?? 0) > 0,
    });
  }

  /** Queues the alerts and returns at once; never throws. */
  send(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) {
      const name = d.target.name;
      const chain = this.chains.get(name) ?? { last: Promise.resolve(), pending: 0 };
      if (this.stopping || chain.pending >= this.maxQueued) {
        this.report(
          d,
          'dropped',
          this.stopping ? 'the daemon is stopping' : `${this.maxQueued} alerts already waiting`,
          0,
        );
        continue;
      }
      chain.pending++;
      const next = chain.last.then(() => this.one(d));
      chain.last = next;
      this.chains.set(name, chain);
      this.all.add(next);
      void next.finally(() => {
        chain.pending--;
        this.all.delete(next);
        if (chain.pending === 0 && this.chains.get(name) === chain) this.chains.delete(name);
      });
    }
  }

  /** No alert starts any more (waiting ones are dropped); resolves when those being sent end. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.idle();
  }

  /** Resolves when no alert is waiting or being sent. */
  async idle(): Promise<void> {
    while (this.all.size > 0) await Promise.allSettled([...this.all]);
  }

  private async one(d: Delivery): Promise<void> {
    if (this.stopping) {
      this.report(d, 'dropped', 'the daemon is stopping', 0);
      return;
    }
    const t = d.target;
    const timeoutMs = t.kind === 'email' ? t.email.timeoutMs : t.webhook.timeoutMs;
    const controller = new AbortController();
    const deadline = setTimeout(() => controller.abort(), timeoutMs);
    const started = performance.now();
    try {
      if (t.kind === 'email')
        await this.senders.email(mail(d.alert, this.host), t.email, controller.signal);
      else
        await this.senders.webhook(
          t.webhook.url,
          webhookBody(t.webhook.format, d.alert, this.host, t.webhook.repeatMs),
          controller.signal,
        );
      this.report(d, 'sent', '', performance.now() - started);
    } catch (e) {
      const timedOut = controller.signal.aborted;
      const message = timedOut
        ? `no answer within ${timeoutMs} ms`
        : e instanceof Error
          ? e.message
          : String(e);
      this.report(d, timedOut ? 'timeout' : 'failed', message, performance.now() - started);
    } finally {
      clearTimeout(deadline);
    }
  }

  private report(d: Delivery, result: AlertResult, message: string, ms: number): void {
    this.onResult(d.target.name, result);
    const fields = {
      target: d.target.name,
      alert: d.alert.name,
      ...(d.alert.repeat ? { repeat: true } : {}),
      service: d.alert.service,
      server: d.alert.server,
      result,
      ...(message ? { message } : {}),
      duration_ms: Math.round(ms),
    };
    if (result === 'sent') this.log.log('info', 'alert.sent', fields);
    else this.log.log('warn', 'alert.failed', fields);
  }
}
