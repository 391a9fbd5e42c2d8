/**
 * Istio's TCP metadata exchange end to end: a raw TCP echo app behind backend-1's sidecar, called
 * through frontend-1's sidecar under STRICT mTLS. The sidecars negotiate ALPN istio-peer-exchange,
 * each sends Istio's prefix and strips the peer's, so the app echoes exactly what the client sent
 * and both sides' istio_tcp_* series name the peer workload (and, on the source side, the
 * destination principal from the server certificate). A TLS client of our own plays the other
 * peers: one offering the exchange reads the sidecar's prefix in Istio's wire format, one without
 * it (a stock Envoy, a plain TLS client) gets the bytes alone and is counted with unknown labels.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientCertificate, startMtlsMesh, type MtlsMesh } from './support/mtls-mesh.ts';
import { scrape, select, sumOf, type Sample } from './support/prom-text.ts';
import { stopAll, waitFor } from './support/mesh.ts';
import { echoOnce } from './support/tcp-echo.ts';
import { decodePeerExchangePayload, encodePeerExchange, PeerExchangeMagic } from '../src/telemetry/peer-exchange.ts';

let mesh: MtlsMesh;
const strict = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: STRICT}\n';

before(async () => {
  mesh = await startMtlsMesh({ tcpEcho: true, files: { 'strict.yaml': strict } });
});
after(async () => {
  await mesh?.close();
  await stopAll();
});

const viaMesh = (msg: Buffer) => echoOnce(() => net.connect(mesh.tcpOutboundPort, '127.0.0.1'), msg, { halfClose: true });

function tcpSeries(samples: readonly Sample[], name: string, match: Record<string, string>): Sample {
  const found = select(samples, name, match);
  assert.equal(found.length, 1, `${name} ${JSON.stringify(match)}: ${JSON.stringify(select(samples, name), null, 1).slice(0, 3000)}`);
  return found[0];
}

test('two trellis sidecars exchange peer metadata over STRICT mTLS TCP: the app sees only its bytes, both reporters label the peer', { timeout: 180_000 }, async () => {
  await waitFor('TCP echo through the mesh', async () => (await viaMesh(Buffer.from('warm'))).toString() === 'warm' || undefined, 60_000, 200);
  const N = 10;
  let bytes = 0;
  for (let i = 0; i < N; i++) {
    const msg = Buffer.from(`message ${i} `.repeat(i + 1));
    bytes += msg.length;
    // The echo returns exactly what was sent: neither prefix reached the app, nor came back.
    assert.deepEqual(await viaMesh(msg), msg);
  }
  const total = bytes + 'warm'.length; // plus the warm-up connection(s) that echoed: counted below as >=
  const dst = await waitFor('destination-side TCP series', async () => {
    const s = await scrape(mesh.backend.ports.prometheus);
    return sumOf(s, 'istio_tcp_connections_closed_total', { reporter: 'destination', source_workload: 'frontend-1' }) >= N + 1 ? s : undefined;
  }, 20_000, 100);
  const labels = {
    reporter: 'destination', source_workload: 'frontend-1', source_app: 'frontend', source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/frontend', destination_workload: 'backend-1', destination_app: 'backend',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/backend', destination_service: 'backend.default.svc.cluster.local',
    request_protocol: 'tcp', connection_security_policy: 'mutual_tls', response_flags: '-',
  };
  const opened = tcpSeries(dst, 'istio_tcp_connections_opened_total', labels);
  assert.ok(opened.value >= N + 1, `opened ${opened.value}`);
  // Application bytes only: the prefixes are not counted.
  const received = tcpSeries(dst, 'istio_tcp_received_bytes_total', labels).value;
  const sent = tcpSeries(dst, 'istio_tcp_sent_bytes_total', labels).value;
  assert.ok(received >= total && received === sent, `received ${received}, sent ${sent}, sent by the test ${total}`);

  const src = await waitFor('source-side TCP series', async () => {
    const s = await scrape(mesh.frontend.ports.prometheus);
    return sumOf(s, 'istio_tcp_connections_closed_total', { reporter: 'source', destination_workload: 'backend-1' }) >= N + 1 ? s : undefined;
  }, 20_000, 100);
  const out = {
    reporter: 'source', source_workload: 'frontend-1', source_app: 'frontend', destination_workload: 'backend-1', destination_app: 'backend',
    destination_workload_namespace: 'default', destination_principal: 'spiffe://cluster.local/ns/default/sa/backend',
    destination_service: 'backend.default.svc.cluster.local', request_protocol: 'tcp', connection_security_policy: 'unknown',
  };
  assert.ok(tcpSeries(src, 'istio_tcp_connections_opened_total', out).value >= N + 1);
  const srcSent = tcpSeries(src, 'istio_tcp_sent_bytes_total', out).value;
  assert.equal(srcSent, tcpSeries(src, 'istio_tcp_received_bytes_total', out).value);
  assert.equal(srcSent, received, 'both reporters count the same application bytes');
  assert.equal(sumOf(src, 'istio_tcp_connections_opened_total', { reporter: 'source', destination_workload: 'unknown' }), 0);
});

test('a peer offering the exchange reads the sidecar\'s prefix in Istio\'s wire format; one without it gets plain bytes and unknown labels', { timeout: 120_000 }, async () => {
  const cert = await clientCertificate(mesh.caDir, 'spiffe://cluster.local/ns/default/sa/tls-client', mesh.dir);
  const ca = readFileSync(join(mesh.caDir, 'ca-cert.pem'));
  const dial = (alpn: string[]) => () => tls.connect({ host: '127.0.0.1', port: mesh.tcpInboundPort, cert: readFileSync(cert.cert), key: readFileSync(cert.key), ca, ALPNProtocols: alpn, rejectUnauthorized: false });

  // As istio-proxy would: offer the exchange, send our prefix before the data.
  const me = encodePeerExchange({ WORKLOAD_NAME: 'tls-client', NAMESPACE: 'default', LABELS: { app: 'tls-client' } }, 'tls-client-node');
  const reply = await echoOnce(dial(['istio-peer-exchange', 'istio']), Buffer.concat([me, Buffer.from('ping')]), { ready: 'secureConnect', halfClose: true });
  assert.equal(reply.readUInt32BE(0), PeerExchangeMagic, 'the sidecar writes Istio\'s magic first');
  const size = reply.readUInt32BE(4);
  const peer = decodePeerExchangePayload(reply.subarray(8, 8 + size));
  assert.equal(peer.metadata?.WORKLOAD_NAME, 'backend-1');
  assert.equal(peer.metadata?.NAMESPACE, 'default');
  assert.deepEqual(peer.metadata?.LABELS, { app: 'backend' });
  assert.match(String(peer.id), /^sidecar~127\.0\.0\.1~backend-1\.default~/);
  assert.equal(reply.subarray(8 + size).toString(), 'ping', 'then only the echo: our prefix was stripped');

  // No exchange ALPN (a stock Envoy's `istio`, or none): bytes as they are, in both directions.
  assert.equal((await echoOnce(dial(['istio']), Buffer.from('plain'), { ready: 'secureConnect', halfClose: true })).toString(), 'plain');
  const magicLike = Buffer.from([0x3d, 0x23, 0x04, 0x67, 0, 0, 0, 1, 0x41]);
  assert.deepEqual(await echoOnce(dial(['istio']), magicLike, { ready: 'secureConnect', halfClose: true }), magicLike, 'without the ALPN even a magic-looking start is application data');

  const dst = await waitFor('series of the TLS client', async () => {
    const s = await scrape(mesh.backend.ports.prometheus);
    return sumOf(s, 'istio_tcp_connections_closed_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/tls-client' }) >= 3 ? s : undefined;
  }, 20_000, 100);
  const base = { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/tls-client', connection_security_policy: 'mutual_tls' };
  assert.equal(tcpSeries(dst, 'istio_tcp_connections_opened_total', { ...base, source_workload: 'tls-client', source_app: 'tls-client' }).value, 1);
  // Without the exchange the certificate still names the namespace; the workload is unknown.
  assert.equal(tcpSeries(dst, 'istio_tcp_connections_opened_total', { ...base, source_workload: 'unknown', source_workload_namespace: 'default' }).value, 2);
});
