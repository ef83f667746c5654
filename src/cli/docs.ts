// The README's check tables, derived from the declarations (a test holds the README to them;
// `npm run -s readme` rewrites them). Pure: a catalog in, Markdown out.
import {
  configKey,
  type AnyCheckDeclaration,
  type CheckCatalog,
  type OptionSpec,
} from '../health/schema.js';

const code = (text: string): string => `\`${text.replace(/\|/g, '\\|')}\``;
const cell = (text: string): string => text.replace(/\|/g, '\\|');

function typeOf(spec: OptionSpec): string {
  switch (spec.type) {
    case 'text':
      return spec.values ? spec.values.map(code).join(' ') : 'text';
    case 'address':
      return 'address';
    case 'int':
      return `${spec.min}..${spec.max}`;
    case 'bool':
      return 'bool';
    case 'regex':
      return 'regex';
    case 'list':
      return spec.values ? `list of ${spec.values.map(code).join(' ')}` : 'list';
    case 'map':
      return 'map';
    case 'tls':
      return 'tls';
    case 'secret':
      return 'secret';
  }
}

function defaultOf(spec: OptionSpec): string {
  if (spec.required) return '**required**';
  if (spec.type === 'tls') return spec.on ? 'on' : 'off';
  const d = spec.default;
  if (d === undefined) return '';
  if (Array.isArray(d)) return code((d as readonly string[]).join(','));
  if (typeof d === 'object') return code(JSON.stringify(d));
  return code(String(d));
}

function keysOf(name: string, spec: OptionSpec): string {
  const key = configKey(name, spec);
  return spec.type === 'secret'
    ? [key, `${key}_file`, `${key}_env`].map(code).join(', ')
    : code(key);
}

function meaningOf(spec: OptionSpec): string {
  const notes: string[] = [];
  if (spec.type === 'tls') notes.push('`true` or `{sni, verify, ca_file, cert_file, key_file}`');
  if (spec.type === 'regex') notes.push('a pattern, or `{pattern, flags}` with flags from `imsu`');
  if (spec.type === 'secret')
    notes.push('the value, a file (its first line) or a variable; secret');
  else if (spec.secrecy === 'secret') notes.push('secret');
  return cell(notes.length ? `${spec.doc} (${notes.join('; ')})` : spec.doc);
}

/** One kind's option table (`type` and the shared `address`/`port` are described once, above). */
export function optionTable(d: AnyCheckDeclaration): string {
  const rows = Object.entries(d.options).map(
    ([name, spec]) =>
      `| ${keysOf(name, spec)} | ${typeOf(spec)} | ${defaultOf(spec)} | ${meaningOf(spec)} |`,
  );
  return ['| key | type | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The list of kinds with what each does. */
export function kindTable(catalog: CheckCatalog): string {
  const rows = catalog.kinds.map(
    (kind) => `| ${code(kind)} | ${cell(catalog.get(kind)?.summary ?? '')} |`,
  );
  return ['| type | what it does |', '| --- | --- |', ...rows].join('\n');
}

/** The generated blocks, by marker name: `kinds`, and `options:KIND` for each kind. */
export function readmeBlocks(catalog: CheckCatalog): Map<string, string> {
  const blocks = new Map<string, string>([['kinds', kindTable(catalog)]]);
  for (const kind of catalog.kinds) {
    const d = catalog.get(kind);
    if (d) blocks.set(`options:${kind}`, optionTable(d));
  }
  return blocks;
}

/** A Markdown table's cells, trimmed, row by row: what a table says, whatever its padding. */
export function tableCells(markdown: string): string[][] {
  return markdown
    .trim()
    .split('\n')
    .filter((line) => line.trim().startsWith('|'))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split(/(?<!\\)\|/)
        .map((c) => c.trim().replace(/^-+$/, '---')),
    );
}

const BLOCK = /<!-- generated: ([^ ]+) -->\n([^]*?)<!-- end generated -->/g;

/** Each generated block the README holds, by name. */
export function blocksIn(readme: string): Map<string, string> {
  return new Map([...readme.matchAll(BLOCK)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

/** The README with each block replaced by what the declarations say. */
export function rewriteBlocks(readme: string, blocks: ReadonlyMap<string, string>): string {
  return readme.replace(BLOCK, (whole, name: string) => {
    const body = blocks.get(name);
    return body === undefined
      ? whole
      : `<!-- generated: ${name} -->\n${body}\n<!-- end generated -->`;
  });
}
