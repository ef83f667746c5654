// Exec check: an external command (no shell) with the target in its arguments and environment,
// like ldirectord's `external` and keepalived's MISC_CHECK. Exit 0 is healthy. It runs under
// util-linux's setpriv with every capability dropped (the daemon's CAP_NET_ADMIN would let any
// script rewrite the IPVS table), as the configured user if any. It runs in its own process
// group, and the whole group is killed at the deadline and after the command exits, so nothing
// it forked outlives the check (what leaves the group with setsid is out of reach: see README).
import { spawn, type ChildProcess } from 'node:child_process';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { processSlots } from '../src/health/processes.js';
import { ProbeRun, localErrno, printable } from '../src/health/probe.js';
import { ChildOutput, killGroup, setpriv, setprivOptions } from '../src/health/spawn.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

const slots = processSlots;

/** After the command exits, how long its output may take to reach end of file (see below). */
const CLOSE_GRACE_MS = 100;

const SPAWN_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ENOEXEC: 'not an executable format',
  ENOTDIR: 'not a directory',
  E2BIG: 'argument list too long',
};

/**
 * A spawn that failed: the director's own shortage (EAGAIN, ENOMEM, EMFILE: no process or
 * pipe to be had) is a local result; anything else (ENOENT, EACCES) is the config's fault and
 * a failure.
 */
function cannotRun(run: ProbeRun, error: unknown): CheckResult {
  const errno = localErrno(error);
  if (errno) return run.local(errno);
  const e = error as { code?: string; message?: string };
  const text = e.code ? SPAWN_ERRORS[e.code] : undefined;
  if (e.code && text) return run.fail(`cannot run: ${e.code} (${text})`);
  return run.fail(`cannot run: ${e.message ?? String(error)}`);
}

export const EXEC_OPTIONS = {
  command: opt.list({
    required: true,
    minItems: 1,
    listOnly: true,
    rest: true,
    doc: 'program and arguments, run without a shell (["/usr/lib/check", "{address}"]); {address}, {port}, {family} are replaced',
  }),
  dynamicWeight: opt.bool({
    default: false,
    doc: "keepalived's misc_dynamic: exit 1 unhealthy, 2..255 healthy with weight = code - 2",
  }),
  maxOutput: opt.int({
    min: 1,
    max: 1 << 20,
    default: 4096,
    doc: 'bytes of output (the last ones) kept for the message',
  }),
  env: opt.map({
    sep: '=',
    default: {},
    secrecy: 'values',
    doc: 'more environment (PATH and WARDEN_ADDRESS/PORT/FAMILY are always set); values are secret',
  }),
  user: opt.text({
    doc: "run as this user (name or uid), as keepalived's MISC_CHECK `user`; needs CAP_SETUID/CAP_SETGID",
  }),
  group: opt.text({ doc: "the group (name or gid) for `user`; default: the user's own" }),
} as const;
export type ExecCheckOptions = OptionsOf<typeof EXEC_OPTIONS>;

export class ExecChecker implements Checker {
  readonly kind = 'exec';
  readonly description: string;
  readonly key: string;
  /** Everything the check does comes from here, and the key is made of all of it. */
  private readonly options: NormalOf<typeof EXEC_OPTIONS>;
  /** The process cap: a check waits for it in `check`, so the scheduler holds no slot meanwhile. */
  readonly limiter = slots;
  /** The primary group of `user`, looked up once (`group` unset). */
  private readonly userGroups = new Map<string, string>();

  constructor(options: ExecCheckOptions) {
    if (options.command.length === 0 || !options.command[0])
      throw new Error('exec check needs a command');
    this.options = normalOptions(EXEC_OPTIONS, options);
    const { user, group } = this.options;
    const as =
      user !== undefined
        ? ` as ${user}${group !== undefined ? `:${group}` : ''}`
        : group !== undefined
          ? ` as group ${group}`
          : '';
    this.description = `exec ${options.command[0]}${as}`;
    this.key = keyOf(this.kind, EXEC_OPTIONS, options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    const run = new ProbeRun(this.description, target, context);
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const done = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        run.signal.removeEventListener('abort', onWaitAbort);
        resolve(result);
      };
      // Waiting for a slot counts against the check's own deadline.
      const onWaitAbort = (): void =>
        done(run.failWith(run.signal.reason, 'waiting for a process slot'));
      if (run.signal.aborted) {
        onWaitAbort();
        return;
      }
      run.signal.addEventListener('abort', onWaitAbort, { once: true });
      // The slot is held until the process is gone, not merely until the result is known.
      void slots(() => {
        if (settled) return undefined; // gave up while waiting: the slot goes straight on
        run.signal.removeEventListener('abort', onWaitAbort);
        return this.execute(target, run, done);
      }).catch((error: unknown) => done(cannotRun(run, error)));
    });
  }

  /**
   * setpriv's options: the user and group to become, if any, and every capability dropped;
   * undefined once `done` has been given a result (the user's group could not be found).
   */
  private async privileges(
    run: ProbeRun,
    done: (result: CheckResult) => void,
  ): Promise<string[] | undefined> {
    const o = await setprivOptions(this.options, run.signal, this.userGroups);
    if ('args' in o) return o.args;
    if (run.signal.aborted) done(run.failWith(o.error, 'looking up the user'));
    else if (localErrno(o.error)) done(cannotRun(run, o.error));
    else done(run.fail(`cannot run: ${o.said}`));
    return undefined;
  }

  /** Runs the command, reports through `done`; resolves once the process has exited. */
  private async execute(
    target: CheckTarget,
    run: ProbeRun,
    done: (result: CheckResult) => void,
  ): Promise<void> {
    const fill = (s: string): string =>
      s
        .replaceAll('{address}', target.address)
        .replaceAll('{port}', String(target.port))
        .replaceAll('{family}', String(target.family));
    const [program = '', ...args] = this.options.command.map(fill);
    const output = new ChildOutput(this.options.maxOutput);
    const wrapper = setpriv();
    if (!wrapper) {
      // Never run a command with the daemon's capabilities.
      done(run.fail('cannot run: setpriv (util-linux) is not installed; it drops capabilities'));
      return;
    }
    const privileges = await this.privileges(run, done);
    if (!privileges) return;
    return new Promise<void>((gone) => {
      let child: ChildProcess;
      try {
        child = spawn(wrapper, [...privileges, '--', program, ...args], {
          detached: true, // its own process group, killed whole
          stdio: ['ignore', 'pipe', 'pipe'],
          env: {
            PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
            ...this.options.env,
            WARDEN_ADDRESS: target.address,
            WARDEN_PORT: String(target.port),
            WARDEN_FAMILY: String(target.family),
          },
        });
      } catch (error) {
        // Synchronous refusals: a NUL byte in an argument, say.
        done(cannotRun(run, error));
        gone();
        return;
      }
      const pid = child.pid;
      let exited = false;
      let finished = false;
      let grace: NodeJS.Timeout | undefined;
      /** Set at the exit: the result its status (and output) make. */
      let verdict: (() => CheckResult) | undefined;

      const finish = (result: () => CheckResult): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        clearTimeout(grace);
        // After the exit the group was killed already, and the pid may be someone else's now.
        if (!exited) killGroup(pid);
        child.stdout?.destroy();
        child.stderr?.destroy();
        done(result());
      };
      // Once it has exited the verdict is known; only the end of its output was awaited.
      const onAbort = (): void =>
        finish(
          verdict ?? (() => run.failWith(run.signal.reason, 'waiting for the command to exit')),
        );
      run.signal.addEventListener('abort', onAbort, { once: true });

      output.attach(child);

      child.on('error', (error) => {
        // Spawning setpriv failed (EAGAIN, EMFILE): there is no process. Other errors (a
        // failed kill or send) are not ours to have: this check never signals through the
        // handle.
        if (pid !== undefined) return;
        finish(() => cannotRun(run, error));
        gone();
      });

      child.on('exit', (code, signal) => {
        exited = true;
        gone();
        // Killed whole at the deadline or on cancel: the result is out already.
        if (finished) return;
        // Children it left behind go with it; their ends of its pipes close, the output ends.
        killGroup(pid);
        const report = (): CheckResult => {
          const refused = output.setprivFailure(code);
          if (refused) return cannotRun(run, refused);
          const last = output.tail.lastLine();
          const said = last ? `; output: ${printable(last)}` : '';
          if (signal) return run.fail(`killed by ${signal}${said}`);
          if (code === 0) return run.ok('exited 0');
          if (this.options.dynamicWeight && code !== null && code >= 2)
            return run.withWeight(run.ok(`exited ${code} (weight ${code - 2})`), code - 2);
          return run.fail(`exited ${code ?? '?'}${said}`);
        };
        verdict = report;
        // A process that left the group (setsid) may hold its output open: the exit status
        // is the verdict, so the output gets a moment to end and is then cut off.
        grace = setTimeout(() => finish(report), CLOSE_GRACE_MS);
        child.once('close', () => finish(report));
      });
    });
  }
}

export const exec = defineCheck({
  kind: 'exec',
  portless: true,
  summary:
    "an external command, without a shell, like ldirectord's external and keepalived's MISC_CHECK; exit 0 is healthy",
  options: EXEC_OPTIONS,
  create: (o) => new ExecChecker(o),
});
