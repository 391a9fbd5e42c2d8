/**
 * Runs Grafana dashboards (Istio's JSON, unmodified) against a real Prometheus the way Grafana
 * would after a person picks from the drop-downs: template variables resolved in order from their
 * own `query_result(...)` queries and `regex` (an "All" selection becomes the alternation of the
 * values, as Grafana builds it), `$__rate_interval` / `$__interval` = 1m, then every panel target
 * sent to `/api/v1/query`. A panel "has data" when one of its targets returns a sample with a
 * finite value (what Grafana would draw).
 */
import { readFileSync } from 'node:fs';

export interface PromResult {
  readonly status: string;
  readonly error?: string;
  readonly data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] | [number, string] };
}

/** One instant query against Prometheus's HTTP API. */
export async function promQuery(base: string, query: string): Promise<PromResult> {
  const res = await fetch(`${base}api/v1/query?query=${encodeURIComponent(query)}`);
  return (await res.json()) as PromResult;
}

/** Finite values of an instant query result (vector or scalar). */
export function finiteValues(r: PromResult): number[] {
  const d = r.data;
  if (d === undefined) return [];
  if (d.resultType === 'scalar') {
    const v = Number((d.result as [number, string])[1]);
    return Number.isFinite(v) ? [v] : [];
  }
  return (d.result as { value?: [number, string] }[]).map((s) => Number(s.value?.[1])).filter((v) => Number.isFinite(v));
}

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

interface Dashboard {
  title: string;
  panels?: Panel[];
  rows?: { panels?: Panel[] }[];
  templating?: { list?: { name: string; type?: string; query?: unknown; regex?: string; current?: { value?: unknown } | null; includeAll?: boolean }[] };
}

export interface PanelOutcome {
  readonly title: string;
  readonly exprs: readonly string[];
  /** Every expression parsed (Prometheus answered status success). */
  readonly parsed: boolean;
  readonly errors: readonly string[];
  readonly hasData: boolean;
}

export function loadDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Panels that query something (rows and text panels left out), nested panels included. */
export function queryPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Panel[] | undefined) => {
    for (const p of ps ?? []) {
      if ((p.targets ?? []).some((t) => typeof t.expr === 'string' && t.expr.trim() !== '')) out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  for (const r of d.rows ?? []) walk(r.panels);
  return out;
}

/** Replaces `$name` / `${name}` and Grafana's interval variables. */
export function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  let out = expr.replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}|\$\{__interval\}/g, '1m');
  for (const [k, v] of Object.entries(vars).sort((a, b) => b[0].length - a[0].length)) {
    out = out.split(`\${${k}}`).join(v).split(`$${k}`).join(v);
  }
  return out;
}

/** Grafana's query_result formatting of a sample, which a variable's regex is applied to. */
function resultLine(metric: Record<string, string>, value: [number, string] | undefined): string {
  const { __name__: name = '', ...rest } = metric;
  const labels = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(', ');
  return `${name}{${labels}} ${value?.[1] ?? ''} ${value?.[0] ?? ''}`;
}

function grafanaRegex(text: string | undefined): RegExp | undefined {
  if (text === undefined || text === '') return undefined;
  const m = /^\/(.*)\/([gimsuy]*)$/s.exec(text);
  return m === null ? new RegExp(text) : new RegExp(m[1], m[2]);
}

/**
 * Resolves a dashboard's template variables in order: `picks` wins (a person's choice); otherwise
 * a query variable takes All (the alternation of its values) when it allows All, else its first
 * value; custom variables take their current value.
 */
export async function resolveVariables(base: string, d: Dashboard, picks: Readonly<Record<string, string>>): Promise<{ vars: Record<string, string>; values: Record<string, string[]> }> {
  const vars: Record<string, string> = {};
  const values: Record<string, string[]> = {};
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'datasource') continue;
    const pick = picks[v.name];
    const query = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    if (v.type === 'query' && typeof query === 'string' && query.startsWith('query_result(')) {
      const inner = substitute(query.slice('query_result('.length, -1), vars);
      const r = await promQuery(base, inner);
      const re = grafanaRegex(v.regex);
      const found = new Set<string>();
      for (const s of (r.data?.result ?? []) as { metric: Record<string, string>; value?: [number, string] }[]) {
        const line = resultLine(s.metric, s.value);
        const m = re?.exec(line);
        const val = m !== undefined && m !== null ? (m[1] ?? m[0]) : Object.values(s.metric)[0];
        if (val !== undefined && val !== '') found.add(val);
      }
      values[v.name] = [...found].sort();
    }
    if (pick !== undefined) vars[v.name] = pick;
    else if (values[v.name] !== undefined) {
      const list = values[v.name];
      vars[v.name] = v.includeAll === true ? (list.length === 1 ? list[0] : `(${list.join('|')})`) : (list[0] ?? '');
    } else vars[v.name] = String(v.current?.value ?? '');
  }
  return { vars, values };
}

/** Runs every panel of a dashboard with the variables given. */
export async function runPanels(base: string, d: Dashboard, vars: Readonly<Record<string, string>>): Promise<PanelOutcome[]> {
  const out: PanelOutcome[] = [];
  for (const p of queryPanels(d)) {
    const exprs = (p.targets ?? []).map((t) => t.expr ?? '').filter((e) => e.trim() !== '').map((e) => substitute(e, vars));
    const errors: string[] = [];
    let hasData = false;
    for (const e of exprs) {
      const r = await promQuery(base, e);
      if (r.status !== 'success') errors.push(`${e}: ${r.error ?? r.status}`);
      else if (finiteValues(r).length > 0) hasData = true;
    }
    out.push({ title: p.title ?? '(untitled)', exprs, parsed: errors.length === 0, errors, hasData });
  }
  return out;
}
