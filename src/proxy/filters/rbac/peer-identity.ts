/**
 * The downstream peer as Envoy's RBAC `authenticated` principal sees it, from the connection
 * security seam (src/proxy/tls/peer-identity.ts): the verified peer's SPIFFE id
 * (`spiffe://<td>/ns/<ns>/sa/<sa>`, what Istio's generated `principal_name` matchers expect); for
 * a verified client certificate without a SPIFFE id its first URI SAN ('' without one); undefined
 * on plaintext or TLS without a verified client certificate, so no principal matcher can match.
 */
import type { ConnectionSecurity } from '../../tls/peer-identity.ts';

/** The RBAC principal of a downstream connection. */
export function peerPrincipal(sec: ConnectionSecurity): string | undefined {
  if (sec.peer !== undefined) return sec.peer.spiffeId;
  return sec.policy === 'mutual_tls' ? (sec.peerUriSans[0] ?? '') : undefined;
}
