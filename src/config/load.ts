// Reads a config file (YAML, or JSON, which YAML parses too) into a validated Config, or fails
// with every problem listed by path and line. Nothing here touches the kernel.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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
import { daemonSchema, readDaemonSettings } from './daemon.js';
import type { Config, RealServerConfig } from './model.js';
import { checkKeys, formatPath, isObj, Problems, type Path, type Problem } from './reader.js';
import { readVirtualServices } from './services.js';

const TOP_KEYS = ['daemon', 'defaults', 'virtual_services'];
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
      where: `virtual_services[${i}].real_servers[${j}]`,
    })),
  );
  const clash = labelCollision(servers, metricsLabels);
  if (!clash) return null;
  const name = (s: { rs: RealServerConfig; where: string }): string => `${s.rs.name} (${s.where})`;
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

/** Parses and validates config text; `file` names it in messages, relative paths resolve from it. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
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
  const raw = toData(doc, file, lineOf);
  const p = new Problems();
  const daemonProblems: Problem[] = [];
  let config: Config | undefined;
  if (!isObj(raw)) {
    p.add([], 'must be a mapping with virtual_services (and optionally daemon, defaults)');
  } else {
    checkKeys(raw, TOP_KEYS, [], p);
    const daemon = readDaemonSettings(raw.daemon, env, daemonProblems);
    const services = readVirtualServices(
      raw.defaults,
      raw.virtual_services,
      p,
      dirname(resolve(file)),
    );
    if (daemon) config = { daemon, virtualServices: services };
  }
  const all = [...daemonProblems, ...p.list];
  // Judged on the services that are valid, whatever else is wrong: a clash between two of them
  // is a mistake of its own.
  if (config) {
    const clash = metricsLabelsProblem(config, env);
    if (clash) all.push(clash);
  }
  if (all.length > 0 || !config) {
    throw new ConfigError(
      file,
      all.map((x) => ({ ...x, line: lineOf(nodeAt(doc.contents, x.path)?.range?.[0]) })),
    );
  }
  return config;
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [
      {
        path: [],
        message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        line: undefined,
      },
    ]);
  }
  return parseConfig(text, file, env);
}
