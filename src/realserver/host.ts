// The shell around the real-server plan: read what the host holds (rtnetlink dumps, /proc/sys),
// judge it (plan.ts), and for --apply set what is missing, one step at a time, saying what was
// done. Refuses before changing anything when a step needs a hand (a module to load, an address
// to remove) or the process lacks the privilege; a failure midway stops there and says which
// changes were made.
import { access, constants, readFile, writeFile } from 'node:fs/promises';
import { IpvsError } from '../ipvs/errors.js';
import {
  judge,
  stepTitle,
  sysctlKeys,
  sysctlPath,
  type Finding,
  type Observed,
  type RealServerPlan,
  type Step,
} from './plan.js';
import type { RouteNetlink } from './rtnetlink.js';
import { invocation } from './script.js';

/** A sysctl's value; null when it does not exist (a device that is not there). */
async function readSysctl(key: string): Promise<number | null> {
  try {
    const text = (await readFile(sysctlPath(key), 'utf8')).trim();
    const value = Number(text);
    if (!Number.isInteger(value)) throw new Error(`${sysctlPath(key)} holds "${text}"`);
    return value;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Links, addresses (named by device) and the plan's sysctls, as the kernel has them now. */
export async function observe(plan: RealServerPlan, rt: RouteNetlink): Promise<Observed> {
  const [links, addresses] = await Promise.all([rt.links(), rt.addresses()]);
  const names = new Map(links.map((l) => [l.index, l.name]));
  const sysctls = new Map<string, number | null>();
  for (const key of sysctlKeys(plan)) sysctls.set(key, await readSysctl(key));
  return {
    links,
    addresses: addresses.map((a) => ({
      device: names.get(a.index) ?? `#${a.index}`,
      family: a.family,
      address: a.address,
      prefix: a.prefix,
    })),
    sysctls,
  };
}

const LABEL: Record<Finding['verdict'], string> = {
  ok: 'ok',
  missing: 'MISSING',
  wrong: 'WRONG',
  blocked: 'BY HAND',
};

const line = (label: string, message: string): string => `${label.padEnd(8)} ${message}`;

export interface HostReport {
  readonly ok: boolean;
  readonly lines: string[];
}

/** --check: every finding, then a summary. */
export async function checkHost(plan: RealServerPlan, rt: RouteNetlink): Promise<HostReport> {
  const findings = judge(plan, await observe(plan, rt));
  const lines = findings.map((f) => line(LABEL[f.verdict], f.message));
  const bad = findings.filter((f) => f.verdict !== 'ok');
  const what = `a ${plan.mode.toUpperCase()} real server of ${plan.vips.map((v) => v.address).join(', ')}`;
  if (bad.length === 0) {
    lines.push(`all ${findings.length} settings in place for ${what}`);
  } else {
    const fixable = bad.some((f) => f.verdict === 'missing' || f.verdict === 'wrong');
    lines.push(
      `${bad.length} of ${findings.length} not in place for ${what}` +
        (fixable ? `; \`${invocation(plan)} --apply\` sets those marked MISSING or WRONG` : ''),
    );
  }
  return { ok: bad.length === 0, lines };
}

/** CAP_NET_ADMIN in this process's effective set (linux/capability.h: 12). */
async function hasNetAdmin(): Promise<boolean> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 12n)) !== 0n;
  } catch {
    return true; // Cannot tell: let the kernel say.
  }
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** What stops --apply before it changes anything, if anything does. */
async function refusals(todo: readonly Step[]): Promise<string[]> {
  const out: string[] = [];
  if (todo.some((s) => s.kind !== 'sysctl') && !(await hasNetAdmin())) {
    out.push(
      'adding addresses and setting links up needs CAP_NET_ADMIN: run as root (or with the capability)',
    );
  }
  for (const step of todo) {
    if (step.kind === 'sysctl' && !(await writable(sysctlPath(step.key)))) {
      out.push(`${sysctlPath(step.key)} is not writable by this process: run as root`);
    }
  }
  return out;
}

/** Sets one step; returns what it did ("was 0", "already present"). */
async function applyStep(step: Step, observed: Observed, rt: RouteNetlink): Promise<string> {
  const index = (device: string): number => {
    const link = observed.links.find((l) => l.name === device);
    if (!link) throw new Error(`${device} does not exist`);
    return link.index;
  };
  switch (step.kind) {
    case 'link-up':
      await rt.setUp(index(step.device), step.device);
      return 'was down';
    case 'address':
      try {
        await rt.addAddress(
          {
            index: index(step.device),
            family: step.vip.family,
            address: step.vip.address,
            prefix: step.prefix,
            nodad: step.nodad,
          },
          `${step.vip.address}/${step.prefix} dev ${step.device}`,
        );
        return step.nodad ? 'added, nodad' : 'added';
      } catch (err) {
        // Added meanwhile by someone else: what we wanted.
        if (err instanceof IpvsError && err.code === 'EEXIST') return 'already present';
        if (err instanceof IpvsError && err.code === 'EACCES' && step.vip.family === 6) {
          // What the kernel answers when IPv6 is off on the device (addrconf's disable_ipv6).
          throw new Error(
            `${err.message}: IPv6 is disabled on ${step.device} (net.ipv6.conf.${step.device}.disable_ipv6 or net.ipv6.conf.all.disable_ipv6 is 1)`,
            { cause: err },
          );
        }
        throw err;
      }
    case 'sysctl': {
      const was = observed.sysctls.get(step.key);
      await writeFile(sysctlPath(step.key), `${step.value}\n`);
      return `was ${was ?? 'unset'}`;
    }
  }
}

/** --apply: refuse, or set each missing or wrong step in order, then judge the host again. */
export async function applyHost(plan: RealServerPlan, rt: RouteNetlink): Promise<HostReport> {
  const observed = await observe(plan, rt);
  const findings = judge(plan, observed);
  const lines: string[] = [];
  const blocked = findings.filter((f) => f.verdict === 'blocked');
  if (blocked.length > 0) {
    lines.push(...blocked.map((f) => line(LABEL.blocked, f.message)));
    lines.push('refused: nothing was changed (these need a hand first)');
    return { ok: false, lines };
  }
  const todo = findings.flatMap((f) => (f.verdict !== 'ok' && f.step ? [f.step] : []));
  for (const f of findings) if (f.verdict === 'ok') lines.push(line('ok', f.message));
  if (todo.length === 0) {
    lines.push(`nothing to do: all ${findings.length} settings already in place`);
    return { ok: true, lines };
  }
  const refused = await refusals(todo);
  if (refused.length > 0) {
    lines.push(...refused.map((r) => line('DENIED', r)));
    lines.push('refused: nothing was changed');
    return { ok: false, lines };
  }
  const done: string[] = [];
  for (const [i, step] of todo.entries()) {
    try {
      const what = await applyStep(step, observed, rt);
      done.push(stepTitle(step));
      lines.push(line('applied', `${stepTitle(step)} (${what})`));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      lines.push(line('FAILED', `${stepTitle(step)}: ${why}`));
      for (const rest of todo.slice(i + 1)) lines.push(line('not run', stepTitle(rest)));
      lines.push(
        done.length > 0
          ? `stopped: ${done.length} of ${todo.length} changes made and left in place (${done.join('; ')})`
          : 'stopped: nothing was changed',
      );
      return { ok: false, lines };
    }
  }
  // Level-triggered: judge what the kernel holds now, not what we believe we did.
  const after = judge(plan, await observe(plan, rt)).filter((f) => f.verdict !== 'ok');
  if (after.length > 0) {
    lines.push(...after.map((f) => line('STILL', f.message)));
    lines.push(`applied ${done.length} changes, but ${after.length} settings are still not right`);
    return { ok: false, lines };
  }
  lines.push(`done: ${done.length} changes applied; all ${findings.length} settings in place`);
  return { ok: true, lines };
}
