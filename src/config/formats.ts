// Which format a config file is in, and what a translation of another daemon's file becomes:
// its problems by source line, the source line of each native path (for the native reader's
// problems), and the YAML `convert` prints. Pure.
import { Document, isCollection, isMap, isNode, isScalar, type Node } from 'yaml';
import type { ConfigFormat, SourceNote, Translation } from './foreign.js';
import { formatPath, type Path } from './reader.js';

export const FORMATS: readonly ConfigFormat[] = ['yaml', 'ldirectord', 'keepalived'];

/**
 * The format of a file: by its name where that says (`*.cf` ldirectord, `keepalived.conf` and
 * `*.conf` with keepalived blocks, `*.yaml`/`*.yml`/`*.json`), else by what it holds.
 */
export function detectFormat(file: string, text: string): ConfigFormat {
  const name = file.split('/').pop() ?? file;
  if (/\.(ya?ml|json)$/i.test(name)) return 'yaml';
  if (/\.cf$/i.test(name) || /^ldirectord/i.test(name)) return 'ldirectord';
  if (/^keepalived/i.test(name)) return 'keepalived';
  // Without a telling name: ldirectord's `virtual=` at the start of a line, or keepalived's
  // blocks (`virtual_server 10.0.0.1 80 {`, `vrrp_instance VI_1 {`, `global_defs {`).
  const code = text
    .split('\n')
    .map((l) => l.replace(/[#!].*$/, '').trim())
    .filter(Boolean);
  if (code.some((l) => /^virtual6?\s*=/.test(l))) return 'ldirectord';
  if (
    code.some((l) => /^(virtual_server|virtual_server_group|vrrp_\w+|global_defs)\b.*\{?$/.test(l))
  )
    return 'keepalived';
  return 'yaml';
}

/** Does `prefix` lead to (or equal) `path`? */
function leadsTo(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => p === path[i]);
}

/** The source line (and file) of the deepest note on the way to `path` that has a line. */
export function sourceOf(t: Translation, path: Path): SourceNote | undefined {
  let best: SourceNote | undefined;
  for (const note of t.notes)
    if (note.line > 0 && leadsTo(note.path, path) && (!best || note.path.length > best.path.length))
      best = note;
  return best;
}

/**
 * Where a comment for `path` goes in a document made from plain data: before the key of a
 * mapping's entry (`on_failure: quiesce`), before a list's item.
 */
function commentSite(root: Node | null | undefined, path: Path): Node | undefined {
  let node: unknown = root;
  for (const [i, part] of path.entries()) {
    if (!isCollection(node)) return undefined;
    if (i === path.length - 1 && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === part);
      return isNode(pair?.key) ? pair.key : undefined;
    }
    node = node.get(part, true);
  }
  return isNode(node) ? node : undefined;
}

/**
 * The native config a translation holds, as YAML: where the meaning shifts, a comment before the
 * value (with its source line); what was left to the other daemon, and where each value came
 * from, in the header. check-config of this text gives the same effective config.
 */
export function convertText(t: Translation, format: ConfigFormat, file: string): string {
  const doc = new Document(t.raw);
  const header = [
    ` Converted from ${file} (${format}) by ipvs-warden convert.`,
    ' `ipvs-warden check-config` of this file gives the effective config running the original',
    ' would; comments mark where the meaning shifts (with the source line).',
  ];
  for (const left of t.left)
    header.push(
      ` Left to ${format} (not ours): ${left.file ?? file}:${left.line}${left.text ? ` ${left.text}` : ''}`,
    );
  doc.commentBefore = header.join('\n');
  const notes = t.notes.filter((n) => n.text);
  for (const note of notes) {
    // A line-0 note is the source daemon's default: its text says so, there is no line to name.
    const at = note.line > 0 ? `${note.file ?? file}:${note.line}: ` : '';
    const node = note.path.length === 0 ? undefined : commentSite(doc.contents, note.path);
    const text = ` ${at}${note.text ?? ''}`;
    if (node) node.commentBefore = node.commentBefore ? `${node.commentBefore}\n${text}` : text;
    else doc.commentBefore = `${doc.commentBefore ?? ''}\n ${formatPath(note.path)}:${text}`;
  }
  return doc.toString({ lineWidth: 100 });
}
