// Metric families with one series per check or per real server, read from the daemon's own state
// at each scrape. prom-client's labelled set()/inc() hashes, sorts and validates the labels of
// every series on every scrape, then formats them again: at 10,000 servers a scrape held the
// event loop for half a second. Here a series' labels are formatted once, when it first appears
// (the caller keeps that text), and a scrape only joins the text to each value.
import { Counter, Gauge } from 'prom-client';

/** Labels in Prometheus' text format (`a="1",b="x"`), values escaped as the format requires. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(',');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * One sample: `fixed` is the series' labels (the same object every scrape) and `fixedText` their
 * labelText, kept by the caller; `extra` the labels that tell the samples of one series apart
 * (`outcome`, `state`), and `extraText` theirs.
 */
export interface Sample {
  readonly fixed: Readonly<Record<string, string>>;
  readonly fixedText: string;
  readonly extra?: Readonly<Record<string, string>>;
  readonly extraText?: string;
  readonly value: number;
}

export type Samples = (emit: (sample: Sample) => void) => void | Promise<void>;

interface Value {
  value: number;
  labels: Record<string, string>;
  metricName?: string;
  sharedLabels?: Record<string, string>;
}

const NONE = Object.freeze({}) as Record<string, string>;

/**
 * A gauge or counter whose samples come from `samples` at each read. prom-client's registry
 * renders the text from getForPromString (values named with their labels already in the name,
 * as its histograms name their _bucket series) and getMetricsAsJSON from get (labels as
 * objects).
 */
export function stateFamily(
  Kind: typeof Gauge | typeof Counter,
  config: {
    readonly name: string;
    readonly help: string;
    readonly labelNames: readonly string[];
    readonly registers: NonNullable<ConstructorParameters<typeof Gauge>[0]['registers']>;
  },
  samples: Samples,
): Gauge | Counter {
  const metric = new Kind({ ...config, labelNames: [...config.labelNames] });
  const type = Kind === Gauge ? 'gauge' : 'counter';
  const read = async (value: (s: Sample) => Value): Promise<object> => {
    const values: Value[] = [];
    await samples((s) => values.push(value(s)));
    return { name: config.name, help: config.help, type, aggregator: 'sum', values };
  };
  Object.assign(metric, {
    get: () =>
      read((s) => ({ value: s.value, labels: s.extra ? { ...s.fixed, ...s.extra } : s.fixed })),
    getForPromString: () =>
      read((s) => ({
        value: s.value,
        // The same empty object each time: prom-client caches the text of shared labels by object.
        labels: NONE,
        sharedLabels: NONE,
        metricName: `${config.name}{${s.extraText ? (s.fixedText ? `${s.fixedText},${s.extraText}` : s.extraText) : s.fixedText}}`,
      })),
  });
  return metric;
}
