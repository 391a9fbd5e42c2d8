/**
 * Opening one transport connection to an upstream host: TCP with connect_timeout, then TLS from
 * the host's transport socket (client certificate, CA, SAN checks, SNI, ALPN) via
 * `proxy/tls/upstream-tls.ts`. Every failure becomes UpstreamError flag UF ("connection failure")
 * and is counted (upstream_cx_connect_fail, upstream_cx_connect_timeout); every success is counted
 * in upstream_cx_total / upstream_cx_active until the socket closes. Pools call this; so does
 * `connect()` for WebSocket and TCP proxying.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import type { SecretProvider } from '../tls/secret-provider.ts';
import { tlsConnectOptions, type AutoTlsNames } from '../tls/upstream-tls.ts';
import { dropSession, keepSession, resumableSession } from '../tls/upstream-sessions.ts';
import type { Host } from './host.ts';
import type { ClusterStats } from './stats.ts';
import { UpstreamError } from './types.ts';

/** What a connection attempt needs beyond the host. */
export interface ConnectOptions {
  readonly timeoutMs: number;
  readonly secrets: SecretProvider;
  readonly stats: ClusterStats;
  /** SNI / expected SAN from the request's host (the cluster's auto_sni / auto_san_validation). */
  readonly auto?: AutoTlsNames;
  /** ALPN to insist on (HTTP/2 pools offer h2 even when the config lists none). */
  readonly alpnOverride?: readonly string[];
  readonly signal?: AbortSignal;
  /** LOGICAL_DNS: the address family the name resolves in (dns_lookup_family V4_ONLY / V6_ONLY). */
  readonly family?: 4 | 6;
}

/** The first spiffe:// URI SAN of a verified server certificate (Istio's destination principal). */
function spiffeIdOf(sans: string): string | undefined {
  for (const part of sans.split(', ')) if (part.startsWith('URI:spiffe://')) return part.slice(4);
  return undefined;
}

/** The server certificate's SANs (node's `subjectaltname`) on a fully handshaken socket. */
function peerSansOf(socket: tls.TLSSocket): string {
  try {
    return socket.getPeerCertificate().subjectaltname ?? '';
  } catch {
    return '';
  }
}

/**
 * The TLS reason of a failed handshake (certificate verification, SAN check, protocol alerts),
 * or undefined for plain socket errors (refused, reset before TLS) that are no TLS matter.
 */
function tlsFailureReason(code: string | undefined, message: string): string | undefined {
  const tlsish = code !== undefined && (/^ERR_(SSL|TLS)_/.test(code) || /CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH/.test(code));
  if (!tlsish && !/SSL routines|certificate|TLS/i.test(message)) return undefined;
  return `TLS_error: ${code !== undefined ? `${code}: ` : ''}${message}`;
}

/** Connects (and handshakes) to `host`; resolves with a ready socket. */
export function connectHost(host: Host, opts: ConnectOptions): Promise<Socket> {
  const stats = opts.stats;
  return new Promise<Socket>((resolve, reject) => {
    let settled = false;
    let socket: Socket;
    const fail = (err: unknown, timeout = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
      stats.upstream_cx_connect_fail++;
      host.counters.cxConnectFail++;
      if (timeout) stats.upstream_cx_connect_timeout++;
      if (err instanceof UpstreamError) return reject(err);
      const code = (err as NodeJS.ErrnoException)?.code;
      const message = timeout ? 'connect timeout' : (err as Error)?.message ?? String(err);
      const tlsReason = host.tls !== undefined && !timeout ? tlsFailureReason(code, message) : undefined;
      reject(new UpstreamError('UF', `upstream connect error to ${host.key}: ${message}`, {
        cause: err,
        endpoint: host.key,
        context: { code },
        // Envoy's local reply names the TLS failure after the reset reason.
        ...(tlsReason !== undefined ? { transportFailureReason: tlsReason, resetReason: `connection failure, transport failure reason: ${tlsReason}` } : {}),
      }));
    };
    // A cancelled attempt is not a connect failure: no counters, and the caller's reason as is.
    const onAbort = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      reject(opts.signal?.reason ?? new Error('aborted'));
    };
    const timer = setTimeout(() => fail(new Error(`connect timeout after ${opts.timeoutMs}ms`), true), opts.timeoutMs);
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (host.tls === undefined) {
        socket = net.connect({ host: host.address, port: host.port, noDelay: true, family: opts.family });
        socket.once('connect', () => done());
      } else {
        const tlsOpts = tlsConnectOptions(host.tls, opts.secrets, host.address, opts.auto);
        if (opts.alpnOverride !== undefined) tlsOpts.ALPNProtocols = [...opts.alpnOverride];
        const conn: tls.ConnectionOptions = { ...tlsOpts, port: host.port };
        if (opts.family !== undefined) (conn as tls.ConnectionOptions & { family?: number }).family = opts.family;
        const ctx = tlsOpts.secureContext!;
        const sessionKey = `${host.key}|${tlsOpts.servername ?? ''}|${String(tlsOpts.ALPNProtocols ?? '')}`;
        const offered = resumableSession(ctx, sessionKey);
        if (offered !== undefined) conn.session = offered.session;
        const tlsSocket = tls.connect(conn);
        socket = tlsSocket;
        socket.setNoDelay(true);
        // Sessions are kept only from connections whose server passed the checks (TLS 1.3 tickets may arrive before that).
        let verifiedSans: string | undefined;
        let early: Buffer | undefined;
        tlsSocket.on('session', (session: Buffer) => {
          if (verifiedSans !== undefined) keepSession(ctx, sessionKey, session, verifiedSans);
          else early = session;
        });
        tlsSocket.once('secureConnect', () => {
          let sans: string;
          if (offered !== undefined && tlsSocket.isSessionReused()) {
            // Node skipped checkServerIdentity and has no certificate for a resumed session: check the
            // identity verified when this session was made (upstream-sessions.ts says why that is sound).
            sans = offered.peerSans;
            const err = tlsOpts.checkServerIdentity!(host.address, { subjectaltname: sans } as tls.PeerCertificate);
            if (err !== undefined || (tlsOpts.rejectUnauthorized === true && !tlsSocket.authorized)) {
              dropSession(ctx, sessionKey);
              const cause = err ?? tlsSocket.authorizationError ?? new Error('not authorized');
              fail(Object.assign(new Error(`${cause.message} (resumed TLS session)`, { cause }), { code: (cause as NodeJS.ErrnoException).code }));
              return;
            }
          } else {
            sans = peerSansOf(tlsSocket);
          }
          verifiedSans = sans;
          if (early !== undefined) keepSession(ctx, sessionKey, early, sans);
          early = undefined;
          done(tlsSocket.authorized ? sans : undefined);
        });
        socket.once('error', () => { if (!settled && offered !== undefined) dropSession(ctx, sessionKey); });
      }
    } catch (err) {
      fail(err);
      return;
    }
    socket.once('error', (err) => fail(err));
    function done(verifiedPeerSans?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      // Errors after connect belong to whoever uses the socket; keep a listener so none goes unhandled.
      socket.on('error', () => {});
      stats.upstream_cx_total++;
      stats.upstream_cx_active++;
      host.counters.cxTotal++;
      host.activeConnections++;
      if (host.tls !== undefined) host.peerPrincipal = verifiedPeerSans === undefined ? undefined : spiffeIdOf(verifiedPeerSans);
      socket.once('close', () => {
        stats.upstream_cx_active--;
        host.activeConnections--;
      });
      resolve(socket);
    }
  });
}
