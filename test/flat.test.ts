// flat() (src/flat.ts): the same string, and no rope left of it once collected. Counted in a
// heap snapshot of a child node (with gc exposed), as the daemon's heap was measured.
import { execFile } from 'node:child_process';
import t from 'tap';
import { flat } from '../src/flat.js';

const module = new URL('../src/flat.js', import.meta.url).href;

/** Ropes in the heap after 10,000 keys made as the daemon makes a target id, kept, collected. */
const COUNT = (wrap: string): string => `
  import { flat } from ${JSON.stringify(module)};
  import { getHeapSnapshot } from 'node:v8';
  const id = (i) => \`tcp/4/10.0.\${i & 255}.1/80>4/127.1.\${i >> 8}.\${i & 255}/42503\`;
  const kept = [];
  for (let i = 0; i < 10000; i++) kept.push(${wrap}(id(i)));
  globalThis.gc();
  let text = '';
  for await (const chunk of getHeapSnapshot()) text += chunk;
  const s = JSON.parse(text);
  const fields = s.snapshot.meta.node_fields.length;
  const rope = s.snapshot.meta.node_types[0].indexOf('concatenated string');
  let ropes = 0;
  for (let i = 0; i < s.nodes.length; i += fields) if (s.nodes[i] === rope) ropes++;
  console.log(ropes, kept.length);`;

function ropes(wrap: string): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', COUNT(wrap)],
      { encoding: 'utf8', timeout: 60_000 },
      (error, stdout) => (error ? reject(error) : resolve(Number(stdout.split(' ')[0]))),
    ),
  );
}

t.test('the same string', async (t) => {
  for (const s of [
    '',
    '0',
    '12',
    'tcp/4/10.0.0.1/80',
    `${'a'.repeat(20)}${String(7)}`,
    ' 1e3 ',
    'NaN',
  ])
    t.equal(flat(s), s);
});

t.test('no rope of the kept ids is left after a collection', async (t) => {
  const [template, flattened] = await Promise.all([ropes(''), ropes('flat')]);
  // A template of five parts is a tree of several ropes per id: the control.
  t.ok(template >= 30_000, `as made: ${template} ropes`);
  // A fresh node holds about 1,000; a flattened rope the collector has not yet bypassed holds
  // only the flat string, so a few thousand may remain.
  t.ok(flattened < 6_000, `flat: ${flattened} ropes`);
});
