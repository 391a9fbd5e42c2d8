/**
 * Who is asking: turns the xDS `Node` a proxy sends into the facts translation depends on. We read
 * Istio's conventions so stock Envoy sidecars bootstrapped the Istio way work unchanged:
 * node id `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local` (type `sidecar` or `router`)
 * and metadata keys NAMESPACE, LABELS, SERVICE_ACCOUNT, INSTANCE_IPS, WORKLOAD_NAME, CLUSTER_ID,
 * plus our own TRELLIS_* keys. Explicit metadata wins over what the id implies.
 */

export type ProxyKind = 'sidecar' | 'router';

/** The facts about one proxy that translation reads. Frozen; part of translate's cache key. */
export interface ProxyNode {
  /** The xDS node id, unique per proxy. */
  readonly id: string;
  /** `sidecar` next to a workload, `router` for a gateway (Istio's names). */
  readonly kind: ProxyKind;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly ips: readonly string[];
  readonly workloadName: string;
  readonly clusterId: string;
  /**
   * The proxy runs Istio's `istio.metadata_exchange` network filter (TCP peer metadata over ALPN
   * `istio-peer-exchange`): a Trellis proxy, or an Envoy that lists the extension in
   * `Node.extensions` (istio-proxy). A stock Envoy does not, and would reject a config naming it.
   */
  readonly metadataExchange: boolean;
  /** How the workload's traffic reaches the sidecar: `explicit` (local ports) or `transparent` (iptables). */
  readonly captureMode: 'explicit' | 'transparent';
  /** Everything the node sent in metadata, as JSON. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The xDS Node message as the codec gives it (proto3 JSON, snake_case). */
export interface XdsNodeJson {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  /** Extensions the client has (Envoy lists every one it was built with). */
  extensions?: readonly { name?: string }[];
}

/** Istio's TCP metadata exchange filter, by the name Envoy reports it under. */
export const MetadataExchangeExtension = 'istio.metadata_exchange';

function hasMetadataExchange(node: XdsNodeJson): boolean {
  if (node.extensions?.some((e) => e.name === MetadataExchangeExtension) === true) return true;
  // Envoy reports its extensions: one that did not list the filter is a stock build without it.
  return node.user_agent_name !== 'envoy';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  }
  return out;
}

/** Builds a ProxyNode from an xDS Node; never throws (unknown shapes fall back to defaults). */
export function proxyNodeFromXds(node: XdsNodeJson): ProxyNode {
  const id = node.id ?? '';
  const meta = node.metadata ?? {};
  const parts = id.split('~');
  const idKind = parts.length === 4 ? parts[0] : undefined;
  const idIp = parts.length === 4 ? parts[1] : undefined;
  const idPod = parts.length === 4 ? parts[2] : undefined;
  const idNamespace = idPod?.includes('.') ? idPod.slice(idPod.lastIndexOf('.') + 1) : undefined;
  const metaKind = str(meta.TRELLIS_PROXY_KIND) ?? idKind;
  const kind: ProxyKind = metaKind === 'router' || metaKind === 'gateway' ? 'router' : 'sidecar';
  const ipsMeta = str(meta.INSTANCE_IPS);
  const ips = ipsMeta !== undefined ? ipsMeta.split(',').map((s) => s.trim()).filter(Boolean) : idIp ? [idIp] : [];
  const podName = idPod !== undefined && idPod.includes('.') ? idPod.slice(0, idPod.lastIndexOf('.')) : idPod;
  const workloadName = str(meta.WORKLOAD_NAME) ?? podName ?? id;
  return Object.freeze({
    id,
    kind,
    namespace: str(meta.NAMESPACE) ?? idNamespace ?? 'default',
    labels: Object.freeze(stringMap(meta.LABELS)),
    serviceAccount: str(meta.SERVICE_ACCOUNT) ?? 'default',
    ips: Object.freeze(ips),
    workloadName,
    clusterId: str(meta.CLUSTER_ID) ?? 'Kubernetes',
    metadataExchange: hasMetadataExchange(node),
    captureMode: str(meta.TRELLIS_CAPTURE_MODE) === 'transparent' ? 'transparent' : 'explicit',
    metadata: Object.freeze({ ...meta }),
  });
}
