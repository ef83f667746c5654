// `ipvs-warden status`: reads the daemon's /status within a deadline (connect, headers and body
// together) and a size cap, and says in one line what went wrong: no answer, an error status, a
// body too large, not JSON, or JSON that is not a status document. A port that never answers,
// or answers without end, cannot hang the command or fill its memory.
import { formatStatus, type Status } from '../http/status.js';

export const STATUS_TIMEOUT_MS = 5000;
/** A status document of 10,000 real servers is a few MiB. */
export const STATUS_MAX_BYTES = 16 << 20;

/** A failure of `status`, in one line (the command exits 1). */
export class StatusError extends Error {
  override readonly name = 'StatusError';
}

/** The first line of `text`, printable and short. */
const excerpt = (text: string, max = 60): string =>
  JSON.stringify((text.split('\n')[0] ?? '').slice(0, max));

/** Whether `body` has the parts `formatStatus` reads; anything else is not ours. */
function isStatus(body: unknown): body is Status {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const s = body as Record<string, unknown>;
  return (
    typeof s.ready === 'boolean' &&
    typeof s.time === 'string' &&
    typeof s.stats === 'object' &&
    s.stats !== null &&
    Array.isArray(s.services) &&
    s.services.every(
      (x: unknown) =>
        typeof x === 'object' &&
        x !== null &&
        Array.isArray((x as Record<string, unknown>).real_servers),
    ) &&
    Array.isArray(s.unowned) &&
    Array.isArray(s.events)
  );
}

/** GETs `${base}/status`; throws a StatusError for every way it can fail. */
export async function readStatus(
  base: string,
  o: { timeoutMs?: number; maxBytes?: number } = {},
): Promise<Status> {
  const timeoutMs = o.timeoutMs ?? STATUS_TIMEOUT_MS;
  const maxBytes = o.maxBytes ?? STATUS_MAX_BYTES;
  const url = `${base.replace(/\/$/, '')}/status`;
  const deadline = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { signal: deadline, redirect: 'error' });
  } catch (e) {
    if (deadline.aborted) throw new StatusError(`no answer from ${url} within ${timeoutMs} ms`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new StatusError(
      `cannot reach the daemon at ${base}: ${cause?.code ?? cause?.message ?? String(e)}`,
    );
  }
  // The body, read up to the cap: an endless answer is cut, never buffered whole.
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const reader = res.body?.getReader();
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      const bytes = chunk.value as Uint8Array; // typed any by lib.dom-less Node types
      size += bytes.length;
      if (size > maxBytes) {
        await reader?.cancel().catch(() => undefined);
        throw new StatusError(
          `the answer from ${url} is larger than ${maxBytes >> 20} MiB: not a status document`,
        );
      }
      chunks.push(bytes);
    }
  } catch (e) {
    if (e instanceof StatusError) throw e;
    if (deadline.aborted) {
      throw new StatusError(`the answer from ${url} did not end within ${timeoutMs} ms`);
    }
    throw new StatusError(`the answer from ${url} broke off: ${(e as Error).message}`);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (res.status !== 200) {
    throw new StatusError(
      `${url} answered ${res.status} ${res.statusText}: ${(text.split('\n')[0] ?? '').slice(0, 200)}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const type = res.headers.get('content-type') ?? 'no content-type';
    throw new StatusError(`the answer from ${url} is not JSON (${type}): ${excerpt(text)}`);
  }
  if (!isStatus(body)) {
    throw new StatusError(`the answer from ${url} is not an ipvs-warden status document`);
  }
  return body;
}

/** What `status` prints: the document (--json) or the table for a human. */
export function statusText(status: Status, json: boolean, base: string): string {
  if (json) return `${JSON.stringify(status, null, 1)}\n`;
  try {
    return formatStatus(status);
  } catch {
    // A field of another type deeper down than isStatus looks.
    throw new StatusError(`the answer from ${base} is not an ipvs-warden status document`);
  }
}
