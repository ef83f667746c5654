// Benchmark of the kernel table at scale beside ipvsadm, side by side in one run (inside the VM:
// `npm run bench:table`; BENCH_SERVICES x BENCH_DESTS, default 100 x 100 = 10,000 destinations):
// - start-up: the daemon's path from its config to a full table (parse, read, plan, apply)
//   against `ipvsadm -R` of the same table;
// - reload: a config that changes 10 % (4 % reweighted, 3 % removed, 3 % added), through the
//   same path, against `ipvsadm -R` of just those changes;
// - adopt on restart: the same path against a table that already matches (zero operations,
//   asserted) against `ipvsadm -Sn`, the read a script would compare;
// - one dump: layout() (what a reconcile tick reads: no statistics) against `ipvsadm -Ln` (which
//   shows none), and table() against `ipvsadm -Ln --stats`;
// - the raw write: the operations applied pipelined and one at a time against `ipvsadm -R`.
// `tableRows()` is also run by bench:peers, after its peers (same VM boot; it flushes the IPVS table);
// run directly, it prints the rows, their ratios and the breakdowns.
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { NetlinkBackend } from '../src/ipvs/netlink/backend.js';
import { fullCollection } from '../src/v8-flags.js';
import {
  configText,
  countListed,
  decide,
  median,
  ratio,
  reloadCounts,
  reloadRules,
  restoreRules,
  rowsMarkdown,
  tableOperations,
  type Decision,
  type Shape,
  type TableRow,
} from './table-lib.js';

export interface TableBenchOptions extends Partial<Shape> {
  readonly rounds?: number;
  /** Also time the write one operation at a time (slow: about twice the pipelined write). */
  readonly serial?: boolean;
  /** Dumps of each kind per round, alternating with ipvsadm's (cheap beside a round's writes). */
  readonly dumps?: number;
}

const count = (t: readonly { destinations: readonly unknown[] }[]): number =>
  t.reduce((k, e) => k + e.destinations.length, 0);

/**
 * Each timed step starts from a collected heap (untimed), ours and ipvsadm's alike, so the
 * garbage of the step before does not land on it. Reading `ipvsadm -Ln` at 10,000 makes a
 * 600 KiB listing and its string in this process: in the VM, the layout() timed right after
 * it took 548 ms (median of 12) against 369-381 in the places after another layout(), and
 * 391 against 371-392 with a collection before each.
 */
const settled = <T>(fn: () => T): T => {
  fullCollection();
  return fn();
};

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  fullCollection();
  const t0 = performance.now();
  const value = await fn();
  return [performance.now() - t0, value];
}

const ipvsadm = (args: string[], input?: string): string =>
  execFileSync('ipvsadm', args, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    ...(input === undefined ? {} : { input }),
  });

const breakdown = (ds: readonly Decision[]): string => {
  const m = (f: (d: Decision) => number): string => median(ds.map(f)).toFixed(0);
  return `parse ${m((d) => d.parseMs)} + read ${m((d) => d.readMs)} + plan ${m((d) => d.planMs)} + apply ${m((d) => d.applyMs)} ms`;
};

/** The rows, measured in this kernel (root, IPVS loaded); the table is flushed before and after. */
export async function tableRows(options: TableBenchOptions = {}): Promise<TableRow[]> {
  const shape: Shape = {
    services: options.services ?? 100,
    perService: options.perService ?? 100,
  };
  const rounds = options.rounds ?? 3;
  const dumps = options.dumps ?? 5;
  const total = shape.services * shape.perService;
  const changes = reloadCounts(shape);
  const changed = changes.reweighted + changes.removed + changes.added;
  const full = configText(shape);
  const reloaded = configText(shape, true);
  const ops = tableOperations(shape);
  const rules = restoreRules(shape);
  const changeRules = reloadRules(shape);

  const backend = await NetlinkBackend.open();
  const serial = options.serial ? await NetlinkBackend.open({ window: 1 }) : undefined;
  const s = {
    startup: [] as Decision[],
    reload: [] as Decision[],
    adopt: [] as Decision[],
    dump: [] as number[],
    dumpStats: [] as number[],
    restore: [] as number[],
    reloadIpvsadm: [] as number[],
    save: [] as number[],
    list: [] as number[],
    listStats: [] as number[],
    write: [] as number[],
    writeSerial: [] as number[],
  };
  const expectTable = async (n: number, what: string): Promise<void> => {
    const got = count(await backend.table());
    if (got !== n) throw new Error(`${what}: ${got} destinations in the table, expected ${n}`);
  };
  const expectDecision = (d: Decision, ops: number, what: string): Decision => {
    if (d.failed > 0) throw new Error(`${what}: ${d.failed} operations failed`);
    if (d.operations !== ops) throw new Error(`${what}: ${d.operations} operations, not ${ops}`);
    return d;
  };

  /** One dump of each kind, each beside its ipvsadm counterpart. */
  const dumpRound = async (): Promise<void> => {
    const [dumpMs, layout] = await timed(() => backend.layout());
    if (count(layout) !== total) throw new Error(`layout() read ${count(layout)} destinations`);
    s.dump.push(dumpMs);
    const [listMs, listing] = await timed(() => ipvsadm(['-Ln']));
    if (countListed(listing) !== total)
      throw new Error(`ipvsadm -Ln listed ${countListed(listing)} destinations`);
    s.list.push(listMs);
    const [statsMs, table] = await timed(() => backend.table());
    if (count(table) !== total) throw new Error(`table() read ${count(table)} destinations`);
    s.dumpStats.push(statsMs);
    const [listStatsMs, statsListing] = await timed(() => ipvsadm(['-Ln', '--stats']));
    if (countListed(statsListing) !== total)
      throw new Error(`ipvsadm -Ln --stats listed ${countListed(statsListing)} destinations`);
    s.listStats.push(listStatsMs);
  };

  try {
    for (let round = 0; round < rounds; round++) {
      // Start-up: from an empty table to the config's, the daemon's way and ipvsadm's.
      await backend.flush();
      s.startup.push(
        expectDecision(
          await settled(() => decide(backend, full, true)),
          shape.services + total,
          'start-up',
        ),
      );
      await expectTable(total, 'after start-up');

      // Restart: the table already matches, so nothing is written.
      s.adopt.push(expectDecision(await settled(() => decide(backend, full, false)), 0, 'adopt'));
      const [saveMs, saved] = await timed(() => ipvsadm(['-Sn']));
      if (saved.split('\n').filter((l) => l.startsWith('-a ')).length !== total)
        throw new Error('ipvsadm -Sn saved a different table');
      s.save.push(saveMs);

      // Dumps, without statistics and with them, each beside ipvsadm's.
      for (let d = 0; d < dumps; d++) await dumpRound();

      // Reload: 10 % changed.
      s.reload.push(
        expectDecision(await settled(() => decide(backend, reloaded, true)), changed, 'reload'),
      );
      await expectTable(total - changes.removed + changes.added, 'after the reload');

      await backend.flush();
      const [restoreMs] = await timed(() => ipvsadm(['-R'], rules));
      s.restore.push(restoreMs);
      await expectTable(total, 'after ipvsadm -R');
      const [reloadMs] = await timed(() => ipvsadm(['-R'], changeRules));
      s.reloadIpvsadm.push(reloadMs);
      // ipvsadm's reload must leave what ours did: the next decision has nothing to do.
      expectDecision(await decide(backend, reloaded, false), 0, 'after ipvsadm reload');

      await backend.flush();
      const [writeMs, results] = await timed(() => backend.apply(ops));
      if (results.some((r) => r.error)) throw new Error('pipelined write failed');
      s.write.push(writeMs);

      if (serial) {
        await backend.flush();
        const [serialMs, sresults] = await timed(() => serial.apply(ops));
        if (sresults.some((r) => r.error)) throw new Error('one-at-a-time write failed');
        s.writeSerial.push(serialMs);
      }
    }
  } finally {
    await backend.flush().catch(() => undefined);
    await backend.close();
    await serial?.close();
  }

  const n = total.toLocaleString('en');
  const row = (
    name: string,
    ours: readonly number[],
    ipvsadmMs: readonly number[] | null,
    ipvsadmWhat: string,
    note: string,
  ): TableRow => ({
    name,
    oursMs: median(ours),
    ipvsadmMs: ipvsadmMs ? median(ipvsadmMs) : null,
    ipvsadm: ipvsadmWhat,
    note,
    samples: ours,
  });
  const totals = (ds: readonly Decision[]): number[] => ds.map((d) => d.totalMs);
  const rows = [
    row(
      `start-up: empty to ${n} destinations`,
      totals(s.startup),
      s.restore,
      `-R of ${shape.services + total} rules`,
      `config to table, ${breakdown(s.startup)}`,
    ),
    row(
      `reload: ${changed.toLocaleString('en')} changed (10 %)`,
      totals(s.reload),
      s.reloadIpvsadm,
      `-R of the ${changed} change lines (-e, -d, -a)`,
      `${changes.reweighted} reweighted, ${changes.removed} removed, ${changes.added} added; ${breakdown(s.reload)}`,
    ),
    row(
      `restart: adopt ${n} (0 operations)`,
      totals(s.adopt),
      s.save,
      '-Sn (the read to compare)',
      breakdown(s.adopt),
    ),
    // The same three without parsing the config, which the decision does not need to repeat
    // (and which bench:config measures): read, plan and apply alone.
    row(
      'start-up, config already parsed',
      s.startup.map((d) => d.totalMs - d.parseMs),
      s.restore,
      '-R (as above)',
      'read + plan + apply',
    ),
    row(
      'reload, config already parsed',
      s.reload.map((d) => d.totalMs - d.parseMs),
      s.reloadIpvsadm,
      '-R of the change lines (as above)',
      'read + plan + apply',
    ),
    row(
      'restart, config already parsed',
      s.adopt.map((d) => d.totalMs - d.parseMs),
      s.save,
      '-Sn (as above)',
      'read + plan',
    ),
    row(`dump ${n} destinations`, s.dump, s.list, '-Ln', 'layout(), what a tick reads'),
    row(
      `dump ${n} with statistics`,
      s.dumpStats,
      s.listStats,
      '-Ln --stats',
      'table(), what /metrics reads',
    ),
    row(
      `write ${n}: operations, pipelined`,
      s.write,
      s.restore,
      `-R of ${shape.services + total} rules`,
      'backend.apply() of the operations alone',
    ),
  ];
  if (serial)
    rows.push(
      row(
        `write ${n}: one at a time`,
        s.writeSerial,
        s.restore,
        `-R of ${shape.services + total} rules`,
        'window 1',
      ),
    );
  return rows;
}

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const services = Number(process.env.BENCH_SERVICES ?? 100);
  const perService = Number(process.env.BENCH_DESTS ?? 100);
  const rows = await tableRows({ services, perService, rounds, serial: true });
  console.log(
    `# ${services} services x ${perService} destinations = ${services * perService}, median of ${rounds} rounds, side by side in one run`,
  );
  console.log(rowsMarkdown(rows));
  console.log('');
  for (const r of rows) {
    const q = ratio(r);
    console.log(
      `ratio ${r.name.padEnd(44)} ${q === null ? '  -' : q.toFixed(2)}   (ours: ${r.samples.map((x) => x.toFixed(0)).join(', ')} ms)`,
    );
  }
  console.log(
    `heap used after the runs: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MiB`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
