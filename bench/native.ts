// The native floor's probe: ipvs-warden's connect probe in C (src/native/probe.c, built by
// `npm run build`), driven without the daemon's Engine around it: the floor keeps its own
// deadlines and ids. For bench:peers' native floor only.
import { loadAddon } from '../src/health/native.js';

export interface NativeProbe {
  /** Starts a connect: its fd (for `cancel`), or a negative errno when it could not start. */
  connect(id: number, address: string, port: number): number;
  /** Gives a connect up (its deadline): closed, never reported. */
  cancel(fd: number): void;
}

/**
 * Opens the probe; `done(id, status)` is called for each finished connect (status 0, or a
 * negative errno), all of one loop turn's from a single call into JavaScript.
 */
export function openNativeProbe(done: (id: number, status: number) => void): NativeProbe {
  const addon = loadAddon({ IPVS_WARDEN_SOCKETS: 'native' });
  if (typeof addon === 'string') throw new Error(`native probe: ${addon}`);
  // (id, status, length) triples; a connect-only probe reads nothing, so `bytes` stays empty.
  const results = new Int32Array(3 * 256);
  const engine = addon.open(
    (count) => {
      for (let i = 0; i < count; i++) done(results[3 * i] ?? -1, results[3 * i + 1] ?? 0);
    },
    results,
    new Uint8Array(1),
  );
  return {
    connect: (id, address, port) => addon.connect(engine, id, 4, address, port),
    cancel: (fd) => addon.cancel(engine, fd),
  };
}
