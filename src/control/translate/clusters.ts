/**
 * Cluster resources for one proxy. Outbound: one per in-scope service port
 * (`outbound|<port>||<host>`) and per DestinationRule subset (`outbound|<port>|<subset>|<host>`);
 * mesh services and STATIC ServiceEntries are EDS over ADS (as Istio), DNS ServiceEntries are
 * STRICT_DNS (DNS_ROUND_ROBIN: LOGICAL_DNS) with inline endpoints, resolution NONE and headless
 * services are ORIGINAL_DST. Always: `BlackHoleCluster` (STATIC, no endpoints) and
 * `PassthroughCluster` (ORIGINAL_DST). Sidecars also get `inbound|<port>||` clusters (STATIC,
 * the application on 127.0.0.1). UDP ports are skipped (Envoy's TCP/HTTP listeners cannot carry them).
 */
import type { EndpointInfo, ServiceInfo, ServicePort } from '../../registry/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { IndexedDestinationRule } from '../snapshot/destination-rules.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { BlackHoleCluster, configMetadataPath, DynamicForwardProxyCluster, inboundClusterName, outboundClusterName, PassthroughCluster } from './names.ts';
import { ForwardProxyDnsCache, MetadataExchangeFilter } from './filters.ts';
import { effectivePolicy, ruleFor } from './traffic-policy.ts';
import type { EffectivePolicy } from './traffic-policy.ts';
import { DefaultConnectTimeout, policyFields } from './cluster-policy.ts';
import { autoMtlsSocketMatches, autoSniOptions, upstreamTransportSocket } from './upstream-tls.ts';
import { inboundServices, metadataMap, serviceIdentities } from './identity.ts';
import type { ProxyScope } from './scope.ts';

type Json = Record<string, unknown>;

/** One outbound cluster and what its endpoints are made of. */
export interface OutboundCluster {
  readonly name: string;
  readonly service: ServiceInfo;
  readonly port: ServicePort;
  readonly subset: string;
  /** Subset labels endpoints must carry (empty: all). */
  readonly labels: Readonly<Record<string, string>>;
  readonly policy: EffectivePolicy;
  /** True when the cluster takes its endpoints from EDS. */
  readonly eds: boolean;
  /**
   * Identifies the DestinationRule the policy came from (`-` for none). With name and `eds` it
   * determines the generated cluster within one snapshot, so proxies in different namespaces
   * that resolve to the same rule share the cluster object (see `sharedPerSnapshot`).
   */
  readonly ruleToken: string;
  /** The DestinationRule applied (the oldest when several were merged), for the cluster's `istio.config` metadata. */
  readonly rule?: { readonly namespace: string; readonly name: string };
}

const ruleTokens = new WeakMap<object, string>();
let nextRuleToken = 0;
function ruleTokenOf(rule: object | undefined): string {
  if (rule === undefined) return '-';
  let t = ruleTokens.get(rule);
  if (t === undefined) ruleTokens.set(rule, (t = String(++nextRuleToken)));
  return t;
}

const perSnapshot = new WeakMap<MeshSnapshot, Map<string, Json>>();

/**
 * One generated resource per snapshot and key: translation runs once per distinct proxy (every
 * namespace is one), and most clusters and endpoint assignments come out the same for all of
 * them; sharing the objects lets the xDS server reuse their encoding by identity. Callers must
 * not mutate the result, and `key` must cover every input the resource depends on.
 */
export function sharedPerSnapshot(snapshot: MeshSnapshot, key: string, build: () => Json): Json {
  let m = perSnapshot.get(snapshot);
  if (m === undefined) perSnapshot.set(snapshot, (m = new Map()));
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = build()));
  return v;
}

/** The ADS config source used for EDS/RDS/SDS. */
export const AdsConfigSource = Object.freeze({ ads: {}, resource_api_version: 'V3' });

/** Named subsets of a rule (a wildcard rule's subsets apply to every host it covers, as in Istio). */
function subsetsOf(rule: IndexedDestinationRule | undefined): { name: string; labels: Record<string, string> }[] {
  return (rule?.spec.subsets ?? [])
    .filter((s) => s.name !== undefined && s.name !== '')
    .map((s) => ({ name: s.name!, labels: { ...(s.labels ?? {}) } }));
}

/**
 * A headless Kubernetes Service (`clusterIP: None`) is reached through the original destination
 * only where there is one: a transparent-capture sidecar. Gateways and explicit-capture sidecars
 * have no original destination to go to, so they load-balance over the Service's endpoints (EDS),
 * which is also how Gateway API implementations route to headless backends.
 */
export function headlessViaEds(svc: ServiceInfo, proxy: ProxyNode): boolean {
  return svc.resolution === 'NONE' && svc.origin.startsWith('core/Service:') && !(proxy.kind === 'sidecar' && proxy.captureMode === 'transparent');
}

/** Plans the outbound clusters of a scope (deterministic order: services, ports, '' then subsets). */
export function planOutboundClusters(snapshot: MeshSnapshot, proxy: ProxyNode, scope: ProxyScope): OutboundCluster[] {
  const out: OutboundCluster[] = [];
  for (const svc of scope.services) {
    const rule = ruleFor(snapshot, svc.hostname, proxy.namespace, proxy.labels);
    const ruleToken = ruleTokenOf(rule);
    const ruleRef = rule !== undefined ? { namespace: rule.resource.metadata.namespace, name: rule.resource.metadata.name } : undefined;
    for (const port of svc.ports) {
      if (port.protocol === 'UDP' || port.port <= 0) continue;
      const eds = svc.resolution === 'STATIC' || headlessViaEds(svc, proxy);
      out.push({ name: outboundClusterName(port.port, '', svc.hostname), service: svc, port, subset: '', labels: {}, policy: effectivePolicy(rule, port.port, ''), eds, ruleToken, rule: ruleRef });
      for (const s of subsetsOf(rule)) {
        out.push({
          name: outboundClusterName(port.port, s.name, svc.hostname), service: svc, port, subset: s.name, labels: s.labels,
          policy: effectivePolicy(rule, port.port, s.name), eds, ruleToken, rule: ruleRef,
        });
      }
    }
  }
  return out;
}

function socketAddress(address: string, port: number): Json {
  return { socket_address: { address, port_value: port } };
}

function inlineAssignment(name: string, eps: readonly EndpointInfo[]): Json {
  return {
    cluster_name: name,
    endpoints: [{ lb_endpoints: eps.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) }, load_balancing_weight: e.weight })) }],
  };
}

function subsetMatches(labels: Readonly<Record<string, string>>, e: EndpointInfo): boolean {
  for (const [k, v] of Object.entries(labels)) if (e.labels[k] !== v) return false;
  return true;
}

/** The Envoy Cluster for a planned outbound cluster. */
export function outboundCluster(snapshot: MeshSnapshot, c: OutboundCluster, metadataExchange: boolean): Json {
  const svc = c.service;
  const cluster: Json = { name: c.name };
  const fields = policyFields(c.policy, c.port.protocol);
  const passthroughLb = c.policy.loadBalancer?.simple === 'PASSTHROUGH';
  if ((svc.resolution === 'NONE' && !c.eds) || passthroughLb) {
    Object.assign(cluster, { type: 'ORIGINAL_DST', ...fields, lb_policy: 'CLUSTER_PROVIDED' });
    delete cluster.ring_hash_lb_config;
    delete cluster.maglev_lb_config;
  } else if (c.eds) {
    Object.assign(cluster, { type: 'EDS', eds_cluster_config: { service_name: c.name, eds_config: AdsConfigSource }, ...fields });
  } else {
    const eps = snapshot.registry.endpoints(svc.hostname, c.port.port).filter((e) => e.healthy && subsetMatches(c.labels, e));
    const logical = svc.resolution === 'DNS_ROUND_ROBIN';
    Object.assign(cluster, {
      type: logical ? 'LOGICAL_DNS' : 'STRICT_DNS',
      dns_lookup_family: 'V4_ONLY',
      ...fields,
      // LOGICAL_DNS takes exactly one endpoint (Istio uses the first).
      load_assignment: inlineAssignment(c.name, logical ? eps.slice(0, 1) : eps),
    });
  }
  const tlsInput = { port: c.port.port, subset: c.subset, host: svc.hostname, identities: serviceIdentities(snapshot, svc, c.port.port), metadataExchange, systemCaBundle: snapshot.mesh.systemCaBundle };
  const socket = upstreamTransportSocket({ tls: c.policy.tls, ...tlsInput });
  let istioMutual = c.policy.tls?.mode === 'ISTIO_MUTUAL';
  if (socket !== undefined) {
    cluster.transport_socket = socket;
    const auto = autoSniOptions(c.policy.tls);
    if (auto !== undefined) withUpstreamHttpOptions(cluster, auto);
  }
  // Auto-mTLS: no DestinationRule TLS setting, a mesh service, endpoints from EDS (which marks the ones with a sidecar).
  else if (c.policy.tls?.mode === undefined && snapshot.mesh.enableAutoMtls !== false && snapshot.trustBundle.length > 0 && svc.location === 'MESH_INTERNAL' && c.eds && cluster.type === 'EDS') {
    cluster.transport_socket_matches = autoMtlsSocketMatches(tlsInput);
    istioMutual = true;
  }
  // Istio's client side of the TCP metadata exchange; it acts only where the server chose its ALPN.
  if (metadataExchange && istioMutual) cluster.filters = [MetadataExchangeFilter];
  cluster.metadata = {
    filter_metadata: {
      istio: {
        ...(c.rule !== undefined ? { config: configMetadataPath('networking.istio.io/v1', 'destination-rule', c.rule.namespace, c.rule.name) } : {}),
        services: [{ host: svc.hostname, name: svc.name, namespace: svc.namespace }], ...(c.subset !== '' ? { subset: c.subset } : {}), default_original_port: c.port.port,
      },
    },
  };
  return cluster;
}

/**
 * Adds `upstream_http_protocol_options` to the cluster's HttpProtocolOptions, keeping what the
 * connection pool settings put there. Every cluster with SIMPLE/MUTUAL TLS gets them, as in Istio
 * (a TCP proxy ignores them); a cluster without HttpProtocolOptions gets HTTP/1.1 explicitly,
 * because Envoy requires one of the upstream protocol choices.
 */
function withUpstreamHttpOptions(cluster: Json, options: Json): void {
  const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  const typed = { ...((cluster.typed_extension_protocol_options as Json | undefined) ?? {}) };
  const current = (typed[key] as Json | undefined) ?? {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http_protocol_options: {} },
  };
  typed[key] = { ...current, upstream_http_protocol_options: options };
  cluster.typed_extension_protocol_options = typed;
}

/** The two catch-all clusters Istio always sends. */
export function catchAllClusters(): Json[] {
  return [
    { name: BlackHoleCluster, type: 'STATIC', connect_timeout: DefaultConnectTimeout },
    { name: PassthroughCluster, type: 'ORIGINAL_DST', connect_timeout: DefaultConnectTimeout, lb_policy: 'CLUSTER_PROVIDED', circuit_breakers: { thresholds: [{ max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true }] } },
  ];
}

/** Envoy's dynamic forward proxy cluster (see DynamicForwardProxyCluster). */
export function dynamicForwardProxyCluster(): Json {
  return {
    name: DynamicForwardProxyCluster,
    connect_timeout: DefaultConnectTimeout,
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.dynamic_forward_proxy',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig', dns_cache_config: ForwardProxyDnsCache },
    },
  };
}

/** One inbound port of a sidecar: where the proxy accepts it and where the application listens. */
export interface InboundPort {
  /** The workload port peers dial (service targetPort); names `inbound|<port>||`. */
  readonly port: number;
  readonly protocol: ServicePort['protocol'];
  readonly name: string;
  /** Where the application listens (127.0.0.1:<appPort>). */
  readonly appAddress: string;
  readonly appPort: number;
  /** Services selecting the workload on this port (Istio's inbound cluster metadata: metrics' destination_service). */
  readonly services: readonly { readonly host: string; readonly name: string; readonly namespace: string }[];
}

/**
 * The sidecar's inbound ports: the Sidecar resource's `ingress` entries when present
 * (`defaultEndpoint` `127.0.0.1:<port>`), else the target ports of the services selecting it.
 * Node metadata `TRELLIS_APP_PORTS` ({"<port>": appPort}) remaps where the app listens
 * (explicit capture on one machine: the proxy holds the service port, the app another).
 */
export function inboundPorts(snapshot: MeshSnapshot, proxy: ProxyNode, scope: ProxyScope): InboundPort[] {
  const appPorts = metadataMap(proxy, 'TRELLIS_APP_PORTS') ?? {};
  const app = (port: number) => {
    const v = appPorts[String(port)];
    return typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : port;
  };
  const selecting = inboundServices(snapshot, proxy);
  const servicesOn = (port: number) => selecting.filter((svc) => svc.ports.some((sp) => sp.targetPort === port || sp.port === port)).map((svc) => ({ host: svc.hostname, name: svc.name, namespace: svc.namespace }));
  const seen = new Map<number, InboundPort>();
  const ingress = scope.sidecar?.ingress;
  if (ingress !== undefined && ingress.length > 0) {
    for (const i of ingress) {
      const n = i.port?.number;
      if (n === undefined || seen.has(n)) continue;
      const m = /^(?:(.*):)?(\d+)$/.exec(i.defaultEndpoint ?? '');
      const addr = m?.[1] !== undefined && m[1] !== '' && !m[1].startsWith('unix') ? m[1] : '127.0.0.1';
      seen.set(n, {
        port: n, name: i.port?.name ?? '', protocol: protocolWord(i.port?.protocol), appAddress: addr === '0.0.0.0' ? '127.0.0.1' : addr,
        appPort: m !== null ? Number(m[2]) : app(n), services: servicesOn(n),
      });
    }
  } else {
    for (const svc of selecting) {
      for (const p of svc.ports) {
        if (p.protocol === 'UDP' || seen.has(p.targetPort)) continue;
        seen.set(p.targetPort, { port: p.targetPort, name: p.name, protocol: p.protocol, appAddress: '127.0.0.1', appPort: app(p.targetPort), services: servicesOn(p.targetPort) });
      }
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port);
}

function protocolWord(p: string | undefined): ServicePort['protocol'] {
  const u = (p ?? '').toUpperCase();
  return (['HTTP', 'HTTP2', 'GRPC', 'HTTPS', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL'] as const).find((x) => x === u) ?? 'UNKNOWN';
}

/** The STATIC inbound cluster for one inbound port. */
export function inboundCluster(p: InboundPort): Json {
  const name = inboundClusterName(p.port);
  const c: Json = {
    name,
    type: 'STATIC',
    connect_timeout: DefaultConnectTimeout,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(p.appAddress, p.appPort) } }] }] },
  };
  if (p.services.length > 0) c.metadata = { filter_metadata: { istio: { services: p.services.map((x) => ({ ...x })) } } };
  if (p.protocol === 'HTTP2' || p.protocol === 'GRPC') {
    c.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return c;
}
