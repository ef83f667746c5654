// What the SQL checks (mysql, pgsql) share: the first row of a query as one line of text, and
// the judgement of it against `expect`. Pure.
import type { CheckResult } from './checker.js';
import type { ProbeRun } from './probe.js';

/** A row as the mysql client's batch output shows it: columns joined with tabs, NULL as `NULL`. */
export function rowText(values: readonly (string | null)[]): string {
  return values.map((v) => v ?? 'NULL').join('\t');
}

/** Keeps at most this much of a row's text (a value can be large; the match sees this much). */
export const MAX_ROW_TEXT = 64 * 1024;

/**
 * The end of a query: unhealthy without a row (as ldirectord's check_sql: a query must return
 * at least one row), else healthy when the first row's text matches `expect` (or nothing is
 * expected). `rows` counts what arrived (capped by the caller, so maybe "at least").
 */
export function judgeFirstRow(
  run: ProbeRun,
  first: string | undefined,
  rows: number,
  expect: RegExp | undefined,
  printable: (text: string) => string,
): CheckResult {
  if (first === undefined) return run.fail('query returned no rows');
  run.step(`${rows} row${rows === 1 ? '' : 's'}, first ${printable(first)}`);
  if (expect === undefined) return run.ok();
  if (expect.test(first)) return run.ok(`matched ${String(expect)}`);
  return run.fail(`first row does not match ${String(expect)}`);
}
