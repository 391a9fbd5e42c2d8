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
function verifiedSpiffeId(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  try {
    const san = socket.getPeerCertificate().subjectaltname ?? '';
    for (const part of san.split(', ')) if (part.startsWith('URI:spiffe://')) return part.slice(4);
  } catch {
    // No certificate details on this socket.
  }
  return undefined;
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
        // No session resumption: Node's client skips checkServerIdentity on a resumed session and
        // reports no peer certificate for a resumed TLS 1.3 one, which would lose the SAN check
        // and the destination principal (bench/README.md, issue 16 log, perf-mtls entry).
        socket = tls.connect(conn);
        socket.setNoDelay(true);
        socket.once('secureConnect', () => done());
      }
    } catch (err) {
      fail(err);
      return;
    }
    socket.once('error', (err) => fail(err));
    function done(): void {
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
      if (host.tls !== undefined) host.peerPrincipal = verifiedSpiffeId(socket as tls.TLSSocket);
      socket.once('close', () => {
        stats.upstream_cx_active--;
        host.activeConnections--;
      });
      resolve(socket);
    }
  });
}
