// One request/reply exchange over a connected UDP socket, for the datagram probes (udp, radius):
// send, resend on a schedule if asked, hand each datagram from the target to the probe until it
// decides, and turn the kernel's ICMP port unreachable into a fast failure. The socket is closed
// on every path; the deadline and the caller's abort come from the ProbeRun.
import { createSocket, type Socket } from 'node:dgram';
import type { CheckContext, CheckResult, CheckTarget } from './checker.js';
import type { ProbeRun } from './probe.js';

/** What the probe makes of a datagram or of silence: healthy or not, and why. */
export interface Verdict {
  readonly healthy: boolean;
  readonly text: string;
}

export interface DatagramExchange {
  readonly payload: Buffer;
  readonly bindAddress?: string | undefined;
  /** Sent this many times in all, evenly spread over the timeout (RADIUS); default once. */
  readonly tries?: number;
  /** Said in a timeout: "waiting for the Access-Request's reply". */
  readonly waitingFor: string;
  /** Each datagram from the target's address and port; undefined ignores it (a stray, an old reply). */
  readonly onReply: (reply: Buffer) => Verdict | undefined;
  /** At the deadline with no verdict (keepalived's UDP_CHECK without require_reply); default a timeout failure. */
  readonly onSilence?: () => Verdict;
  /** Told the local address once connected (a NAS-IP-Address); may change the payload. */
  readonly onConnected?: (local: { address: string; family: string }) => Buffer | undefined;
}

/**
 * Runs the exchange; resolves with the result on every path. A connected socket hears ICMP port
 * unreachable (ECONNREFUSED), and the kernel drops datagrams from any other address or port.
 */
export function exchange(
  target: CheckTarget,
  run: ProbeRun,
  context: CheckContext,
  x: DatagramExchange,
): Promise<CheckResult> {
  return new Promise<CheckResult>((resolve) => {
    const socket: Socket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    let payload = x.payload;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    // Once: an abort, an error, a reply and a send's callback can each end the exchange, some
    // after another; a second close() would throw.
    let finished = false;
    const finish = (result: () => CheckResult): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      run.signal.removeEventListener('abort', onAbort);
      socket.close();
      if (sent > 1) run.step(`sent ${sent} times`);
      resolve(result());
    };
    const verdict = (v: Verdict): void =>
      finish(() => (v.healthy ? run.ok(v.text) : run.fail(v.text)));
    const onAbort = (): void => {
      // The deadline, not the caller: silence may be the answer the probe wanted.
      if (x.onSilence && !context.signal.aborted) verdict(x.onSilence());
      else finish(() => run.failWith(run.signal.reason, x.waitingFor));
    };
    if (run.signal.aborted) {
      finished = true;
      socket.close();
      resolve(run.failWith(run.signal.reason, x.waitingFor));
      return;
    }
    run.signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED')
        verdict({
          healthy: false,
          text: 'ICMP port unreachable: nothing listens there (ECONNREFUSED)',
        });
      else finish(() => run.failWith(error, x.waitingFor));
    });
    socket.on('message', (msg: Buffer) => {
      if (finished) return;
      const v = x.onReply(msg);
      if (v) verdict(v);
    });
    const send = (): void => {
      if (finished) return;
      socket.send(payload, (error) => {
        if (error) finish(() => run.failWith(error, x.waitingFor));
        else if (!finished && ++sent === 1) run.step(`sent ${payload.length} bytes`);
      });
    };
    const start = (): void => {
      if (finished) return;
      socket.connect(target.port, target.address, () => {
        if (finished) return;
        const local = socket.address();
        payload = x.onConnected?.(local) ?? payload;
        send();
        const tries = x.tries ?? 1;
        if (tries > 1) {
          let left = tries - 1;
          timer = setInterval(
            () => {
              if (left-- <= 0) clearInterval(timer);
              else send();
            },
            Math.max(10, Math.floor(context.timeoutMs / tries)),
          );
        }
      });
    };
    if (x.bindAddress) socket.bind(0, x.bindAddress, start);
    else start();
  });
}
