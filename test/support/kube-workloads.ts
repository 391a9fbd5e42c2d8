/**
 * Playing kubelet and EndpointSlice controller on a test API server: a "pod" is a Pod object
 * whose status (Running, Ready, podIP) the test writes, with one EndpointSlice per pod so each
 * pod can have its own port. The API server refuses loopback addresses in EndpointSlices
 * (`may not be in the loopback range`), so backends that must answer on 127.0.0.1 are registered
 * as Istio WorkloadEntries instead (a Service's selector selects them, as for VMs in Istio),
 * created through the same API.
 */
import type { KubeObject, KubeRest } from '../../src/config/store/kubernetes-rest.ts';
import { applyObject } from './kube-apiserver.ts';

export interface PodSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly labels: Record<string, string>;
  readonly serviceAccount?: string;
  /** The Service this pod backs, and the port (name and loopback number) it serves. */
  readonly service?: string;
  readonly portName?: string;
  readonly port?: number;
  readonly ip?: string;
}

/** Creates the Pod, marks it Running/Ready at `ip`, and publishes its EndpointSlice. */
export async function registerPod(rest: KubeRest, p: PodSpec): Promise<KubeObject> {
  const ns = p.namespace ?? 'default';
  const ip = p.ip ?? '127.0.0.1';
  const pod = await rest.request<KubeObject>('POST', `/api/v1/namespaces/${ns}/pods`, {
    body: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: p.name, namespace: ns, labels: p.labels },
      spec: { serviceAccountName: p.serviceAccount ?? 'default', containers: [{ name: 'app', image: 'echo' }] },
    },
  });
  await markRunning(rest, ns, p.name, ip);
  if (p.service !== undefined && p.port !== undefined) {
    await applyObject(rest, {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${p.service}-${p.name}`, namespace: ns, labels: { 'kubernetes.io/service-name': p.service, 'endpointslice.kubernetes.io/managed-by': 'trellis-test' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: p.name, namespace: ns } }],
      ports: [{ name: p.portName ?? 'http', port: p.port, protocol: 'TCP' }],
    });
  }
  return pod;
}

/** Writes the status a kubelet would for a started pod. */
export async function markRunning(rest: KubeRest, namespace: string, name: string, ip = '127.0.0.1'): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await rest.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
    contentType: 'application/merge-patch+json',
    body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], startTime: now, conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }] } },
  });
}

/** A backend on loopback as an Istio WorkloadEntry selected by its Service (labels), with its service account. */
export async function registerWorkloadEntry(rest: KubeRest, p: { name: string; namespace?: string; labels: Record<string, string>; serviceAccount?: string; portName?: string; port: number }): Promise<void> {
  await applyObject(rest, {
    apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry',
    metadata: { name: p.name, namespace: p.namespace ?? 'default' },
    spec: { address: '127.0.0.1', labels: p.labels, ports: { [p.portName ?? 'http']: p.port }, serviceAccount: p.serviceAccount ?? 'default' },
  });
}
