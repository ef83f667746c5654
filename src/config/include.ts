// keepalived's `include`: a path or a glob (`*`, `?`, `[...]` in its last part), relative to the
// including file, each file read bounded like the config itself. Files in name order, as glob(3)
// returns them; a pattern that matches nothing is no file, as keepalived has it.
import { readdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { CONFIG_MAX_BYTES, readFileBoundedSync } from './files.js';

/** `*.conf` -> a RegExp for one path component. */
function globPart(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function includeFiles(pattern: string, from: string): { file: string; text: string }[] {
  const path = resolve(dirname(from), pattern);
  const dir = dirname(path);
  const name = basename(path);
  let names: string[];
  if (/[*?[]/.test(name)) {
    const re = globPart(name);
    try {
      names = readdirSync(dir)
        .filter((n) => re.test(n) && !n.startsWith('.'))
        .sort();
    } catch {
      names = [];
    }
  } else names = [name];
  return names.map((n) => {
    const file = resolve(dir, n);
    const read = readFileBoundedSync(file, CONFIG_MAX_BYTES, 'an included file may be');
    if ('problem' in read)
      throw new Error(`include ${pattern}: cannot read ${file}: ${read.problem}`);
    return { file, text: read.text };
  });
}
