// `ipvs-warden realserver`: the settings a DR or TUN real server needs, printed (default),
// applied (--apply) or checked (--check). Exit 0 when done or all in place, 1 when not, 2 on a
// usage error (RealServerUsageError, printed with the usage by main.ts).
import { parseArgs } from 'node:util';
import { MODES, parseVips, realServerPlan, type Mode } from '../realserver/plan.js';
import { applyHost, checkHost } from '../realserver/host.js';
import { RouteNetlink } from '../realserver/rtnetlink.js';
import { printScript } from '../realserver/script.js';

export class RealServerUsageError extends Error {}

export const REALSERVER_USAGE = `  realserver --vip ADDRESS[,ADDRESS...] --mode dr|tun [--print | --apply | --check]
                             A DR or TUN real server's settings: the VIPs on lo (DR) or
                             tunl0/ip6tnl0 (TUN), the ARP and rp_filter sysctls. --print
                             (default) shows the commands and the files that keep them;
                             --apply sets what is missing (as root); --check says what is
                             missing (exit 1). --vip may be given again`;

export async function realServer(argv: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      vip: { type: 'string', multiple: true },
      mode: { type: 'string' },
      print: { type: 'boolean', default: false },
      apply: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    stdout.write(`Usage: ipvs-warden\n${REALSERVER_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) {
    throw new RealServerUsageError(`realserver takes no argument "${positionals[0]}"`);
  }
  const actions = (['print', 'apply', 'check'] as const).filter((a) => values[a]);
  if (actions.length > 1) {
    throw new RealServerUsageError(
      `realserver takes one of --print, --apply, --check, got ${actions.map((a) => `--${a}`).join(' and ')}`,
    );
  }
  const mode = values.mode;
  if (mode === undefined || !(MODES as readonly string[]).includes(mode)) {
    throw new RealServerUsageError(
      mode === undefined
        ? 'realserver needs --mode dr or --mode tun'
        : `--mode must be dr or tun, got "${mode}"`,
    );
  }
  const { vips, problems } = parseVips(values.vip ?? []);
  if (problems.length > 0) throw new RealServerUsageError(problems.join('; '));
  const plan = realServerPlan(vips, mode as Mode);
  const action = actions[0] ?? 'print';
  if (action === 'print') {
    stdout.write(printScript(plan));
    return 0;
  }
  const rt = RouteNetlink.open();
  try {
    const report = action === 'apply' ? await applyHost(plan, rt) : await checkHost(plan, rt);
    stdout.write(`${report.lines.join('\n')}\n`);
    return report.ok ? 0 : 1;
  } finally {
    rt.close();
  }
}
