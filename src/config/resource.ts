/**
 * The shape every configuration object takes inside Trellis, whatever its API group: a
 * Kubernetes-style envelope (apiVersion, kind, metadata, spec) plus where it came from, so that
 * every diagnostic can name the file, line, resource and field. Resources are validated once at
 * the edge (config loading) and frozen; everything downstream trusts their types.
 */

/**
 * Identifies a resource type independently of its API version: `<group>/<Kind>`, with the core
 * group written `core` (e.g. `core/Service`, `networking.istio.io/VirtualService`,
 * `gateway.networking.k8s.io/Gateway`). Istio's and the Gateway API's `Gateway` differ only by group.
 */
export type ResourceType = string;

/** The resource types Trellis understands; anything else is passed over with an info diagnostic. */
export const ResourceTypes = {
  // networking.istio.io (v1; v1beta1 and v1alpha3 accepted as aliases)
  VirtualService: 'networking.istio.io/VirtualService',
  DestinationRule: 'networking.istio.io/DestinationRule',
  IstioGateway: 'networking.istio.io/Gateway',
  ServiceEntry: 'networking.istio.io/ServiceEntry',
  WorkloadEntry: 'networking.istio.io/WorkloadEntry',
  Sidecar: 'networking.istio.io/Sidecar',
  // security.istio.io/v1
  PeerAuthentication: 'security.istio.io/PeerAuthentication',
  RequestAuthentication: 'security.istio.io/RequestAuthentication',
  AuthorizationPolicy: 'security.istio.io/AuthorizationPolicy',
  // telemetry.istio.io/v1
  Telemetry: 'telemetry.istio.io/Telemetry',
  // gateway.networking.k8s.io
  GatewayClass: 'gateway.networking.k8s.io/GatewayClass',
  Gateway: 'gateway.networking.k8s.io/Gateway',
  HTTPRoute: 'gateway.networking.k8s.io/HTTPRoute',
  GRPCRoute: 'gateway.networking.k8s.io/GRPCRoute',
  ReferenceGrant: 'gateway.networking.k8s.io/ReferenceGrant',
  TCPRoute: 'gateway.networking.k8s.io/TCPRoute',
  TLSRoute: 'gateway.networking.k8s.io/TLSRoute',
  // Kubernetes core
  Namespace: 'core/Namespace',
  Service: 'core/Service',
  Secret: 'core/Secret',
  ConfigMap: 'core/ConfigMap',
  EndpointSlice: 'discovery.k8s.io/EndpointSlice',
  // Kubernetes workloads: read for their labels, ports and security context (registry endpoints,
  // analysis); Trellis does not run them (in local mode `trellis.dev` Workloads are what runs).
  Pod: 'core/Pod',
  Deployment: 'apps/Deployment',
  StatefulSet: 'apps/StatefulSet',
  DaemonSet: 'apps/DaemonSet',
  ReplicaSet: 'apps/ReplicaSet',
  Job: 'batch/Job',
  CronJob: 'batch/CronJob',
  // Trellis's own (local mode): workloads that `trellis up` runs
  Workload: 'trellis.dev/Workload',
} as const;

/** Object metadata, with Kubernetes defaults applied (namespace `default`, empty maps). */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339; in local mode, set by the store when absent (first time it saw the resource). */
  readonly creationTimestamp?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly uid?: string;
}

/** Where a resource was read from. */
export interface SourceInfo {
  /** Path as the user gave it (relative paths stay relative), or `-` for stdin, `<memory>` for the memory store. */
  readonly file: string;
  /** 1-based line of the document's first line. */
  readonly line: number;
  /** 1-based line of a field inside the document, by field path (`spec.http[0].route[1].destination.subset`). */
  lineOf?(fieldPath: string): number | undefined;
}

/** A validated, frozen configuration object. `Spec` is the upstream-typed spec of its kind. */
export interface Resource<Spec = unknown> {
  readonly type: ResourceType;
  /** The apiVersion as written by the user (kept for round-tripping and messages). */
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly spec: Spec;
  /** Kubernetes core objects without `spec` (Secret, ConfigMap, EndpointSlice) keep their top-level fields here. */
  readonly body?: Readonly<Record<string, unknown>>;
  readonly source?: SourceInfo;
}

/** `<type>:<namespace>/<name>`, unique within a store. */
export function resourceKey(r: Pick<Resource, 'type' | 'metadata'>): string {
  return `${r.type}:${r.metadata.namespace}/${r.metadata.name}`;
}

/**
 * Istio's precedence order among resources that compete or merge: oldest creationTimestamp first,
 * then namespace, then name.
 */
export function compareByAge(a: Pick<Resource, 'metadata'>, b: Pick<Resource, 'metadata'>): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name);
}

/** The reference a diagnostic uses to name a resource. */
export interface ResourceRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export type Severity = 'error' | 'warning' | 'info';

/**
 * One finding about configuration. `code` is stable and documented (docs/diagnostics.md);
 * tests and tools match on it. `fieldPath` uses the same syntax as SourceInfo.lineOf.
 */
export interface Diagnostic {
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  readonly resource?: ResourceRef;
  readonly file?: string;
  readonly line?: number;
  readonly fieldPath?: string;
}
