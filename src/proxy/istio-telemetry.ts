/**
 * What a proxy needs to emit Istio's standard metrics: its own workload labels and metadata-exchange
 * header (from its xDS node metadata), its SPIFFE principal (when it holds a mesh certificate), the
 * decoder of peers' headers, the Istio metric families, and the services behind each cluster, read
 * from the control plane's cluster metadata (`filter_metadata.istio.services`, as Istio writes it)
 * so `destination_service*` comes from config, not from guesses. The HTTP stats filter
 * (filters/istio-stats.ts) and the TCP proxy's meters (tcp-meters.ts) read it.
 */
import type { XdsJson } from '../xds/types.ts';
import { istioFamilies, workloadLabelsOf, boundedLabel, type IstioFamilies, type ServiceLabels, type WorkloadLabels } from '../telemetry/istio-metrics.ts';
import { encodePeerMetadata, PeerDecoder } from '../telemetry/peer-metadata.ts';
import { Unknown } from '../telemetry/metric-store.ts';
import { encodePeerExchange } from '../telemetry/peer-exchange.ts';

export interface ProxyTelemetryOptions {
  /** The proxy's xDS node metadata (NAMESPACE, LABELS, WORKLOAD_NAME, CLUSTER_ID, ...). */
  readonly nodeMetadata?: Readonly<Record<string, unknown>>;
  readonly nodeId?: string;
  /** The proxy's SPIFFE id when it has a mesh certificate (`spiffe://td/ns/x/sa/y`). */
  readonly principal?: string;
}

export class ProxyTelemetry {
  readonly families: IstioFamilies = istioFamilies();
  readonly local: WorkloadLabels;
  /** This proxy's `x-envoy-peer-metadata` value. */
  readonly peerHeader: string;
  /** This proxy's Istio TCP metadata exchange prefix (the same metadata as the header). */
  readonly peerExchangePrefix: Buffer;
  readonly nodeId: string;
  /** This proxy's principal label value (`unknown` without a certificate). */
  readonly principal: string;
  readonly peers = new PeerDecoder();
  #services = new Map<string, readonly ServiceLabels[]>();

  constructor(opts: ProxyTelemetryOptions = {}) {
    const meta = opts.nodeMetadata ?? {};
    this.local = workloadLabelsOf(meta);
    this.peerHeader = encodePeerMetadata(meta);
    this.nodeId = opts.nodeId ?? '';
    this.peerExchangePrefix = encodePeerExchange(meta, this.nodeId);
    this.principal = opts.principal !== undefined && opts.principal !== '' ? opts.principal : Unknown;
  }

  /** Indexes `filter_metadata.istio.services` of every cluster of a CDS update. */
  updateClusters(clusters: readonly XdsJson[]): void {
    const next = new Map<string, readonly ServiceLabels[]>();
    for (const c of clusters) {
      const name = typeof c.name === 'string' ? c.name : undefined;
      if (name === undefined) continue;
      const services = istioServices(c);
      if (services.length > 0) next.set(name, services);
    }
    this.#services = next;
  }

  /** Services behind a cluster, from its Istio metadata (undefined when it has none). */
  servicesOf(cluster: string | undefined): readonly ServiceLabels[] | undefined {
    return cluster === undefined ? undefined : this.#services.get(cluster);
  }
}

/** `metadata.filter_metadata.istio.services[]` ({host, name, namespace}) of a cluster. */
function istioServices(cluster: XdsJson): ServiceLabels[] {
  const md = cluster.metadata as { filter_metadata?: { istio?: { services?: unknown } } } | undefined;
  const list = md?.filter_metadata?.istio?.services;
  if (!Array.isArray(list)) return [];
  const out: ServiceLabels[] = [];
  for (const s of list) {
    if (s === null || typeof s !== 'object') continue;
    const { host, name, namespace } = s as Record<string, unknown>;
    if (typeof host !== 'string') continue;
    out.push(Object.freeze({ host: boundedLabel(host), name: boundedLabel(name), namespace: boundedLabel(namespace) }));
  }
  return out;
}

/**
 * The service a request was for among a cluster's services: the one whose host, `name.namespace`
 * or short name is the request's authority (port stripped), else the first (Istio's choice for a
 * cluster several Services share).
 */
export function pickService(services: readonly ServiceLabels[], authority: string): ServiceLabels {
  if (services.length === 1) return services[0];
  const host = stripPort(authority);
  for (const s of services) {
    if (s.host === host || s.name === host || `${s.name}.${s.namespace}` === host || host.startsWith(`${s.name}.${s.namespace}.`)) return s;
  }
  return services[0];
}

export function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const i = authority.lastIndexOf(':');
  return i > 0 ? authority.slice(0, i) : authority;
}
