/**
 * The connection security seam: what a downstream connection proved about its peer, computed once
 * per connection and read by HTTP filters (through `StreamInfo.connectionSecurity`), by network
 * filters and the TCP proxy (through `connectionSecurityOf(socket)`), by telemetry
 * (`connection_security_policy`) and by authorization (`source.principal`, `source.namespace`,
 * `connection.sni`). A peer identity is present only when the TLS handshake verified the client
 * certificate chain against the trust bundle (`socket.authorized`) and the certificate carries a
 * SPIFFE URI SAN; an unverified or absent certificate yields no principal, never a guessed one.
 * Istio's words: a principal is `<trust-domain>/ns/<namespace>/sa/<service-account>` (the SPIFFE id
 * without `spiffe://`); `connection_security_policy` is `mutual_tls` or `none`.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** A verified SPIFFE workload identity. */
export interface PeerIdentity {
  /** `spiffe://cluster.local/ns/default/sa/web`. */
  readonly spiffeId: string;
  /** Istio's principal form: the SPIFFE id without `spiffe://` (`cluster.local/ns/default/sa/web`). */
  readonly principal: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Istio's `connection_security_policy` values. */
export type ConnectionSecurityPolicy = 'mutual_tls' | 'tls' | 'none';

/** Security facts of one downstream connection. Frozen; one object per connection. */
export interface ConnectionSecurity {
  /** `mutual_tls`: TLS with a verified client certificate; `tls`: TLS without one; `none`: plaintext. */
  readonly policy: ConnectionSecurityPolicy;
  /** The verified peer (mutual_tls with a SPIFFE URI SAN), else undefined. */
  readonly peer: PeerIdentity | undefined;
  /** All URI SANs of the client certificate (verified or not; empty without one). */
  readonly peerUriSans: readonly string[];
  /** True when the client presented a certificate (whether or not it verified). */
  readonly peerCertificatePresented: boolean;
  /** SNI the client sent ('' when none or plaintext). */
  readonly sni: string;
  /** Negotiated ALPN ('' when none). */
  readonly alpn: string;
  /** `TLSv1.3`, `TLSv1.2`, or '' for plaintext. */
  readonly tlsVersion: string;
}

/** The facts of a plaintext connection (shared: it carries nothing per connection). */
export const PlaintextConnection: ConnectionSecurity = Object.freeze({
  policy: 'none', peer: undefined, peerUriSans: Object.freeze([]), peerCertificatePresented: false, sni: '', alpn: '', tlsVersion: '',
});

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Parses a SPIFFE workload id (`spiffe://td/ns/x/sa/y`); undefined when it is not one. */
export function parseSpiffeId(uri: string): PeerIdentity | undefined {
  const m = SPIFFE.exec(uri);
  if (m === null) return undefined;
  return Object.freeze({ spiffeId: uri, principal: uri.slice('spiffe://'.length), trustDomain: m[1], namespace: m[2], serviceAccount: m[3] });
}

const kSecurity = Symbol('trellis.connectionSecurity');

type Holder = { [kSecurity]?: ConnectionSecurity };

/**
 * The security facts of a downstream socket (plaintext or TLS), computed on first use and cached
 * on the socket. HTTP/2's socket proxy forwards property access, so `req.socket` works too.
 */
export function connectionSecurityOf(socket: Socket | TLSSocket): ConnectionSecurity {
  const holder = socket as Socket & Holder;
  const cached = holder[kSecurity];
  if (cached !== undefined) return cached;
  const s = (socket as TLSSocket).encrypted === true ? tlsSecurity(socket as TLSSocket) : PlaintextConnection;
  holder[kSecurity] = s;
  return s;
}

function tlsSecurity(socket: TLSSocket): ConnectionSecurity {
  let uris: string[] = [];
  let presented = false;
  try {
    const peer = socket.getPeerCertificate();
    presented = peer !== null && peer !== undefined && Object.keys(peer).length > 0;
    if (presented) uris = (peer.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
  } catch {
    // A socket torn down mid-read has no certificate to report.
  }
  const verified = presented && socket.authorized === true;
  let peer: PeerIdentity | undefined;
  if (verified) {
    for (const u of uris) {
      peer = parseSpiffeId(u);
      if (peer !== undefined) break;
    }
  }
  return Object.freeze({
    policy: verified ? 'mutual_tls' : 'tls',
    peer,
    peerUriSans: Object.freeze(uris),
    peerCertificatePresented: presented,
    sni: typeof socket.servername === 'string' ? socket.servername : '',
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : '',
    tlsVersion: socket.getProtocol?.() ?? '',
  });
}
