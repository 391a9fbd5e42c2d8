/**
 * Rendering of proxy statistics in Envoy's two admin formats: the `/stats` text format
 * (`name: value`, sorted) and Prometheus exposition (`/stats/prometheus`, names prefixed
 * `envoy_` with dots turned into underscores, and tag-extracted labels like Envoy's
 * `envoy_cluster_upstream_rq_total{envoy_cluster_name="x"}`).
 */

export interface Stat {
  /** Dotted Envoy-style name, e.g. `cluster.outbound|80||a.default.svc.cluster.local.upstream_rq_total`. */
  readonly name: string;
  readonly value: number;
  readonly type: 'counter' | 'gauge';
  /** For Prometheus: the metric family (`cluster.upstream_rq_total`) and labels; derived from name when absent. */
  readonly family?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export function renderStatsText(stats: readonly Stat[]): string {
  return [...stats].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => `${s.name}: ${s.value}`).join('\n') + '\n';
}

function promName(family: string): string {
  return 'envoy_' + family.replace(/[^a-zA-Z0-9_]/g, '_');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderPrometheus(stats: readonly Stat[]): string {
  const families = new Map<string, { type: string; lines: string[] }>();
  for (const s of stats) {
    const family = promName(s.family ?? s.name);
    let f = families.get(family);
    if (f === undefined) {
      f = { type: s.type, lines: [] };
      families.set(family, f);
    }
    const labels = s.labels ? Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',') : '';
    f.lines.push(`${family}${labels ? `{${labels}}` : ''} ${s.value}`);
  }
  const out: string[] = [];
  for (const [name, f] of [...families].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push(`# TYPE ${name} ${f.type}`, ...f.lines);
  }
  return out.join('\n') + '\n';
}
