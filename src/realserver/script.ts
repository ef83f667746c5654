// `realserver --print`: a plan as the shell commands that set it now, and the files that set it
// at every boot. Pure: a plan in, text out.
//
// Persistence is written for Debian's own tools: sysctl.d (systemd-sysctl at boot, and
// systemd-udevd again for an interface's lines when that interface appears), modules-load.d
// (systemd-modules-load, which runs before systemd-sysctl), and ifupdown's
// /etc/network/interfaces.d/, which Debian's installer sets up and its stock
// /etc/network/interfaces sources. ifupdown takes several stanzas for one interface and brings
// them all up, so the VIPs go in a file of their own beside the operator's `iface lo inet
// loopback`.
import { stepTitle, type RealServerPlan, type Step } from './plan.js';

export const SYSCTL_FILE = '/etc/sysctl.d/90-ipvs-warden-realserver.conf';
export const MODULES_FILE = '/etc/modules-load.d/ipvs-warden-realserver.conf';
export const INTERFACES_FILE = '/etc/network/interfaces.d/ipvs-warden-realserver';

/** The command line that sets one step now. */
export function commandsOf(step: Step): string[] {
  switch (step.kind) {
    case 'link-up':
      return [...(step.module ? [`modprobe ${step.module}`] : []), `ip link set ${step.device} up`];
    case 'address':
      return step.vip.family === 4
        ? [`ip addr add ${step.vip.address}/${step.prefix} dev ${step.device}`]
        : [
            `ip -6 addr add ${step.vip.address}/${step.prefix} dev ${step.device}${step.nodad ? ' nodad' : ''}`,
          ];
    case 'sysctl':
      return [`sysctl -w ${step.key}=${step.value}`];
  }
}

/** The command line the plan was made from, for the files' headers. */
export function invocation(plan: RealServerPlan): string {
  return `ipvs-warden realserver --mode ${plan.mode} --vip ${plan.vips.map((v) => v.address).join(',')}`;
}

export interface PersistFile {
  readonly path: string;
  readonly content: string;
}

/** The files that make the plan hold after a reboot. */
export function persistFiles(plan: RealServerPlan): PersistFile[] {
  const header = `# Written from \`${invocation(plan)}\`.\n`;
  const files: PersistFile[] = [];
  const sysctls = plan.steps.filter((s) => s.kind === 'sysctl');
  if (sysctls.length > 0) {
    // 90-: read after systemd's 50-default.conf, which sets rp_filter on every interface.
    files.push({
      path: SYSCTL_FILE,
      content: header + sysctls.map((s) => `# ${s.why}\n${s.key} = ${s.value}\n`).join(''),
    });
  }
  const modules = plan.steps.flatMap((s) => (s.kind === 'link-up' && s.module ? [s.module] : []));
  if (modules.length > 0) {
    files.push({ path: MODULES_FILE, content: header + modules.map((m) => `${m}\n`).join('') });
  }
  const stanzas: string[] = [];
  const autos = new Set<string>();
  for (const step of plan.steps) {
    if (step.kind !== 'address') continue;
    const auto = autos.has(step.device) ? '' : `auto ${step.device}\n`;
    autos.add(step.device);
    stanzas.push(
      step.vip.family === 4
        ? `${auto}iface ${step.device} inet static\n    address ${step.vip.address}/${step.prefix}\n`
        : // dad-attempts 0 is ifupdown's way of saying nodad.
          `${auto}iface ${step.device} inet6 static\n    address ${step.vip.address}/${step.prefix}\n    dad-attempts 0\n`,
    );
  }
  if (stanzas.length > 0) {
    files.push({
      path: INTERFACES_FILE,
      content: `${header}# ifupdown (Debian's /etc/network/interfaces sources interfaces.d/*); brings the device up too.\n${stanzas.join('\n')}`,
    });
  }
  return files;
}

const MARK = 'IPVS_WARDEN_EOF';

/**
 * The whole of --print: a shell script whose first part sets the plan now (as root; `ip` says
 * "File exists" for an address already there, which is harmless) and whose second writes the
 * files that set it at boot.
 */
export function printScript(plan: RealServerPlan): string {
  const kind = plan.mode === 'dr' ? 'direct routing (DR)' : 'tunnelling (TUN)';
  const lines: string[] = [
    '#!/bin/sh',
    `# ${invocation(plan)}`,
    `# A real server for LVS ${kind}. Run as root; \`--apply\` does the same over netlink,`,
    '# `--check` says what is missing.',
    '',
    '# Now:',
  ];
  for (const step of plan.steps) {
    lines.push(`# ${stepTitle(step)}: ${step.why}`);
    lines.push(...commandsOf(step));
  }
  lines.push('', '# At every boot:');
  for (const file of persistFiles(plan)) {
    lines.push(`cat > ${file.path} <<'${MARK}'`, file.content.trimEnd(), MARK);
  }
  return `${lines.join('\n')}\n`;
}
