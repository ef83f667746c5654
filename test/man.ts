// Renders a man page's Markdown (src/cli/manpage.ts) to roff with Debian's pandoc: used by
// test/write-man.ts (the package build) and test/package/man.test.ts.
import { execFileSync } from 'node:child_process';
import type { ManPage } from '../src/cli/manpage.js';

/**
 * pandoc 2.17's roff, tidied so that groff (as `man --warnings` and lintian run it) and
 * mandoc -Tlint find nothing to say: inline code in font CR, which both know (pandoc's own
 * font V needs groff's `ftr`); ragged right without hyphenation, so a key is never split; a
 * break point after `,` and `/` in a long piece of code (`local_address,local_port,...` is
 * wider than a line); no paragraph macro straight after a heading.
 */
export function tidyRoff(roff: string): string {
  const out: string[] = [];
  for (const raw of roff.split('\n')) {
    let line = raw
      .replace(/\\f\[(?:V|C)\]/g, '\\f[CR]')
      .replace(/\\f\[VB\]/g, '\\f[CB]')
      .replace(/\\f\[VI\]/g, '\\f[CI]');
    if (line === '.hy') {
      out.push('.ad l', '.nh');
      continue;
    }
    if (line === '.PP' && /^\.S[HS] /.test(out.at(-1) ?? '')) continue;
    if (!line.startsWith('.'))
      line = line.replace(
        /\\f\[CR\]([^\\]{30,}?)\\f\[R\]/g,
        (_, code: string) => `\\f[CR]${code.replace(/([,/])(?=\S)/g, '$1\\:')}\\f[R]`,
      );
    out.push(line);
  }
  return out.join('\n');
}

export function renderMan(page: ManPage, version: string, date: string): string {
  const roff = execFileSync(
    'pandoc',
    [
      '--from=markdown-smart',
      '--to=man',
      '--standalone',
      `--metadata=title:${page.title}`,
      `--metadata=section:${page.section}`,
      `--metadata=header:${page.section === '8' ? 'System Manager\u2019s Manual' : 'File Formats Manual'}`,
      `--metadata=footer:ipvs-warden ${version}`,
      `--metadata=date:${date}`,
    ],
    { input: page.markdown, encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  return tidyRoff(roff);
}
