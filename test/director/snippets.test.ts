// The keepalived, BIRD and FRR files in deploy/directors/ are the ones the README quotes (each
// whole, in a code block), and each program's own config check accepts them: keepalived -t,
// bird -p, vtysh -C. A broken copy of each is refused, so these checks can fail. The VM lanes
// (test:directors) run the same files.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { run } from '../exec.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = join(root, 'deploy/directors');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'warden-snippets-'));

interface Snippet {
  readonly file: string;
  /** The program's config check, as argv for a file. */
  readonly check: (file: string) => [string, string[]];
  /** A one-line mistake the check must refuse. */
  readonly broken: readonly [string, string];
}

const SNIPPETS: readonly Snippet[] = [
  {
    file: 'keepalived.conf',
    // -n: no daemon, -l: log to the console; -t: check the file and exit.
    check: (f) => ['keepalived', ['-t', '-n', '-l', '-f', f]],
    broken: ['virtual_router_id 51', 'virtual_router_id 510'],
  },
  {
    file: 'bird-director.conf',
    check: (f) => ['bird', ['-p', '-c', f]],
    broken: ['kernel table 240;', 'kernel tabel 240;'],
  },
  {
    file: 'bird-router.conf',
    check: (f) => ['bird', ['-p', '-c', f]],
    broken: ['merge paths on;', 'merge paths sometimes;'],
  },
  {
    file: 'frr.conf',
    check: (f) => ['vtysh', ['-C', '-f', f]],
    broken: ['ip import-table 240', 'ip import-table 253'],
  },
];

for (const s of SNIPPETS) {
  const path = join(dir, s.file);
  const text = readFileSync(path, 'utf8');
  t.test(`deploy/directors/${s.file}`, async (t) => {
    const [cmd, args] = s.check(path);
    const ok = await run(cmd, args);
    t.equal(ok.code, 0, `${cmd} accepts it (test/setup.sh installs ${cmd}): ${ok.out}`);

    t.ok(text.includes(s.broken[0]), 'the line the broken copy changes is there');
    const bad = join(scratch, s.file);
    writeFileSync(bad, text.replace(s.broken[0], s.broken[1]));
    const refused = await run(...s.check(bad));
    t.not(refused.code, 0, `${cmd} refuses "${s.broken[1]}"`);

    t.ok(readme.includes('```\n' + text + '```\n'), 'the README quotes it whole, in a code block');
  });
}
