// What a DR or TUN real server needs, as data: the VIPs on lo (DR) or on the tunnel device (TUN),
// the links up, the ARP and reverse-path sysctls; and the judgement of what a host holds against
// it. Pure: `realserver --print`, `--apply` and `--check` all read this one plan.
//
// Why each setting (kernel names from net/ipv4/arp.c, devinet.c, fib_frontend.c, net/ipv6/ndisc.c):
//
// - DR: the director forwards a packet unchanged (destination still the VIP) to this host's MAC
//   address, so the VIP must be a local address, yet this host must never claim it on the LAN.
//   On lo, as /32 (/128): a wider prefix would make lo own the whole subnet, and replies to its
//   other hosts would loop back.
// - arp_ignore=1: answer an ARP request only for an address configured on the interface it came
//   in on; with the default 0 the host answers for any local address, the VIP on lo included,
//   and the router may then send the VIP's traffic here, around the director. arp_announce=2: the
//   sender address of ARP requests this host makes is the outgoing interface's own, never the VIP
//   (a request from the VIP teaches every neighbour that the VIP is here). The kernel reads both
//   as max(all, interface) (IN_DEV_ARP_IGNORE, IN_DEV_ARP_ANNOUNCE = IN_DEV_MAXCONF), so setting
//   `all` covers every interface, present and future, and no interface can weaken it.
// - IPv6 needs no sysctl: the kernel answers a Neighbor Solicitation only for an address on the
//   interface it arrived on (ndisc_recv_ns: ipv6_get_ifaddr(..., dev, strict=1)), and takes the
//   source of its own solicitations from the outgoing interface (ndisc_solicit uses the packet's
//   source only when it is on that interface): what arp_ignore=1 and arp_announce=2 give IPv4.
//   `nodad`: lo (and the NOARP tunnel devices) skip duplicate address detection anyway
//   (addrconf_dad_begin), the flag says so and keeps the address from ever being tentative.
// - TUN: the director wraps the packet in IPIP (IPv6-in-IPv6 for an IPv6 service) addressed to
//   this host's own address. The kernel hands such packets to the fallback device tunl0 (module
//   ipip; ip6tnl0 of ip6_tunnel for IPv6) only while it is up; the inner packet is addressed to
//   the VIP, which goes on that device. It arrives on tunl0 from the client's address, whose
//   route leaves by another interface: reverse-path filtering (rp_filter, read as max(all,
//   interface): IN_DEV_RPFILTER = IN_DEV_MAXCONF) drops it unless both tunl0 and `all` are 0.
//   Setting `all` to 0 relaxes no other interface: each keeps its own value. IPv6 has no
//   rp_filter in the kernel. The VIP is still local, so the ARP settings apply as for DR.
import { canonicalAddress, familyOf } from '../ipvs/address.js';
import type { Family } from '../ipvs/model.js';

export type Mode = 'dr' | 'tun';
export const MODES: readonly Mode[] = ['dr', 'tun'];

export interface Vip {
  readonly family: Family;
  /** Canonical text. */
  readonly address: string;
}

export type Step =
  | {
      readonly kind: 'link-up';
      readonly device: string;
      /** The module that creates the device, when it is not always there (tunl0: ipip). */
      readonly module?: string;
      readonly why: string;
    }
  | {
      readonly kind: 'address';
      readonly device: string;
      readonly vip: Vip;
      /** Always the host prefix: 32 or 128. */
      readonly prefix: number;
      /** IFA_F_NODAD (IPv6 only). */
      readonly nodad: boolean;
      readonly why: string;
    }
  | {
      readonly kind: 'sysctl';
      /** net.ipv4.conf.all.arp_ignore: the path under /proc/sys with dots. */
      readonly key: string;
      readonly value: number;
      /** Values that serve as well (arp_ignore 2 is stricter than 1); the plan writes `value`. */
      readonly accepted: readonly number[];
      /** What a wrong value does, for --check. */
      readonly risk: string;
      readonly why: string;
    };

export interface RealServerPlan {
  readonly mode: Mode;
  readonly vips: readonly Vip[];
  readonly steps: readonly Step[];
}

/** Parses `--vip` values (each may be a comma list); every bad one named, duplicates dropped. */
export function parseVips(values: readonly string[]): { vips: Vip[]; problems: string[] } {
  const vips: Vip[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const value of values) {
    for (const raw of value.split(',')) {
      const text = raw.trim();
      if (text === '') continue;
      const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
      if (bare.includes('/')) {
        problems.push(`--vip ${text}: give the address alone; the prefix is always /32 or /128`);
        continue;
      }
      const family = familyOf(bare);
      const address = family === null ? null : canonicalAddress(family, bare);
      if (family === null || address === null) {
        problems.push(`--vip ${text}: not an IPv4 or IPv6 address`);
        continue;
      }
      if (seen.has(address)) continue;
      seen.add(address);
      vips.push({ family, address });
    }
  }
  if (vips.length === 0 && problems.length === 0) problems.push('--vip ADDRESS is required');
  return { vips, problems };
}

const TUNNEL: Record<Family, { device: string; module: string }> = {
  4: { device: 'tunl0', module: 'ipip' },
  6: { device: 'ip6tnl0', module: 'ip6_tunnel' },
};

const ARP_IGNORE: Step = {
  kind: 'sysctl',
  key: 'net.ipv4.conf.all.arp_ignore',
  value: 1,
  // 2 adds a same-subnet test on the sender; 8 answers nothing. 3 would still answer for the VIP
  // (it only hides scope-host addresses).
  accepted: [1, 2, 8],
  risk: 'this host answers ARP for the VIP on every interface, and may take its traffic away from the director',
  why: 'answer ARP only for addresses on the interface the request came in on (the kernel takes the larger of all and the interface)',
};

const ARP_ANNOUNCE: Step = {
  kind: 'sysctl',
  key: 'net.ipv4.conf.all.arp_announce',
  value: 2,
  accepted: [2],
  risk: "this host's own ARP requests may carry the VIP as sender and teach its neighbours that the VIP is here",
  why: "in this host's ARP requests, give the outgoing interface's own address as sender, never the VIP (the kernel takes the larger of all and the interface)",
};

/** The settings a real server of `mode` needs for `vips`, in the order they are applied. */
export function realServerPlan(vips: readonly Vip[], mode: Mode): RealServerPlan {
  const steps: Step[] = [];
  const families = [...new Set(vips.map((v) => v.family))].sort();
  const deviceOf = (family: Family): string => (mode === 'dr' ? 'lo' : TUNNEL[family].device);
  if (mode === 'dr') {
    steps.push({ kind: 'link-up', device: 'lo', why: 'the VIPs live on lo' });
  } else {
    for (const family of families) {
      const { device, module } = TUNNEL[family];
      steps.push({
        kind: 'link-up',
        device,
        module,
        why: `the kernel hands ${family === 4 ? 'IPIP' : 'IPv6-in-IPv6'} packets to ${device} only while it is up`,
      });
    }
  }
  for (const vip of vips) {
    const device = deviceOf(vip.family);
    steps.push({
      kind: 'address',
      device,
      vip,
      prefix: vip.family === 4 ? 32 : 128,
      nodad: vip.family === 6,
      why:
        mode === 'dr'
          ? 'accept packets the director forwards to the VIP as its own, without claiming the VIP on the LAN'
          : 'the packet inside the tunnel is addressed to the VIP, which must be local',
    });
  }
  if (mode === 'tun' && families.includes(4)) {
    const risk =
      'reverse-path filtering drops the decapsulated packets (they arrive on tunl0 from clients routed elsewhere)';
    steps.push({
      kind: 'sysctl',
      key: 'net.ipv4.conf.tunl0.rp_filter',
      value: 0,
      accepted: [0],
      risk,
      why: 'packets from tunl0 come from clients whose route leaves by another interface',
    });
    steps.push({
      kind: 'sysctl',
      key: 'net.ipv4.conf.all.rp_filter',
      value: 0,
      accepted: [0],
      risk,
      why: 'the kernel takes the larger of all and tunl0 (other interfaces keep their own value)',
    });
  }
  // An IPv6-only real server has no VIP for ARP to give away.
  if (families.includes(4)) steps.push(ARP_IGNORE, ARP_ANNOUNCE);
  return { mode, vips, steps };
}

/** Short text of a step, for reports: "10.0.0.100/32 on lo", "net.ipv4.conf.all.arp_ignore = 1". */
export function stepTitle(step: Step): string {
  switch (step.kind) {
    case 'link-up':
      return `${step.device} up`;
    case 'address':
      return `VIP ${step.vip.address}/${step.prefix} on ${step.device}`;
    case 'sysctl':
      return `${step.key} = ${step.value}`;
  }
}

// ---------- judging a host against the plan

export interface ObservedLink {
  readonly index: number;
  readonly name: string;
  readonly up: boolean;
}

export interface ObservedAddress {
  readonly device: string;
  readonly family: Family;
  readonly address: string;
  readonly prefix: number;
}

export interface Observed {
  readonly links: readonly ObservedLink[];
  readonly addresses: readonly ObservedAddress[];
  /** Value of each sysctl key the plan names; null when the file does not exist. */
  readonly sysctls: ReadonlyMap<string, number | null>;
}

export type Verdict =
  /** As the plan wants. */
  | 'ok'
  /** Absent, and --apply can set it. */
  | 'missing'
  /** Present with another value, and --apply can set it. */
  | 'wrong'
  /** Not something --apply does: a module to load, an address to remove by hand. */
  | 'blocked';

export interface Finding {
  /** The step judged; none for a conflict outside the plan (the VIP on another interface). */
  readonly step?: Step;
  readonly verdict: Verdict;
  readonly message: string;
}

/** The /proc/sys path of a sysctl key. */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** The sysctl keys the plan reads. */
export function sysctlKeys(plan: RealServerPlan): string[] {
  return plan.steps.flatMap((s) => (s.kind === 'sysctl' ? [s.key] : []));
}

/** Devices without ARP or NDP: a VIP there claims nothing on the network. */
const SILENT_DEVICES = new Set(['lo', TUNNEL[4].device, TUNNEL[6].device]);

const deviceOfKey = (key: string): string => key.split('.')[3] ?? '';

/** Each step's verdict, in plan order, then any conflicts the plan does not cover. */
export function judge(plan: RealServerPlan, observed: Observed): Finding[] {
  const findings: Finding[] = [];
  const link = (name: string): ObservedLink | undefined =>
    observed.links.find((l) => l.name === name);
  for (const step of plan.steps) {
    switch (step.kind) {
      case 'link-up': {
        const l = link(step.device);
        if (!l) {
          findings.push({
            step,
            verdict: 'blocked',
            message: step.module
              ? `${step.device} does not exist: the ${step.module} module is not loaded (modprobe ${step.module}; list it in /etc/modules-load.d/ to load it at boot)`
              : `${step.device} does not exist`,
          });
        } else if (!l.up) {
          findings.push({
            step,
            verdict: 'missing',
            message: `${step.device} is down: ${step.why}`,
          });
        } else {
          findings.push({ step, verdict: 'ok', message: `${step.device} is up` });
        }
        break;
      }
      case 'address': {
        const same = observed.addresses.filter(
          (a) =>
            a.device === step.device &&
            a.family === step.vip.family &&
            a.address === step.vip.address,
        );
        const exact = same.find((a) => a.prefix === step.prefix);
        const other = same.find((a) => a.prefix !== step.prefix);
        if (exact) {
          findings.push({ step, verdict: 'ok', message: stepTitle(step) });
        } else if (other) {
          findings.push({
            step,
            verdict: 'blocked',
            message: `VIP ${step.vip.address} is on ${step.device} as /${other.prefix}, not /${step.prefix}: ${step.device} then holds the whole /${other.prefix} as local; remove it (ip addr del ${step.vip.address}/${other.prefix} dev ${step.device}) and run again`,
          });
        } else if (!link(step.device)) {
          findings.push({
            step,
            verdict: 'blocked',
            message: `VIP ${step.vip.address} not on ${step.device}: ${step.device} does not exist`,
          });
        } else {
          findings.push({
            step,
            verdict: 'missing',
            message: `VIP ${step.vip.address} not on ${step.device}: this host would drop the packets the director sends it for the VIP`,
          });
        }
        break;
      }
      case 'sysctl': {
        const value = observed.sysctls.get(step.key);
        const name = step.key.split('.').pop() ?? step.key;
        const device = deviceOfKey(step.key);
        if (value === undefined || value === null) {
          findings.push({
            step,
            verdict: 'blocked',
            message: `${step.key} does not exist${link(device) || device === 'all' ? '' : ` (${device} does not exist)`}`,
          });
        } else if (step.accepted.includes(value)) {
          findings.push({ step, verdict: 'ok', message: `${step.key} = ${value}` });
        } else {
          findings.push({
            step,
            verdict: 'wrong',
            message: `${name} is ${value} on ${device}: ${step.risk}; set ${step.key}=${step.value}`,
          });
        }
        break;
      }
    }
  }
  // The VIP on an interface that speaks ARP or NDP (not lo, not a tunnel): it answers for the
  // VIP there whatever the sysctls say, the VIP being on the interface the request came in on.
  for (const step of plan.steps) {
    if (step.kind !== 'address') continue;
    for (const a of observed.addresses) {
      if (
        a.family === step.vip.family &&
        a.address === step.vip.address &&
        a.device !== step.device &&
        !SILENT_DEVICES.has(a.device)
      ) {
        findings.push({
          verdict: 'blocked',
          message: `VIP ${a.address} is also on ${a.device}: ${a.device} answers ${a.family === 4 ? 'ARP' : 'neighbor solicitations'} for it whatever the sysctls say; remove it (ip addr del ${a.address}/${a.prefix} dev ${a.device})`,
        });
      }
    }
  }
  return findings;
}
