/**
 * Which Telemetry (telemetry.istio.io) applies to a proxy, and what it means for Istio's metrics:
 * the one place the Telemetry API is resolved. Istio's scoping: the root namespace's Telemetry
 * without a selector (mesh), then the proxy's namespace's without a selector (namespace), then one
 * in its namespace whose `selector.matchLabels` selects it, or whose `targetRefs` name the Gateway
 * API Gateway it implements (workload; oldest first; `policy-attachment.ts`). Metric
 * overrides are applied in that order, so the more specific scope wins where they overlap.
 * Overrides apply to the `prometheus` provider (the default when `providers` is not given), and to
 * the traffic side their `match.mode` names (CLIENT: outbound and gateways, SERVER: inbound).
 *
 * Tag override values are Istio CEL expressions; string literals (`"'v1'"`) are honoured, other
 * expressions are not evaluated (the tag keeps its standard value).
 *
 * Tracing and access logging resolve the same scopes the way Istio merges them: entries whose
 * `match.mode` covers the side are applied mesh -> namespace -> workload, a later `providers`,
 * `randomSamplingPercentage`, `disableSpanReporting` / `disabled` or `filter` replacing an earlier
 * one, custom tags merged by name. Without providers, MeshConfig's `defaultProviders` apply; without
 * a sampling percentage, `defaultConfig.tracing.sampling` (Istio's default 1%).
 */
import { compareByAge, ResourceTypes, type Resource } from '../../config/resource.ts';
import type { TelemetryCustomTag, TelemetryMetricName, TelemetrySpec, WorkloadMode } from '../../config/kinds.ts';
import { DefaultMeshTelemetry, type MeshTelemetry, type TelemetryProvider } from '../../config/telemetry-providers.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { policyAttaches } from './policy-attachment.ts';
import { hasTargetRefs } from '../../config/policy-target-refs.ts';

/** A metric override as the stats filter config carries it (proto trellis.filters.http.stats.v1.MetricOverride). */
export interface MetricOverrideJson {
  readonly name: TelemetryMetricName;
  readonly drop?: boolean;
  readonly tags_to_remove?: string[];
  readonly tag_overrides?: Record<string, string>;
}

export type TrafficSide = 'CLIENT' | 'SERVER';

function spec(r: Resource): TelemetrySpec {
  return (r.spec ?? {}) as TelemetrySpec;
}

const isDefault = (r: Resource) => Object.keys(spec(r).selector?.matchLabels ?? {}).length === 0 && !hasTargetRefs(spec(r));

/** The Telemetry resources that apply to a proxy, least specific first (mesh, namespace, workload). */
export function telemetriesFor(snapshot: MeshSnapshot, proxy: ProxyNode): Resource[] {
  const all = [...snapshot.list(ResourceTypes.Telemetry)].sort(compareByAge);
  const root = snapshot.mesh.rootNamespace;
  const mesh = all.find((r) => r.metadata.namespace === root && isDefault(r));
  const ns = proxy.namespace === root ? undefined : all.find((r) => r.metadata.namespace === proxy.namespace && isDefault(r));
  const workload = all.find((r) => r.metadata.namespace === proxy.namespace && policyAttaches(r, spec(r), proxy, root, true));
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
  const http: TelemetryMetricName[] = ['REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES'];
  return http.every((name) => {
    let dropped = false;
    for (const o of overrides) if (o.name === 'ALL_METRICS' || o.name === name) dropped = o.drop === true;
    return dropped;
  });
}

function covers(mode: WorkloadMode | undefined, side: TrafficSide): boolean {
  return mode === undefined || mode === 'CLIENT_AND_SERVER' || mode === side;
}

/** The mesh's telemetry settings (Istio's defaults when the MeshConfig has none). */
export function meshTelemetry(snapshot: MeshSnapshot): MeshTelemetry {
  return snapshot.mesh.telemetry ?? DefaultMeshTelemetry;
}

function providerNamed(mesh: MeshTelemetry, name: string): TelemetryProvider | undefined {
  return mesh.providers.find((p) => p.name === name);
}

/** A tracing provider Trellis can configure. */
export type TracingProvider = Extract<TelemetryProvider, { kind: 'opentelemetry' | 'zipkin' }>;

/** What tracing one side of a proxy does. */
export interface ResolvedTracing {
  readonly provider: TracingProvider;
  /** Percent 0..100. */
  readonly samplingPercent: number;
  /** disableSpanReporting: context is propagated and sampled, nothing is sent. */
  readonly reportSpans: boolean;
  readonly customTags: Readonly<Record<string, TelemetryCustomTag>>;
}

/** Tracing for one side of a proxy, or undefined when it has none (no provider, or an unsupported kind). */
export function tracingFor(snapshot: MeshSnapshot, proxy: ProxyNode, side: TrafficSide): ResolvedTracing | undefined {
  const mesh = meshTelemetry(snapshot);
  let providers: readonly string[] | undefined;
  let sampling: number | undefined;
  let disable: boolean | undefined;
  let configured = false;
  const tags: Record<string, TelemetryCustomTag> = {};
  for (const r of telemetriesFor(snapshot, proxy)) {
    for (const t of spec(r).tracing ?? []) {
      if (!covers(t.match?.mode, side)) continue;
      configured = true;
      if ((t.providers ?? []).length > 0) providers = t.providers!.map((p) => p.name);
      if (t.randomSamplingPercentage !== undefined) sampling = t.randomSamplingPercentage;
      if (t.disableSpanReporting !== undefined) disable = t.disableSpanReporting;
      Object.assign(tags, t.customTags ?? {});
    }
  }
  if (!configured && !mesh.enableTracing) return undefined;
  const name = (providers ?? mesh.defaultProviders.tracing)[0];
  const provider = name === undefined ? undefined : providerNamed(mesh, name);
  if (provider === undefined || (provider.kind !== 'opentelemetry' && provider.kind !== 'zipkin')) return undefined;
  return { provider, samplingPercent: sampling ?? mesh.defaultSamplingPercent, reportSpans: disable !== true, customTags: tags };
}

/** A file access log Trellis can configure. */
export type AccessLogProvider = Extract<TelemetryProvider, { kind: 'envoyFileAccessLog' }>;

/** What access logging one side of a proxy does. */
export interface ResolvedAccessLog {
  readonly provider: AccessLogProvider;
  /** MeshConfig accessLogEncoding / accessLogFormat, for providers without their own format. */
  readonly encoding: 'TEXT' | 'JSON';
  readonly format: string | undefined;
  /** Istio's CEL filter expression, e.g. `response.code >= 400`. */
  readonly filter: string | undefined;
}

/**
 * Access logs for one side of a proxy: the Telemetry API's `accessLogging` (a workload's
 * `disabled: true` turns them off there only), else MeshConfig's `defaultProviders.accessLogging`,
 * else the legacy `accessLogFile`. Empty when off.
 */
export function accessLogsFor(snapshot: MeshSnapshot, proxy: ProxyNode, side: TrafficSide): ResolvedAccessLog[] {
  const mesh = meshTelemetry(snapshot);
  let providers: readonly string[] | undefined;
  let disabled = false;
  let filter: string | undefined;
  let configured = false;
  for (const r of telemetriesFor(snapshot, proxy)) {
    for (const a of spec(r).accessLogging ?? []) {
      if (!covers(a.match?.mode, side)) continue;
      configured = true;
      if ((a.providers ?? []).length > 0) providers = a.providers!.map((p) => p.name);
      if (a.disabled !== undefined) disabled = a.disabled;
      if (a.filter !== undefined) filter = a.filter.expression;
    }
  }
  if (disabled) return [];
  const names = providers ?? mesh.defaultProviders.accessLogging;
  const out: ResolvedAccessLog[] = [];
  for (const n of names) {
    const p = providerNamed(mesh, n);
    if (p?.kind === 'envoyFileAccessLog') out.push({ provider: p, encoding: mesh.accessLogEncoding, format: mesh.accessLogFormat, filter });
  }
  if (!configured && out.length === 0 && mesh.accessLogFile !== undefined) {
    out.push({ provider: { kind: 'envoyFileAccessLog', name: 'mesh-access-log-file', path: mesh.accessLogFile, text: undefined, labels: undefined }, encoding: mesh.accessLogEncoding, format: mesh.accessLogFormat, filter: undefined });
  }
  return out;
}
