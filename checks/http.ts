// HTTP(S) check (undici): a request to the real server, healthy on an expected status, a body
// that ends cleanly (read up to maxBody; what is beyond is cancelled) and, when configured, a
// body that matches (or does not match) a regex. The deadline covers the whole exchange.
import { Client, buildConnector } from 'undici';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { checkKey } from '../src/health/canonical.js';
import {
  HTTP_SECRECY,
  normalHttp,
  parseStatusSet,
  redactOptions,
  type HttpCheckOptions,
  type NormalHttpOptions,
} from '../src/health/options.js';
import { ProbeRun, describeError, hostPort } from '../src/health/probe.js';

export class HttpChecker implements Checker {
  readonly kind: string;
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalHttpOptions;
  private readonly okStatus: (status: number) => boolean;
  /** Kept-alive clients by origin (reuse mode only), with the check now using each. */
  private readonly clients = new Map<string, Holder>();

  constructor(options: HttpCheckOptions = {}) {
    this.options = normalHttp(options);
    const o = this.options;
    this.kind = o.tls ? 'https' : 'http';
    this.okStatus = parseStatusSet(o.expectStatus);
    // Logs, /status, a metric label and every result message show it: no query value.
    const shown = redactOptions(o, HTTP_SECRECY);
    this.description = `${o.tls ? 'HTTPS' : 'HTTP'} ${shown.method} ${shown.path}`;
    this.key = checkKey(this.kind, o);
  }

  async check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    const origin = `${this.options.tls ? 'https' : 'http'}://${hostPort(target)}`;
    const reuse = this.options.reuse;
    let holder = reuse ? this.clients.get(origin) : undefined;
    if (!holder) {
      holder = this.client(origin);
      if (reuse) this.clients.set(origin, holder);
    }
    holder.run = run;
    const client = holder.client;
    let stage = 'waiting for the connection';
    try {
      const res = await client.request({
        method: this.options.method,
        path: this.options.path,
        headers: {
          host: this.options.host ?? hostPort(target),
          'user-agent': 'ipvs-warden',
          ...this.options.headers,
        },
        signal: run.signal,
        // The run's signal is the deadline; undici's own timers would only race it.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      stage = 'reading the body';
      // Cancelling the body makes undici emit an abort error on it: expected, and never fatal.
      res.body.on('error', () => undefined);
      const status = res.statusCode;
      if (!this.okStatus(status)) {
        res.body.destroy();
        return run.fail(`status ${status}, expected ${this.options.expectStatus}`);
      }
      run.step(`status ${status}`);
      // The body is read to its end, even for a status-only check: a server that dies half-way
      // through a response (headers, part of the body, a reset) is not healthy.
      const max = this.options.maxBody;
      const kept: Buffer[] = [];
      let read = 0;
      try {
        for await (const chunk of res.body) {
          const bytes = chunk as Buffer;
          if (read < max) kept.push(bytes.subarray(0, max - read));
          read += bytes.length;
          // Beyond maxBody the rest is cancelled unread: a huge or endless body costs nothing.
          if (read >= max) break;
        }
      } catch (error) {
        if (run.signal.aborted) return run.failWith(error, stage);
        const declared = /^\d+$/.exec(String(res.headers['content-length'] ?? ''))?.[0];
        return run.fail(
          `body cut short after ${read}${declared ? ` of ${declared}` : ''} bytes: ${describeError(error)}`,
        );
      } finally {
        res.body.destroy();
      }
      const body = Buffer.concat(kept).toString('utf8');
      if (this.options.bodyMatch && !this.options.bodyMatch.test(body)) {
        return run.fail(`body does not match ${String(this.options.bodyMatch)}`);
      }
      if (this.options.bodyNotMatch?.test(body)) {
        return run.fail(`body matches ${String(this.options.bodyNotMatch)}`);
      }
      return run.ok();
    } catch (error) {
      if (reuse) {
        // A broken kept-alive connection is not reused.
        this.clients.delete(origin);
        void client.destroy().catch(() => undefined);
      }
      if (stage === 'waiting for the connection' && run.connected)
        stage = 'waiting for the response';
      return run.failWith(error, stage);
    } finally {
      if (!reuse) await client.destroy().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((h) => h.client.destroy().catch(() => undefined)));
  }

  /** A client whose connector records how far the connection got in the current check. */
  private client(origin: string): Holder {
    const tls = this.options.tls;
    const connector = buildConnector({
      ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
      ...(tls
        ? {
            rejectUnauthorized: tls.verify,
            ...(tls.servername ? { servername: tls.servername } : {}),
            ...(tls.ca ? { ca: tls.ca } : {}),
            ...(tls.cert ? { cert: tls.cert } : {}),
            ...(tls.key ? { key: tls.key } : {}),
          }
        : {}),
    });
    const holder: Holder = {
      run: undefined,
      client: new Client(origin, {
        pipelining: 1,
        connect: (opts, callback) => {
          connector(
            { ...opts, ...(tls?.servername ? { servername: tls.servername } : {}) },
            (err, socket) => {
              const run = holder.run;
              if (!err && socket && run) {
                run.step('connected');
                run.connected = true;
                if ('getProtocol' in socket) run.step(`TLS ${socket.getProtocol() ?? ''}`.trim());
              }
              if (err) callback(err, null);
              else callback(null, socket);
            },
          );
        },
      }),
    };
    return holder;
  }
}

interface Holder {
  readonly client: Client;
  run: ProbeRun | undefined;
}
