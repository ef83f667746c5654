// The parts of bench:table that need no kernel: the workloads (the same table as a config, as
// backend operations and as `ipvsadm -R` input; a reload that changes 10 % of it), the daemon's
// decision path run against any backend, and the printed rows. Tested on the memory backend
// (test/bench/table-lib.test.ts), so the VM run only measures.
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/checkers.js';
import type { IpvsBackend } from '../src/ipvs/backend.js';
import type { Operation } from '../src/ipvs/model.js';
import { destinationSpec, serviceSpec } from '../src/ipvs/spec.js';
import { desiredTable, type ServerHealth } from '../src/reconcile/desired.js';
import { plan } from '../src/reconcile/plan.js';

export interface Shape {
  readonly services: number;
  readonly perService: number;
}

/** Of each service's destinations, the first 4 % change weight, the next 3 % go, 3 % are new. */
const RELOAD_REWEIGHT = 0.04;
const RELOAD_REMOVE = 0.03;
const RELOAD_ADD = 0.03;

const vip = (s: number): string => `10.100.${s >> 8}.${(s & 0xff) + 1}`;
/** Real server d of service s (d may pass perService: the servers a reload adds). */
function realAddress(s: number, d: number): string {
  if (d >= 254) throw new RangeError('at most 254 destinations a service (one /24 each)');
  return `10.${101 + (s >> 8)}.${s & 0xff}.${d + 1}`;
}

export interface ReloadCounts {
  readonly reweighted: number;
  readonly removed: number;
  readonly added: number;
}

export function reloadCounts(shape: Shape): ReloadCounts {
  const per = (share: number): number => Math.round(shape.perService * share) * shape.services;
  return {
    reweighted: per(RELOAD_REWEIGHT),
    removed: per(RELOAD_REMOVE),
    added: per(RELOAD_ADD),
  };
}

interface Server {
  readonly s: number;
  readonly address: string;
  readonly weight: number;
}

/** The servers of the table before (`reloaded` false) or after the reload. */
function servers(shape: Shape, reloaded: boolean): Server[][] {
  const n = shape.perService;
  const reweight = Math.round(n * RELOAD_REWEIGHT);
  const remove = Math.round(n * RELOAD_REMOVE);
  const add = Math.round(n * RELOAD_ADD);
  const out: Server[][] = [];
  for (let s = 0; s < shape.services; s++) {
    const list: Server[] = [];
    for (let d = 0; d < n + (reloaded ? add : 0); d++) {
      if (reloaded && d >= reweight && d < reweight + remove) continue;
      const weight = reloaded && d < reweight ? 20 : 10;
      list.push({ s, address: realAddress(s, d), weight });
    }
    out.push(list);
  }
  return out;
}

/** The table as the daemon's config (no checks: health is given, every server up). */
export function configText(shape: Shape, reloaded = false): string {
  const lines = ['daemon: {backend: netlink}', 'virtual_services:'];
  for (const [s, list] of servers(shape, reloaded).entries()) {
    lines.push(
      `  - address: ${vip(s)}`,
      '    port: 80',
      '    scheduler: wlc',
      '    checks: []',
      '    real_servers:',
    );
    for (const r of list)
      lines.push(`      - {address: ${r.address}, port: 8080, weight: ${r.weight}, fwd: masq}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The table as backend operations (what the raw write rows apply). */
export function tableOperations(shape: Shape): Operation[] {
  const ops: Operation[] = [];
  for (const [s, list] of servers(shape, false).entries()) {
    const key = { family: 4, protocol: 'tcp', address: vip(s), port: 80 } as const;
    ops.push({ op: 'add-service', service: serviceSpec({ key, scheduler: 'wlc' }) });
    for (const r of list) {
      ops.push({
        op: 'add-destination',
        service: key,
        destination: destinationSpec({
          key: { family: 4, address: r.address, port: 8080 },
          weight: r.weight,
        }),
      });
    }
  }
  return ops;
}

/** The table as `ipvsadm -R` input, from an empty table. */
export function restoreRules(shape: Shape): string {
  const rules: string[] = [];
  for (const [s, list] of servers(shape, false).entries()) {
    rules.push(`-A -t ${vip(s)}:80 -s wlc`);
    for (const r of list) rules.push(`-a -t ${vip(s)}:80 -r ${r.address}:8080 -m -w ${r.weight}`);
  }
  return `${rules.join('\n')}\n`;
}

/** The reload as `ipvsadm -R` input: just the changes, as a script that knew them would send. */
export function reloadRules(shape: Shape): string {
  const before = servers(shape, false);
  const after = servers(shape, true);
  const rules: string[] = [];
  for (let s = 0; s < shape.services; s++) {
    const was = new Map((before[s] ?? []).map((r) => [r.address, r]));
    const now = new Map((after[s] ?? []).map((r) => [r.address, r]));
    for (const [address, r] of now) {
      const old = was.get(address);
      if (!old) rules.push(`-a -t ${vip(s)}:80 -r ${address}:8080 -m -w ${r.weight}`);
      else if (old.weight !== r.weight)
        rules.push(`-e -t ${vip(s)}:80 -r ${address}:8080 -m -w ${r.weight}`);
    }
    for (const address of was.keys())
      if (!now.has(address)) rules.push(`-d -t ${vip(s)}:80 -r ${address}:8080`);
  }
  return `${rules.join('\n')}\n`;
}

/** Destinations in an `ipvsadm -Ln` listing. */
export const countListed = (text: string): number =>
  text.split('\n').filter((l) => l.startsWith('  -> ') && !l.includes('RemoteAddress')).length;

const UP: ServerHealth = { status: 'up', upSince: null, weight: undefined };

export interface Decision {
  /** Operations planned (and applied, when asked). */
  readonly operations: number;
  readonly failed: number;
  /** Milliseconds: config parsed and validated, table read, desired + plan, operations applied. */
  readonly parseMs: number;
  readonly readMs: number;
  readonly planMs: number;
  readonly applyMs: number;
  readonly totalMs: number;
}

/**
 * What the daemon does between reading a config and the table matching it, every server up:
 * parse and validate, read the kernel table, desired + plan, apply. The daemon's own functions;
 * only the health checks (given as up) and the loop around them are left out.
 */
export async function decide(
  backend: IpvsBackend,
  config: string,
  apply: boolean,
): Promise<Decision> {
  const t0 = performance.now();
  const parsed = parseConfig(config, 'bench-table.yaml', {});
  const t1 = performance.now();
  // What a tick reads: the table without statistics.
  const observed = await backend.layout();
  const t2 = performance.now();
  const desired = desiredTable({
    services: parsed.virtualServices,
    retired: [],
    health: () => UP,
    maintenance: () => null,
    now: 0,
  });
  const operations = plan(desired, observed, new Map(), 0).operations.map((p) => p.operation);
  const t3 = performance.now();
  const results = apply ? await backend.apply(operations) : [];
  const t4 = performance.now();
  return {
    operations: operations.length,
    failed: results.filter((r) => r.error).length,
    parseMs: t1 - t0,
    readMs: t2 - t1,
    planMs: t3 - t2,
    applyMs: t4 - t3,
    totalMs: t4 - t0,
  };
}

export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** One row of the side-by-side table: our median, ipvsadm's (when it has a counterpart). */
export interface TableRow {
  readonly name: string;
  readonly oursMs: number;
  readonly ipvsadmMs: number | null;
  /** What ipvsadm ran for the row ("ipvsadm -R (1,000 change lines)"). */
  readonly ipvsadm: string;
  /** How ours was measured, and its breakdown. */
  readonly note: string;
  readonly samples: readonly number[];
}

export const ratio = (row: TableRow): number | null =>
  row.ipvsadmMs === null || row.ipvsadmMs === 0 ? null : row.oursMs / row.ipvsadmMs;

/** The rows as a Markdown table (the shape bench/README.md and the README use). */
export function rowsMarkdown(rows: readonly TableRow[]): string {
  const out = [
    '| row | ipvs-warden | ipvsadm | ratio | how |',
    '| --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const q = ratio(r);
    out.push(
      `| ${r.name} | ${r.oursMs.toFixed(0)} ms | ${r.ipvsadmMs === null ? '–' : `${r.ipvsadmMs.toFixed(0)} ms`} | ${q === null ? '–' : q.toFixed(2)} | ${r.note}; ipvsadm: ${r.ipvsadm} |`,
    );
  }
  return out.join('\n');
}
