/**
 * Access logs for TCP-proxied connections (the TCP proxy's `access_log`): one line per connection
 * when it closes, with the fields a connection has (start time, bytes each way, duration, upstream
 * host and cluster, downstream addresses and verified principal, response flags such as `UF`);
 * HTTP-only fields are `-`, as in Envoy's TCP logs. Rides on the TCP proxy's meter, beside Istio's
 * TCP metrics.
 */
import type { Socket } from 'node:net';
import type { ResponseFlag, StreamInfo } from '../http/stream-info.ts';
import { normalizeAddress } from '../http/downstream.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';
import type { TcpMeter } from '../tcp/tcp-proxy.ts';
import type { AccessLogs } from './access-logs.ts';

/** A meter that logs the connection when it closes, then passes every event on to `inner`. */
export function tcpAccessLogMeter(logs: AccessLogs, inner: TcpMeter | undefined, downstream: Socket, cluster: string, statPrefix: string): TcpMeter {
  const sec = connectionSecurityOf(downstream);
  const remote = normalizeAddress(downstream.remoteAddress);
  const info: StreamInfo = {
    requestId: '', startTime: Date.now(), startMono: performance.now(), durationMs: undefined,
    // A TCP connection has no HTTP protocol, method or path: they format as `-`.
    protocol: '' as StreamInfo['protocol'], method: '', path: '', authority: '', scheme: 'http',
    downstreamRemoteAddress: remote, downstreamDirectRemoteAddress: remote, downstreamDirectRemotePort: downstream.remotePort ?? 0,
    downstreamLocalAddress: normalizeAddress(downstream.localAddress), downstreamLocalPort: downstream.localPort ?? 0, statPrefix,
    downstreamTls: sec.policy === 'none' ? undefined : { peerUriSans: sec.peerUriSans, peerCertificatePresented: sec.peerCertificatePresented, sni: undefined, alpn: undefined },
    connectionSecurity: sec, userAgent: undefined, virtualHostName: undefined, routeName: undefined, clusterName: cluster, upstreamEndpoint: undefined, upstreamPeerPrincipal: undefined,
    responseCode: 0, responseCodeDetails: '', responseFlags: new Set(), grpcStatus: undefined, attemptCount: 0,
    bytesReceived: 0, bytesSent: 0, grpcRequestMessages: 0, grpcResponseMessages: 0, grpc: false, completed: false,
  };
  let done = false;
  return {
    received(n) {
      info.bytesReceived += n;
      inner?.received(n);
    },
    sent(n) {
      info.bytesSent += n;
      inner?.sent(n);
    },
    connected(endpoint, peerPrincipal) {
      info.upstreamEndpoint = endpoint;
      info.upstreamPeerPrincipal = peerPrincipal;
      inner?.connected?.(endpoint, peerPrincipal);
    },
    exchanged(side, payload) {
      inner?.exchanged?.(side, payload);
    },
    closed(flags) {
      inner?.closed(flags);
      if (done) return;
      done = true;
      if (flags !== '-') for (const f of flags.split(',')) info.responseFlags.add(f as ResponseFlag);
      info.durationMs = performance.now() - info.startMono;
      info.completed = flags === '-';
      logs.log({ info, requestHeaders: {}, responseHeaders: undefined });
    },
  };
}
