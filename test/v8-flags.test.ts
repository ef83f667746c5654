// The V8 flags the process sets on itself (src/v8-flags.ts): allocation-site pretenuring off, so
// that objects from a literal whose earlier objects outlived a scavenge are still allocated young.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { V8_FLAGS, setV8Flags } from '../src/v8-flags.js';

const dist = new URL('../', import.meta.url).href;
const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

/**
 * Objects from one literal, 50,000 at a time kept across ten scavenges (as checks in flight
 * are), then one more from the same literal once its function is optimized: where V8 put it.
 * Natives syntax (`%`), so only in a node started with --allow-natives-syntax.
 */
const BURSTS = `
  const make = (i) => ({ i, next: null });
  const kept = [];
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 50000; i++) kept.push(make(i));
    globalThis.gc({ type: 'minor' });
  }
  %PrepareFunctionForOptimization(make);
  make(1);
  %OptimizeFunctionOnNextCall(make);
  make(2);
  const where = %InYoungGeneration(make(3)) ? 'young' : 'old';`;

function run(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--allow-natives-syntax', '--expose-gc', ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

/** Where the literal's last object was put, after `before` ran (ESM) in a fresh node. */
async function placed(before: string): Promise<string> {
  const script = `${before};\n${BURSTS}\nconsole.log(where);`;
  return (await run(['--input-type=module', '-e', script])).trim();
}

t.test('setV8Flags hands each flag to the setter, in order', async (t) => {
  const seen: string[] = [];
  setV8Flags((flag) => seen.push(flag));
  t.same(seen, [...V8_FLAGS]);
  t.ok(V8_FLAGS.includes('--no-allocation-site-pretenuring'));
});

t.test('with the flags a literal that outlived scavenges still allocates young', async (t) => {
  // The same node without them: V8 pretenures the literal, so this test can tell the two apart.
  t.equal(await placed(''), 'old', "V8's default: pretenured");
  const flags = `const { setV8Flags } = await import('${dist}src/v8-flags.js'); setV8Flags()`;
  t.equal(await placed(flags), 'young', 'setV8Flags: young');
});

t.test('the ipvs-warden command sets them before its work', async (t) => {
  // A preload that places the literal as the process exits, after the command ran.
  const preload = `process.on('exit', () => { ${BURSTS}\nprocess.stdout.write(where); });`;
  const url = `data:text/javascript,${encodeURIComponent(preload)}`;
  t.match(await run(['--import', url, main, '--version']), /^ipvs-warden .*\nyoung$/);
});
