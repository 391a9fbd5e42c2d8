/**
 * What a cluster would run for the corpus, without a cluster: one pod per Deployment replica
 * (name `<deployment>-<hash>-<hash>`, labels from the pod template), the Services whose selectors
 * match each pod, and the EndpointSlices that register every pod behind those Services with the
 * local port that really serves it (the echo process in the gateway profile, the pod's sidecar
 * inbound port in the mesh profile). Pure data: no processes here.
 */
import { randomBytes } from 'node:crypto';
import type { K8sObject } from './corpus.ts';

export interface ServicePortSpec {
  name: string;
  port: number;
  targetPort: number;
  appProtocol?: string;
}

export interface ServiceSpec {
  namespace: string;
  name: string;
  selector?: Record<string, string>;
  ports: ServicePortSpec[];
}

export interface PodSpec {
  namespace: string;
  deployment: string;
  name: string;
  labels: Record<string, string>;
  /** Container ports declared by the pod template. */
  containerPorts: number[];
  image: string;
}

const alnum = 'bcdfghjklmnpqrstvwxz2456789';
function hash(n: number): string {
  const b = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alnum[b[i] % alnum.length];
  return s;
}

/** Services of the given objects. */
export function servicesOf(objects: readonly K8sObject[]): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const o of objects) {
    if (o.kind !== 'Service') continue;
    const spec = (o.spec ?? {}) as { selector?: Record<string, string>; ports?: { name?: string; port?: number; targetPort?: number | string; appProtocol?: string }[] };
    out.push({
      namespace: o.metadata?.namespace ?? 'default',
      name: o.metadata?.name ?? '',
      selector: spec.selector,
      ports: (spec.ports ?? []).map((p) => ({
        name: p.name ?? '',
        port: p.port ?? 0,
        targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port ?? 0,
        appProtocol: p.appProtocol,
      })),
    });
  }
  return out;
}

/** One pod per replica of every Deployment (replicas default 1). */
export function podsOf(objects: readonly K8sObject[]): PodSpec[] {
  const out: PodSpec[] = [];
  for (const o of objects) {
    if (o.kind !== 'Deployment') continue;
    const spec = (o.spec ?? {}) as {
      replicas?: number;
      template?: { metadata?: { labels?: Record<string, string> }; spec?: { containers?: { image?: string; ports?: { containerPort?: number }[] }[] } };
    };
    const replicas = spec.replicas ?? 1;
    const rs = hash(10);
    const containers = spec.template?.spec?.containers ?? [];
    for (let i = 0; i < replicas; i++) {
      out.push({
        namespace: o.metadata?.namespace ?? 'default',
        deployment: o.metadata?.name ?? '',
        name: `${o.metadata?.name}-${rs}-${hash(5)}`,
        labels: { ...(spec.template?.metadata?.labels ?? {}) },
        containerPorts: containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort ?? 0)).filter((p) => p > 0),
        image: containers[0]?.image ?? '',
      });
    }
  }
  return out;
}

/** True when a non-empty selector matches the labels. */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Services (with selectors) that select the pod. */
export function servicesFor(pod: PodSpec, services: readonly ServiceSpec[]): ServiceSpec[] {
  return services.filter((s) => s.namespace === pod.namespace && selects(s.selector, pod.labels));
}

/**
 * EndpointSlices for one pod: one slice per selecting Service at `address` (the pod IP, or
 * 127.0.0.1 where pods share loopback), with every service port mapped to
 * `localPort(targetPort)`; plus the Pod object (the registry reads endpoint labels from it).
 */
export function endpointObjects(pod: PodSpec, services: readonly ServiceSpec[], localPort: (targetPort: number) => number | undefined, address = '127.0.0.1'): K8sObject[] {
  const out: K8sObject[] = [
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: pod.namespace, labels: pod.labels }, spec: { serviceAccountName: 'default' } },
  ];
  for (const s of servicesFor(pod, services)) {
    const ports = s.ports
      .map((p) => ({ name: p.name, port: localPort(p.targetPort), protocol: 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }))
      .filter((p) => p.port !== undefined);
    if (ports.length === 0) continue;
    out.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-${pod.name}`, namespace: pod.namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: pod.name, namespace: pod.namespace } }],
      ports,
    });
  }
  return out;
}

/** `app=echo,version=v1` -> {app: echo, version: v1}. */
export function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of text.split(',')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return out;
}

/** Pod name without its last two `-` segments (the README's "backend of a reply"). */
export function deploymentOfPod(pod: string): string {
  const parts = pod.split('-');
  return parts.length > 2 ? parts.slice(0, -2).join('-') : pod;
}
