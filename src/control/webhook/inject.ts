/**
 * Sidecar injection, as Istio's injector does it, as a pure function of the pod and the
 * revision's settings: the traffic-capture init container (`trellis capture`: the iptables rules
 * of `trellis up --capture transparent`), the proxy (`trellis proxy`, its identity from the
 * downward API), HTTP probes rewritten to go through the proxy's 15020 (`/app-health/<container>/
 * livez|readyz|startupz`, the originals handed to the proxy) so they pass under mTLS, the
 * application held until the proxy is ready, the proxy as a Kubernetes native sidecar (an init
 * container with `restartPolicy: Always`) when the API server supports them, and the proxy's
 * resources from Istio's annotations. With a mesh CA, the proxy's credential for it, as Istio's
 * template has it: a projected service-account token (volume `istio-token`, audience `istio-ca`,
 * 12 h, refreshed by the kubelet) at /var/run/secrets/tokens/istio-token, and the mesh roots from
 * the `istio-ca-root-cert` ConfigMap (volume `istiod-ca-cert`) at /var/run/secrets/istio, with
 * which the proxy verifies the CA's TLS port before it sends the token. The answer is a JSON
 * Patch; which pods reach the webhook at all is decided by the webhook configuration's
 * selectors (webhook-config.ts).
 */
import type { JsonPatchOp } from './admission.ts';

/** Istio's annotation and label names we honour. */
export const InjectAnnotations = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  proxyCpu: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCpuLimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  rewriteProbes: 'sidecar.istio.io/rewriteAppHTTPProbers',
  proxyConfig: 'proxy.istio.io/config',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  revision: 'istio.io/rev',
} as const;

/** One revision's injection settings. */
export interface InjectionSettings {
  /** The control plane revision (`default` for an unrevisioned one). */
  readonly revision: string;
  /** The one image (runs `trellis proxy`, `trellis capture`, `trellis wait`). */
  readonly image: string;
  readonly imagePullPolicy?: string;
  /** `host:port` of this revision's xDS server as pods reach it. */
  readonly xdsAddress: string;
  /** Inject the proxy as a native sidecar (Kubernetes >= 1.29). */
  readonly nativeSidecars: boolean;
  /** Mesh-wide default of `holdApplicationUntilProxyStarts` (a pod's proxy.istio.io/config may turn it on). */
  readonly holdApplicationUntilProxyStarts: boolean;
  /** Istio's defaults: 100m CPU and 128Mi memory requested, no limits. */
  readonly proxyResources?: { readonly requests?: Record<string, string>; readonly limits?: Record<string, string> };
  /** The mesh CA, when this revision runs one: where proxies reach it (TLS) and the identities' trust domain. */
  readonly ca?: InjectionCa;
  /** Istio's metrics merging (MeshConfig enablePrometheusMerge; default true). */
  readonly prometheusMerge?: boolean;
}

/** What an injected proxy needs to get its workload certificate. */
export interface InjectionCa {
  /** `host:port` of the CA's TLS port (Istio's CA_ADDR, istiod.istio-system.svc:15012). */
  readonly address: string;
  readonly trustDomain: string;
  /** Audience of the projected token (Istio's `istio-ca`). */
  readonly tokenAudience: string;
}

/** Where the injected volumes are mounted, as Istio mounts them. */
export const InjectedPaths = {
  tokenDir: '/var/run/secrets/tokens',
  token: '/var/run/secrets/tokens/istio-token',
  rootCertDir: '/var/run/secrets/istio',
  rootCert: '/var/run/secrets/istio/root-cert.pem',
} as const;

/** Lifetime the kubelet gives the projected token (Istio's 43200 s); it refreshes it at 80%. */
const TokenSeconds = 43_200;

/** The proxy's uid/gid, excluded from capture (Istio's 1337). */
export const ProxyUid = 1337;
/** The proxy's own ports: admin, status (app probes), health, Prometheus. */
const StatusPort = 15020;
const HealthPort = 15021;
const PrometheusPort = 15090;

type Obj = Record<string, unknown>;
interface Container extends Obj {
  name: string;
  ports?: { name?: string; containerPort?: number; protocol?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}
interface Probe extends Obj {
  httpGet?: { path?: string; port?: number | string; scheme?: string; host?: string; httpHeaders?: { name: string; value: string }[] };
  timeoutSeconds?: number;
}
interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: Container[]; initContainers?: Container[]; volumes?: Obj[]; serviceAccountName?: string; hostNetwork?: boolean };
}

/** Why a pod is not injected, or undefined when it is. */
export function skipReason(pod: PodLike): string | undefined {
  const ann = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const flag = labels[InjectAnnotations.inject] ?? ann[InjectAnnotations.inject];
  if (flag !== undefined && /^(false|n|no|off|0)$/i.test(flag)) return `${InjectAnnotations.inject}: "${flag}"`;
  if (ann[InjectAnnotations.status] !== undefined) return 'already injected';
  if (pod.spec?.hostNetwork === true) return 'hostNetwork pods share the node network: nothing to capture';
  if ((pod.spec?.containers ?? []).length === 0) return 'no containers';
  return undefined;
}

function proxyConfigHold(pod: PodLike): boolean | undefined {
  const text = pod.metadata?.annotations?.[InjectAnnotations.proxyConfig];
  const m = text === undefined ? null : /holdApplicationUntilProxyStarts:\s*(true|false)/.exec(text);
  return m ? m[1] === 'true' : undefined;
}

function portNumber(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

const ProbeKinds = [['livenessProbe', 'livez'], ['readinessProbe', 'readyz'], ['startupProbe', 'startupz']] as const;

/** The original HTTP probes by their /app-health path, and the containers with probes pointed at 15020. */
export function rewriteProbes(containers: readonly Container[]): { containers: Container[]; probes: Record<string, Obj> } {
  const probes: Record<string, Obj> = {};
  const out = containers.map((c) => {
    const copy: Container = { ...c };
    for (const [field, suffix] of ProbeKinds) {
      const p = c[field];
      const port = portNumber(c, p?.httpGet?.port);
      if (p?.httpGet === undefined || port === undefined) continue;
      const path = `/app-health/${c.name}/${suffix}`;
      probes[path] = {
        httpGet: { path: p.httpGet.path ?? '/', port, scheme: p.httpGet.scheme ?? 'HTTP', ...(p.httpGet.httpHeaders ? { httpHeaders: p.httpGet.httpHeaders } : {}) },
        timeoutSeconds: p.timeoutSeconds ?? 1,
      };
      copy[field] = { ...p, httpGet: { path, port: StatusPort, scheme: 'HTTP' } };
    }
    return copy;
  });
  return { containers: out, probes };
}

function resources(pod: PodLike, s: InjectionSettings): Obj {
  const a = pod.metadata?.annotations ?? {};
  const requests: Record<string, string> = { cpu: '100m', memory: '128Mi', ...(s.proxyResources?.requests ?? {}) };
  const limits: Record<string, string> = { ...(s.proxyResources?.limits ?? {}) };
  if (a[InjectAnnotations.proxyCpu]) requests.cpu = a[InjectAnnotations.proxyCpu];
  if (a[InjectAnnotations.proxyMemory]) requests.memory = a[InjectAnnotations.proxyMemory];
  if (a[InjectAnnotations.proxyCpuLimit]) limits.cpu = a[InjectAnnotations.proxyCpuLimit];
  if (a[InjectAnnotations.proxyMemoryLimit]) limits.memory = a[InjectAnnotations.proxyMemoryLimit];
  return Object.keys(limits).length > 0 ? { requests, limits } : { requests };
}

function fieldEnv(name: string, fieldPath: string): Obj {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function portList(text: string | undefined): string[] {
  return (text ?? '').split(',').map((p) => p.trim()).filter((p) => /^\d+$/.test(p));
}

/** The containers and metadata injection adds to `pod` (without applying them). */
export function injectedParts(pod: PodLike, s: InjectionSettings): {
  initContainers: Container[];
  containers: Container[];
  volumes: Obj[];
  annotations: Record<string, string>;
  labels: Record<string, string>;
} {
  const ann = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const rewrite = !/^false$/i.test(ann[InjectAnnotations.rewriteProbes] ?? 'true');
  const app = rewrite ? rewriteProbes(pod.spec?.containers ?? []) : { containers: [...(pod.spec?.containers ?? [])], probes: {} };
  const hold = proxyConfigHold(pod) ?? s.holdApplicationUntilProxyStarts;
  const pull = s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {};

  const captureArgs = ['capture'];
  const exIn = portList(ann[InjectAnnotations.excludeInboundPorts]);
  const exOut = portList(ann[InjectAnnotations.excludeOutboundPorts]);
  if (exIn.length > 0) captureArgs.push('--exclude-inbound-ports', exIn.join(','));
  if (exOut.length > 0) captureArgs.push('--exclude-outbound-ports', exOut.join(','));
  const init: Container = {
    name: 'trellis-init',
    image: s.image,
    ...pull,
    args: captureArgs,
    resources: { requests: { cpu: '10m', memory: '32Mi' } },
    securityContext: {
      runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };

  const podLabels = Object.entries(labels).filter(([k]) => !k.startsWith('pod-template-hash')).map(([k, v]) => `${k}=${v}`).join(',');
  const metadata = JSON.stringify({ REVISION: s.revision });
  const proxyArgs = [
    'proxy', '--xds', s.xdsAddress, '--kind', 'sidecar',
    '--namespace', '$(POD_NAMESPACE)', '--workload', '$(POD_NAME)', '--service-account', '$(SERVICE_ACCOUNT)', '--ip', '$(INSTANCE_IP)',
    // Health, status and Prometheus answer the kubelet on the pod IP; the admin API stays on loopback.
    '--admin-address', '0.0.0.0', '--status-port', String(StatusPort), '--metadata', metadata,
    ...(podLabels ? ['--labels', podLabels] : []),
    ...(Object.keys(app.probes).length > 0 ? ['--app-probes', JSON.stringify(app.probes)] : []),
    ...(s.ca !== undefined ? ['--ca-address', s.ca.address, '--ca-token-file', InjectedPaths.token, '--ca-root-cert', InjectedPaths.rootCert, '--trust-domain', s.ca.trustDomain] : []),
  ];
  const volumes: Obj[] = s.ca === undefined ? [] : [
    { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: s.ca.tokenAudience, expirationSeconds: TokenSeconds, path: 'istio-token' } }] } },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];
  const mounts: Obj[] = s.ca === undefined ? [] : [
    { name: 'istio-token', mountPath: InjectedPaths.tokenDir, readOnly: true },
    { name: 'istiod-ca-cert', mountPath: InjectedPaths.rootCertDir, readOnly: true },
  ];
  const metricsMerge = prometheusMerge(ann, s.prometheusMerge ?? true);
  const readiness = { httpGet: { path: '/healthz/ready', port: HealthPort }, initialDelaySeconds: 0, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 };
  const proxy: Container = {
    name: 'trellis-proxy',
    image: s.image,
    ...pull,
    args: proxyArgs,
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('INSTANCE_IP', 'status.podIP'),
      fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
      fieldEnv('NODE_NAME', 'spec.nodeName'),
      ...(metricsMerge?.appScrape !== undefined ? [{ name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: metricsMerge.appScrape }] : []),
    ],
    ports: [{ name: 'http-envoy-prom', containerPort: PrometheusPort, protocol: 'TCP' }, { name: 'status-port', containerPort: StatusPort, protocol: 'TCP' }],
    readinessProbe: readiness,
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
    resources: resources(pod, s),
    securityContext: {
      runAsUser: ProxyUid, runAsGroup: ProxyUid, runAsNonRoot: true, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };

  const initContainers = [init, ...(pod.spec?.initContainers ?? [])];
  let containers: Container[];
  if (s.nativeSidecars) {
    // A native sidecar starts before the app containers, and they start only once its startup
    // probe passes: that is holdApplicationUntilProxyStarts without a postStart hook.
    const sidecar: Container = { ...proxy, restartPolicy: 'Always', startupProbe: { httpGet: { path: '/healthz/ready', port: HealthPort }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 } };
    initContainers.splice(1, 0, sidecar);
    containers = app.containers;
  } else if (hold) {
    // Containers start in order, and the next one waits for this one's postStart hook.
    containers = [{ ...proxy, lifecycle: { postStart: { exec: { command: ['trellis', 'wait', '--timeout', '600s'] } } } }, ...app.containers];
  } else {
    containers = [...app.containers, proxy];
  }

  const status = JSON.stringify({
    initContainers: initContainers.filter((c) => c.name.startsWith('trellis-')).map((c) => c.name), containers: containers.filter((c) => c.name === 'trellis-proxy').map((c) => c.name),
    volumes: volumes.map((v) => v.name), revision: s.revision,
  });
  const canonical = labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? pod.metadata?.generateName?.replace(/-$/, '') ?? pod.metadata?.name ?? 'unknown';
  return {
    initContainers,
    containers,
    volumes: [...(pod.spec?.volumes ?? []), ...volumes],
    annotations: {
      ...ann,
      [InjectAnnotations.status]: status,
      [InjectAnnotations.revision]: s.revision,
      'kubectl.kubernetes.io/default-container': app.containers[0]?.name ?? '',
      ...(metricsMerge !== undefined ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(StatusPort), 'prometheus.io/path': '/stats/prometheus' } : {}),
    },
    labels: {
      ...labels,
      'security.istio.io/tlsMode': 'istio',
      'service.istio.io/canonical-name': canonical,
      'service.istio.io/canonical-revision': labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
    },
  };
}

/**
 * Istio's metrics merging at injection: unless the pod says `prometheus.io/scrape: "false"`, opts
 * out with `prometheus.istio.io/merge-metrics: "false"` or the mesh turns merging off, Prometheus
 * is pointed at the status port (15020 /stats/prometheus: the proxy's metrics and the app's), and
 * the pod's own scrape annotations are handed to the proxy in ISTIO_PROMETHEUS_ANNOTATIONS so it
 * scrapes the app. A pod already pointing at 15020 (re-injected) keeps what it has.
 */
function prometheusMerge(ann: Readonly<Record<string, string>>, enabled: boolean): { appScrape?: string } | undefined {
  if (!enabled || (ann['prometheus.io/scrape'] ?? '').toLowerCase() === 'false' || (ann['prometheus.istio.io/merge-metrics'] ?? '').toLowerCase() === 'false') return undefined;
  if (ann['prometheus.io/port'] === String(StatusPort)) return {};
  const own = ['scrape', 'port', 'path'].filter((k) => ann[`prometheus.io/${k}`] !== undefined);
  if (own.length === 0) return {};
  return { appScrape: JSON.stringify(Object.fromEntries(own.map((k) => [k, ann[`prometheus.io/${k}`]]))) };
}

/** The JSON Patch that injects `pod`, or the reason it is left alone. */
export function injectPod(pod: PodLike, s: InjectionSettings): { patch: JsonPatchOp[] } | { skipped: string } {
  const why = skipReason(pod);
  if (why !== undefined) return { skipped: why };
  const parts = injectedParts(pod, s);
  // `add` on an existing member replaces it (RFC 6902 4.1), so these work whether or not the
  // pod had init containers, annotations or labels.
  return {
    patch: [
      { op: 'add', path: '/spec/initContainers', value: parts.initContainers },
      { op: 'add', path: '/spec/containers', value: parts.containers },
      ...(parts.volumes.length > 0 ? [{ op: 'add' as const, path: '/spec/volumes', value: parts.volumes }] : []),
      // A projected token needs a service account; the ServiceAccount admission plugin (on by
      // default, run before webhooks) names `default` when the pod names none, and so do we where it is off.
      ...(s.ca !== undefined && !pod.spec?.serviceAccountName ? [{ op: 'add' as const, path: '/spec/serviceAccountName', value: 'default' }] : []),
      { op: 'add', path: '/metadata/annotations', value: parts.annotations },
      { op: 'add', path: '/metadata/labels', value: parts.labels },
    ],
  };
}
