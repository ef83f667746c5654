// A histogram with one label, counted here rather than by prom-client. Every check observes two
// (how long it took, how late it started), and prom-client's labelled observe() copies, checks
// and hashes the labels each time: in a CPU profile of the daemon at 200 TCP checks a second in
// the VM it was 4 % of the busy main thread, the largest item of ours after the sockets. Here a
// series is resolved once (per kind) and an observation is a bucket search and three additions.
// The page is what prom-client writes for the same observations (test/metrics/histogram.test.ts).
import { escapeHelp, labelText, valueText } from './family.js';

/** A histogram family as prom-client's getMetricsAsJSON gives one (what tests compare). */
export interface HistogramJson {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: {
    value: number;
    metricName: string;
    labels: Readonly<Record<string, string | number>>;
    exemplar?: null;
  }[];
}

/** One series: its observations counted by bucket. */
export class HistogramSeries {
  /**
   * Observations per bucket, not summed: counts[i] those in (bounds[i - 1], bounds[i]]; the
   * last, those above every bound (only in +Inf). The page sums them as it is written.
   */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Counts `value` (seconds). A value that is not a finite number is not counted. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** One line of the page: a bucket (with its `le`), the sum or the count of one series. */
interface Line {
  readonly metricName: string;
  readonly le?: string | number;
  readonly label: string;
  readonly value: number;
}

export class HistogramFamily {
  private readonly series = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    /** The one label that tells series apart (`kind`). */
    private readonly label: string,
    bounds: readonly number[],
  ) {
    if (label === 'le') throw new Error(`histogram ${name}: le is the buckets' own label`);
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i] as number;
      if (!Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number)))
        throw new Error(`histogram ${name}: bucket bounds must be finite and rising`);
    }
    this.bounds = [...bounds];
  }

  /** The series of one label value, made at its first use: resolve it once, then observe. */
  of(value: string): HistogramSeries {
    let s = this.series.get(value);
    if (!s) {
      s = new HistogramSeries(this.bounds);
      this.series.set(value, s);
    }
    return s;
  }

  /** Every line of the family, each with its name, labels and value, in the page's order. */
  private lines(): Line[] {
    const out: Line[] = [];
    for (const [label, s] of this.series) {
      let below = 0;
      this.bounds.forEach((le, i) => {
        below += s.counts[i] as number;
        out.push({ metricName: `${this.name}_bucket`, le, label, value: below });
      });
      out.push({ metricName: `${this.name}_bucket`, le: '+Inf', label, value: s.count });
      out.push({ metricName: `${this.name}_sum`, label, value: s.sum });
      out.push({ metricName: `${this.name}_count`, label, value: s.count });
    }
    return out;
  }

  /** The family in the text format, without a final line feed (as prom-client writes one). */
  text(): string {
    const text = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`];
    for (const l of this.lines()) {
      const labels = labelText({
        ...(l.le === undefined ? {} : { le: String(l.le) }),
        [this.label]: l.label,
      });
      text.push(`${l.metricName}{${labels}} ${valueText(l.value)}`);
    }
    return text.join('\n');
  }

  /** The page's part: a few dozen lines, written whole, with no turn of the event loop. */
  parts(): Buffer[] {
    return [Buffer.from(`${this.text()}\n`)];
  }

  json(): Promise<HistogramJson> {
    const values = this.lines().map((l) =>
      l.le === undefined
        ? { value: l.value, metricName: l.metricName, labels: { [this.label]: l.label } }
        : {
            value: l.value,
            metricName: l.metricName,
            exemplar: null,
            labels: { le: l.le, [this.label]: l.label },
          },
    );
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      values,
    });
  }
}
