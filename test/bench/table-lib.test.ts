// bench:table's workloads and decision path on the memory backend: the config, the operations
// and the ipvsadm rules describe one table; the reload changes 10 % as its ipvsadm lines say;
// adopting a matching table plans nothing.
import t from 'tap';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import type { TableEntry } from '../../src/ipvs/model.js';
import {
  configText,
  decide,
  reloadCounts,
  reloadRules,
  restoreRules,
  rowsMarkdown,
  tableOperations,
} from '../../bench/table-lib.js';

const shape = { services: 3, perService: 100 };
const total = shape.services * shape.perService;
const weights = (table: TableEntry[]): Map<string, number> =>
  new Map(
    table.flatMap((e) =>
      e.destinations.map(
        (d) =>
          [
            `${'address' in e.service.key ? e.service.key.address : ''}>${d.key.address}`,
            d.weight,
          ] as const,
      ),
    ),
  );
const lines = (text: string, prefix: string): string[][] =>
  text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.split(' '));

t.test(
  'start-up, adopt and reload through the daemon path, as the ipvsadm rules say',
  async (t) => {
    const backend = new MemoryBackend();
    const start = await decide(backend, configText(shape), true);
    t.equal(start.operations, shape.services + total, 'a service and its destinations each');
    t.equal(start.failed, 0);
    const before = weights(await backend.table());
    t.equal(before.size, total);

    const rules = restoreRules(shape);
    t.equal(lines(rules, '-A ').length, shape.services);
    t.equal(lines(rules, '-a ').length, total);
    t.equal(tableOperations(shape).length, shape.services + total);
    for (const [, , vip, , real, , , w] of lines(rules, '-a '))
      t.equal(before.get(`${vip?.split(':')[0]}>${real?.split(':')[0]}`), Number(w), 'same table');

    const adopt = await decide(backend, configText(shape), false);
    t.equal(adopt.operations, 0, 'a matching table: nothing to do');

    const counts = reloadCounts(shape);
    t.same(counts, { reweighted: 12, removed: 9, added: 9 }, '4 %, 3 %, 3 % of each service');
    const reload = await decide(backend, configText(shape, true), true);
    t.equal(reload.operations, counts.reweighted + counts.removed + counts.added, '10 %');
    t.equal(reload.failed, 0);
    const after = weights(await backend.table());
    t.equal(after.size, total - counts.removed + counts.added);

    const change = reloadRules(shape);
    const key = (l: string[]): string => `${l[2]?.split(':')[0]}>${l[4]?.split(':')[0]}`;
    const edits = lines(change, '-e ');
    const deletes = lines(change, '-d ');
    const adds = lines(change, '-a ');
    t.equal(edits.length, counts.reweighted);
    t.equal(deletes.length, counts.removed);
    t.equal(adds.length, counts.added);
    for (const l of edits) t.equal(after.get(key(l)), Number(l[7]), `${key(l)} reweighted`);
    for (const l of deletes) t.notOk(after.has(key(l)), `${key(l)} removed`);
    for (const l of adds) t.ok(after.has(key(l)) && !before.has(key(l)), `${key(l)} added`);

    t.equal((await decide(backend, configText(shape, true), false)).operations, 0);
  },
);

t.test('rows print with their ratio, and a dash where ipvsadm has no counterpart', async (t) => {
  const md = rowsMarkdown([
    { name: 'a', oursMs: 50, ipvsadmMs: 100, ipvsadm: '-Ln', note: 'x', samples: [50] },
    { name: 'b', oursMs: 7, ipvsadmMs: null, ipvsadm: 'none', note: 'y', samples: [7] },
  ]);
  t.match(md, /\| a \| 50 ms \| 100 ms \| 0\.50 \|/);
  t.match(md, /\| b \| 7 ms \| – \| – \|/);
});
