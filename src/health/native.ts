// Connect-only probes in C (src/native/probe.c): a TCP check that sends nothing and expects
// nothing connects, resets and closes without a JavaScript handle, and JavaScript hears every
// outcome of a loop turn in one call. Loaded once per thread; where it was not built or does not
// load, or IPVS_WARDEN_SOCKETS is `lean` or `node`, connect checks take the lean handle (lean.ts)
// as the other probes do.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { uvError } from './lean.js';

/** The addon's functions (src/native/probe.c); bench/native.ts drives them directly. */
export interface Addon {
  open(onBatch: (count: number) => void, results: Int32Array): object;
  /** An fd, or a negative errno; a failed bind is offset by -BIND_FAILED. */
  connect(
    engine: object,
    id: number,
    family: number,
    address: string,
    port: number,
    localAddress?: string,
  ): number;
  cancel(engine: object, fd: number): void;
}

/** probe.c offsets a bind's errno by this, so that the error names its syscall. */
const BIND_FAILED = 1 << 20;

/** How a connect probe ends: connected (then reset in C), or failed. */
export interface ConnectEvents {
  readonly connected: () => void;
  readonly failed: (error: Error) => void;
}

const addonPath = fileURLToPath(new URL('../native/probe.node', import.meta.url));

/** The addon, or why not: the environment's choice, not built, or not loadable here. */
export function loadAddon(
  env: Readonly<Record<string, string | undefined>> = process.env,
  path: string = addonPath,
): Addon | string {
  const choice = env.IPVS_WARDEN_SOCKETS;
  if (choice === 'node' || choice === 'lean') return `IPVS_WARDEN_SOCKETS=${choice}`;
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<Addon>;
    if (
      typeof addon.open !== 'function' ||
      typeof addon.connect !== 'function' ||
      typeof addon.cancel !== 'function'
    )
      return `${path} is not the connect probe`;
    return addon as Addon;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'MODULE_NOT_FOUND'
      ? 'not built (src/native/build.sh needs cc and Node headers)'
      : `${path}: ${(error as Error).message.split('\n')[0]}`;
  }
}

/**
 * One thread's engine: the ids of connects in flight index `waiting`; a finished id goes back
 * to `free`. The batch array holds up to 256 outcomes, what probe.c reads per epoll_wait.
 */
class Engine {
  private readonly results = new Int32Array(512);
  private readonly waiting: (ConnectEvents | undefined)[] = [];
  /** Each connect's address and port, for its error. */
  private readonly addresses: string[] = [];
  private readonly ports: number[] = [];
  private readonly free: number[] = [];
  private readonly engine: object;

  constructor(private readonly addon: Addon) {
    this.engine = addon.open((count) => this.batch(count), this.results);
  }

  private batch(count: number): void {
    const r = this.results;
    for (let i = 0; i < count; i++) {
      const id = r[2 * i] ?? -1;
      const status = r[2 * i + 1] ?? 0;
      const events = this.waiting[id];
      if (events === undefined) continue;
      if (status === 0) {
        this.release(id);
        events.connected();
      } else {
        const error = uvError(status, 'connect', this.addresses[id] ?? '', this.ports[id] ?? 0);
        this.release(id);
        events.failed(error);
      }
    }
  }

  private release(id: number): void {
    this.waiting[id] = undefined;
    this.addresses[id] = '';
    this.free.push(id);
  }

  /** Starts a connect; the function returned gives it up (closed, never told). */
  connect(
    family: 4 | 6,
    address: string,
    port: number,
    localAddress: string | undefined,
    events: ConnectEvents,
  ): () => void {
    const id = this.free.pop() ?? this.waiting.length;
    const fd = this.addon.connect(this.engine, id, family, address, port, localAddress);
    if (fd < 0) {
      this.free.push(id);
      const bind = fd <= -BIND_FAILED;
      const error = uvError(bind ? fd + BIND_FAILED : fd, bind ? 'bind' : 'connect', address, port);
      // As net.Socket does: the error comes after the caller has its connection in hand.
      let given = false;
      setImmediate(() => {
        if (!given) events.failed(error);
      });
      return () => {
        given = true;
      };
    }
    this.waiting[id] = events;
    this.addresses[id] = address;
    this.ports[id] = port;
    return () => {
      // Only while still waiting: a finished connect's fd is closed and its number reused.
      if (this.waiting[id] !== events) return;
      this.release(id);
      this.addon.cancel(this.engine, fd);
    };
  }
}

const addon = loadAddon();
/** This thread's engine once opened; null when it could not be. */
let engine: Engine | null | undefined;

/** Whether connect checks run in C here; if not, why not. */
export const nativeProbes: { readonly on: boolean; readonly why: string } =
  typeof addon === 'string' ? { on: false, why: addon } : { on: true, why: '' };

/**
 * A connect-only probe in C, or undefined where the addon is not here. Every outcome comes
 * through `events`, never from this call; the function returned gives the connect up.
 */
export function nativeConnect(
  family: 4 | 6,
  address: string,
  port: number,
  localAddress: string | undefined,
  events: ConnectEvents,
): (() => void) | undefined {
  if (typeof addon === 'string') return undefined;
  if (engine === undefined) {
    // An epoll set that cannot be made (out of descriptors, say) leaves this thread's connect
    // checks on the lean handle rather than failing them: the probe is the same either way.
    try {
      engine = new Engine(addon);
    } catch {
      engine = null;
    }
  }
  return engine?.connect(family, address, port, localAddress, events);
}
