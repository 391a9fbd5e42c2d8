/**
 * The RBAC network filter (`envoy.filters.network.rbac`, envoy.extensions.filters.network.rbac.v3.RBAC)
 * for TCP filter chains: evaluated once per connection, after TLS termination (so the peer
 * certificate and SNI are known) and before the terminal filter. A denied connection is closed
 * without a byte, as Envoy does (termination details `rbac_access_denied_matched_policy[...]`).
 * Shadow results go to the connection's metadata (the network ext_authz reads them). Header, path and JWT matchers never match
 * on a connection (there is no request).
 */
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { configError, optStr, type Json } from '../../http/config-json.ts';
import { compileRbac, decide, type RbacEngine } from './rbac-engine.ts';
import { connectionSecurityOf } from '../../tls/peer-identity.ts';
import { peerPrincipal } from './peer-identity.ts';
import type { RbacInput } from './rbac-matchers.ts';

export const NetworkRbacType = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** A compiled network RBAC filter. */
export interface NetworkRbac {
  readonly statPrefix: string;
  readonly rules: RbacEngine | undefined;
  readonly shadow: RbacEngine | undefined;
  readonly shadowPrefix: string;
}

/** Compile the typed config; throws HTTP_CONFIG_INVALID naming the field. */
export function compileNetworkRbac(o: Json, path: string): NetworkRbac {
  for (const f of ['matcher', 'shadow_matcher']) if (o[f] !== undefined) configError(`${path}.${f}`, 'the matcher API is not supported; use rules');
  const statPrefix = optStr(o.stat_prefix, `${path}.stat_prefix`) ?? configError(`${path}.stat_prefix`, 'is required');
  if (o.enforcement_type !== undefined && o.enforcement_type !== 'ONE_TIME_ON_FIRST_BYTE' && o.enforcement_type !== 0) {
    configError(`${path}.enforcement_type`, 'only ONE_TIME_ON_FIRST_BYTE is supported');
  }
  return Object.freeze({
    statPrefix,
    rules: o.rules !== undefined ? compileRbac(o.rules, `${path}.rules`) : undefined,
    shadow: o.shadow_rules !== undefined ? compileRbac(o.shadow_rules, `${path}.shadow_rules`) : undefined,
    shadowPrefix: optStr(o.shadow_rules_stat_prefix, `${path}.shadow_rules_stat_prefix`) ?? '',
  });
}

/** The facts of a connection RBAC matches on. */
export function connectionRbacInput(socket: Socket, destination: { ip: string; port: number }, sni: string | undefined, metadata: Map<string, Record<string, unknown>>): RbacInput {
  const tls = socket as TLSSocket;
  const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  return {
    http: undefined,
    directRemoteIp: remote,
    remoteIp: remote,
    destinationIp: destination.ip.replace(/^::ffff:/, ''),
    destinationPort: destination.port,
    sni: sni !== undefined && sni !== '' ? sni : typeof tls.servername === 'string' ? tls.servername : undefined,
    peerPrincipal: peerPrincipal(connectionSecurityOf(socket)),
    metadata: (ns) => metadata.get(ns),
  };
}

/** Network RBAC namespace of the connection's dynamic metadata (shadow results for ext_authz). */
export const NetworkRbacNamespace = 'envoy.filters.network.rbac';

/** Enforces one network RBAC filter: shadow results go to `metadata`; false when the rules refuse the connection. */
export function admitConnection(f: NetworkRbac, input: RbacInput, metadata: Map<string, Record<string, unknown>>): boolean {
  if (f.shadow !== undefined) {
    const d = decide(f.shadow, input);
    let ns = metadata.get(NetworkRbacNamespace);
    if (ns === undefined) metadata.set(NetworkRbacNamespace, (ns = {}));
    if (d.policy !== undefined) ns[`${f.shadowPrefix}shadow_effective_policy_id`] = d.policy;
    ns[`${f.shadowPrefix}shadow_engine_result`] = d.allowed ? 'allowed' : 'denied';
  }
  return f.rules === undefined || f.rules.action === 'LOG' || decide(f.rules, input).allowed;
}
