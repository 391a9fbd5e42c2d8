/**
 * The catalogue of resource kinds: for each managed kind, its group, accepted API versions,
 * scope, and the (annotated, compiled-once) schema of its spec or body; plus the kinds we know
 * but do not manage (passed over with an info diagnostic) and the lookups that tell a typo
 * ("networking.istio.io/v1 VirtualServce") from a foreign kind (cert-manager's Certificate).
 * Building it (loading the model packages, patching and annotating their schemas) costs every
 * process that loads config 150-450 ms of CPU, so the build (scripts/build-dist.ts) also stores the
 * result as JSON beside the compiled module (`catalog.json`, keyed by the model packages'
 * versions); a process uses it when the key matches and builds the catalog otherwise.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ResourceTypes } from '../resource.ts';
import type { ResourceType } from '../resource.ts';
import type { SchemaNode } from './types.ts';
import { upstreamSchemas } from './upstream.ts';
import { CHECK_TABLES, annotate } from './checks.ts';
import { applyPatches } from './patches.ts';
import {
  CONFIGMAP_BODY, ENDPOINTSLICE_BODY, K8S_WORKLOAD_SPEC, NAMESPACE_SPEC, SECRET_BODY, SERVICE_SPEC, TELEMETRY_SPEC, WORKLOAD_SPEC,
} from './local.ts';

/** What the loader needs to know about one managed kind. */
export interface KindInfo {
  readonly type: ResourceType;
  readonly group: string;
  readonly kind: string;
  readonly versions: readonly string[];
  readonly clusterScoped: boolean;
  /** Whether `spec` must be present. */
  readonly specRequired: boolean;
  /** Spec schema; absent for spec-less kinds. */
  readonly spec?: SchemaNode;
  /** Top-level fields other than apiVersion/kind/metadata/spec/status (Secret, ConfigMap, EndpointSlice). */
  readonly body?: SchemaNode;
  /** Metadata name format: DNS-1123 label (Service, Namespace) or subdomain (the rest). */
  readonly nameFormat: 'label' | 'subdomain';
}

interface Row {
  type: ResourceType;
  versions: string[];
  upstream?: string;
  spec?: SchemaNode;
  body?: SchemaNode;
  specRequired?: boolean;
  clusterScoped?: boolean;
  nameFormat?: 'label' | 'subdomain';
}

const T = ResourceTypes;
const NET = ['v1', 'v1beta1', 'v1alpha3'];
const SEC = ['v1', 'v1beta1'];
const GW = ['v1', 'v1beta1'];

const ROWS: Row[] = [
  { type: T.VirtualService, versions: NET, upstream: 'networking.istio.io.v1beta1.VirtualService' },
  { type: T.DestinationRule, versions: NET, upstream: 'networking.istio.io.v1beta1.DestinationRule' },
  { type: T.IstioGateway, versions: NET, upstream: 'networking.istio.io.v1beta1.Gateway' },
  { type: T.ServiceEntry, versions: NET, upstream: 'networking.istio.io.v1beta1.ServiceEntry' },
  { type: T.WorkloadEntry, versions: NET, upstream: 'networking.istio.io.v1beta1.WorkloadEntry' },
  { type: T.Sidecar, versions: NET, upstream: 'networking.istio.io.v1beta1.Sidecar' },
  { type: T.PeerAuthentication, versions: SEC, upstream: 'security.istio.io.v1beta1.PeerAuthentication' },
  { type: T.RequestAuthentication, versions: SEC, upstream: 'security.istio.io.v1.RequestAuthentication' },
  { type: T.AuthorizationPolicy, versions: SEC, upstream: 'security.istio.io.v1.AuthorizationPolicy' },
  { type: T.Telemetry, versions: ['v1', 'v1alpha1'], spec: TELEMETRY_SPEC },
  { type: T.GatewayClass, versions: GW, upstream: 'gateway.networking.k8s.io.v1.GatewayClass', clusterScoped: true },
  { type: T.Gateway, versions: GW, upstream: 'gateway.networking.k8s.io.v1.Gateway' },
  { type: T.HTTPRoute, versions: GW, upstream: 'gateway.networking.k8s.io.v1.HTTPRoute' },
  { type: T.GRPCRoute, versions: ['v1', 'v1alpha2'], upstream: 'gateway.networking.k8s.io.v1alpha2.GRPCRoute' },
  { type: T.ReferenceGrant, versions: ['v1', 'v1beta1', 'v1alpha2'], upstream: 'gateway.networking.k8s.io.v1beta1.ReferenceGrant' },
  { type: T.TCPRoute, versions: ['v1alpha2'], upstream: 'gateway.networking.k8s.io.v1alpha2.TCPRoute' },
  { type: T.TLSRoute, versions: ['v1alpha2', 'v1alpha3'], upstream: 'gateway.networking.k8s.io.v1alpha2.TLSRoute' },
  { type: T.Namespace, versions: ['v1'], spec: NAMESPACE_SPEC, clusterScoped: true, nameFormat: 'label' },
  { type: T.Service, versions: ['v1'], spec: SERVICE_SPEC, nameFormat: 'label' },
  { type: T.Secret, versions: ['v1'], body: SECRET_BODY },
  { type: T.ConfigMap, versions: ['v1'], body: CONFIGMAP_BODY },
  { type: T.EndpointSlice, versions: ['v1'], body: ENDPOINTSLICE_BODY },
  { type: T.Workload, versions: ['v1alpha1'], spec: WORKLOAD_SPEC, specRequired: true, nameFormat: 'label' },
  { type: T.Pod, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.Deployment, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.StatefulSet, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.DaemonSet, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.ReplicaSet, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.Job, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
  { type: T.CronJob, versions: ['v1'], spec: K8S_WORKLOAD_SPEC },
];

/** Kinds we recognise but do not manage in local mode, by group (`core` for the core group). */
const UNMANAGED: Readonly<Record<string, readonly string[]>> = {
  core: ['ServiceAccount', 'PersistentVolumeClaim', 'PersistentVolume', 'Endpoints', 'LimitRange', 'ResourceQuota',
    'ReplicationController', 'Event', 'Node', 'PodTemplate', 'List'],
  apps: ['ControllerRevision'],
  batch: [],
  'rbac.authorization.k8s.io': ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'],
  autoscaling: ['HorizontalPodAutoscaler'],
  policy: ['PodDisruptionBudget'],
  'networking.k8s.io': ['Ingress', 'IngressClass', 'NetworkPolicy'],
  'apiextensions.k8s.io': ['CustomResourceDefinition'],
  'admissionregistration.k8s.io': ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'],
  'discovery.k8s.io': [],
  'networking.istio.io': ['EnvoyFilter', 'WorkloadGroup', 'ProxyConfig'],
  'security.istio.io': [],
  'telemetry.istio.io': [],
  'extensions.istio.io': ['WasmPlugin'],
  'install.istio.io': ['IstioOperator'],
  'gateway.networking.k8s.io': ['UDPRoute', 'BackendTLSPolicy', 'BackendLBPolicy', 'ListenerSet', 'XListenerSet'],
  'trellis.dev': [],
};

let byType: Map<ResourceType, KindInfo> | undefined;

function build(): Map<ResourceType, KindInfo> {
  const up = upstreamSchemas();
  const out = new Map<ResourceType, KindInfo>();
  for (const r of ROWS) {
    const slash = r.type.indexOf('/');
    let spec = r.spec;
    let specRequired = r.specRequired ?? false;
    if (r.upstream) {
      const root = up.get(r.upstream);
      if (!root?.properties?.spec) throw new Error(`upstream schema ${r.upstream} not found`);
      spec = root.properties.spec;
      specRequired = root.required?.includes('spec') ?? false;
      applyPatches(r.upstream, spec);
      const missing = annotate(spec, CHECK_TABLES[r.upstream] ?? []);
      if (missing.length > 0) throw new Error(`value-check paths not in schema ${r.upstream}: ${missing.join(', ')}`);
    }
    out.set(r.type, {
      type: r.type,
      group: r.type.slice(0, slash),
      kind: r.type.slice(slash + 1),
      versions: r.versions,
      clusterScoped: r.clusterScoped ?? false,
      specRequired,
      spec,
      body: r.body,
      nameFormat: r.nameFormat ?? 'subdomain',
    });
  }
  return out;
}

/** Where the build stores the catalog (next to this module; absent beside the sources). */
export const prebuiltCatalogFile = fileURLToPath(new URL('./catalog.json', import.meta.url));

/** What a stored catalog must have been built from to be used: the model packages' versions. */
export function prebuiltCatalogKey(): string {
  const require = createRequire(import.meta.url);
  const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
  return JSON.stringify({ istio: version('@kubernetes-models/istio'), gatewayApi: version('@kubernetes-models/gateway-api') });
}

/** The catalog as the build stores it: `{ key, kinds }` JSON (kinds are plain data). */
export function prebuiltCatalogJson(): string {
  return JSON.stringify({ key: prebuiltCatalogKey(), kinds: [...build().values()] });
}

/** The stored catalog when it was built from the current model packages, else undefined. */
export function loadPrebuiltCatalog(file = prebuiltCatalogFile): Map<ResourceType, KindInfo> | undefined {
  let stored: { key?: string; kinds?: KindInfo[] };
  try {
    stored = JSON.parse(readFileSync(file, 'utf8')) as typeof stored;
  } catch {
    return undefined;
  }
  if (stored.key !== prebuiltCatalogKey() || !Array.isArray(stored.kinds)) return undefined;
  return new Map(stored.kinds.map((k) => [k.type, k]));
}

/** Every managed kind, built once (schemas captured, patched and annotated on first use). */
export function kindCatalog(): ReadonlyMap<ResourceType, KindInfo> {
  byType ??= loadPrebuiltCatalog() ?? build();
  return byType;
}

/** Builds the catalog from the model packages (what the stored one must equal). */
export function buildCatalog(): Map<ResourceType, KindInfo> {
  return build();
}

/** Splits an apiVersion into group (`core` for "v1") and version. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: 'core', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** Groups whose kinds we know: anything else under these groups (or a near-miss of them) is an error. */
export function knownGroups(): string[] {
  const groups = new Set<string>(Object.keys(UNMANAGED));
  for (const k of kindCatalog().values()) groups.add(k.group);
  return [...groups];
}

/** Kinds known in a group, managed or not. */
export function kindsInGroup(group: string): string[] {
  const out = [...(UNMANAGED[group] ?? [])];
  for (const k of kindCatalog().values()) if (k.group === group) out.push(k.kind);
  return out;
}

/** True for kinds we recognise but pass over. */
export function isUnmanaged(group: string, kind: string): boolean {
  return UNMANAGED[group]?.includes(kind) ?? false;
}
