// Imports run one way (STYLE.md): probes depend on the health vocabulary, never the reverse, and
// the config reads only leaf modules of it. dpdm finds cycles between files; these are the
// cycles between folders and the directions it cannot see. Read from the sources with the
// TypeScript parser, type-only imports included.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
}

/** The project modules each file imports or re-exports, as paths from the root. */
function imports(files: readonly string[]): Import[] {
  return files.flatMap((from) => {
    const sf = ts.createSourceFile(
      from,
      readFileSync(join(root, from), 'utf8'),
      ts.ScriptTarget.Latest,
    );
    return sf.statements.flatMap((st): Import[] => {
      if (!ts.isImportDeclaration(st) && !ts.isExportDeclaration(st)) return [];
      const spec = st.moduleSpecifier;
      if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) return [];
      let typeOnly: boolean;
      if (ts.isExportDeclaration(st)) typeOnly = st.isTypeOnly;
      else {
        const clause = st.importClause;
        const named = clause?.namedBindings;
        typeOnly =
          !!clause &&
          (clause.phaseModifier === ts.SyntaxKind.TypeKeyword ||
            (!clause.name &&
              !!named &&
              ts.isNamedImports(named) &&
              named.elements.every((e) => e.isTypeOnly)));
      }
      const to = relative(root, resolve(root, dirname(from), spec.text.replace(/\.js$/, '.ts')));
      return [{ from, to, typeOnly }];
    });
  });
}

/** checks/, a folder of src/, or a module at the top of src/. */
function unit(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'checks') return 'checks';
  return parts.length > 2 ? parts.slice(0, 2).join('/') : path;
}

const all = imports([...sources('src'), ...sources('checks')]);
const under = (path: string, dir: string): boolean => path.startsWith(`${dir}/`);

t.test('the folders import one another without a cycle, types included', async (t) => {
  const edges = new Map<string, Set<string>>();
  for (const i of all) {
    const [a, b] = [unit(i.from), unit(i.to)];
    if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'open');
    for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) visit(node, []);
  t.same(cycles, [], 'no folder cycle');
});

t.test('src/health never imports a probe', async (t) => {
  const wrong = all.filter((i) => under(i.from, 'src/health') && under(i.to, 'checks'));
  t.same(
    wrong.map((i) => `${i.from} -> ${i.to}`),
    [],
  );
});

t.test(
  'src/config never reaches a probe: not checks/, not the probe kit or scheduler',
  async (t) => {
    // It validates a check with the declaration it is handed (src/checkers.ts hands it the
    // catalog); what it may reach of src/health is the vocabulary, which does no I/O.
    const vocabulary = new Set(
      ['options', 'schema', 'canonical', 'checker', 'timing', 'policy'].map(
        (m) => `src/health/${m}.ts`,
      ),
    );
    const reached = new Set<string>();
    const walk = (from: string): void => {
      for (const i of all.filter((x) => x.from === from)) {
        if (reached.has(i.to)) continue;
        reached.add(i.to);
        walk(i.to);
      }
    };
    for (const file of new Set(all.map((i) => i.from))) if (under(file, 'src/config')) walk(file);
    const wrong = [...reached].filter(
      (path) => under(path, 'checks') || (under(path, 'src/health') && !vocabulary.has(path)),
    );
    t.same(wrong.sort(), []);
  },
);
