/**
 * Services and the workloads behind them.
 * - PORT_PROTOCOL_UNKNOWN (info, IST0118): a Service port whose protocol Trellis cannot tell — no
 *   `appProtocol`, and a name that is not `<protocol>` or `<protocol>-<suffix>` (the rule of
 *   src/registry/protocol.ts, which the control plane uses): its traffic is sniffed, and HTTP
 *   routes, retries and metrics need the protocol known. ExternalName Services and Kubernetes'
 *   own namespaces are passed over.
 * - WORKLOAD_PORT_CONFLICT (warning, IST0116 / IST0137): Services selecting one workload disagree
 *   about one of its ports — the same target port with different protocols (the workload's sidecar
 *   has one inbound listener per port), or the same target port behind different service ports.
 * - WORKLOAD_PROXY_UID (warning, IST0144): a pod (template) runs an application container as user
 *   1337, the sidecar's user, whose traffic transparent capture lets through uncaptured.
 * Workloads are Pods, pod templates and Trellis Workloads; those marked `sidecar.istio.io/inject:
 * "false"` have no sidecar and are passed over.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { servicePortProtocol } from '../../registry/protocol.ts';
import type { AnalysisContext } from './context.ts';
import { podTemplateOf, podWorkloadResources, selectorMatches } from './workloads.ts';
import { isObject, labelsOf, list, view, type Labels, type ServicePort, type ServiceView } from '../views.ts';

const KubernetesNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);

/** Istio's sidecar user: transparent capture leaves its traffic alone. */
const ProxyUid = 1337;

/** Runs the Service / workload checks. */
export function checkKubernetesWorkloads(ctx: AnalysisContext): void {
  const services = ctx.of(ResourceTypes.Service);
  for (const s of services) {
    const spec = view<ServiceView>(s);
    if (spec.type === 'ExternalName' || KubernetesNamespaces.has(s.metadata.namespace)) continue;
    list(spec.ports).forEach((p, i) => {
      // An appProtocol, even one Trellis does not know, is the user's explicit choice.
      if (p === null || typeof p !== 'object' || (typeof p.appProtocol === 'string' && p.appProtocol !== '') || servicePortProtocol(p) !== 'UNKNOWN') return;
      ctx.report(s, 'info', 'PORT_PROTOCOL_UNKNOWN',
        `port ${p.port ?? i}${p.name ? ` '${p.name}'` : ' (unnamed)'} does not say its protocol (name it http, http2, grpc, tcp, tls... or <protocol>-<suffix>, or set appProtocol); its traffic is sniffed`,
        `spec.ports[${i}]`);
    });
  }
  const selecting = indexSelectors(services);
  for (const w of [...podWorkloadResources(ctx.of), ...ctx.of(ResourceTypes.Workload)]) {
    const tpl = w.type === ResourceTypes.Workload
      ? { labels: { ...labelsOf((w.spec as { labels?: unknown }).labels), ...w.metadata.labels }, spec: {} as Record<string, unknown>, annotations: {} }
      : withAnnotations(w);
    if (tpl === undefined || injectionDisabled(tpl.labels, tpl.annotations)) continue;
    checkPorts(ctx, w, tpl.labels, selecting(w.metadata.namespace, tpl.labels));
    checkProxyUid(ctx, w, tpl.spec);
  }
}

function withAnnotations(r: Resource): { labels: Labels; spec: Record<string, unknown>; annotations: Labels } | undefined {
  const tpl = podTemplateOf(r);
  if (tpl === undefined) return undefined;
  let annotations: Labels = r.metadata.annotations;
  if (r.type !== ResourceTypes.Pod) {
    const spec = r.spec as Record<string, unknown>;
    const t = r.type === ResourceTypes.CronJob ? ((spec.jobTemplate as { spec?: { template?: unknown } } | undefined)?.spec?.template) : spec.template;
    const md = isObject(t) ? t.metadata : undefined;
    annotations = labelsOf(isObject(md) ? md.annotations : undefined);
  }
  return { ...tpl, annotations };
}

function injectionDisabled(labels: Labels, annotations: Labels): boolean {
  return labels['sidecar.istio.io/inject'] === 'false' || annotations['sidecar.istio.io/inject'] === 'false';
}

/**
 * The Services of a namespace whose selector matches a label set. Indexed by one label pair of
 * each selector, so a workload is compared only with the Services that share a label with it
 * (10,000 workloads against 10,000 Services stay linear).
 */
function indexSelectors(services: readonly Resource[]): (namespace: string, labels: Labels) => Resource[] {
  const byPair = new Map<string, Resource[]>();
  for (const s of services) {
    const sel = labelsOf(view<ServiceView>(s).selector);
    const first = Object.entries(sel).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))[0];
    if (first === undefined) continue;
    const key = `${s.metadata.namespace}\n${first[0]}=${first[1]}`;
    let l = byPair.get(key);
    if (l === undefined) byPair.set(key, (l = []));
    l.push(s);
  }
  return (namespace, labels) => {
    const out: Resource[] = [];
    for (const [k, v] of Object.entries(labels)) {
      for (const s of byPair.get(`${namespace}\n${k}=${v}`) ?? []) {
        if (selectorMatches(labelsOf(view<ServiceView>(s).selector), labels)) out.push(s);
      }
    }
    return out;
  };
}

function checkPorts(ctx: AnalysisContext, w: Resource, labels: Labels, services: readonly Resource[]): void {
  const byTarget = new Map<number, { service: string; port: number; protocol: string }[]>();
  for (const s of services) {
    const spec = view<ServiceView>(s);
    for (const p of list(spec.ports)) {
      if (p === null || typeof p !== 'object' || typeof p.port !== 'number') continue;
      const target = typeof p.targetPort === 'number' ? p.targetPort : typeof p.targetPort === 'string' ? undefined : p.port;
      if (target === undefined) continue; // a named targetPort: resolved against container ports we do not model
      let l = byTarget.get(target);
      if (l === undefined) byTarget.set(target, (l = []));
      l.push({ service: s.metadata.name, port: p.port, protocol: servicePortProtocol(p) });
    }
  }
  for (const [target, uses] of [...byTarget].sort((a, b) => a[0] - b[0])) {
    if (uses.length < 2) continue;
    const protocols = new Set(uses.map((u) => u.protocol));
    const ports = new Set(uses.map((u) => u.port));
    const list = uses.map((u) => `${u.service}:${u.port} (${u.protocol})`).join(', ');
    if (protocols.size > 1) {
      ctx.report(w, 'warning', 'WORKLOAD_PORT_CONFLICT',
        `port ${target} is exposed with different protocols by Services ${list}; its sidecar serves one protocol per port`, 'metadata.name');
    } else if (ports.size > 1) {
      ctx.report(w, 'warning', 'WORKLOAD_PORT_CONFLICT',
        `port ${target} is exposed under different service ports by Services ${list}; Services selecting one workload must map a target port from the same port`, 'metadata.name');
    }
  }
}

/** The user a container runs as: its own securityContext's, else the pod's. */
function userOf(container: Record<string, unknown>, podSecurityContext: unknown): unknown {
  const own = isObject(container.securityContext) ? container.securityContext.runAsUser : undefined;
  return own ?? (isObject(podSecurityContext) ? podSecurityContext.runAsUser : undefined);
}

function checkProxyUid(ctx: AnalysisContext, w: Resource, spec: Record<string, unknown>): void {
  const apps = list(spec.containers as readonly unknown[] | undefined).filter((c): c is Record<string, unknown> => isObject(c) && c.name !== 'istio-proxy');
  const offenders = apps.filter((c) => userOf(c, spec.securityContext) === ProxyUid);
  if (offenders.length === 0) return;
  ctx.report(w, 'warning', 'WORKLOAD_PROXY_UID',
    `container${offenders.length > 1 ? 's' : ''} ${offenders.map((c) => String(c.name ?? '?')).join(', ')} run${offenders.length > 1 ? '' : 's'} as user ${ProxyUid}, the sidecar's: transparent capture lets that user's traffic bypass the sidecar (no mTLS, no policy, no telemetry)`,
    'spec');
}
