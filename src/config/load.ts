// Reads a config file (YAML, or JSON, which YAML parses too) into a validated Config, or fails
// with every problem listed by path and line. Nothing here touches the kernel.
import { dirname, resolve } from 'node:path';
import { load as loadFast } from 'js-yaml';
import pLimit from 'p-limit';
import {
  LineCounter,
  isAlias,
  isCollection,
  isNode,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document,
  type Node,
} from 'yaml';
import { labelCollision } from '../ipvs/labels.js';
import type { CheckCatalog } from '../health/schema.js';
import { ALERT_FILE_KEYS, readAlerts, recipientProblems } from './alerts.js';
import { fileKeys } from './checks.js';
import type { ConfigFormat, Translation } from './foreign.js';
import { detectFormat, sourceOf } from './formats.js';
import { includeFiles } from './include.js';
import { translateKeepalived } from './keepalived.js';
import { translateLdirectord } from './ldirectord.js';
import { daemonSchema, readDaemonSettings } from './daemon.js';
import { withDataPath } from './datapath.js';
import {
  CONFIG_MAX_BYTES,
  Deadline,
  PEM_MAX_BYTES,
  READ_TIMEOUT_MS,
  filesReadOnDemand,
  readFileBounded,
  type ConfigFiles,
} from './files.js';
import type { Config, RealServerConfig } from './model.js';
import {
  checkKeys,
  formatPath,
  isObj,
  Problems,
  type Obj,
  type Path,
  type Problem,
} from './reader.js';
import { readVirtualServices } from './services.js';

const TOP_KEYS = ['daemon', 'defaults', 'virtual_services', 'alerts'];
/**
 * yaml's guard against alias bombs ("billion laughs"): an anchor's uses times the aliases within
 * it. Sharing settings is what `defaults:` and a virtual service's own settings are for, so a
 * config needs few aliases; 100 keeps a few hundred bytes from expanding into millions of nodes.
 */
const MAX_ALIAS_COUNT = 100;

export interface LocatedProblem extends Problem {
  /** 1-based line in the file, when the path reaches a node in it. */
  readonly line: number | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: readonly LocatedProblem[],
  ) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((x) => `  ${formatProblem(file, x)}`).join('\n'),
    );
  }
}

export function formatProblem(file: string, x: LocatedProblem): string {
  return `${file}${x.line ? `:${x.line}` : ''}: ${formatPath(x.path)}: ${x.message}`;
}

/** The deepest node of the document along `path` (a missing key points at its parent). */
function nodeAt(root: Node | null, path: Path): Node | null {
  let node = root;
  for (const part of path) {
    if (!isCollection(node)) break;
    const child: unknown = node.get(part, true);
    if (!isNode(child)) {
      // A key with no value (`port:`) still has a place: the key's own node.
      for (const item of node.items as unknown[]) {
        if (isPair(item) && isScalar(item.key) && item.key.value === part) {
          return item.key;
        }
      }
      break;
    }
    node = child;
  }
  return node;
}

/** The config path of `node`, from the ancestors yaml's visit hands over. */
function pathOf(ancestors: readonly unknown[], node: Node): Path {
  const chain = [...ancestors, node];
  const path: (string | number)[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isSeq(parent)) path.push(parent.items.indexOf(child));
    else if (isPair(parent) && child === parent.value)
      path.push(isScalar(parent.key) ? String(parent.key.value) : '?');
  }
  return path;
}

/**
 * The document as data. An alias yaml cannot resolve (no anchor before it), or aliases that
 * expand past MAX_ALIAS_COUNT, make yaml throw a bare ReferenceError; here each is a problem at
 * the alias, like any other mistake, and every unresolved alias is listed at once.
 */
function toData(
  doc: Document.Parsed,
  file: string,
  lineOf: (offset?: number) => number | undefined,
): unknown {
  const anchors = new Set<string>();
  const unresolved: LocatedProblem[] = [];
  let first: LocatedProblem | undefined;
  visit(doc, {
    Node(_key, node, ancestors) {
      if (isAlias(node)) {
        const at = { path: pathOf(ancestors, node), line: lineOf(node.range?.[0]) };
        first ??= { ...at, message: '' };
        if (!anchors.has(node.source)) {
          unresolved.push({
            ...at,
            message: `alias *${node.source} refers to no anchor &${node.source} before it`,
          });
        }
      } else if (node.anchor) anchors.add(node.anchor);
    },
  });
  if (unresolved.length > 0) throw new ConfigError(file, unresolved);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (!first) throw e;
    throw new ConfigError(file, [
      {
        ...first,
        message:
          `aliases expand too far (more than ${MAX_ALIAS_COUNT} by yaml's count), as in an alias ` +
          'bomb: share settings through defaults: or a virtual service instead',
      },
    ]);
  }
}

/**
 * A metrics_labels subset that gives two real servers one series (say remote_address alone, for
 * two ports of one address) is refused: gauges would overwrite each other, counters add up.
 */
export function metricsLabelsProblem(config: Config, env: NodeJS.ProcessEnv): Problem | null {
  const { metricsPerServer, metricsLabels } = config.daemon;
  if (!metricsPerServer) return null;
  const servers = config.virtualServices.flatMap((vs, i) =>
    vs.realServers.map((rs, j) => ({
      service: vs.name,
      serviceKey: vs.service.key,
      destination: rs.destination.key,
      rs,
      i,
      j,
    })),
  );
  const clash = labelCollision(servers, metricsLabels);
  if (!clash) return null;
  const name = (s: { rs: RealServerConfig; i: number; j: number }): string =>
    `${s.rs.name} (virtual_services[${s.i}].real_servers[${s.j}])`;
  const fix = clash.add.length
    ? `add ${clash.add.join(' or ')}`
    : 'give the virtual services different names';
  const envName = daemonSchema().find((k) => k.key === 'metrics_labels')?.env ?? '';
  const fromEnv = env[envName] !== undefined ? ` (from ${envName})` : '';
  return {
    path: ['daemon', 'metrics_labels'],
    message:
      `"${metricsLabels.join(',')}" gives real servers ${name(clash.first)} and ${name(clash.second)} ` +
      `of "${clash.first.service}" one series (gauges would overwrite, counters add up): ${fix}${fromEnv}`,
  };
}

/**
 * The most a config may hold, checked before validation, so a config that is far too big is
 * refused in a moment and not after minutes of work and memory (1.17 million real servers ran
 * Node out of memory after 190 s). Every service and real server is an entry in the table each
 * tick reads (a dump request per service), and every check a timer and a socket: 100,000 real
 * servers is ten times the largest table measured (the benchmarks' 100 x 100; parsing and
 * validating 100,000 takes about 2 s and 300 MB on a 2-core host: bench:config), 10,000 services
 * a hundred times.
 */
export const LIMITS = { services: 10_000, realServers: 100_000, checks: 200_000 } as const;

/** Problems of a config too big to validate, counted in the raw data (aliases expanded). */
function sizeProblems(raw: Obj): Problem[] {
  const length = (x: unknown): number => (Array.isArray(x) ? x.length : 0);
  const services = Array.isArray(raw.virtual_services) ? (raw.virtual_services as unknown[]) : [];
  let servers = 0;
  let checks = isObj(raw.defaults) ? length(raw.defaults.checks) : 0;
  for (const vs of services) {
    if (!isObj(vs)) continue;
    checks += length(vs.checks);
    const list = Array.isArray(vs.real_servers) ? (vs.real_servers as unknown[]) : [];
    servers += list.length;
    for (const rs of list) if (isObj(rs)) checks += length(rs.checks);
  }
  const out: Problem[] = [];
  const over = (n: number, max: number, what: string): void => {
    if (n > max)
      out.push({
        path: ['virtual_services'],
        message: `${n.toLocaleString('en')} ${what}, more than the ${max.toLocaleString('en')} a config may have`,
      });
  };
  over(services.length, LIMITS.services, 'virtual services');
  over(servers, LIMITS.realServers, 'real servers in all');
  over(checks, LIMITS.checks, 'checks written');
  return out;
}

/** Checks the daemon would run: each real server's, inherited ones counted for each server. */
function checksProblem(config: Config): Problem | null {
  let n = 0;
  for (const vs of config.virtualServices) for (const rs of vs.realServers) n += rs.checks.length;
  if (n <= LIMITS.checks) return null;
  return {
    path: ['virtual_services'],
    message: `${n.toLocaleString('en')} checks to run (each real server's, inherited ones included), more than the ${LIMITS.checks.toLocaleString('en')} a config may have`,
  };
}

/** A YAML document as data, with the line of each path for messages. */
interface Parsed {
  readonly raw: unknown;
  readonly lineAt: (path: Path) => number | undefined;
}

/**
 * A token that only the careful parser reads as we mean it: a tag (`!`), an anchor (`&`), an
 * alias (`*`), a directive (`%`), a complex key (`? `) or a null key (js-yaml names it "null", yaml
 * ""). Plain scalars, quoting, block scalars
 * and flow collections read alike in both parsers (test/config/yaml-fast.test.ts holds them to
 * it); a match inside a string merely takes the careful path.
 */
const CAREFUL =
  /(?:^|[\s[{,])[!&*]|^%|(?:^|[\s[{,])\?(?:\s|$)|(?:^|[-{,])\s*(?:~|null|Null|NULL)?\s*:(?:\s|$)/m;

/**
 * The data of a config that needs none of what CAREFUL names, or undefined. js-yaml reads 100,000
 * real servers about ten times as fast as yaml builds its document (bench/config.ts), but keeps no
 * places for messages: those, and every error, come from yaml's own reading, only when asked for.
 */
export function fastData(text: string): unknown {
  if (CAREFUL.test(text)) return undefined;
  try {
    return loadFast(text, { maxAliases: 0 });
  } catch {
    return undefined; // empty, several documents, a duplicate key...: yaml says it its way
  }
}

function parseYaml(text: string, file: string): Parsed {
  const raw = fastData(text);
  if (raw !== undefined) {
    let careful: Parsed | undefined;
    return { raw, lineAt: (path) => (careful ??= parseCarefully(text, file)).lineAt(path) };
  }
  return parseCarefully(text, file);
}

function parseCarefully(text: string, file: string): Parsed {
  const lineCounter = new LineCounter();
  // logLevel error: yaml's warnings (a collection used as a key) would go to stderr beside the
  // problems; such a key is stringified, and an unknown key is a problem of its own.
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    logLevel: 'error',
  });
  const lineOf = (offset?: number): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: [],
        message: `not valid YAML: ${e.message.split('\n')[0] ?? e.code}`,
        line: lineOf(e.pos[0]),
      })),
    );
  }
  return {
    raw: toData(doc, file, lineOf),
    lineAt: (path) => lineOf(nodeAt(doc.contents, path)?.range?.[0]),
  };
}

function validate(
  parsed: Parsed,
  file: string,
  env: NodeJS.ProcessEnv,
  files: ConfigFiles,
  catalog: CheckCatalog,
): Config {
  const { raw } = parsed;
  const p = new Problems();
  const daemonProblems: Problem[] = [];
  let config: Config | undefined;
  const located = (list: readonly Problem[]): LocatedProblem[] =>
    list.map((x) => ({ ...x, line: parsed.lineAt(x.path) }));
  if (!isObj(raw)) {
    p.add([], 'must be a mapping with virtual_services (and optionally daemon, defaults)');
  } else {
    const tooBig = sizeProblems(raw);
    if (tooBig.length > 0) throw new ConfigError(file, located(tooBig));
    checkKeys(raw, TOP_KEYS, [], p);
    const daemon = readDaemonSettings(raw.daemon, env, daemonProblems);
    const services = readVirtualServices(raw.defaults, raw.virtual_services, p, {
      catalog,
      files,
      env,
    });
    const alerts = readAlerts(raw.alerts, p, { catalog, files, env });
    recipientProblems(raw.alerts, raw.virtual_services, p);
    if (daemon)
      config = {
        daemon,
        virtualServices: withDataPath(services, daemon.dataPathMarks),
        ...(alerts ? { alerts } : {}),
      };
  }
  const all = [...daemonProblems, ...p.list];
  // Judged on the services that are valid, whatever else is wrong: a clash between two of them
  // is a mistake of its own.
  if (config) {
    const clash = metricsLabelsProblem(config, env);
    if (clash) all.push(clash);
    const checks = checksProblem(config);
    if (checks) all.push(checks);
  }
  if (all.length > 0 || !config) throw new ConfigError(file, located(all));
  return config;
}

/**
 * Parses and validates config text; `file` names it in messages, relative paths resolve from
 * it. The files it names are read through `files` (by default on demand: bounded, but
 * synchronous; the daemon's loader, loadConfigFile, reads them ahead instead).
 */
export function parseConfigWith(
  catalog: CheckCatalog,
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  files: ConfigFiles = filesReadOnDemand(dirname(resolve(file))),
): Config {
  return validate(parseYaml(text, file), file, env, files, catalog);
}

function unreadable(file: string, problem: string): ConfigError {
  return new ConfigError(file, [{ path: [], message: `cannot read: ${problem}`, line: undefined }]);
}

const CONFIG_WHAT = 'a config may be';
const PEM_WHAT = 'a PEM file may be';

/** Every file a TLS or secret setting names, resolved; each once, however often it is named. */
function namedFiles(raw: unknown, baseDir: string, keys: readonly string[]): string[] {
  const found = new Set<string>();
  const seen = new Set<object>();
  const walk = (x: unknown): void => {
    if (typeof x !== 'object' || x === null || seen.has(x)) return;
    seen.add(x);
    if (Array.isArray(x)) {
      for (const item of x as unknown[]) walk(item);
      return;
    }
    for (const [k, v] of Object.entries(x as Obj)) {
      if (keys.includes(k) && typeof v === 'string') found.add(resolve(baseDir, v));
      else walk(v);
    }
  };
  walk(raw);
  return [...found];
}

export interface LoadOptions {
  /** How long the reads may take in all (default READ_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** The file's format; by default recognised from its name and content (formats.ts). */
  readonly format?: ConfigFormat;
}

/** A config file's text, read bounded under the loader's deadline (for convert). */
export async function readConfigText(file: string): Promise<string> {
  const deadline = new Deadline(READ_TIMEOUT_MS);
  try {
    const read = await readFileBounded(file, CONFIG_MAX_BYTES, CONFIG_WHAT, deadline);
    if ('problem' in read) throw unreadable(file, read.problem);
    return read.text;
  } finally {
    deadline.clear();
  }
}

/** What another daemon's file was translated into, and its problems, by source line. */
export function translated(
  format: Exclude<ConfigFormat, 'yaml'>,
  text: string,
  file: string,
): Translation {
  const t =
    format === 'ldirectord'
      ? translateLdirectord(text, file)
      : translateKeepalived(text, file, includeFiles);
  if (t.problems.length > 0)
    throw new ConfigError(
      file,
      t.problems.map((x) => ({
        path: [],
        message: `${x.file && x.file !== file ? `${x.file}:${x.line}: ` : ''}${x.directive}: ${x.message}`,
        line: x.file && x.file !== file ? undefined : x.line,
      })),
    );
  return t;
}

/** A translation as the native reader's input: a native problem points at the source line. */
function parsedFrom(t: Translation, file: string): Parsed {
  return {
    raw: t.raw,
    lineAt: (path) => {
      const source = sourceOf(t, path);
      return source && (source.file === undefined || source.file === file)
        ? source.line
        : undefined;
    },
  };
}

/**
 * Reads and validates a config file without blocking the event loop on a read: the config and
 * every PEM file it names are read off the loop, bounded, under one deadline, then validated.
 * What the daemon's start and reload, and check-config, use.
 */
export async function loadConfigFileWith(
  catalog: CheckCatalog,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): Promise<Config> {
  const deadline = new Deadline(options.timeoutMs ?? READ_TIMEOUT_MS);
  try {
    const read = await readFileBounded(file, CONFIG_MAX_BYTES, CONFIG_WHAT, deadline);
    if ('problem' in read) throw unreadable(file, read.problem);
    const format = options.format ?? detectFormat(file, read.text);
    const parsed =
      format === 'yaml'
        ? parseYaml(read.text, file)
        : parsedFrom(translated(format, read.text, file), file);
    const baseDir = dirname(resolve(file));
    // A few at a time: each read holds a buffer and a thread of the pool.
    const limit = pLimit(4);
    const pems = await Promise.all(
      namedFiles(parsed.raw, baseDir, [...fileKeys(catalog), ...ALERT_FILE_KEYS]).map((path) =>
        limit(
          async () =>
            [path, await readFileBounded(path, PEM_MAX_BYTES, PEM_WHAT, deadline)] as const,
        ),
      ),
    );
    return validate(parsed, file, env, filesReadOnDemand(baseDir, new Map(pems)), catalog);
  } finally {
    deadline.clear();
  }
}
