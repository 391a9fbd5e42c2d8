/**
 * Names of generated xDS resources, following Istio's conventions so operators' habits and tools
 * (`istioctl proxy-config`-style filters, dashboards keyed on cluster names) keep working:
 *   outbound clusters  `outbound|<port>|<subset>|<host>`   (empty subset: `outbound|80||reviews.default.svc.cluster.local`)
 *   inbound clusters   `inbound|<port>||`
 *   sidecar outbound HTTP route configs: the port number (`"9080"`); per service (transparent
 *     capture, traffic to the service's cluster IP): `<hostname>:<port>`, Istio's name for a
 *     service-specific HTTP route config
 *   gateway route configs: `http.<port>` for plaintext HTTP servers, `https.<port>.<portName>.<gateway>.<namespace>` for HTTPS.
 */

export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** Parses an `outbound|port|subset|host` name; undefined for anything else. */
export function parseOutboundClusterName(name: string): { port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { port, subset: parts[2], host: parts[3] };
}

export function sidecarOutboundRouteName(port: number): string {
  return String(port);
}

/** RDS name for one service's routes (transparent sidecars' cluster-IP chains). */
export function sidecarServiceRouteName(port: number, hostname: string): string {
  return `${hostname}:${port}`;
}

export function gatewayHttpRouteName(port: number): string {
  return `http.${port}`;
}

export function gatewayHttpsRouteName(port: number, portName: string, gateway: string, namespace: string): string {
  return `https.${port}.${portName}.${gateway}.${namespace}`;
}

/** The BlackHole and Passthrough clusters Istio uses for REGISTRY_ONLY and ALLOW_ANY outbound traffic. */
/**
 * The explicit-mode HTTP proxy's way back into the sidecar's own outbound listener for `port`: a
 * CONNECT to a mesh service is terminated and its bytes sent there, so the tunnelled requests are
 * routed like any other (Trellis's name; Istio has no explicit capture).
 */
export function httpProxyConnectClusterName(port: number): string {
  return `http_proxy_connect|${port}`;
}

export const BlackHoleCluster = 'BlackHoleCluster';
export const PassthroughCluster = 'PassthroughCluster';

/**
 * Where an explicit-capture sidecar's HTTP proxy listener sends hosts the mesh does not know under
 * ALLOW_ANY: Envoy's dynamic forward proxy (to the request's authority), as there is no original
 * destination to pass through to.
 */
export const DynamicForwardProxyCluster = 'DynamicForwardProxyCluster';

/**
 * Istio's `filter_metadata.istio.config` value naming the config a route or cluster came from
 * (`/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews`); `istioctl
 * proxy-config` and `trellis proxy-config` show it as `reviews.default`.
 */
export function configMetadataPath(apiGroupVersion: string, kebabKind: string, namespace: string, name: string): string {
  return `/apis/${apiGroupVersion}/namespaces/${namespace}/${kebabKind}/${name}`;
}

/** `{ filter_metadata: { istio: { config } } }` for a VirtualService. */
export function virtualServiceMetadata(namespace: string, name: string): Record<string, unknown> {
  return { filter_metadata: { istio: { config: configMetadataPath('networking.istio.io/v1', 'virtual-service', namespace, name) } } };
}
