/**
 * The external authorization network filter (`envoy.filters.network.ext_authz`): once per TCP
 * connection (after TLS, before tcp_proxy) a gRPC Check with the connection's source, peer
 * principal and destination; an OK keeps the connection, anything else closes it. Runs only when
 * `filter_enabled_metadata` matches the connection's metadata (Istio: the network RBAC's CUSTOM
 * shadow rules matched). An unreachable authorizer closes the connection unless
 * `failure_mode_allow`.
 */
import { configError, optBool, optDurationMs, optObj, optStr, type Json } from '../../http/config-json.ts';
import type { ClusterManager } from '../../upstream/types.ts';
import { compileMetadataMatcher, type RbacInput, type RbacMatch } from '../rbac/rbac-matchers.ts';
import { grpcCheck } from './check-client.ts';

export const NetworkExtAuthzType = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';

export interface NetworkExtAuthz {
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly failureModeAllow: boolean;
  readonly enabled: RbacMatch | undefined;
}

/** Compile the typed config; throws HTTP_CONFIG_INVALID naming the field. */
export function compileNetworkExtAuthz(o: Json, path: string): NetworkExtAuthz {
  const g = optObj(o.grpc_service, `${path}.grpc_service`) ?? configError(`${path}.grpc_service`, 'is required');
  const e = optObj(g.envoy_grpc, `${path}.grpc_service.envoy_grpc`) ?? configError(`${path}.grpc_service.envoy_grpc`, 'is required (google_grpc is not supported)');
  const cluster = optStr(e.cluster_name, `${path}.grpc_service.envoy_grpc.cluster_name`) ?? configError(`${path}.grpc_service.envoy_grpc.cluster_name`, 'is required');
  return Object.freeze({
    cluster,
    authority: optStr(e.authority, `${path}.grpc_service.envoy_grpc.authority`) || cluster,
    timeoutMs: optDurationMs(g.timeout, `${path}.grpc_service.timeout`) ?? 200,
    failureModeAllow: optBool(o.failure_mode_allow, `${path}.failure_mode_allow`) ?? false,
    enabled: o.filter_enabled_metadata !== undefined ? compileMetadataMatcher(o.filter_enabled_metadata, `${path}.filter_enabled_metadata`) : undefined,
  });
}

/** True when the authorizer admits the connection (or the filter is not enabled for it). */
export async function admitByAuthorizer(f: NetworkExtAuthz, input: RbacInput, source: { address: string; port: number }, cm: ClusterManager, signal: AbortSignal): Promise<boolean> {
  if (f.enabled !== undefined && !f.enabled(input)) return true;
  const attributes = {
    source: { address: { socket_address: { address: source.address, port_value: source.port } }, principal: input.peerPrincipal ?? '' },
    destination: { address: { socket_address: { address: input.destinationIp, port_value: input.destinationPort } } },
  };
  const r = await grpcCheck(cm, f.cluster, f.authority, attributes, f.timeoutMs, signal);
  return r.kind === 'allow' || (r.kind === 'error' && f.failureModeAllow);
}
