// The README's check tables say what the declarations say (checks/*.ts): every kind has its
// option table, every option its row, with its key, type, default and doc. `npm run -s readme`
// rewrites them.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { CATALOG } from '../checks/index.js';
import { blocksIn, readmeBlocks, tableCells } from '../src/cli/docs.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const found = blocksIn(readme);

for (const [name, wanted] of readmeBlocks(CATALOG)) {
  t.test(`README: ${name}`, async (t) => {
    const block = found.get(name);
    if (block === undefined) {
      t.fail(`the README has no block "<!-- generated: ${name} -->": run npm run -s readme`);
      return;
    }
    t.same(tableCells(block), tableCells(wanted), 'run npm run -s readme to regenerate');
  });
}

t.test('no block for a kind that is gone', async (t) => {
  const names = new Set(readmeBlocks(CATALOG).keys());
  t.same(
    [...found.keys()].filter((n) => !names.has(n)),
    [],
  );
});
