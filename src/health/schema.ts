// A check as one declaration: its kind, its options (each with a type, a default, a doc line
// and whether it is secret), and how to make its probe. Everything else is derived from it:
// the config's validation and the check-config output (src/config/checks.ts), the `probe`
// command's flags (src/cli/probe.ts), the README's option tables (a test holds them), the merge
// key and the secrecy table. A leaf beside options.ts: a check file imports this to declare
// itself; the config reads declarations handed to it and never imports a probe.
import { createHmac, randomBytes } from 'node:crypto';
import { canonical, checkKey } from './canonical.js';
import type { Checker } from './checker.js';
import type { Secrecy, SecrecyTable, TlsOptions } from './options.js';
import { TLS_SECRECY } from './options.js';

/** Reports a problem with a value, optionally at a part of it (a header's name, a list index). */
export type Report = (problem: string, ...at: readonly (string | number)[]) => void;

interface OptionBase<T> {
  readonly doc: string;
  /** Filled in when the option is not given (and shown as such in check-config and the README). */
  readonly default?: T;
  /** The check cannot run without it. */
  readonly required?: boolean;
  /** How check-config, logs and the status API show it (default public). */
  readonly secrecy?: Secrecy | SecrecyTable;
  /**
   * A valid value other than the default, when the type's own sample would not do (a status set):
   * the tests use it to show that every option is part of the merge key.
   */
  readonly example?: T;
  /** The config key; default: the option's name in snake_case (bindAddress -> bind_address). */
  readonly key?: string;
  /** The `probe` flag; default: the name in kebab-case. null: not offered on the command line. */
  readonly flag?: string | null;
  /** Rules the type cannot say (a status set, a header name): reports each problem. Pure. */
  readonly check?: (value: T, report: Report) => void;
  /** The value as the probe wants it, once valid (a method in capitals). Pure. */
  readonly normalise?: (value: T) => T;
}

export interface TextOption extends OptionBase<string> {
  readonly type: 'text';
  /** Exactly one of these (compared in capitals when `upper`). */
  readonly values?: readonly string[];
  readonly upper?: boolean;
}
export interface IntOption extends OptionBase<number> {
  readonly type: 'int';
  readonly min: number;
  readonly max: number;
}
/** An IP address (IPv4 or IPv6), canonical: a source to bind. */
export interface AddressOption extends OptionBase<string> {
  readonly type: 'address';
}
export interface BoolOption extends OptionBase<boolean> {
  readonly type: 'bool';
}
/** A regular expression: a pattern, or {pattern, flags} with flags from i, m, s, u. */
export interface RegexOption extends OptionBase<RegExp> {
  readonly type: 'regex';
}
/** A list of text (a single value is a list of one); each one of `values` when given. */
export interface ListOption extends OptionBase<readonly string[]> {
  readonly type: 'list';
  readonly values?: readonly string[];
  readonly upper?: boolean;
  /** Refuse a single value where a list is wanted (exec's command: a string is not a command line). */
  readonly listOnly?: boolean;
  /** At least this many items (exec's command: 1). */
  readonly minItems?: number;
  /** On the command line: the words after `--` (exec's command). */
  readonly rest?: boolean;
}
/** Names to text (headers, environment); on the command line `--flag NAME<sep>VALUE`, repeatable. */
export interface MapOption extends OptionBase<Readonly<Record<string, string>>> {
  readonly type: 'map';
  readonly sep: ':' | '=';
}
/**
 * TLS settings: `true`, or {sni, verify, ca_file, cert_file, key_file}. The config reads and
 * checks the files; the options carry their content. One per check at most.
 */
export interface TlsOption extends OptionBase<TlsOptions> {
  readonly type: 'tls';
  /** On unless `tls: false` (https, pop3s): the default is `{verify: true}`. */
  readonly on?: boolean;
}
/**
 * A credential: given as `KEY` (literal), `KEY_file` (a file, first line) or `KEY_env` (an
 * environment variable). The options carry the value; check-config names the file or variable,
 * never the value; a literal is shown as <redacted>.
 */
export interface SecretOption extends OptionBase<string> {
  readonly type: 'secret';
}

export type OptionSpec =
  | TextOption
  | AddressOption
  | IntOption
  | BoolOption
  | RegexOption
  | ListOption
  | MapOption
  | TlsOption
  | SecretOption;

export type Schema = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends { readonly type: 'text' }
  ? S extends { readonly values: readonly (infer V)[] }
    ? V
    : string
  : S extends { readonly type: 'address' }
    ? string
    : S extends { readonly type: 'int' }
      ? number
      : S extends { readonly type: 'bool' }
        ? boolean
        : S extends { readonly type: 'regex' }
          ? RegExp
          : S extends { readonly type: 'list' }
            ? S extends { readonly values: readonly (infer V)[] }
              ? readonly V[]
              : readonly string[]
            : S extends { readonly type: 'map' }
              ? Readonly<Record<string, string>>
              : S extends { readonly type: 'tls' }
                ? TlsOptions
                : S extends { readonly type: 'secret' }
                  ? string
                  : never;

type RequiredKeys<S extends Schema> = {
  [K in keyof S]: S[K] extends { readonly required: true } ? K : never;
}[keyof S];
type PresentKeys<S extends Schema> = {
  [K in keyof S]: S[K] extends { readonly required: true }
    ? K
    : S[K] extends { readonly default: unknown }
      ? K
      : S[K] extends { readonly on: true }
        ? K
        : never;
}[keyof S];

/** A check's options as given (from the config or the command line, or a test). */
export type OptionsOf<S extends Schema> = {
  readonly [K in RequiredKeys<S>]: ValueOf<S[K]>;
} & { readonly [K in Exclude<keyof S, RequiredKeys<S>>]?: ValueOf<S[K]> };

/** With every default filled in: what the probe reads, and what the merge key is made of. */
export type NormalOf<S extends Schema> = {
  readonly [K in PresentKeys<S>]: ValueOf<S[K]>;
} & { readonly [K in Exclude<keyof S, PresentKeys<S>>]?: ValueOf<S[K]> };

// Builders: each keeps its literal type (`values`, `default`, `required`), so OptionsOf knows
// which options a probe may rely on.
export const opt = {
  text: <const O extends Omit<TextOption, 'type'>>(o: O) => ({ type: 'text', ...o }) as const,
  address: <const O extends Omit<AddressOption, 'type'>>(o: O) =>
    ({ type: 'address', ...o }) as const,
  int: <const O extends Omit<IntOption, 'type'>>(o: O) => ({ type: 'int', ...o }) as const,
  bool: <const O extends Omit<BoolOption, 'type'>>(o: O) => ({ type: 'bool', ...o }) as const,
  regex: <const O extends Omit<RegexOption, 'type'>>(o: O) => ({ type: 'regex', ...o }) as const,
  list: <const O extends Omit<ListOption, 'type'>>(o: O) => ({ type: 'list', ...o }) as const,
  map: <const O extends Omit<MapOption, 'type'>>(o: O) => ({ type: 'map', ...o }) as const,
  tls: <const O extends Omit<TlsOption, 'type'>>(o: O) =>
    ({ type: 'tls', secrecy: TLS_SECRECY, ...o }) as const,
  secret: <const O extends Omit<SecretOption, 'type' | 'secrecy'>>(o: O) =>
    ({ type: 'secret', secrecy: 'secret', ...o }) as const,
};

/** One check kind, declared. */
export interface CheckDeclaration<S extends Schema = Schema> {
  /** The config's `type` and the probe command's KIND: "smtp". */
  readonly kind: string;
  /** One line for the README and the probe usage: what it does and when it is healthy. */
  readonly summary: string;
  readonly options: S;
  /** The check needs no port (ping; exec, whose {port} is then 0): a portless server may use it. */
  readonly portless?: boolean;
  /** Rules between options ("expect or expect_regex, not both"): each problem at its option. */
  readonly validate?: (
    options: OptionsOf<S>,
    report: (option: keyof S & string, problem: string) => void,
  ) => void;
  /** The probe. */
  readonly create: (options: OptionsOf<S>) => Checker;
}

/** Declares a check; the type parameter is inferred from the options. */
export function defineCheck<const S extends Schema>(d: CheckDeclaration<S>): CheckDeclaration<S> {
  return d;
}

/** A declaration of any kind, as the catalog holds it (its options typed only by its schema). */
export interface AnyCheckDeclaration {
  readonly kind: string;
  readonly summary: string;
  readonly options: Schema;
  readonly portless?: boolean;
  readonly validate?: (options: never, report: (option: string, problem: string) => void) => void;
  readonly create: (options: never) => Checker;
}

/** The checks the daemon knows: handed to the config and the CLI by the composition root. */
export interface CheckCatalog {
  readonly kinds: readonly string[];
  get(kind: string): AnyCheckDeclaration | undefined;
}

export function catalogOf(declarations: readonly AnyCheckDeclaration[]): CheckCatalog {
  const byKind = new Map<string, AnyCheckDeclaration>();
  for (const d of declarations) {
    if (byKind.has(d.kind)) throw new Error(`check kind ${d.kind} is declared twice`);
    byKind.set(d.kind, d);
  }
  return { kinds: [...byKind.keys()], get: (kind) => byKind.get(kind) };
}

/** The probe of a check the catalog declares; an unknown kind throws (the config refuses one first). */
export function createWith(
  catalog: CheckCatalog,
  check: { readonly type: string; readonly options: Readonly<Record<string, unknown>> },
): Checker {
  const declaration = catalog.get(check.type);
  if (!declaration) throw new Error(`no check of kind ${check.type}`);
  return declaration.create(check.options as never);
}

/** The options with every default filled in (and each option's normaliser applied). */
export function normalOptions<S extends Schema>(schema: S, options: OptionsOf<S>): NormalOf<S> {
  const out: Record<string, unknown> = {};
  const given = options as Readonly<Record<string, unknown>>;
  for (const [name, spec] of Object.entries(schema)) {
    let value = given[name];
    if (value === undefined)
      value = spec.default ?? (spec.type === 'tls' && spec.on ? {} : undefined);
    if (value === undefined) continue;
    if (spec.type === 'tls')
      value = { ...(value as TlsOptions), verify: (value as TlsOptions).verify ?? true };
    if (spec.normalise) value = (spec.normalise as (v: unknown) => unknown)(value);
    out[name] = value;
  }
  return out as NormalOf<S>;
}

/**
 * Secrets stand in a key as a keyed digest: equal secrets give equal keys (identical checks
 * still merge), but the key, and the run id and `check_id` label digested from it, never hold
 * a password a weak guess could be tested against. The digest key is this process's own, so a
 * check with a secret gets a new `check_id` at each start; a check without one keeps its id.
 */
const KEY_SALT = randomBytes(32);
const sealed = (value: unknown): string =>
  `sealed:${createHmac('sha256', KEY_SALT).update(canonical(value)).digest('hex')}`;

function forKey(value: unknown, secrecy: Secrecy | SecrecyTable): unknown {
  if (value === undefined || secrecy === 'public') return value;
  if (typeof secrecy === 'object') {
    const table = value as Readonly<Record<string, unknown>>;
    return Object.fromEntries(
      Object.entries(table).map(([k, v]) => [k, forKey(v, secrecy[k] ?? 'secret')]),
    );
  }
  if (secrecy === 'values')
    return Object.fromEntries(
      Object.entries(value as Readonly<Record<string, unknown>>).map(([k, v]) => [k, sealed(v)]),
    );
  if (secrecy === 'query' && typeof value === 'string') {
    const at = value.indexOf('?');
    return at < 0 ? value : `${value.slice(0, at)}?${sealed(value.slice(at + 1))}`;
  }
  return sealed(value);
}

/** A check's merge key: its kind and its whole normalised option set, secrets sealed. */
export function keyOf<S extends Schema>(kind: string, schema: S, options: OptionsOf<S>): string {
  const normal = normalOptions(schema, options) as Readonly<Record<string, unknown>>;
  return checkKey(kind, forKey(normal, secrecyOf(schema)) as object);
}

/** How each option is shown (redactOptions reads it). */
export function secrecyOf(schema: Schema): SecrecyTable {
  return Object.fromEntries(
    Object.entries(schema).map(([name, spec]) => [name, spec.secrecy ?? 'public']),
  );
}

/** An option's config key: its own, or its name in snake_case. */
export function configKey(name: string, spec: OptionSpec): string {
  return spec.key ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** An option's `probe` flag (without the dashes), or null when it has none. */
export function flagName(name: string, spec: OptionSpec): string | null {
  if (spec.flag !== undefined) return spec.flag;
  return configKey(name, spec).replace(/_/g, '-');
}
