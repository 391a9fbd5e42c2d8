/**
 * Which Telemetry (telemetry.istio.io) applies to a proxy, and what it means for Istio's metrics:
 * the one place the Telemetry API is resolved. Istio's scoping: the root namespace's Telemetry
 * without a selector (mesh), then the proxy's namespace's without a selector (namespace), then one
 * in its namespace whose `selector.matchLabels` selects it (workload; oldest first). Metric
 * overrides are applied in that order, so the more specific scope wins where they overlap.
 * Overrides apply to the `prometheus` provider (the default when `providers` is not given), and to
 * the traffic side their `match.mode` names (CLIENT: outbound and gateways, SERVER: inbound).
 *
 * Tag override values are Istio CEL expressions; string literals (`"'v1'"`) are honoured, other
 * expressions are not evaluated (the tag keeps its standard value).
 */
import { compareByAge, ResourceTypes, type Resource } from '../../config/resource.ts';
import type { TelemetryMetricName, TelemetrySpec } from '../../config/kinds.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';

/** A metric override as the stats filter config carries it (proto trellis.filters.http.stats.v1.MetricOverride). */
export interface MetricOverrideJson {
  readonly name: TelemetryMetricName;
  readonly drop?: boolean;
  readonly tags_to_remove?: string[];
  readonly tag_overrides?: Record<string, string>;
}

export type TrafficSide = 'CLIENT' | 'SERVER';

function selects(sel: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (sel === undefined || Object.keys(sel).length === 0) return false;
  for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) return false;
  return true;
}

function spec(r: Resource): TelemetrySpec {
  return (r.spec ?? {}) as TelemetrySpec;
}

const isDefault = (r: Resource) => Object.keys(spec(r).selector?.matchLabels ?? {}).length === 0 && spec(r).targetRef === undefined && (spec(r).targetRefs ?? []).length === 0;

/** The Telemetry resources that apply to a proxy, least specific first (mesh, namespace, workload). */
export function telemetriesFor(snapshot: MeshSnapshot, proxy: ProxyNode): Resource[] {
  const all = [...snapshot.list(ResourceTypes.Telemetry)].sort(compareByAge);
  const root = snapshot.mesh.rootNamespace;
  const mesh = all.find((r) => r.metadata.namespace === root && isDefault(r));
  const ns = proxy.namespace === root ? undefined : all.find((r) => r.metadata.namespace === proxy.namespace && isDefault(r));
  const workload = all.find((r) => r.metadata.namespace === proxy.namespace && selects(spec(r).selector?.matchLabels, proxy.labels));
  return [mesh, ns, workload].filter((r): r is Resource => r !== undefined);
}

/** A CEL string literal's value ('v' or "v"), else undefined. */
function celLiteral(expr: string | undefined): string | undefined {
  const m = /^\s*(['"])(.*)\1\s*$/.exec(expr ?? '');
  return m === null ? undefined : m[2];
}

/** The metric overrides for one side of a proxy's traffic, in application order. */
export function metricOverridesFor(snapshot: MeshSnapshot, proxy: ProxyNode, side: TrafficSide): MetricOverrideJson[] {
  const out: MetricOverrideJson[] = [];
  for (const r of telemetriesFor(snapshot, proxy)) {
    for (const m of spec(r).metrics ?? []) {
      const providers = m.providers ?? [];
      if (providers.length > 0 && !providers.some((p) => p.name === 'prometheus')) continue;
      for (const o of m.overrides ?? []) {
        const mode = o.match?.mode ?? 'CLIENT_AND_SERVER';
        if (mode !== 'CLIENT_AND_SERVER' && mode !== side) continue;
        if (o.match?.customMetric !== undefined) continue;
        const remove: string[] = [];
        const set: Record<string, string> = {};
        for (const [tag, op] of Object.entries(o.tagOverrides ?? {})) {
          if (op.operation === 'REMOVE') remove.push(tag);
          else {
            const v = celLiteral(op.value);
            if (v !== undefined) set[tag] = v;
          }
        }
        out.push({
          name: o.match?.metric ?? 'ALL_METRICS',
          ...(o.disabled === true ? { drop: true } : {}),
          ...(remove.length > 0 ? { tags_to_remove: remove } : {}),
          ...(Object.keys(set).length > 0 ? { tag_overrides: set } : {}),
        });
      }
    }
  }
  return out;
}

/** True when the overrides end with every HTTP metric dropped (the stats filter can be left out). */
export function allHttpMetricsDropped(overrides: readonly MetricOverrideJson[]): boolean {
  const http: TelemetryMetricName[] = ['REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE'];
  return http.every((name) => {
    let dropped = false;
    for (const o of overrides) if (o.name === 'ALL_METRICS' || o.name === name) dropped = o.drop === true;
    return dropped;
  });
}

type Json = Record<string, unknown>;

/**
 * Applies a proxy's Telemetry to its listeners: each stats filter gets the overrides of its side
 * (reporter SOURCE = CLIENT, DESTINATION = SERVER), or is left out when they drop every HTTP
 * metric. Returns new listener objects where something changed; the others are returned as is.
 */
export function applyMetricsTelemetry(listeners: readonly Json[], overrides: { readonly CLIENT: readonly MetricOverrideJson[]; readonly SERVER: readonly MetricOverrideJson[] }): Json[] {
  if (overrides.CLIENT.length === 0 && overrides.SERVER.length === 0) return [...listeners];
  const hcm = (typed: Json): Json => {
    const filters = typed.http_filters;
    if (!Array.isArray(filters)) return typed;
    const next: Json[] = [];
    for (const f of filters as Json[]) {
      const tc = f.typed_config as Json | undefined;
      if (f.name !== 'trellis.filters.http.stats' || tc === undefined) {
        next.push(f);
        continue;
      }
      const value = (tc.value ?? {}) as Json;
      const list = overrides[value.reporter === 'DESTINATION' ? 'SERVER' : 'CLIENT'];
      if (allHttpMetricsDropped(list)) continue;
      next.push(list.length === 0 ? f : { ...f, typed_config: { ...tc, value: { ...value, metrics: list } } });
    }
    return { ...typed, http_filters: next };
  };
  const chain = (c: Json): Json => ({
    ...c,
    filters: ((c.filters ?? []) as Json[]).map((f) => {
      const tc = f.typed_config as Json | undefined;
      return tc !== undefined && Array.isArray(tc.http_filters) ? { ...f, typed_config: hcm(tc) } : f;
    }),
  });
  return listeners.map((l) => ({
    ...l,
    ...(Array.isArray(l.filter_chains) ? { filter_chains: (l.filter_chains as Json[]).map(chain) } : {}),
    ...(l.default_filter_chain !== undefined ? { default_filter_chain: chain(l.default_filter_chain as Json) } : {}),
  }));
}
