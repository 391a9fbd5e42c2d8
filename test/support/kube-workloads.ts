/**
 * Playing kubelet and EndpointSlice controller on a test API server: a "pod" is a Pod object
 * whose status (Running, Ready, podIP) the test writes, with one EndpointSlice per pod so each
 * pod can have its own port. The API server refuses loopback addresses in EndpointSlices
 * (`may not be in the loopback range`), so backends that must answer on 127.0.0.1 are registered
 * as Istio WorkloadEntries instead (a Service's selector selects them, as for VMs in Istio),
 * created through the same API. An injected pod's proxy runs from its own container arguments.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject, KubeRest } from '../../src/config/store/kubernetes-rest.ts';
import { applyObject } from './kube-apiserver.ts';
import { nodeBin, repoRoot, spawnTracked, tempDir, waitFor } from './processes.ts';
import type { Cleanups, Spawned } from './processes.ts';

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

/** The parts of a Pod the injection tests read. */
export interface InjectedContainer { name: string; args?: string[]; readinessProbe?: { httpGet?: { port: number; path: string } }; restartPolicy?: string; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }
export interface InjectedPod extends KubeObject { spec: { serviceAccountName?: string; containers: InjectedContainer[]; initContainers?: InjectedContainer[]; volumes?: Record<string, unknown>[] } }

/** The injected proxy container of a pod (a native sidecar or a regular container). */
export function injectedProxy(pod: InjectedPod): InjectedContainer | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === 'trellis-proxy');
}

export interface InjectedProxyOptions {
  /** Node metadata merged over the injected `--metadata` (explicit-capture port maps). */
  readonly metadata: Record<string, unknown>;
  /** Where the kubelet would have mounted injected files: container path -> local file. */
  readonly files?: Readonly<Record<string, string>>;
  /** Wait for /healthz/ready (default true). */
  readonly waitReady?: boolean;
}

/**
 * Runs the injected proxy container's own command line as a local process (there is no kubelet):
 * the downward-API variables from the pod, loopback instead of the pod IP, free ports instead of
 * the pod's, explicit capture instead of iptables, and mounted paths mapped to local files.
 */
export async function runInjectedProxy(cleanups: Cleanups, pod: InjectedPod, o: InjectedProxyOptions): Promise<Spawned & { nodeId: string; ports: { admin: number; health: number } }> {
  const c = injectedProxy(pod);
  if (c?.args === undefined) throw new Error(`pod ${pod.metadata?.name} has no injected proxy`);
  const env: Record<string, string> = {
    POD_NAME: pod.metadata!.name!, POD_NAMESPACE: pod.metadata!.namespace!, INSTANCE_IP: '127.0.0.1', SERVICE_ACCOUNT: pod.spec.serviceAccountName ?? 'default', NODE_NAME: 'node-1',
  };
  const args = c.args.map((a) => o.files?.[a] ?? a.replace(/\$\((\w+)\)/g, (_m, v: string) => env[v] ?? ''));
  const meta = JSON.parse(args[args.indexOf('--metadata') + 1]) as Record<string, unknown>;
  const dir = tempDir(cleanups, 'trellis-injected-');
  const ready = join(dir, 'ready.json');
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), ...args,
    '--admin-address', '127.0.0.1', '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--status-port', '0',
    '--metadata', JSON.stringify({ ...meta, ...o.metadata }),
    '--concurrency', '1', '--log-level', 'warn', '--drain-timeout', '1s', '--ready-file', ready]);
  const ports = await waitFor('injected proxy ready file', () => {
    if (p.child.exitCode !== null) throw new Error(`proxy exited: ${p.output()}`);
    try {
      return JSON.parse(readFileSync(ready, 'utf8')) as { admin: number; health: number; node: string };
    } catch {
      return undefined;
    }
  }, 60_000);
  if (o.waitReady !== false) {
    await waitFor('injected proxy ready', async () => (await fetch(`http://127.0.0.1:${ports.health}/healthz/ready`)).status === 200, 60_000, 100)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${p.output().slice(-3000)}`);
      });
  }
  return { ...p, nodeId: ports.node, ports };
}
