// The daemon's signals, caught from the first moment the program runs: main.ts makes this before
// it loads anything else (loading takes some tenths of a second). Node's default for SIGHUP and
// SIGTERM is death by that signal, which systemd's Restart=on-failure counts as a clean exit: a
// reload asked for while the daemon starts, or a second stop while it stops, would leave the
// director unmanaged. Here a SIGHUP before the daemon is ready is kept and handed over as one
// reload once it is; a stop signal is kept until the daemon asks; once a stop is under way, every
// signal is noted and changes nothing. Imports nothing, so it is in place before the rest loads.

export type StopSignal = 'SIGTERM' | 'SIGINT';
type Caught = 'SIGHUP' | StopSignal;

export class DaemonSignals {
  private stopSignal: StopSignal | null = null;
  private reloadPending = false;
  private reloader: (() => void) | null = null;
  private ignored: (signal: Caught) => void = () => undefined;
  private readonly waiters: ((signal: StopSignal) => void)[] = [];
  private readonly handlers: readonly [Caught, () => void][] = [
    ['SIGHUP', () => this.hangup()],
    ['SIGTERM', () => this.stop('SIGTERM')],
    ['SIGINT', () => this.stop('SIGINT')],
  ];

  constructor() {
    for (const [signal, handler] of this.handlers) process.on(signal, handler);
  }

  /** The stop signal received, if one was. */
  get stopping(): StopSignal | null {
    return this.stopSignal;
  }

  /** Resolves with the first stop signal; at once if it came already. */
  stopped(): Promise<StopSignal> {
    const signal = this.stopSignal;
    if (signal) return Promise.resolve(signal);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * From now on each SIGHUP calls `reload`. Those that came before (any number) are one reload,
   * made now: the config is read again after them, which is all a SIGHUP asks.
   */
  onReload(reload: () => void): void {
    this.reloader = reload;
    if (this.reloadPending && !this.stopSignal) {
      this.reloadPending = false;
      reload();
    }
  }

  /** Told of each signal that arrives once a stop is under way (it changes nothing). */
  onIgnored(note: (signal: Caught) => void): void {
    this.ignored = note;
  }

  /**
   * For a command that is not the daemon: catch nothing more, and end by any signal caught
   * meanwhile, as the command would have without this.
   */
  release(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    if (this.stopSignal) process.kill(process.pid, this.stopSignal);
    else if (this.reloadPending) process.kill(process.pid, 'SIGHUP');
  }

  private hangup(): void {
    if (this.stopSignal) this.ignored('SIGHUP');
    else if (this.reloader) this.reloader();
    else this.reloadPending = true;
  }

  private stop(signal: StopSignal): void {
    if (this.stopSignal) {
      this.ignored(signal);
      return;
    }
    this.stopSignal = signal;
    for (const resolve of this.waiters.splice(0)) resolve(signal);
  }
}
