/**
 * A small Prometheus metric store for the proxy's hot path: counter and histogram families whose
 * series are resolved once (by their label values) and then updated as plain numbers. prom-client
 * hashes and validates the label object on every `inc()`/`observe()`: measured with Istio's 25
 * labels, 53-95 us per request for istio_requests_total plus the three histograms, against 0.15 us
 * here (bench notes in docs/telemetry.md), so the proxy keeps its own series and prom-client stays
 * where scrapes, not requests, set the pace (the control plane's /metrics).
 *
 * Families bound their cardinality: past `maxSeries` a new label set is folded into one overflow
 * series whose values are all `unknown` except the family's `keep` labels. Worker processes export
 * their families (`exportFamilies`) and the primary sums them (`mergeFamilies`) before rendering.
 */

/** What a family is. */
export interface FamilySpec {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram' | 'gauge';
  readonly labelNames: readonly string[];
  /** Upper bounds of the histogram buckets (ascending, +Inf implied). */
  readonly buckets?: readonly number[];
  /** Series limit (default 10,000). */
  readonly maxSeries?: number;
}

/** One series: a label set and its numbers. */
export class Series {
  readonly values: readonly string[];
  /** Counter / gauge value, or the histogram's observation count. */
  value = 0;
  sum = 0;
  /** Non-cumulative bucket counts (histograms), one per bound plus +Inf. */
  readonly counts: Float64Array | undefined;
  readonly #bounds: readonly number[] | undefined;

  constructor(values: readonly string[], bounds: readonly number[] | undefined) {
    this.values = values;
    this.#bounds = bounds;
    this.counts = bounds === undefined ? undefined : new Float64Array(bounds.length + 1);
  }

  inc(n = 1): void {
    this.value += n;
  }

  set(n: number): void {
    this.value = n;
  }

  observe(v: number): void {
    const b = this.#bounds!;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts![i]++;
    this.value++;
    this.sum += v;
  }
}

/** The value every unknown or overflowing label collapses to (Istio's word). */
export const Unknown = 'unknown';

export class MetricFamily {
  readonly spec: FamilySpec;
  readonly #series = new Map<string, Series>();
  readonly #max: number;

  constructor(spec: FamilySpec) {
    this.spec = spec;
    this.#max = spec.maxSeries ?? 10_000;
  }

  /** The series for these label values (in `labelNames` order), created on first use. */
  series(values: readonly string[]): Series {
    const key = values.join('\u0001');
    let s = this.#series.get(key);
    if (s !== undefined) return s;
    if (this.#series.size >= this.#max) return this.series(values.map(() => Unknown));
    s = new Series(Object.freeze([...values]), this.spec.buckets);
    this.#series.set(key, s);
    return s;
  }

  get size(): number {
    return this.#series.size;
  }

  all(): IterableIterator<Series> {
    return this.#series.values();
  }
}

/** A family in a form that crosses process boundaries (worker IPC). */
export interface ExportedFamily {
  readonly spec: FamilySpec;
  /** [values, value, sum, counts] */
  readonly series: [string[], number, number, number[] | undefined][];
}

/** A set of families rendered together on one endpoint. */
export class MetricStore {
  readonly #families = new Map<string, MetricFamily>();

  family(spec: FamilySpec): MetricFamily {
    let f = this.#families.get(spec.name);
    if (f === undefined) this.#families.set(spec.name, (f = new MetricFamily(spec)));
    return f;
  }

  families(): MetricFamily[] {
    return [...this.#families.values()];
  }

  export(): ExportedFamily[] {
    return exportFamilies(this.families());
  }

  render(): string {
    return renderFamilies(this.export());
  }
}

export function exportFamilies(families: readonly MetricFamily[]): ExportedFamily[] {
  return families.map((f) => ({
    spec: f.spec,
    series: [...f.all()].map((s): [string[], number, number, number[] | undefined] => [[...s.values], s.value, s.sum, s.counts ? [...s.counts] : undefined]),
  }));
}

/** Sums families of the same name series by series (counters, histograms; gauges add too). */
export function mergeFamilies(parts: readonly (readonly ExportedFamily[])[]): ExportedFamily[] {
  const byName = new Map<string, { spec: FamilySpec; series: Map<string, [string[], number, number, number[] | undefined]> }>();
  for (const part of parts) {
    for (const f of part) {
      let m = byName.get(f.spec.name);
      if (m === undefined) byName.set(f.spec.name, (m = { spec: f.spec, series: new Map() }));
      for (const s of f.series) {
        const key = s[0].join('\u0001');
        const have = m.series.get(key);
        if (have === undefined) {
          m.series.set(key, [s[0], s[1], s[2], s[3] ? [...s[3]] : undefined]);
          continue;
        }
        have[1] += s[1];
        have[2] += s[2];
        if (have[3] && s[3]) for (let i = 0; i < have[3].length; i++) have[3][i] += s[3][i] ?? 0;
      }
    }
  }
  return [...byName.values()].map((m) => ({ spec: m.spec, series: [...m.series.values()] }));
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return Number.isNaN(n) ? 'NaN' : String(n);
}

/** Prometheus text exposition (0.0.4) of exported families, sorted by name. */
export function renderFamilies(families: readonly ExportedFamily[]): string {
  const out: string[] = [];
  for (const f of [...families].sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1))) {
    if (f.series.length === 0) continue;
    const { name, help, type, labelNames, buckets } = f.spec;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [values, value, sum, counts] of f.series) {
      const labels = labelNames.map((l, i) => `${l}="${escapeLabel(values[i] ?? '')}"`).join(',');
      if (type !== 'histogram' || counts === undefined || buckets === undefined) {
        out.push(`${name}${labels === '' ? '' : `{${labels}}`} ${formatNumber(value)}`);
        continue;
      }
      const sep = labels === '' ? '' : ',';
      let cum = 0;
      for (let i = 0; i < buckets.length; i++) {
        cum += counts[i];
        out.push(`${name}_bucket{${labels}${sep}le="${formatNumber(buckets[i])}"} ${cum}`);
      }
      out.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${value}`);
      out.push(`${name}_sum${labels === '' ? '' : `{${labels}}`} ${formatNumber(sum)}`);
      out.push(`${name}_count${labels === '' ? '' : `{${labels}}`} ${value}`);
    }
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
