/**
 * The RBAC network filter (`envoy.filters.network.rbac`, envoy.extensions.filters.network.rbac.v3.RBAC)
 * for TCP filter chains: evaluated once per connection, after TLS termination (so the peer
 * certificate and SNI are known) and before the terminal filter. A denied connection is closed
 * without a byte, as Envoy does (termination details `rbac_access_denied_matched_policy[...]`).
 * Shadow rules are evaluated for their statistics only. Header, path and JWT matchers never match
 * on a connection (there is no request).
 */
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { configError, optStr, type Json } from '../../http/config-json.ts';
import { compileRbac, decide, type RbacEngine } from './rbac-engine.ts';
import type { RbacInput } from './rbac-matchers.ts';

export const NetworkRbacType = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** A compiled network RBAC filter. */
export interface NetworkRbac {
  readonly statPrefix: string;
  readonly rules: RbacEngine | undefined;
  readonly shadow: RbacEngine | undefined;
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
  });
}

const noMetadata = () => undefined;

/** The facts of a connection RBAC matches on. */
export function connectionRbacInput(socket: Socket, destination: { ip: string; port: number }, sni: string | undefined): RbacInput {
  const tls = socket as TLSSocket;
  let principal: string | undefined;
  if (tls.encrypted === true) {
    const cert = tls.getPeerCertificate?.();
    if (cert !== undefined && Object.keys(cert).length > 0) {
      principal = (cert.subjectaltname ?? '').split(', ').find((n) => n.startsWith('URI:'))?.slice(4) ?? '';
    }
  }
  const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  return {
    http: undefined,
    directRemoteIp: remote,
    remoteIp: remote,
    destinationIp: destination.ip.replace(/^::ffff:/, ''),
    destinationPort: destination.port,
    sni: sni !== undefined && sni !== '' ? sni : typeof tls.servername === 'string' ? tls.servername : undefined,
    peerPrincipal: principal,
    metadata: noMetadata,
  };
}

/** True when every network RBAC filter admits the connection. */
export function admitConnection(filters: readonly NetworkRbac[], input: RbacInput): boolean {
  for (const f of filters) {
    if (f.shadow !== undefined) decide(f.shadow, input);
    if (f.rules !== undefined && f.rules.action !== 'LOG' && !decide(f.rules, input).allowed) return false;
  }
  return true;
}
