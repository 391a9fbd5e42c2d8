/**
 * The downstream peer's identity as authorization sees it: the first URI SAN of the client
 * certificate the listener's TLS accepted (a SPIFFE id `spiffe://<td>/ns/<ns>/sa/<sa>` in the
 * mesh), '' for a certificate without one, undefined on plaintext or without a client
 * certificate. Envoy's `authenticated` principal reads the same field (URI SAN first). The
 * listener only accepts client certificates it verified (`require_client_certificate` with a
 * trusted CA), which is what makes this an identity.
 */
import type { DownstreamTlsInfo } from '../../http/stream-info.ts';

/** The peer principal of a downstream connection. */
export function peerPrincipal(tls: DownstreamTlsInfo | undefined): string | undefined {
  if (tls === undefined || !tls.peerCertificatePresented) return undefined;
  return tls.peerUriSans[0] ?? '';
}
