// What a probe connection tells, recorded in order for the socket tests (lean.test.ts,
// native.test.ts): 'connected', 'data:...' (the bytes as Latin-1), 'ended', 'failed:CODE'.
import type { LeanEvents } from '../../src/health/lean.js';

/** Everything a connection tells, in order, as text; the errors themselves kept beside. */
export function recorder(): { events: LeanEvents; seen: string[]; errors: Error[] } {
  const seen: string[] = [];
  const errors: Error[] = [];
  return {
    seen,
    errors,
    events: {
      connected: () => seen.push('connected'),
      data: (chunk) => seen.push(`data:${chunk.toString('latin1')}`),
      ended: () => seen.push('ended'),
      failed: (e) => {
        errors.push(e);
        seen.push(`failed:${(e as { code?: string }).code ?? ''}`);
      },
    },
  };
}
