/**
 * Where each resource type Trellis reads lives in the Kubernetes API: group, the version we read
 * it at, its plural and whether it is namespaced. A static table rather than discovery: the set
 * is what the translation understands, the versions are the ones the upstream CRDs
 * (../shared/k8s) serve, and a CRD that is not installed shows up as a 404 we report by name.
 */
import { ResourceTypes } from '../resource.ts';
import type { ResourceType } from '../resource.ts';

/** The Pod type: read by the registry for labels and service accounts (and by the analyzer as workloads). */
export const PodType: ResourceType = ResourceTypes.Pod;

/** One readable kind. */
export interface KubeKind {
  readonly type: ResourceType;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Whether it comes from a CustomResourceDefinition (may be absent from a cluster). */
  readonly crd: boolean;
}

const T = ResourceTypes;

function k(type: ResourceType, version: string, plural: string, namespaced = true): KubeKind {
  const slash = type.indexOf('/');
  const group = type.slice(0, slash);
  const builtin = group === 'core' || group === 'discovery.k8s.io';
  return Object.freeze({ type, group, version, kind: type.slice(slash + 1), plural, namespaced, crd: !builtin });
}

/** Every kind the Kubernetes store can watch. */
export const KubeKinds: readonly KubeKind[] = Object.freeze([
  k(T.VirtualService, 'v1', 'virtualservices'),
  k(T.DestinationRule, 'v1', 'destinationrules'),
  k(T.IstioGateway, 'v1', 'gateways'),
  k(T.ServiceEntry, 'v1', 'serviceentries'),
  k(T.WorkloadEntry, 'v1', 'workloadentries'),
  k(T.Sidecar, 'v1', 'sidecars'),
  k(T.PeerAuthentication, 'v1', 'peerauthentications'),
  k(T.RequestAuthentication, 'v1', 'requestauthentications'),
  k(T.AuthorizationPolicy, 'v1', 'authorizationpolicies'),
  k(T.Telemetry, 'v1', 'telemetries'),
  k(T.GatewayClass, 'v1', 'gatewayclasses', false),
  k(T.Gateway, 'v1', 'gateways'),
  k(T.HTTPRoute, 'v1', 'httproutes'),
  k(T.GRPCRoute, 'v1', 'grpcroutes'),
  k(T.ReferenceGrant, 'v1beta1', 'referencegrants'),
  k(T.TCPRoute, 'v1', 'tcproutes'),
  k(T.TLSRoute, 'v1', 'tlsroutes'),
  k(T.Namespace, 'v1', 'namespaces', false),
  k(T.Service, 'v1', 'services'),
  k(T.Secret, 'v1', 'secrets'),
  k(T.EndpointSlice, 'v1', 'endpointslices'),
  k(PodType, 'v1', 'pods'),
  k(T.Workload, 'v1alpha1', 'workloads'),
]);

const byType = new Map(KubeKinds.map((x) => [x.type, x]));

/** The kind of a resource type, or undefined when Trellis does not read it from Kubernetes. */
export function kubeKind(type: ResourceType): KubeKind | undefined {
  return byType.get(type);
}

/** `apiVersion` as Kubernetes writes it (`v1`, `networking.istio.io/v1`). */
export function apiVersionOf(kind: KubeKind): string {
  return kind.group === 'core' ? kind.version : `${kind.group}/${kind.version}`;
}

/** The collection path, cluster-wide or in one namespace: `/apis/networking.istio.io/v1/namespaces/ns/virtualservices`. */
export function collectionPath(kind: KubeKind, namespace?: string): string {
  const base = kind.group === 'core' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  return kind.namespaced && namespace !== undefined ? `${base}/namespaces/${namespace}/${kind.plural}` : `${base}/${kind.plural}`;
}

/** One object's path (optionally a subresource such as `status`). */
export function objectPath(kind: KubeKind, namespace: string, name: string, subresource?: string): string {
  const p = `${collectionPath(kind, kind.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
  return subresource ? `${p}/${subresource}` : p;
}
