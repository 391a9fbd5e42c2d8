/**
 * Istio's TCP metrics for one proxied connection: istio_tcp_connections_opened_total when the
 * cluster is chosen, bytes each way as they flow (so long connections show up before they end),
 * istio_tcp_connections_closed_total with the response flags at the end. INBOUND listeners report
 * as the destination (the source is known by its verified mTLS principal, else unknown: TCP has no
 * header to carry peer metadata), others as the source (the destination service from the
 * cluster's Istio metadata).
 */
import type { Socket } from 'node:net';
import { peerLabelValues, UnknownService, UnknownWorkload, type WorkloadLabels } from '../../telemetry/istio-metrics.ts';
import { Unknown, type Series } from '../../telemetry/metric-store.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';
import type { ProxyTelemetry } from '../istio-telemetry.ts';
import type { TcpMeter } from './tcp-proxy.ts';

/** A meter for a connection through `cluster` on a listener with the given direction. */
export function istioTcpMeter(t: ProxyTelemetry, direction: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED', cluster: string, downstream: Socket): TcpMeter {
  const destinationReporter = direction === 'INBOUND';
  const sec = connectionSecurityOf(downstream);
  const mtls = sec.policy === 'mutual_tls';
  const services = t.servicesOf(cluster);
  const service = services?.[0] ?? UnknownService;
  const source: WorkloadLabels = destinationReporter
    ? (sec.peer !== undefined ? { ...UnknownWorkload, namespace: sec.peer.namespace } : UnknownWorkload)
    : t.local;
  const base = peerLabelValues({
    reporter: destinationReporter ? 'destination' : 'source',
    source,
    sourcePrincipal: destinationReporter ? (sec.peer?.spiffeId ?? Unknown) : Unknown,
    destination: destinationReporter ? t.local : UnknownWorkload,
    destinationPrincipal: destinationReporter && mtls ? t.principal : Unknown,
    service,
  });
  const policy = destinationReporter ? (mtls ? 'mutual_tls' : 'none') : Unknown;
  const f = t.families;
  const labels = (flags: string) => [...base, 'tcp', flags, policy];
  const ok = labels('-');
  f.tcpOpened.series(ok).inc();
  const received: Series = f.tcpReceived.series(ok);
  const sent: Series = f.tcpSent.series(ok);
  let done = false;
  return {
    received: (n) => received.inc(n),
    sent: (n) => sent.inc(n),
    closed: (flags) => {
      if (done) return;
      done = true;
      f.tcpClosed.series(flags === '-' ? ok : labels(flags)).inc();
    },
  };
}
