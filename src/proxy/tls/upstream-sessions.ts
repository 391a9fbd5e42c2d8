/**
 * TLS sessions kept for resuming upstream connections (Envoy's client keeps one per upstream:
 * `max_session_keys` 1), together with the server identity that was verified when each session
 * was made. Node's TLS client neither calls `checkServerIdentity` on a resumed session nor reports
 * the server's certificate for it (`getPeerCertificate()` is `{}`, TLS 1.2 and 1.3 alike), so the
 * connector checks the remembered SANs itself: a server can only resume a session whose secret it
 * holds, i.e. the server whose certificate passed the chain and SAN checks when the session was
 * made. Sessions live per secure context (client certificate + trust bundle + versions: a rotated
 * certificate or CA starts afresh), keyed by endpoint, SNI and ALPN.
 */
import type { SecureContext } from 'node:tls';

/** A session and the SANs (node's `subjectaltname` string) of the certificate verified when it was made. */
export interface ResumableSession {
  readonly session: Buffer;
  readonly peerSans: string;
}

const byContext = new WeakMap<SecureContext, Map<string, ResumableSession>>();
/** Endpoints per secure context whose latest session is kept; the oldest goes first beyond this. */
const MaxSessionsPerContext = 1024;

/** The session to offer for a new connection, if one was kept. */
export function resumableSession(ctx: SecureContext, key: string): ResumableSession | undefined {
  return byContext.get(ctx)?.get(key);
}

/** Keeps `session` (issued on a connection whose server identity was verified as `peerSans`) for the next connection. */
export function keepSession(ctx: SecureContext, key: string, session: Buffer, peerSans: string): void {
  let m = byContext.get(ctx);
  if (m === undefined) byContext.set(ctx, (m = new Map()));
  m.delete(key);
  if (m.size >= MaxSessionsPerContext) m.delete(m.keys().next().value!);
  m.set(key, { session, peerSans });
}

/** Drops the kept session (a resumption that failed its checks, or a failed handshake). */
export function dropSession(ctx: SecureContext, key: string): void {
  byContext.get(ctx)?.delete(key);
}
