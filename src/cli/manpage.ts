// The man pages, ipvs-warden(8) and ipvs-warden.yaml(5), as Markdown cut from the README (the
// one source of the commands, the config keys and their defaults, itself held to the schema and
// the checks' declarations by tests) plus the few facts the README has no section for: exit
// statuses, environment and files. Pure: text in, text out; pandoc turns it into roff
// (test/man.ts), and test/package/man.test.ts holds the pages to `--help`, the schema and the
// exit codes the program really gives.
import { tableCells } from './docs.js';

/** What each exit status means, for every command (test/package/man.test.ts provokes each). */
export const EXIT_STATUS: readonly (readonly [code: number, meaning: string])[] = [
  [
    0,
    'Success: the config is valid, the reload was signalled, the probe found the server healthy, ' +
      'the daemon is ready (`status`), the real server is set up (`realserver --check`), or the ' +
      'daemon stopped cleanly.',
  ],
  [
    1,
    'Failure: an invalid or unreadable config (every problem listed on stderr), no IPVS in the ' +
      'kernel or no `CAP_NET_ADMIN`, a reload that signalled nothing, a daemon that is not ready ' +
      'or cannot be reached (`status`), an unhealthy server (`probe`), a real server not set up ' +
      '(`realserver --check`), a state file that cannot be written (`role`, `director`), or a ' +
      'daemon that could not start.',
  ],
  [2, 'Usage error: an unknown command or option, or one missing; the message names the fix.'],
  [
    3,
    '`probe`: UNKNOWN, a local error on this director (no descriptors, memory or source ' +
      'address), which says nothing about the server, as monitoring plugins report it; ' +
      '`director status`: this director is drained.',
  ],
];

/** The files the Debian package installs or the daemon uses (the package test finds each). */
export const FILES: readonly (readonly [path: string, meaning: string])[] = [
  ['/etc/ipvs-warden/ipvs-warden.yaml', 'the config (`--config`); see ipvs-warden.yaml(5)'],
  [
    '/run/ipvs-warden/',
    'the pid file and the director state (`daemon.state_dir`: `role`, `drained`), made by the unit',
  ],
  [
    '/lib/systemd/system/ipvs-warden.service',
    'the systemd unit: runs `check-config`, then `run`; `systemctl reload` runs `reload`',
  ],
  ['/usr/lib/sysusers.d/ipvs-warden.conf', 'the unprivileged user the unit runs as'],
  ['/usr/lib/modules-load.d/ipvs-warden.conf', 'loads `ip_vs` at boot'],
  ['/usr/lib/ipvs-warden/', 'the program and the Node.js modules it needs'],
  [
    '/usr/share/doc/ipvs-warden/examples/',
    'the ping checks\u2019 unit drop-in and sysctl, Prometheus rules, a Grafana dashboard, and ' +
      'keepalived, BIRD and FRR configs for more than one director',
  ],
];

export interface ManPage {
  /** The file name, e.g. `ipvs-warden.8`. */
  readonly file: string;
  readonly title: string;
  readonly section: '5' | '8';
  readonly markdown: string;
}

interface Heading {
  readonly line: number;
  readonly level: number;
  readonly text: string;
}

/** The Markdown headings, outside fenced code (a shell comment in a code block is no heading). */
function headings(lines: readonly string[]): Heading[] {
  const found: Heading[] = [];
  let fence: string | null = null;
  lines.forEach((line, i) => {
    const f = /^(`{3,}|~{3,})/.exec(line);
    if (f?.[1]) {
      if (fence === null) fence = f[1];
      else if (line.startsWith(fence)) fence = null;
      return;
    }
    const h = /^(#{1,6}) (.*)$/.exec(line);
    if (fence === null && h?.[1] && h[2] !== undefined)
      found.push({ line: i, level: h[1].length, text: h[2].trim() });
  });
  return found;
}

/**
 * The README's section under `heading` (its text, e.g. `Commands`): the lines after it up to the
 * next heading of its level or above, subsections included. Throws when the README has none, so
 * a renamed section breaks the build rather than the page.
 */
export function readmeSection(readme: string, heading: string): { level: number; body: string } {
  const lines = readme.split('\n');
  const all = headings(lines);
  const at = all.findIndex((h) => h.text === heading);
  const start = all[at];
  if (!start) throw new Error(`the README has no section "${heading}"`);
  const end = all.slice(at + 1).find((h) => h.level <= start.level);
  return {
    level: start.level,
    body: lines.slice(start.line + 1, end ? end.line : lines.length).join('\n'),
  };
}

/**
 * A Markdown table as a definition list (pandoc's, a man page's .TP): the first cell is the
 * term, the others its text, each but the last named by its column (`default \`10s\``). A
 * man page is read on a terminal of 80 columns, where a table of four columns has room for a
 * few words per line.
 */
export function tableAsList(markdown: string): string {
  const [head = [], , ...rows] = tableCells(markdown);
  return rows
    .map(([term = '', ...rest]) => {
      const named = rest
        .slice(0, -1)
        .map((c, i) => (c ? `${head[i + 1] ?? ''} ${c}` : ''))
        .filter(Boolean);
      const last = rest.at(-1) ?? '';
      const text = named.length ? `${named.join(', ')}${last ? `: ${last}` : ''}` : last;
      return `${term}\n:   ${text || '(none)'}`;
    })
    .join('\n\n');
}

/** Each run of table lines outside fenced code, replaced by `tableAsList`. */
function tablesAsLists(markdown: string): string {
  const out: string[] = [];
  let fence = false;
  let rows: string[] = [];
  const flush = (): void => {
    if (rows.length) out.push(tableAsList(rows.join('\n')));
    rows = [];
  };
  for (const line of markdown.split('\n')) {
    if (/^(```|~~~)/.test(line)) fence = !fence;
    if (!fence && line.startsWith('|')) {
      rows.push(line);
      continue;
    }
    flush();
    out.push(line);
  }
  flush();
  return out.join('\n');
}

/**
 * A section's body for a page: its subsections one level below `level` become `##` (a man
 * page's .SS) and deeper ones stay below that; links to README anchors keep only their text;
 * the README's generated-block markers go.
 */
function adapt(section: { level: number; body: string }): string {
  const lines = section.body.split('\n');
  const marks = new Set(headings(lines).map((h) => h.line));
  const body = lines
    .map((line, i) => {
      if (!marks.has(i)) return line;
      const hashes = /^#+/.exec(line)?.[0].length ?? 0;
      return `${'#'.repeat(Math.max(2, hashes - section.level + 1))}${line.slice(hashes)}`;
    })
    .filter((line) => !/^<!-- (generated: .*|end generated) -->$/.test(line))
    .join('\n')
    .replace(/\[([^\]]+)\]\(#[^)]*\)/g, '$1')
    .trim();
  return tablesAsLists(body);
}

/** The README's bullet items that start with `- **NAME**`, with their continuation lines. */
function bullets(body: string, names: readonly string[]): string {
  const lines = body.split('\n');
  const out: string[] = [];
  for (const name of names) {
    const at = lines.findIndex((l) => l.startsWith(`- **${name}**`));
    if (at < 0) throw new Error(`the README has no item "${name}"`);
    out.push(lines[at] ?? '');
    for (const l of lines.slice(at + 1)) {
      if (!l.startsWith('  ')) break;
      out.push(l);
    }
  }
  return out.join('\n');
}

/** The first fenced code block of a section, with its fences. */
function firstCodeBlock(body: string): string {
  const m = /^```[^\n]*\n[^]*?\n```$/m.exec(body);
  if (!m) throw new Error('the section has no code block');
  return m[0];
}

const cell = (text: string): string => text.replace(/\|/g, '\\|');

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export interface ManFacts {
  /** The README, whole. */
  readonly readme: string;
  /** The daemon keys with their environment variables (`daemonSchema()`). */
  readonly environment: readonly { readonly key: string; readonly env: string }[];
}

/** ipvs-warden(8): commands, the daemon, signals, exit statuses, environment, files. */
export function commandPage(facts: ManFacts): ManPage {
  const { readme } = facts;
  const commands = readmeSection(readme, 'Commands');
  const synopsis = firstCodeBlock(commands.body);
  const intro = readme.split('\n\n')[1] ?? '';
  const theLoop = readmeSection(readme, 'The loop');
  const markdown = [
    '# NAME',
    'ipvs-warden - health-checking controller for Linux Virtual Server (IPVS)',
    '# SYNOPSIS',
    synopsis,
    '# DESCRIPTION',
    intro.replace(/\n/g, ' '),
    'The config file is described in **ipvs-warden.yaml**(5).',
    '# COMMANDS',
    adapt({ level: commands.level, body: commands.body.replace(synopsis, '') }),
    '# THE DAEMON',
    adapt({ level: 2, body: readmeSection(readme, 'The daemon: `ipvs-warden run`').body })
      // Its subsections are the config's: they are in ipvs-warden.yaml(5).
      .replace(/\n## [^]*$/, ''),
    '# SIGNALS',
    adapt({ level: 3, body: bullets(theLoop.body, ['Reload', 'Stop', 'Signals']) }),
    '# LOGS',
    adapt(readmeSection(readme, 'Logs')),
    '# EXIT STATUS',
    tableAsList(
      table(
        ['status', 'meaning'],
        EXIT_STATUS.map(([code, meaning]) => [`**${code}**`, meaning]),
      ),
    ),
    '# ENVIRONMENT',
    'Each **daemon:** key of the config may be given by a variable, which wins over the file ' +
      '(see **ipvs-warden.yaml**(5)):',
    tableAsList(
      table(
        ['variable', 'key'],
        facts.environment.map(({ key, env }) => [`\`${env}\``, `\`daemon.${key}\``]),
      ),
    ),
    '# FILES',
    tableAsList(
      table(
        ['file', 'what'],
        FILES.map(([path, meaning]) => [`*${path}*`, meaning]),
      ),
    ),
    '# SEE ALSO',
    '**ipvs-warden.yaml**(5), **ipvsadm**(8), **systemctl**(1), **systemd-sysusers**(8), ' +
      '**keepalived**(8), **ldirectord**(8)',
  ];
  return {
    file: 'ipvs-warden.8',
    title: 'IPVS-WARDEN',
    section: '8',
    markdown: markdown.join('\n\n'),
  };
}

/** ipvs-warden.yaml(5): every key with its default, the checks' included. */
export function configPage(facts: ManFacts): ManPage {
  const { readme } = facts;
  const markdown = [
    '# NAME',
    'ipvs-warden.yaml - configuration of ipvs-warden(8)',
    '# SYNOPSIS',
    '*/etc/ipvs-warden/ipvs-warden.yaml*',
    '# DESCRIPTION',
    'The config of **ipvs-warden**(8): `ipvs-warden check-config --config FILE` validates it and ' +
      'prints it with every default filled in. The package installs a complete example, every ' +
      'key shown, as */etc/ipvs-warden/ipvs-warden.yaml*.',
    adapt(readmeSection(readme, 'Config')),
    '# ANNOUNCING VIPS',
    adapt(readmeSection(readme, 'Announcing VIPs')),
    '# HEALTH CHECKS',
    adapt(readmeSection(readme, 'Health checks')),
    '# SEE ALSO',
    '**ipvs-warden**(8), **ipvsadm**(8), **keepalived.conf**(5), **ldirectord**(8)',
  ];
  return {
    file: 'ipvs-warden.yaml.5',
    title: 'IPVS-WARDEN.YAML',
    section: '5',
    markdown: markdown.join('\n\n'),
  };
}
