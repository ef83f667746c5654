// Ping check (keepalived's PING_CHECK): ICMP or ICMPv6 echo to the target's address (its port is
// not used), healthy on the first echo reply. Node has no ICMP socket, and the one addon for
// it (raw-socket) opens raw sockets only (CAP_NET_RAW, and a compiler at install), so this runs
// iputils' ping. ping opens an unprivileged ICMP datagram socket when net.ipv4.ping_group_range
// holds the daemon's group (deploy/sysctl.d/ipvs-warden.conf); under the unit's NoNewPrivileges
// its file capability is never used (see deploy/systemd/ipvs-warden.service).
import { spawn, type ChildProcess } from 'node:child_process';
import type { CheckContext, CheckResult, CheckTarget, Checker } from '../src/health/checker.js';
import { processSlots } from '../src/health/processes.js';
import { ProbeRun, printable } from '../src/health/probe.js';
import {
  defineCheck,
  keyOf,
  normalOptions,
  opt,
  type NormalOf,
  type OptionsOf,
} from '../src/health/schema.js';

export const PING_OPTIONS = {
  count: opt.int({
    min: 1,
    max: 10,
    default: 1,
    doc: 'echo requests sent, 200 ms apart; healthy on the first reply (more than 1 rides out a lost packet)',
  }),
  size: opt.int({ min: 0, max: 65500, default: 56, doc: 'bytes of payload in each echo request' }),
  bindAddress: opt.address({ key: 'bind', doc: 'source address of the echo requests' }),
} as const;
export type PingCheckOptions = OptionsOf<typeof PING_OPTIONS>;

/** The binary run; iputils-ping's. */
const PING = 'ping';
/** Output kept from ping: its lines are short, and it says little. */
const MAX_OUTPUT = 16 * 1024;

/** "64 bytes from ::1: icmp_seq=1 ttl=64 time=0.027 ms" */
const REPLY = /^\d+ bytes from (.+?): icmp_seq=\d+ .*?time=([\d.]+) ms/;
/** "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable" (an ICMP error for our request). */
const ICMP_ERROR = /^From (\S+?):? (?:\(\S+\) )?icmp_seq=\d+ (.+)$/;

/** What ping's stderr says about the machine rather than the target, with the remedy. */
function explainStderr(text: string): string {
  const lines = text.split('\n');
  const line = (re: RegExp): string | undefined => lines.find((l) => re.test(l));
  const socket = line(/socket: (Operation not permitted|Permission denied)/);
  if (socket)
    return `ping cannot open an ICMP socket (${printable(socket, 80)}): let the daemon's group use ICMP datagram sockets (net.ipv4.ping_group_range, deploy/sysctl.d/ipvs-warden.conf) or grant CAP_NET_RAW`;
  const call = line(/(cap_set_proc|setuid|prctl): Operation not permitted/);
  if (call)
    return `ping was refused a system call (${printable(call, 80)}): the service's SystemCallFilter must allow capset and setuid (deploy/systemd/ipvs-warden.service and its ping.conf drop-in)`;
  return `ping failed: ${printable(firstLine(text), 120)}`;
}

/** ping could not be started: not installed, refused by the kernel at exec, or this machine is short. */
function spawnFailure(run: ProbeRun, error: NodeJS.ErrnoException): CheckResult {
  if (error.code === 'ENOENT') return run.fail('cannot run ping: not found (install iputils-ping)');
  if (error.code === 'EACCES') return run.fail('cannot run ping: permission denied (EACCES)');
  if (error.code === 'EPERM')
    return run.fail(
      `cannot run ping (${error.code}): its file capability cap_net_raw must be in the service's CapabilityBoundingSet (deploy/systemd/ipvs-warden.service.d/ping.conf)`,
    );
  return run.failWith(error, 'starting ping');
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? '';
}

export class PingChecker implements Checker {
  readonly kind = 'ping';
  /** The process cap it shares with exec checks: the scheduler lets it wait for it in `check`. */
  readonly limiter = processSlots;
  readonly description: string;
  readonly key: string;
  private readonly options: NormalOf<typeof PING_OPTIONS>;

  constructor(options: PingCheckOptions = {}) {
    this.options = normalOptions(PING_OPTIONS, options);
    const { count } = this.options;
    this.description = count === 1 ? 'ICMP echo' : `ICMP echo x${count}`;
    this.key = keyOf(this.kind, PING_OPTIONS, options);
  }

  check(target: CheckTarget, context: CheckContext): Promise<CheckResult> {
    // The port is not pinged: messages name the address alone.
    const run = new ProbeRun(this.description, { ...target, port: 0 }, context);
    const o = this.options;
    const waitSeconds = Math.max(1, Math.ceil(context.timeoutMs / 1000));
    const args = [
      '-n',
      target.family === 6 ? '-6' : '-4',
      '-c',
      String(o.count),
      '-i',
      '0.2',
      '-W',
      String(waitSeconds),
      '-s',
      String(o.size),
      ...(o.bindAddress ? ['-I', o.bindAddress] : []),
      '--',
      target.address,
    ];
    return new Promise<CheckResult>((resolve) => {
      let waitingFor = 'waiting for a process slot';
      let child: ChildProcess | undefined;
      let finished = false;
      const finish = (result: () => CheckResult): void => {
        if (finished) return;
        finished = true;
        run.signal.removeEventListener('abort', onAbort);
        if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        resolve(result());
      };
      const onAbort = (): void => finish(() => run.failWith(run.signal.reason, waitingFor));
      if (run.signal.aborted) {
        resolve(run.failWith(run.signal.reason, waitingFor));
        return;
      }
      run.signal.addEventListener('abort', onAbort, { once: true });
      // The slot is held until ping is gone, not merely until the result is known.
      void processSlots(() => (finished ? undefined : new Promise<void>(start)));
      function start(release: () => void): void {
        try {
          child = spawn(PING, args, {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
          });
        } catch (error) {
          release();
          finish(() => spawnFailure(run, error as NodeJS.ErrnoException));
          return;
        }
        waitingFor = 'waiting for an echo reply';
        let out = '';
        let err = '';
        child.stdout?.setEncoding('latin1');
        child.stderr?.setEncoding('latin1');
        child.stdout?.on('data', (chunk: string) => {
          if (out.length < MAX_OUTPUT) out += chunk;
          for (;;) {
            const nl = out.indexOf('\n');
            if (nl < 0 || finished) return;
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            const reply = REPLY.exec(line);
            if (reply)
              return finish(() =>
                run.ok(`echo reply from ${reply[1] ?? '?'} in ${reply[2] ?? '?'} ms`),
              );
            const icmp = ICMP_ERROR.exec(line);
            if (icmp)
              return finish(() => run.fail(`ICMP error from ${icmp[1] ?? '?'}: ${icmp[2] ?? ''}`));
          }
        });
        child.stderr?.on('data', (chunk: string) => {
          if (err.length < MAX_OUTPUT) err += chunk;
        });
        child.on('error', (error: NodeJS.ErrnoException) => {
          // No process (ENOENT, EAGAIN): no 'close' to wait for.
          if (child?.pid === undefined) release();
          finish(() => spawnFailure(run, error));
        });
        // 'close': every line of output is in by then.
        child.on('close', (code: number | null) => {
          release();
          if (err.trim() !== '') finish(() => run.fail(explainStderr(err)));
          else if (code === 1) finish(() => run.fail(`no echo reply (${o.count} sent)`));
          else finish(() => run.fail(`ping exited with ${code ?? 'a signal'} and no reply`));
        });
      }
    });
  }
}

export const ping = defineCheck({
  kind: 'ping',
  portless: true,
  summary:
    "ICMP/ICMPv6 echo to the server's address (port not used) with iputils ping; healthy on the first echo reply",
  options: PING_OPTIONS,
  create: (o) => new PingChecker(o),
});
