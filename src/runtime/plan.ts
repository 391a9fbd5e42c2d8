/**
 * What `trellis up` will run, derived purely from loaded configuration: the ingress gateway's
 * server ports (Istio Gateways whose selector matches the built-in ingress gateway's labels), the
 * egress gateway's (Gateways selecting `istio: egressgateway`: Istio's egress pattern, where a
 * VirtualService sends mesh traffic for an external host through that gateway), and
 * for every `trellis.dev/v1alpha1` Workload its replicas, the Services that select it (by labels,
 * in its namespace, as Kubernetes does) and the ports its sidecar serves inbound (each selecting
 * Service port's targetPort, plus the Workload's own `ports`), the directory its command runs in
 * (its `workingDir`, relative to the file that declares it, as a Procfile's commands run next to
 * the Procfile) and its proxy's worker count (Istio's per-pod ProxyConfig annotation
 * `proxy.istio.io/config: "concurrency: N"`). No ports are allocated here.
 */
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TrellisError } from '../errors.ts';
import type { Resource } from '../config/resource.ts';
import { ResourceTypes } from '../config/resource.ts';
import type { IstioGatewaySpec, ServiceEntrySpec, WorkloadSpec } from '../config/kinds.ts';
import type { ServiceView } from '../config/views.ts';
import { selectorMatches } from '../config/label-selector.ts';

/** Labels of the ingress gateway `up` starts (what Istio's default ingress gateway carries). */
export const IngressGatewayLabels: Readonly<Record<string, string>> = Object.freeze({ istio: 'ingressgateway', app: 'istio-ingressgateway' });
/** Namespace of the ingress gateway. */
export const IngressGatewayNamespace = 'istio-system';
/** Labels of the egress gateway `up` starts when a Gateway selects it (Istio's default egress gateway). */
export const EgressGatewayLabels: Readonly<Record<string, string>> = Object.freeze({ istio: 'egressgateway', app: 'istio-egressgateway' });
/** The Service mesh traffic reaches the egress gateway by: `istio-egressgateway.istio-system.svc.<domain>`, as in Istio. */
export const EgressGatewayService = Object.freeze({ name: 'istio-egressgateway', namespace: 'istio-system' });

/** A server port of the egress gateway, as its Service declares it. */
export interface EgressGatewayPort {
  readonly port: number;
  /** The Gateway server's port name (the Service port name; Istio's chart uses http2 / https). */
  readonly name: string;
  readonly protocol: string;
}

/** A Service port that selects a workload. */
export interface SelectedPort {
  readonly service: string;
  readonly name: string;
  readonly port: number;
  readonly targetPort: number;
}

/** One Workload to run. */
export interface WorkloadPlan {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: WorkloadSpec;
  /** Names of the Services selecting this workload. */
  readonly services: readonly string[];
  readonly selectedPorts: readonly SelectedPort[];
  /** Ports the application listens on (sidecar inbound targets), ascending. */
  readonly appPorts: readonly number[];
  /** Absolute directory the command runs in. */
  readonly workingDir: string;
  /** Sidecar worker processes from the `proxy.istio.io/config` annotation; undefined = the runtime's default. */
  readonly proxyConcurrency?: number;
  /** The app's own metrics, from its `prometheus.io/*` annotations, for Istio's metrics merging. */
  readonly appMetrics?: AppMetricsAnnotation;
}

/** Where an app serves Prometheus metrics (a port of the Workload, and a path). */
export interface AppMetricsAnnotation {
  readonly port: number;
  readonly path: string;
}

/** Istio's per-pod opt-out of metrics merging. */
export const MergeMetricsAnnotation = 'prometheus.istio.io/merge-metrics';

/**
 * The app metrics a Workload declares with the annotations Prometheus users put on pods
 * (`prometheus.io/scrape: "true"`, `prometheus.io/port`, `prometheus.io/path`, default /metrics),
 * unless `prometheus.istio.io/merge-metrics: "false"`; the port must be one the Workload listens on.
 */
export function appMetricsOf(w: Pick<Resource, 'metadata'>, appPorts: readonly number[]): AppMetricsAnnotation | undefined {
  const a = w.metadata.annotations;
  if ((a['prometheus.io/scrape'] ?? '').toLowerCase() !== 'true' || (a[MergeMetricsAnnotation] ?? '').toLowerCase() === 'false') return undefined;
  const where = `Workload ${w.metadata.namespace}/${w.metadata.name}: annotation prometheus.io/port`;
  const text = a['prometheus.io/port'];
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TrellisError('RUNTIME_WORKLOAD_INVALID', `${where} must be a port number, got '${text}'`);
  if (!appPorts.includes(port)) throw new TrellisError('RUNTIME_WORKLOAD_INVALID', `${where} is ${port}, which is not one of the Workload's ports (${appPorts.join(', ') || 'none'})`);
  const path = a['prometheus.io/path'] ?? '/metrics';
  return { port, path: path.startsWith('/') ? path : `/${path}` };
}

/** Istio's per-pod ProxyConfig override. */
export const ProxyConfigAnnotation = 'proxy.istio.io/config';

/** `concurrency` of a `proxy.istio.io/config` annotation (YAML or JSON); 0 means one worker per core, as in Istio. */
export function proxyConcurrencyOf(w: Pick<Resource, 'metadata'>): number | undefined {
  const text = w.metadata.annotations[ProxyConfigAnnotation];
  if (text === undefined) return undefined;
  const where = `Workload ${w.metadata.namespace}/${w.metadata.name}: annotation ${ProxyConfigAnnotation}`;
  let cfg: unknown;
  try {
    cfg = parseYaml(text);
  } catch (err) {
    throw new TrellisError('RUNTIME_WORKLOAD_INVALID', `${where} is not YAML: ${(err as Error).message}`, { cause: err });
  }
  const c = (cfg as { concurrency?: unknown } | null)?.concurrency;
  if (c === undefined) return undefined;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 64) throw new TrellisError('RUNTIME_WORKLOAD_INVALID', `${where}: concurrency must be an integer 0..64, got ${JSON.stringify(c)}`);
  return c === 0 ? Math.min(64, availableParallelism()) : c;
}

export interface RuntimePlan {
  /** Istio Gateway server ports the ingress gateway serves, ascending. */
  readonly gatewayPorts: readonly number[];
  /** Server ports of Gateways selecting the egress gateway, ascending; empty: no egress gateway runs. */
  readonly egressGatewayPorts: readonly EgressGatewayPort[];
  /** True when the config declares the egress gateway's Service itself (`up` then does not). */
  readonly egressServiceDeclared: boolean;
  readonly workloads: readonly WorkloadPlan[];
  /** Every distinct Service and ServiceEntry port in the mesh (outbound listeners of an explicit-mode sidecar). */
  readonly servicePorts: readonly number[];
  readonly transparent: boolean;
}

function targetPort(p: { port?: number; targetPort?: number | string }): number {
  return typeof p.targetPort === 'number' ? p.targetPort : (p.port ?? 0);
}

/** Builds the plan; `captureOverride` (from `--capture`) wins over each Workload's captureMode. */
export function planRuntime(resources: readonly Resource[], captureOverride?: 'explicit' | 'transparent'): RuntimePlan {
  const services = resources.filter((r) => r.type === ResourceTypes.Service);
  const servicePorts = new Set<number>();
  for (const s of services) for (const p of (s.spec as ServiceView).ports ?? []) if (p.port) servicePorts.add(p.port);
  // ServiceEntry ports too (external hosts): each sidecar listens for them on a port of its own.
  for (const se of resources.filter((r) => r.type === ResourceTypes.ServiceEntry)) {
    for (const p of (se.spec as ServiceEntrySpec).ports ?? []) if (p.number && (p.protocol ?? '').toUpperCase() !== 'UDP') servicePorts.add(p.number);
  }

  const gatewayPorts = new Set<number>();
  const egress = new Map<number, EgressGatewayPort>();
  for (const g of resources.filter((r) => r.type === ResourceTypes.IstioGateway)) {
    const spec = g.spec as IstioGatewaySpec;
    const sel = (spec.selector ?? {}) as Record<string, string>;
    // A Gateway without a selector is the ingress gateway's (the one `up` always had).
    if (Object.keys(sel).length > 0 && selectorMatches(sel, EgressGatewayLabels)) {
      for (const s of spec.servers ?? []) {
        const n = s.port?.number;
        if (n && !egress.has(n)) egress.set(n, { port: n, name: s.port?.name || `port-${n}`, protocol: (s.port?.protocol ?? 'TCP').toUpperCase() });
      }
      continue;
    }
    if (Object.keys(sel).length > 0 && !selectorMatches(sel, IngressGatewayLabels)) continue;
    for (const s of spec.servers ?? []) if (s.port?.number) gatewayPorts.add(s.port.number);
  }

  let transparent = captureOverride === 'transparent';
  const workloads: WorkloadPlan[] = [];
  for (const w of resources.filter((r) => r.type === ResourceTypes.Workload)) {
    const spec = w.spec as WorkloadSpec;
    if (captureOverride === undefined && spec.captureMode === 'transparent') transparent = true;
    const ns = w.metadata.namespace;
    const labels = w.metadata.labels;
    const selecting: string[] = [];
    const selectedPorts: SelectedPort[] = [];
    for (const s of services) {
      const sspec = s.spec as ServiceView;
      if (s.metadata.namespace !== ns || sspec.selector === undefined || Object.keys(sspec.selector).length === 0) continue;
      if (!selectorMatches(sspec.selector, labels)) continue;
      selecting.push(s.metadata.name);
      for (const p of sspec.ports ?? []) {
        if (p.protocol === 'UDP' || !p.port) continue;
        selectedPorts.push({ service: s.metadata.name, name: p.name ?? '', port: p.port, targetPort: targetPort(p) });
      }
    }
    const appPorts = new Set<number>([...spec.ports.map((p) => p.port), ...selectedPorts.map((p) => p.targetPort)]);
    const fileDir = w.source !== undefined && w.source.file !== '-' && w.source.file !== '<memory>' ? dirname(resolve(w.source.file)) : process.cwd();
    const proxyConcurrency = proxyConcurrencyOf(w);
    const sortedAppPorts = [...appPorts].sort((a, b) => a - b);
    const appMetrics = appMetricsOf(w, sortedAppPorts);
    workloads.push({
      name: w.metadata.name,
      namespace: ns,
      labels,
      spec,
      services: selecting.sort(),
      selectedPorts,
      appPorts: sortedAppPorts,
      workingDir: resolve(fileDir, spec.workingDir ?? '.'),
      ...(proxyConcurrency !== undefined ? { proxyConcurrency } : {}),
      ...(appMetrics !== undefined ? { appMetrics } : {}),
    });
  }
  workloads.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return {
    gatewayPorts: [...gatewayPorts].sort((a, b) => a - b),
    egressGatewayPorts: [...egress.values()].sort((a, b) => a.port - b.port),
    egressServiceDeclared: services.some((s) => s.metadata.name === EgressGatewayService.name && s.metadata.namespace === EgressGatewayService.namespace),
    workloads,
    servicePorts: [...servicePorts].sort((a, b) => a - b),
    transparent,
  };
}
