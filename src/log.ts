// Structured logs: one JSON object a line with a stable `event` name (what alerting and log
// pipelines key on), or a readable line on a terminal. The sink is injected, so tests read events.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Readonly<Record<string, unknown>>;
/** Fields, or a function that makes them only if the level is logged (a per-result debug line
 * at 10,000 checks a second is otherwise built and dropped 10,000 times a second). */
export type LazyFields = Fields | (() => Fields);

export interface Logger {
  log(level: Level, event: string, fields?: LazyFields): void;
}

export interface LogOptions {
  readonly format: 'json' | 'text';
  readonly level: Level;
  readonly write: (line: string) => void;
  readonly clock?: () => Date;
}

function plain(value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function textValue(value: unknown): string {
  const v = plain(value);
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v, (_k, x: unknown) => plain(x));
}

export function createLogger(options: LogOptions): Logger & { level: Level } {
  const clock = options.clock ?? (() => new Date());
  return {
    level: options.level,
    log(level, event, lazy = {}) {
      if (RANK[level] < RANK[this.level]) return;
      const fields = typeof lazy === 'function' ? lazy() : lazy;
      const time = clock().toISOString();
      if (options.format === 'json') {
        options.write(
          `${JSON.stringify({ time, level, event, ...fields }, (_k, x: unknown) => plain(x))}\n`,
        );
        return;
      }
      const rest = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${textValue(v)}`)
        .join(' ');
      options.write(`${time} ${level.padEnd(5)} ${event}${rest ? ` ${rest}` : ''}\n`);
    },
  };
}

/** A logger that keeps events in memory (for tests). */
export class MemoryLog implements Logger {
  readonly events: { level: Level; event: string; fields: Fields }[] = [];
  log(level: Level, event: string, fields: LazyFields = {}): void {
    this.events.push({ level, event, fields: typeof fields === 'function' ? fields() : fields });
  }
  named(event: string): Fields[] {
    return this.events.filter((e) => e.event === event).map((e) => e.fields);
  }
}
