/**
 * Istio's TCP metrics for one proxied connection: istio_tcp_connections_opened_total, bytes each
 * way as they flow (so long connections show up before they end), and
 * istio_tcp_connections_closed_total with the response flags at the end. INBOUND listeners report
 * as the destination, others as the source (the destination service from the cluster's Istio
 * metadata).
 *
 * The peer workload comes from Istio's TCP metadata exchange (the downstream's prefix for the
 * destination reporter, the upstream's for the source reporter), so the series are labelled once
 * that side's exchange is over, as Istio's stats filter waits for the peer metadata: until then
 * bytes are held in plain counters. Without an exchange the peer is unknown, except for what the
 * verified mTLS principal tells (the source namespace, the destination principal).
 */
import type { Socket } from 'node:net';
import { peerLabelValues, UnknownService, UnknownWorkload, type WorkloadLabels } from '../../telemetry/istio-metrics.ts';
import { Unknown, type Series } from '../../telemetry/metric-store.ts';
import { decodePeerExchangePayload } from '../../telemetry/peer-exchange.ts';
import { UnknownPeer, type Peer } from '../../telemetry/peer-metadata.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';
import type { ProxyTelemetry } from '../istio-telemetry.ts';
import type { TcpMeter } from './tcp-proxy.ts';

/** A meter for a connection through `cluster` on a listener with the given direction. */
export function istioTcpMeter(t: ProxyTelemetry, direction: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED', cluster: string, downstream: Socket): TcpMeter {
  const destinationReporter = direction === 'INBOUND';
  const peerSide = destinationReporter ? 'downstream' : 'upstream';
  const sec = connectionSecurityOf(downstream);
  const mtls = sec.policy === 'mutual_tls';
  const service = t.servicesOf(cluster)?.[0] ?? UnknownService;
  const policy = destinationReporter ? (mtls ? 'mutual_tls' : 'none') : Unknown;
  const f = t.families;
  let upstreamPrincipal: string = Unknown;
  let labels: ((flags: string) => string[]) | undefined;
  let received: Series | undefined;
  let sent: Series | undefined;
  let pendingReceived = 0;
  let pendingSent = 0;
  let done = false;

  const resolve = (peer: Peer) => {
    if (labels !== undefined) return;
    let source: WorkloadLabels;
    let destination: WorkloadLabels;
    if (destinationReporter) {
      // No exchange: the verified certificate still names the source namespace.
      source = peer !== UnknownPeer ? peer.labels : sec.peer !== undefined ? { ...UnknownWorkload, namespace: sec.peer.namespace } : UnknownWorkload;
      destination = t.local;
    } else {
      source = t.local;
      destination = peer.labels;
    }
    const base = peerLabelValues({
      reporter: destinationReporter ? 'destination' : 'source',
      source,
      sourcePrincipal: destinationReporter ? (sec.peer?.spiffeId ?? Unknown) : Unknown,
      destination,
      destinationPrincipal: destinationReporter ? (mtls ? t.principal : Unknown) : upstreamPrincipal,
      service,
    });
    labels = (flags) => [...base, 'tcp', flags, policy];
    const ok = labels('-');
    f.tcpOpened.series(ok).inc();
    received = f.tcpReceived.series(ok);
    sent = f.tcpSent.series(ok);
    if (pendingReceived > 0) received.inc(pendingReceived);
    if (pendingSent > 0) sent.inc(pendingSent);
  };

  return {
    received: (n) => {
      if (received !== undefined) received.inc(n);
      else pendingReceived += n;
    },
    sent: (n) => {
      if (sent !== undefined) sent.inc(n);
      else pendingSent += n;
    },
    connected: (_endpoint, peerPrincipal) => {
      if (peerPrincipal !== undefined && peerPrincipal !== '') upstreamPrincipal = peerPrincipal;
    },
    exchanged: (side, payload) => {
      if (side !== peerSide) return;
      // Same bound as the header exchange's: the peer cache keys on the payload.
      const known = payload !== undefined && payload.length <= 8192;
      resolve(known ? t.peers.lookup(payload.toString('latin1'), () => decodePeerExchangePayload(payload).metadata) : UnknownPeer);
    },
    closed: (flags) => {
      if (done) return;
      done = true;
      resolve(UnknownPeer);
      f.tcpClosed.series(labels!(flags)).inc();
    },
  };
}
