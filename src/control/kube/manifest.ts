/**
 * The Kubernetes objects of one control plane revision, as `trellis manifest --revision R` prints
 * them for `kubectl apply` and as charts/trellis renders them (test/kube-charts.test.ts holds the
 * two to the same objects): ServiceAccount, least-privilege ClusterRole/Role and bindings, the
 * Deployment (non-root uid 1337, read-only root filesystem, the flags of `trellis control
 * --kubernetes`), its Service (xDS 15010, xDS and the CA over TLS 15012, monitoring 15014, webhook
 * 443 -> 15017), a
 * PodDisruptionBudget, a HorizontalPodAutoscaler, and the revision's webhook configurations
 * (their CA bundle is filled in by the running control plane).
 */
import type { KubeObject } from '../../config/store/kubernetes-rest.ts';
import { injectorConfig, validatorConfig } from '../webhook/webhook-config.ts';

/** What varies between installs (the chart's values). */
export interface ManifestOptions {
  readonly revision: string;
  readonly namespace: string;
  readonly image: string;
  readonly replicas: number;
  readonly hpa: { readonly minReplicas: number; readonly maxReplicas: number; readonly cpuPercent: number };
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly validateUnlabelled: boolean;
}

export const DefaultManifestOptions: ManifestOptions = Object.freeze({
  revision: 'default',
  namespace: 'trellis-system',
  image: 'trellis:0.1.0',
  replicas: 2,
  hpa: Object.freeze({ minReplicas: 2, maxReplicas: 5, cpuPercent: 80 }),
  holdApplicationUntilProxyStarts: false,
  validateUnlabelled: false,
});

/** `trellis` for the default revision, `trellis-<rev>` otherwise. */
export function revisionName(revision: string): string {
  return revision === 'default' ? 'trellis' : `trellis-${revision}`;
}

const ReadVerbs = ['get', 'list', 'watch'];

/** The rules the control plane needs cluster-wide, and nothing more. */
export function controlPlaneRules(): Record<string, unknown>[] {
  return [
    { apiGroups: [''], resources: ['namespaces', 'services', 'pods', 'secrets'], verbs: ReadVerbs },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ReadVerbs },
    { apiGroups: ['networking.istio.io', 'security.istio.io', 'telemetry.istio.io'], resources: ['*'], verbs: ReadVerbs },
    { apiGroups: ['networking.istio.io', 'security.istio.io'], resources: ['*/status'], verbs: ['get', 'patch', 'update'] },
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['*'], verbs: ReadVerbs },
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses/status', 'gateways/status', 'httproutes/status', 'grpcroutes/status', 'tcproutes/status', 'tlsroutes/status'], verbs: ['get', 'patch', 'update'] },
    { apiGroups: ['trellis.dev'], resources: ['workloads'], verbs: ReadVerbs },
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update'] },
    // The mesh CA: check workloads' service-account tokens, and publish istio-ca-root-cert to every namespace.
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
  ];
}

/** Every object of the revision, in apply order. */
export function controlPlaneManifest(o: ManifestOptions = DefaultManifestOptions): KubeObject[] {
  const name = revisionName(o.revision);
  const ns = o.namespace;
  const labels = { app: 'trellis', 'istio.io/rev': o.revision, 'app.kubernetes.io/name': 'trellis', 'app.kubernetes.io/part-of': 'trellis' };
  const selector = { app: 'trellis', 'istio.io/rev': o.revision };
  const meta = (n: string, namespaced = true) => ({ name: n, ...(namespaced ? { namespace: ns } : {}), labels });
  const args = [
    'control', '--kubernetes', '--revision', o.revision, '--system-namespace', ns,
    '--host', '0.0.0.0', '--xds-port', '15010', '--debug-port', '15014', '--webhook-port', '15017',
    '--injection-image', o.image, '--injection-xds', `${name}.${ns}.svc:15010`,
    '--ca-tls-port', '15012', '--injection-ca-address', `${name}.${ns}.svc:15012`,
    ...(o.holdApplicationUntilProxyStarts ? ['--hold-application-until-proxy-starts'] : []),
    ...(o.validateUnlabelled ? ['--validate-unlabelled'] : []),
  ];
  const client = { service: { namespace: ns, name, port: 443 } };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name) },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(`${name}-${ns}`, false), rules: controlPlaneRules() },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: meta(`${name}-${ns}`, false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${name}-${ns}` },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(name),
      rules: [
        // The webhook CA and mesh CA (istio-ca-secret) Secrets, created by the first replica.
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(name),
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: selector },
        strategy: { rollingUpdate: { maxSurge: '100%', maxUnavailable: '25%' } },
        template: {
          metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' } },
          spec: {
            serviceAccountName: name,
            securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, fsGroup: 1337, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [{
              name: 'control',
              image: o.image,
              args,
              ports: [
                { name: 'grpc-xds', containerPort: 15010, protocol: 'TCP' },
                { name: 'tls-xds', containerPort: 15012, protocol: 'TCP' },
                { name: 'http-monitoring', containerPort: 15014, protocol: 'TCP' },
                { name: 'https-webhook', containerPort: 15017, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/ready', port: 15014 }, periodSeconds: 3, timeoutSeconds: 5 },
              resources: { requests: { cpu: '500m', memory: '512Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            }],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(name),
      spec: {
        selector,
        ports: [
          { name: 'grpc-xds', port: 15010, targetPort: 15010, protocol: 'TCP' },
          { name: 'tls-xds', port: 15012, targetPort: 15012, protocol: 'TCP' },
          { name: 'http-monitoring', port: 15014, targetPort: 15014, protocol: 'TCP' },
          { name: 'https-webhook', port: 443, targetPort: 15017, protocol: 'TCP' },
        ],
      },
    },
    { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(name), spec: { minAvailable: 1, selector: { matchLabels: selector } } },
    {
      apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: meta(name),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        minReplicas: o.hpa.minReplicas,
        maxReplicas: o.hpa.maxReplicas,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: o.hpa.cpuPercent } } }],
      },
    },
    injectorConfig(o.revision, client),
    validatorConfig(o.revision, client, undefined, o.validateUnlabelled || o.revision === 'default'),
  ];
}
