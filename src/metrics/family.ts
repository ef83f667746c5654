// Metric families with one series per check or per real server, read from the daemon's own state
// at each scrape and written here, not by prom-client. Its labelled set()/inc() hashes, sorts and
// validates the labels of every series on every scrape, then formats them again, and its
// registry writes a family in one go: at 10,000 servers a scrape held the event loop for half a
// second, every check waiting behind it. Here a series' labels are formatted once, when it first
// appears (the caller keeps that text), a scrape only joins that text to each value, and a long
// family yields to the event loop every few thousand lines so checks run in between.
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
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the text format spells it. */
function valueText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Labels with their text, made once and kept for as long as the series (or the constant) lives. */
export interface LabelSet {
  readonly labels: Readonly<Record<string, string>>;
  readonly text: string;
  /** `text` is ASCII: its UTF-8 is its Latin-1 (see Part). */
  readonly ascii: boolean;
}

// eslint-disable-next-line no-control-regex
const NOT_ASCII = /[^\x00-\x7f]/;

export function labelSet(labels: Readonly<Record<string, string>>): LabelSet {
  const text = labelText(labels);
  return { labels, text, ascii: !NOT_ASCII.test(text) };
}

/**
 * Lines of a family, and whether they are all ASCII. An ASCII part can be written as Latin-1,
 * which node copies as it is; as UTF-8, node scans it for the chunk's length and again to encode
 * it (a fifth of a scrape's CPU at 10,000 checks).
 */
export interface Part {
  readonly text: string;
  readonly ascii: boolean;
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
    const parts: string[] = [];
    for await (const part of this.parts()) parts.push(part.text);
    return parts.join('\n');
  }

  /**
   * The family's lines in parts of LINES_PER_TURN, a turn of the event loop between two, each
   * without a final line feed: a scrape can send each as it comes instead of one page at the end.
   */
  async *parts(): AsyncGenerator<Part> {
    const help = `# HELP ${this.name} ${escapeHelp(this.help)}`;
    let lines = [help, `# TYPE ${this.name} ${this.type}`];
    let ascii = !NOT_ASCII.test(help);
    const name = this.name;
    for (const s of await this.samples()) {
      // Pieces added with `+`, not a template or an array joined: this runs for every line.
      const series = s.series;
      const extra = s.extra;
      let line = name;
      if (extra) {
        line += series.text ? '{' + series.text + ',' + extra.text + '} ' : '{' + extra.text + '} ';
        ascii &&= series.ascii && extra.ascii;
      } else {
        line += series.text ? '{' + series.text + '} ' : ' ';
        ascii &&= series.ascii;
      }
      lines.push(line + valueText(s.value));
      if (lines.length >= LINES_PER_TURN) {
        yield { text: lines.join('\n'), ascii };
        lines = [];
        ascii = true;
        await turn();
      }
    }
    if (lines.length > 0) yield { text: lines.join('\n'), ascii };
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
