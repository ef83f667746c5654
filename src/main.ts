#!/usr/bin/env node
// ipvs-warden's command line: the composition root, the only module that picks implementations.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { DaemonSignals } from './cli/signals.js';
import type { ConfigFormat } from './config/foreign.js';
import type { IpvsBackend } from './ipvs/backend.js';
import { heapModes, setV8Flags } from './v8-flags.js';

// Signals first: until a handler is in place, SIGHUP or SIGTERM ends the process, and loading the
// rest takes some tenths of a second. So the rest is loaded after (and commands other than `run`
// let go of them at once).
const signals = new DaemonSignals();
// Before the config is read and checking starts: V8's allocation decisions from then on follow.
setV8Flags();
// `role` is keepalived's notify script, run on each VRRP transition: it loads only its own
// module. It exits here, before the rest loads (stdout and stderr to a pipe or a file are
// written synchronously on Linux, so nothing is lost).
if (process.argv[2] === 'role') {
  signals.release();
  const { roleCommand } = await import('./cli/role.js');
  process.exit(await roleCommand(process.argv.slice(3)));
}
const { CATALOG, loadConfigFile } = await import('./checkers.js');
const { ProbeUsageError, buildProbe, parseTarget, probeKindHelp, probeUsage } =
  await import('./cli/probe.js');
const { runDaemon } = await import('./cli/run.js');
const { formatTable, tableJson } = await import('./cli/table.js');
const { renderEffective } = await import('./config/effective.js');
const { ConfigError, readConfigText, translated } = await import('./config/load.js');
const { FORMATS, convertText, detectFormat } = await import('./config/formats.js');
const { demoTable } = await import('./demo.js');
const { IpvsError } = await import('./ipvs/errors.js');
const { MemoryBackend } = await import('./ipvs/memory.js');
const { NetlinkBackend } = await import('./ipvs/netlink/backend.js');
const { PidFileError, signalReload } = await import('./cli/pidfile.js');
const { STATUS_TIMEOUT_MS, StatusError, readStatus, statusText } = await import('./cli/status.js');
const { REALSERVER_USAGE, RealServerUsageError, realServer } = await import('./cli/realserver.js');
const { DIRECTOR_USAGE, DirectorUsageError, director } = await import('./cli/director.js');
const { ROLE_USAGE } = await import('./cli/role.js');

const USAGE = `Usage: ipvs-warden <command> [options]

Commands:
  run --config FILE [--dry-run]
                             Run the daemon: probe the real servers, keep the table in step
  run --demo                 The same on an embedded demo (in-memory table, local servers)
  convert FILE [--format ldirectord|keepalived]
                             Print an ldirectord.cf or keepalived.conf as ipvs-warden's own
                             config, with a comment wherever the meaning shifts
  check-config --config FILE [--show-secrets] [--quiet]
                             Validate a config and print it with every default filled in
                             (secret values as <redacted> unless --show-secrets); --quiet:
                             only the verdict line (the systemd unit's ExecStartPre)
  reload --config FILE [--pid PID] [--timeout MS]
                             Validate the config, then make the running daemon reload it
                             (SIGHUP to --pid, or to the pid in daemon.pid_file, once that
                             process shows it is the daemon and takes SIGHUP; waits up to
                             --timeout, default 5000)
  status [--url URL | --config FILE] [--json] [--timeout MS]
                             What the running daemon sees: services, servers, weights, events
                             (from its /status; default http://127.0.0.1:9476; gives up after
                             --timeout, default 5000, or past 16 MiB)
  table [--json] [--exact]   Show the kernel IPVS table (like ipvsadm -Ln --stats)
  probe KIND TARGET [...]    Run one health check once (see below)
${REALSERVER_USAGE}
${DIRECTOR_USAGE}
${ROLE_USAGE}
  help                       Show this help

Options:
  --backend netlink|memory   Where the table lives (default: netlink, the kernel)
  --demo                     With --backend memory: start from a small example table
  --format yaml|ldirectord|keepalived
                             The config file's format (default: recognised from its name
                             and content); run and check-config take ldirectord.cf and
                             keepalived.conf as they are
  --version                  Print the version

${probeUsage(CATALOG)}
`;

async function openBackend(kind: string, demo: boolean): Promise<IpvsBackend> {
  if (kind === 'memory') {
    // The modules the in-memory kernel has: to see how a config fares on a kernel without one.
    const modules = process.env.WARDEN_MEMORY_SCHEDULERS;
    const backend = new MemoryBackend(
      modules ? { schedulers: modules.split(',').map((m) => m.trim()) } : {},
    );
    if (demo) {
      for (const r of await backend.apply(demoTable())) if (r.error) throw r.error;
    }
    return backend;
  }
  if (kind === 'netlink') return NetlinkBackend.open();
  throw new UsageError(`--backend must be netlink or memory, got "${kind}"`);
}

class UsageError extends Error {}

/** --format: the config file's format, when its name and content do not say. */
function formatOption(text: string | undefined): { format?: ConfigFormat } {
  if (text === undefined) return {};
  if (!(FORMATS as readonly string[]).includes(text))
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${text}"`);
  return { format: text as ConfigFormat };
}

/** --timeout for reload and status: milliseconds, as for probe. */
function msOption(text: string | undefined, fallback: number): number {
  const ms = Number(text ?? fallback);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new UsageError(`--timeout must be milliseconds > 0, got "${text}"`);
  }
  return ms;
}

/** `probe KIND TARGET ...`: its flags are the kind's own (src/cli/probe.ts). */
async function probe(argv: string[]): Promise<number> {
  const [kind, target, ...rest] = argv;
  const help = argv.includes('--help') || argv.includes('-h');
  if (kind && help && CATALOG.get(kind)) {
    process.stdout.write(probeKindHelp(CATALOG.get(kind) as Parameters<typeof probeKindHelp>[0]));
    return 0;
  }
  if (!kind || !target) throw new UsageError('probe needs KIND and TARGET');
  const { checker, timeoutMs } = buildProbe(CATALOG, kind, rest);
  const result = await checker.check(parseTarget(target), {
    signal: new AbortController().signal,
    timeoutMs,
  });
  await checker.close?.();
  // A local error says nothing about the target: UNKNOWN, exit 3, as monitoring plugins do.
  const verdict = result.healthy ? 'healthy' : result.local ? 'UNKNOWN' : 'UNHEALTHY';
  process.stdout.write(`${verdict} in ${result.durationMs} ms: ${result.message}\n`);
  return result.healthy ? 0 : result.local ? 3 : 1;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'probe') {
    signals.release();
    return probe(argv.slice(1));
  }
  if (argv[0] === 'realserver') {
    signals.release();
    return realServer(argv.slice(1), process.stdout);
  }
  if (argv[0] === 'director') {
    signals.release();
    return director(argv.slice(1), {
      stdout: process.stdout,
      env: process.env,
      stateDirOf: async (file) => (await loadConfigFile(file, process.env)).daemon.stateDir,
    });
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      exact: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'netlink' },
      demo: { type: 'boolean', default: false },
      config: { type: 'string' },
      format: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'show-secrets': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      pid: { type: 'string' },
      url: { type: 'string' },
      version: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      timeout: { type: 'string' },
    },
  });
  if (positionals[0] !== 'run' || values.version) signals.release();
  if (values.version) {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    process.stdout.write(`ipvs-warden ${pkg.version}\n`);
    return 0;
  }
  const [command = 'help'] = positionals;
  switch (command) {
    case 'table': {
      const backend = await openBackend(values.backend, values.demo);
      try {
        const [info, table, daemons] = await Promise.all([
          backend.info(),
          backend.table(),
          // The table is the point; a kernel that cannot list sync daemons only omits them.
          backend.syncDaemons().catch(() => []),
        ]);
        process.stdout.write(
          values.json
            ? tableJson(info, table, daemons)
            : formatTable(info, table, { exact: values.exact, daemons }),
        );
      } finally {
        await backend.close();
      }
      return 0;
    }
    case 'run':
      if (!values.config && !values.demo)
        throw new UsageError('run needs --config FILE (or --demo)');
      return runDaemon({
        configFile: values.config,
        ...formatOption(values.format),
        demo: values.demo,
        dryRun: values['dry-run'],
        env: process.env,
        openBackend: (kind) => openBackend(kind, false),
        signals,
        stdout: process.stdout,
        stderr: process.stderr,
        heap: heapModes(),
      });
    case 'check-config':
    case 'reload': {
      if (!values.config) throw new UsageError(`${command} needs --config FILE`);
      let config;
      try {
        config = await loadConfigFile(values.config, process.env, formatOption(values.format));
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        process.stderr.write(`${e.message}\n`);
        return 1;
      }
      if (command === 'check-config') {
        // The verdict alone: systemd's ExecStartPre. Printing the effective config of 100,000
        // real servers took 22 of the 25 s check-config took, and all of it went to the journal.
        if (values.quiet) {
          process.stdout.write(`# ${values.config}: valid\n`);
          return 0;
        }
        // Redacted by default: whoever runs it without --quiet may send it to a log.
        const { text, hidden } = renderEffective(config, CATALOG, {
          showSecrets: values['show-secrets'],
        });
        const note = hidden ? '# secret values are hidden; --show-secrets prints them\n' : '';
        process.stdout.write(`# ${values.config}: valid\n${note}${text}`);
        return 0;
      }
      const pid = Number(values.pid);
      if (values.pid !== undefined ? !Number.isInteger(pid) || pid <= 0 : !config.daemon.pidFile) {
        throw new UsageError(
          'reload needs --pid PID, or daemon.pid_file in the config naming a running daemon',
        );
      }
      const target = values.pid !== undefined ? { pid } : { pidFile: config.daemon.pidFile };
      const signalled = await signalReload(target, msOption(values.timeout, 5000));
      process.stdout.write(`config valid; asked process ${signalled} to reload it\n`);
      return 0;
    }
    case 'status': {
      let url = values.url;
      if (!url) {
        const listen = values.config
          ? (await loadConfigFile(values.config, process.env, formatOption(values.format))).daemon
              .listen
          : '127.0.0.1:9476';
        if (!listen) throw new UsageError('daemon.listen is off in that config: no status to read');
        url = `http://${listen.startsWith(':') ? `127.0.0.1${listen}` : listen}`;
      }
      const timeoutMs = msOption(values.timeout, STATUS_TIMEOUT_MS);
      const status = await readStatus(url, { timeoutMs });
      process.stdout.write(statusText(status, values.json, url));
      return status.ready ? 0 : 1;
    }
    case 'convert': {
      const file = positionals[1] ?? values.config;
      if (!file) throw new UsageError('convert needs FILE (an ldirectord.cf or keepalived.conf)');
      const text = await readConfigText(file);
      const format = formatOption(values.format).format ?? detectFormat(file, text);
      if (format === 'yaml') throw new UsageError(`${file} is already ipvs-warden's own format`);
      let out: string;
      try {
        // The native reader judges it too: convert prints only what check-config would pass.
        const t = translated(format, text, file);
        await loadConfigFile(file, process.env, { format });
        out = convertText(t, format, file);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        process.stderr.write(`${e.message}\n`);
        return 1;
      }
      process.stdout.write(out);
      return 0;
    }
    case 'help':
      process.stdout.write(USAGE);
      return values.help || positionals.length > 0 ? 0 : 2;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof IpvsError || err instanceof PidFileError || err instanceof StatusError) {
      process.stderr.write(`ipvs-warden: ${err.message}\n`);
    } else if (err instanceof ConfigError) {
      // A config's problems are the operator's to fix, never a trace (status --config).
      process.stderr.write(`${err.message}\n`);
    } else if (
      err instanceof UsageError ||
      err instanceof ProbeUsageError ||
      err instanceof RealServerUsageError ||
      err instanceof DirectorUsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`ipvs-warden: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(
        `ipvs-warden: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
    process.exitCode = 1;
  },
);
