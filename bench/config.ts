// Benchmark of reading a config (`npm run bench:config`), on the host: 1,000, 10,000 and 100,000
// real servers (100 a service, a tcp check each), read and validated by loadConfigFile as the
// daemon does at start and on reload. Each reading runs in a child process of its own, so its
// peak RSS is its own. Side by side in the same run, the same file read the careful way (yaml's
// document, which the fast way leaves for configs with tags, anchors or errors: a comment with
// an `&` sends it there), and the floors: js-yaml's and yaml's bare parse of the same text. Then
// a 50 MB config, which is refused before it is parsed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROUNDS = 3;
const PER_SERVICE = 100;

function configText(servers: number, careful: boolean): string {
  const lines = ['daemon: {backend: memory}', 'virtual_services:'];
  for (let s = 0; s < servers / PER_SERVICE; s++) {
    lines.push(
      `  - address: 10.${100 + (s >> 8)}.${s & 255}.1`,
      '    port: 80',
      '    scheduler: wrr',
      '    interval: 1s',
      '    checks: [{type: tcp}]',
      '    real_servers:',
    );
    for (let d = 0; d < PER_SERVICE; d++)
      lines.push(`      - {address: 10.200.${d}.${(s % 250) + 1}, port: 8080, weight: 10}`);
  }
  if (careful) lines.push('# & (this comment sends the file the careful way)');
  return lines.join('\n') + '\n';
}

interface Reading {
  ms: number;
  rssMiB: number;
  result: string;
}

/** One reading in a child: `node config.js --child WHAT FILE` prints a Reading as JSON. */
async function child(what: string, file: string): Promise<void> {
  const { readFileSync } = await import('node:fs');
  // As the daemon reads its config: with the V8 flags it sets on itself from the start.
  (await import('../src/v8-flags.js')).setV8Flags();
  // Loaded before the clock starts: the daemon has them loaded when it reloads.
  const { loadConfigFile } = await import('../src/checkers.js');
  const jsYaml = await import('js-yaml');
  const yaml = await import('yaml');
  const start = performance.now();
  let result = 'ok';
  if (what === 'load') {
    try {
      const c = await loadConfigFile(file, {});
      result = `${c.virtualServices.reduce((n, vs) => n + vs.realServers.length, 0)} servers`;
    } catch (e) {
      result = (e as Error).message.split('\n').slice(0, 2).join(' ').slice(0, 120);
    }
  } else if (what === 'print' || what === 'print-whole') {
    // check-config without --quiet: the config read, then the effective config written, as it
    // is, or (print-whole) as the whole document's YAML, the way it was written before.
    const { CATALOG } = await import('../src/checkers.js');
    const { effectiveDocument, renderEffective, YAML_OPTIONS } =
      await import('../src/config/effective.js');
    const c = await loadConfigFile(file, {});
    const text =
      what === 'print'
        ? renderEffective(c, CATALOG).text
        : yaml.stringify(effectiveDocument(c, CATALOG).document, YAML_OPTIONS);
    result = `${text.length} bytes`;
  } else if (what === 'js-yaml') {
    jsYaml.load(readFileSync(file, 'utf8'));
  } else {
    yaml.parse(readFileSync(file, 'utf8'));
  }
  const ms = performance.now() - start;
  const reading: Reading = { ms, rssMiB: process.resourceUsage().maxRSS / 1024, result };
  process.stdout.write(JSON.stringify(reading));
}

function run(what: string, file: string): Reading {
  const out = execFileSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', what, file],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(out) as Reading;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] ?? '', process.argv[4] ?? '');
  const dir = mkdtempSync(join(tmpdir(), 'bench-config-'));
  try {
    console.log(
      `# reading a config: median of ${ROUNDS} (a child process each), wall ms and peak RSS MiB`,
    );
    console.log(
      '| real servers | MB | fast (ms, MiB) | careful (ms, MiB) | careful/fast | js-yaml parse | yaml parse |',
    );
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const servers of [1_000, 10_000, 100_000]) {
      const fast = join(dir, `fast-${servers}.yaml`);
      const careful = join(dir, `careful-${servers}.yaml`);
      const text = configText(servers, false);
      writeFileSync(fast, text);
      writeFileSync(careful, configText(servers, true));
      const rows = {
        fast: [] as Reading[],
        careful: [] as Reading[],
        jsy: [] as Reading[],
        yaml: [] as Reading[],
      };
      // Interleaved, so a burst of load on the machine falls on every column alike.
      for (let r = 0; r < ROUNDS; r++) {
        rows.fast.push(run('load', fast));
        rows.careful.push(run('load', careful));
        rows.jsy.push(run('js-yaml', fast));
        rows.yaml.push(run('yaml', fast));
      }
      for (const r of [...rows.fast, ...rows.careful])
        if (r.result !== `${servers} servers`) throw new Error(`not read: ${r.result}`);
      const m = (k: keyof typeof rows, f: (r: Reading) => number): number => median(rows[k].map(f));
      const ms = (k: keyof typeof rows): number => m(k, (r) => r.ms);
      const rss = (k: keyof typeof rows): number => m(k, (r) => r.rssMiB);
      console.log(
        `| ${servers.toLocaleString('en')} | ${(text.length / 1e6).toFixed(1)} | ${ms('fast').toFixed(0)}, ${rss('fast').toFixed(0)} | ` +
          `${ms('careful').toFixed(0)}, ${rss('careful').toFixed(0)} | ${(ms('careful') / ms('fast')).toFixed(1)}x | ` +
          `${ms('jsy').toFixed(0)} | ${ms('yaml').toFixed(0)} |`,
      );
    }
    // check-config printing the effective config, beside the same written whole (as before).
    console.log(
      `\n# check-config printing the effective config: median of ${ROUNDS}, wall ms and peak RSS MiB (read included)`,
    );
    console.log('| real servers | a service at a time | whole (as before) | whole/this |');
    console.log('| ---: | ---: | ---: | ---: |');
    for (const servers of [10_000, 100_000]) {
      const file = join(dir, `print-${servers}.yaml`);
      writeFileSync(file, configText(servers, false));
      const parts: Reading[] = [];
      const whole: Reading[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        parts.push(run('print', file));
        whole.push(run('print-whole', file));
      }
      if (parts.some((p, i) => p.result !== whole[i]?.result))
        throw new Error(`not the same text: ${parts[0]?.result}, ${whole[0]?.result}`);
      const ms = (rs: Reading[]): number => median(rs.map((r) => r.ms));
      const rss = (rs: Reading[]): number => median(rs.map((r) => r.rssMiB));
      console.log(
        `| ${servers.toLocaleString('en')} | ${ms(parts).toFixed(0)}, ${rss(parts).toFixed(0)} | ` +
          `${ms(whole).toFixed(0)}, ${rss(whole).toFixed(0)} | ${(ms(whole) / ms(parts)).toFixed(2)}x |`,
      );
    }
    // 50 MB: past the 16 MiB a config may have; refused from its size, not its content.
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `virtual_services: []\n# ${'x'.repeat(50e6)}\n`);
    const refused = run('load', big);
    console.log(
      `\n# a 50 MB config: ${refused.ms.toFixed(0)} ms, peak RSS ${refused.rssMiB.toFixed(0)} MiB: ${refused.result}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
