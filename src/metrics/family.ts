// Metric families with one series per check or per real server, read from the daemon's own state
// at each scrape and written here, not by prom-client. Its labelled set()/inc() hashes, sorts and
// validates the labels of every series on every scrape, then formats them again, and its
// registry writes a family in one go: at 10,000 servers a scrape held the event loop for half a
// second, every check waiting behind it. Here a series' labels are encoded once, when it first
// appears (the caller keeps the bytes), a scrape copies those bytes and each value into buffers,
// and a long family yields to the event loop every few thousand lines so checks run in between.
import { setImmediate as turn } from 'node:timers/promises';

/** Labels in Prometheus' text format (`a="1",b="x"`), values escaped as the format requires. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(',');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A HELP text: backslashes and line feeds escaped (quotes are literal there). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the text format spells it. */
export function valueText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Labels and their text, encoded once, kept as long as the series (or the constant) lives. */
export interface LabelSet {
  readonly labels: Readonly<Record<string, string>>;
  /** `labelText(labels)` in UTF-8: a scrape copies it into the page as it is. */
  readonly bytes: Buffer;
}

export function labelSet(labels: Readonly<Record<string, string>>): LabelSet {
  return { labels, bytes: Buffer.from(labelText(labels)) };
}

/**
 * One sample: `series` is its series' labels (kept by the caller from scrape to scrape), `extra`
 * the labels that tell the samples of one series apart (`outcome`, `state`: constants).
 */
export interface Sample {
  readonly series: LabelSet;
  readonly extra?: LabelSet | undefined;
  readonly value: number;
}

/** A family as prom-client's getMetricsAsJSON gives one (what tests compare). */
export interface FamilyJson {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly aggregator: 'sum';
  readonly values: { value: number; labels: Readonly<Record<string, string>> }[];
}

/** Lines written between two turns of the event loop. */
const LINES_PER_TURN = 2000;
/** Room for a value's text, the longest a number takes (`-1.2345678901234567e-123`), and a LF. */
const VALUE_ROOM = 32;
const LF = 0x0a;
/** A part's size (a line longer than this is a part of its own). */
const PART_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Where a family's lines are written: buffers of PART_BYTES, each handed on when the next line
 * does not fit. A new buffer a part, since the socket keeps each part until it is sent. Under
 * glibc's mmap threshold (128 KiB) malloc hands back memory it freed; buffers of a whole turn
 * (250 KiB) were fresh pages each, and copying into them cost three times as much.
 */
class Lines {
  private buf = EMPTY;
  private at = 0;
  /** The part filled last, until handed on (a line makes room once: at most one). */
  full: Buffer | null = null;

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    if (this.at > 0) this.full = this.buf.subarray(0, this.at);
    this.buf = Buffer.allocUnsafe(Math.max(PART_BYTES, n));
    this.at = 0;
  }

  /** Copies bytes in (room made first). */
  put(bytes: Uint8Array): void {
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  /** A value and the line's end (room made first). */
  value(v: number): void {
    this.at = writeValue(this.buf, this.at, v);
    this.buf[this.at++] = LF;
  }

  /** The part being filled, if it has anything. */
  rest(): Buffer | null {
    return this.at > 0 ? this.buf.subarray(0, this.at) : null;
  }
}

/**
 * Writes a sample value as the text format spells it at `at` (room made first), returning where
 * it ends. Most values are counts and flags: their digits are written directly, without a string
 * made for each line.
 */
export function writeValue(buf: Buffer, at: number, v: number): number {
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v))
    return at + buf.write(valueText(v), at, 'latin1');
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  let x = v;
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  return at + digits;
}

export class StateFamily {
  constructor(
    readonly type: 'gauge' | 'counter',
    readonly name: string,
    readonly help: string,
    /** This scrape's samples (read as they are iterated). */
    private readonly samples: () => Iterable<Sample> | Promise<Iterable<Sample>>,
  ) {}

  /** The family in the text format, without a final line feed. */
  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const part of this.parts()) parts.push(part);
    return Buffer.concat(parts).toString('utf8').slice(0, -1);
  }

  /**
   * The family's lines in parts of PART_BYTES at most, each ending at a line's end, and a turn
   * of the event loop every LINES_PER_TURN lines: a scrape sends each part as it comes instead of
   * one page at the end, and checks run in between.
   */
  async *parts(): AsyncGenerator<Buffer> {
    const head = Buffer.from(
      `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`,
    );
    const open = Buffer.from(`${this.name}{`);
    const bare = Buffer.from(`${this.name} `);
    const close = Buffer.from('} ');
    const comma = Buffer.from(',');
    // An extra label set's bytes after a series' labels (`,outcome="up"} `) and alone
    // (`outcome="up"} `), made once a scrape: there are a handful.
    const extras = new Map<LabelSet, { after: Buffer; alone: Buffer }>();
    const out = new Lines();
    out.room(head.length);
    out.put(head);
    let lines = 0;
    for (const s of await this.samples()) {
      const series = s.series.bytes;
      const extra = s.extra;
      if (extra) {
        let e = extras.get(extra);
        if (!e) {
          e = {
            after: Buffer.concat([comma, extra.bytes, close]),
            alone: Buffer.concat([extra.bytes, close]),
          };
          extras.set(extra, e);
        }
        out.room(open.length + series.length + e.after.length + VALUE_ROOM);
        out.put(open);
        if (series.length > 0) {
          out.put(series);
          out.put(e.after);
        } else out.put(e.alone);
      } else if (series.length > 0) {
        out.room(open.length + series.length + close.length + VALUE_ROOM);
        out.put(open);
        out.put(series);
        out.put(close);
      } else {
        out.room(bare.length + VALUE_ROOM);
        out.put(bare);
      }
      out.value(s.value);
      if (out.full) {
        yield out.full;
        out.full = null;
      }
      if (++lines % LINES_PER_TURN === 0) await turn();
    }
    const rest = out.rest();
    if (rest) yield rest;
  }

  async json(): Promise<FamilyJson> {
    const values: FamilyJson['values'] = [];
    for (const s of await this.samples())
      values.push({
        value: s.value,
        labels: s.extra ? { ...s.series.labels, ...s.extra.labels } : s.series.labels,
      });
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
}
