// The native floor's probe (bench/native/probe.c): a TCP connect check with its connect in C,
// for bench:peers only. Built by `node-gyp rebuild -C bench/native` (bench/peers.sh does it
// when BENCH_PEERS names the native floor); ipvs-warden itself never loads it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { addressToBytes } from '../src/ipvs/address.js';

interface Addon {
  open(onBatch: (count: number) => void, results: Int32Array): object;
  connect(engine: object, id: number, address: number, port: number): number;
  cancel(fd: number): void;
  close(engine: object): void;
}

export interface NativeProbe {
  /** Starts a connect: its fd (for `cancel`), or a negative errno when it could not start. */
  connect(id: number, address: number, port: number): number;
  /** Gives a connect up (its deadline): closed, never reported. */
  cancel(fd: number): void;
  close(): void;
}

const addonPath = fileURLToPath(
  new URL('../../bench/native/build/Release/probe.node', import.meta.url),
);

/** An IPv4 address as the uint32 the addon takes (parsed as the netlink backend parses it). */
export function ipv4Number(address: string): number {
  return addressToBytes(4, address).readUInt32BE(0);
}

/**
 * Opens the probe; `done(id, status)` is called for each finished connect (status 0, or a
 * negative errno), all of one loop turn's from a single call into JavaScript.
 */
export function openNativeProbe(done: (id: number, status: number) => void): NativeProbe {
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as Addon;
  } catch (error) {
    throw new Error(
      `native probe: ${addonPath} does not load (${(error as Error).message}); build it with \`npm exec --no -- node-gyp rebuild -C bench/native\``,
      { cause: error },
    );
  }
  const results = new Int32Array(512);
  const engine = addon.open((count) => {
    for (let i = 0; i < count; i++) done(results[2 * i] ?? -1, results[2 * i + 1] ?? 0);
  }, results);
  return {
    connect: (id, address, port) => addon.connect(engine, id, address, port),
    cancel: (fd) => addon.cancel(fd),
    close: () => addon.close(engine),
  };
}
