// Small readers for validating plain data: each takes a value and its path, records what is wrong
// in a shared problem list (so one pass reports every error) and returns a typed value or undefined.

import { canonicalAddress, familyOf } from '../ipvs/address.js';
import type { Family } from '../ipvs/model.js';

export type Path = readonly (string | number)[];

/** "virtual_services[2].real_servers[0].weight" */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out || '(top level)';
}

export interface Problem {
  readonly path: Path;
  readonly message: string;
}

export class Problems {
  readonly list: Problem[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
}

export type Obj = Readonly<Record<string, unknown>>;

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a value is, for "got ..." in messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] ?? 0;
      row[j] = Math.min(cur + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] ?? 0;
}

/** Reports every key of `obj` that is not in `allowed`, with the nearest allowed key as a hint. */
export function checkKeys(obj: Obj, allowed: readonly string[], path: Path, p: Problems): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const near = allowed.map((k) => ({ k, d: distance(key, k) })).sort((x, y) => x.d - y.d)[0];
    const hint =
      near && near.d <= Math.max(2, key.length / 3) ? ` (did you mean "${near.k}"?)` : '';
    p.add([...path, key], `unknown key${hint}`);
  }
}

export function readString(value: unknown, path: Path, p: Problems): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  p.add(path, `must be a string, got ${describe(value)}`);
  return undefined;
}

export function readBool(value: unknown, path: Path, p: Problems): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  p.add(path, `must be true or false, got ${describe(value)}`);
  return undefined;
}

/** A number in min..max, whole when `whole`. */
function readRange(
  value: unknown,
  min: number,
  max: number,
  whole: boolean,
  path: Path,
  p: Problems,
): number | undefined {
  if (value === undefined) return undefined;
  const ok = whole ? Number.isInteger(value) : Number.isFinite(value);
  if (ok && typeof value === 'number' && value >= min && value <= max) return value;
  p.add(path, `must be a ${whole ? 'whole ' : ''}number ${min}..${max}, got ${describe(value)}`);
  return undefined;
}

export function readInt(value: unknown, min: number, max: number, path: Path, p: Problems) {
  return readRange(value, min, max, true, path, p);
}

export function readNumber(value: unknown, min: number, max: number, path: Path, p: Problems) {
  return readRange(value, min, max, false, path, p);
}

export function readEnum<T extends string>(
  value: unknown,
  choices: readonly T[],
  path: Path,
  p: Problems,
): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (choices as readonly string[]).includes(value))
    return value as T;
  p.add(path, `must be one of ${choices.join(', ')}, got ${describe(value)}`);
  return undefined;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds from "500ms", "2s", "1.5m", "1h", or a bare number of seconds
 * (as ldirectord and keepalived write intervals). Null when the text is not one.
 */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  }
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!m) return null;
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000));
}

/**
 * The range a duration key accepts, in ms. Every key has a maximum: Node keeps a timer's delay
 * in a signed 32-bit count of ms, and a longer one fires after 1 ms (a typo becomes a storm).
 */
export interface DurationRange {
  readonly min: number;
  readonly max: number;
}

/** "250ms", "2s", "5m", "1h", "1.5h": how a bound is written in a message. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function readDuration(
  value: unknown,
  range: DurationRange,
  path: Path,
  p: Problems,
): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === null) {
    p.add(
      path,
      `must be a duration like 500ms, 2s, 5m or a number of seconds, got ${describe(value)}`,
    );
    return undefined;
  }
  if (ms < range.min || ms > range.max) {
    p.add(path, `must be ${formatMs(range.min)}..${formatMs(range.max)}, got ${describe(value)}`);
    return undefined;
  }
  return ms;
}

/** An IPv4 or IPv6 address, canonical, with its family. */
export function readAddress(
  value: unknown,
  path: Path,
  p: Problems,
): { family: Family; address: string } | undefined {
  const text = readString(value, path, p);
  if (text === undefined) return undefined;
  const family = familyOf(text);
  const address = family && canonicalAddress(family, text);
  if (!family || !address) {
    p.add(path, `must be an IPv4 or IPv6 address, got ${describe(value)}`);
    return undefined;
  }
  return { family, address };
}

export function readRegex(value: unknown, path: Path, p: Problems): RegExp | undefined {
  const text = readString(value, path, p);
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (e) {
    p.add(path, `not a regular expression: ${(e as Error).message}`);
    return undefined;
  }
}

export function readStringMap(
  value: unknown,
  path: Path,
  p: Problems,
): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObj(value)) {
    p.add(path, `must be a mapping of names to strings, got ${describe(value)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
    else p.add([...path, k], `must be a string, got ${describe(v)}`);
  }
  return out;
}

/** Keeps only the defined properties: builds options objects under exactOptionalPropertyTypes. */
export function defined<T extends object>(obj: { [K in keyof T]: T[K] | undefined }): T {
  const out: Record<string, unknown> = {};
  // for-in, not Object.entries: no array of pairs for each of 100,000 real servers.
  for (const k in obj) {
    const v = obj[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}
