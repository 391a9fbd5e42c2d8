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
export const BlackHoleCluster = 'BlackHoleCluster';
export const PassthroughCluster = 'PassthroughCluster';

/**
 * Where an explicit-capture sidecar's HTTP proxy listener sends hosts the mesh does not know under
 * ALLOW_ANY: Envoy's dynamic forward proxy (to the request's authority), as there is no original
 * destination to pass through to.
 */
export const DynamicForwardProxyCluster = 'DynamicForwardProxyCluster';
