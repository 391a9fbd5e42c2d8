/**
 * The service registry's vocabulary: services (from Kubernetes `Service` and Istio `ServiceEntry`)
 * with their ports, and the endpoints behind them (from `EndpointSlice` and `WorkloadEntry`, or
 * registered by the local runtime). Translation and the analyzers read only these types, never the
 * raw resources, so a future source (Kubernetes API, another cluster) only has to fill them in.
 */

/** Istio's protocol names, from a port's `name` prefix (`http-web`), `appProtocol` or ServiceEntry `protocol`. */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'HTTPS' | 'TLS' | 'TCP' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP' | 'UNKNOWN';

export interface ServicePort {
  /** The port's name, may be empty. */
  readonly name: string;
  /** The port clients connect to (Service `port`). */
  readonly port: number;
  /** The workload's port (Service `targetPort`; ServiceEntry `targetPort`); equals `port` when unset. */
  readonly targetPort: number;
  readonly protocol: PortProtocol;
}

export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** One service, keyed by its fully qualified hostname. */
export interface ServiceInfo {
  /** FQDN: `<name>.<namespace>.svc.<domain>` for Kubernetes Services, the host as written for ServiceEntries. */
  readonly hostname: string;
  readonly namespace: string;
  /** Kubernetes Service name, or the ServiceEntry's name. */
  readonly name: string;
  readonly ports: readonly ServicePort[];
  /** Virtual IPs (ClusterIP, ServiceEntry addresses); empty when none. */
  readonly addresses: readonly string[];
  readonly resolution: Resolution;
  /** MESH_INTERNAL for Services and internal ServiceEntries; MESH_EXTERNAL for external ServiceEntries. */
  readonly location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** Label selector of the workloads behind it (Service `selector`, ServiceEntry `workloadSelector.labels`); undefined = none. */
  readonly selector?: Readonly<Record<string, string>>;
  /** Namespaces it is visible to (`exportTo`): `*` (default), `.`, or names. */
  readonly exportTo: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Where it was declared: `core/Service:ns/name` or `networking.istio.io/ServiceEntry:ns/name`. */
  readonly origin: string;
}

/** One endpoint of a service port. */
export interface EndpointInfo {
  readonly address: string;
  /** The endpoint's port (target port). */
  readonly port: number;
  /** Name of the service port this endpoint serves. */
  readonly servicePortName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly locality: Locality;
  readonly weight: number;
  /** false when the endpoint is known not ready (EndpointSlice conditions.ready=false). */
  readonly healthy: boolean;
  /** The workload behind it (pod / WorkloadEntry / local Workload replica name), when known. */
  readonly workloadName?: string;
  readonly namespace: string;
}

/** The read side of the registry: what translation and analyzers query. Immutable once built. */
export interface ServiceRegistry {
  /** DNS suffix of Kubernetes services (`cluster.local`). */
  readonly domainSuffix: string;
  /** Every service, sorted by hostname (exact hosts first, then wildcards). */
  services(): readonly ServiceInfo[];
  /** The service with exactly this hostname. */
  service(hostname: string): ServiceInfo | undefined;
  /** Services declared in a namespace. */
  servicesInNamespace(namespace: string): readonly ServiceInfo[];
  /**
   * Resolves a host as a client in `fromNamespace` would (exact host, short name, `name.ns` and
   * `name.ns.svc` via the DNS search path, hosts covered by a wildcard ServiceEntry) to a service
   * visible from that namespace.
   */
  lookupHost(host: string, fromNamespace: string): ServiceInfo | undefined;
  /** The FQDN a config host names when written in `fromNamespace`: Istio expands only dot-less short names (`reviews` -> `reviews.<ns>.svc.<suffix>`). */
  qualify(host: string, fromNamespace: string): string;
  /** Whether `exportTo` lets `namespace` see the service. */
  visibleTo(service: ServiceInfo, namespace: string): boolean;
  /** Endpoints of a service port (by the service port number), sorted by address then port. */
  endpoints(hostname: string, port: number): readonly EndpointInfo[];
  /** Content hash-ish version: equal strings mean equal registries. */
  readonly version: string;
}
