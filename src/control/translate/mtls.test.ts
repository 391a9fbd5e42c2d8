import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../xds/types.ts';
import { translate } from './index.ts';
import { node, serviceYaml, snapshotFromYaml } from './test-support.ts';
import { proxyNodeFromXds } from '../proxy-node.ts';

const mesh = `
${serviceYaml('backend', 'shop', '[{name: http, port: 8080}, {name: tcp-db, port: 5432}]')}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-1, namespace: shop}
spec:
  address: 10.0.0.1
  serviceAccount: backend
  labels: {app: backend, security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-legacy, namespace: shop}
spec:
  address: 10.0.0.2
  labels: {app: backend}
`;
const ROOT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const backend = node('sidecar', 'shop', 'backend-1', { LABELS: { app: 'backend' } });
const client = node('sidecar', 'shop', 'web-1', { LABELS: { app: 'web' } });

function inbound(policies: string, bundle = [ROOT]) {
  const set = translate(snapshotFromYaml(mesh + policies, { trustBundle: bundle }), backend);
  const ls = set.get(TypeUrl.Listener)!;
  const modeOf = (port: number) => {
    const l = [...ls.values()].find((x) => x.name === `inbound_0.0.0.0_${port}`)!;
    const chains = l.filter_chains as Record<string, unknown>[];
    const mtls = chains.some((c) => c.transport_socket !== undefined);
    const plain = chains.some((c) => c.transport_socket === undefined);
    return mtls && plain ? 'PERMISSIVE' : mtls ? 'STRICT' : 'DISABLE';
  };
  return { set, modeOf };
}

test('PeerAuthentication levels: mesh < namespace < workload < port; UNSET inherits; no CA means plaintext', () => {
  assert.equal(inbound('').modeOf(8080), 'PERMISSIVE', 'default');
  assert.equal(inbound('').modeOf(8080), 'PERMISSIVE');
  assert.equal(inbound('', []).modeOf(8080), 'DISABLE', 'no trust bundle: nobody has a certificate');
  const meshStrict = '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n';
  assert.equal(inbound(meshStrict).modeOf(8080), 'STRICT');
  const nsDisable = '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\nspec: {mtls: {mode: DISABLE}}\n';
  assert.equal(inbound(meshStrict + nsDisable).modeOf(8080), 'DISABLE');
  const nsUnset = '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\nspec: {mtls: {mode: UNSET}}\n';
  assert.equal(inbound(meshStrict + nsUnset).modeOf(8080), 'STRICT', 'UNSET inherits the mesh level');
  const workload = '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: backend, namespace: shop}\nspec:\n  selector: {matchLabels: {app: backend}}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    5432: {mode: PERMISSIVE}\n';
  const r = inbound(nsDisable + workload);
  assert.equal(r.modeOf(8080), 'STRICT');
  assert.equal(r.modeOf(5432), 'PERMISSIVE');
  // The mTLS chain: client certificate required, this trust domain only, the workload certificate from the agent.
  const l = [...r.set.get(TypeUrl.Listener)!.values()].find((x) => x.name === 'inbound_0.0.0.0_8080')!;
  const ts = ((l.filter_chains as Record<string, unknown>[])[0].transport_socket as { typed_config: Record<string, unknown> }).typed_config;
  assert.equal(ts.require_client_certificate, true);
  assert.deepEqual(JSON.parse(JSON.stringify(ts.common_tls_context)).combined_validation_context.default_validation_context, { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] });
  assert.equal(r.set.get(TypeUrl.Secret)!.get('ROOTCA')?.validation_context !== undefined, true, 'ROOTCA served from the trust bundle');
});

test('auto-mTLS: ISTIO_MUTUAL to tlsMode=istio endpoints only, unless their policy DISABLEs mTLS or a DestinationRule sets TLS', () => {
  const eps = (policies: string) => {
    const set = translate(snapshotFromYaml(mesh + policies, { trustBundle: [ROOT] }), client);
    const cla = set.get(TypeUrl.ClusterLoadAssignment)!.get('outbound|8080||backend.shop.svc.cluster.local')!;
    const lbs = (cla.endpoints as { lb_endpoints: { endpoint: { address: { socket_address: { address: string } } }; metadata?: unknown }[] }[]).flatMap((l) => l.lb_endpoints);
    const cluster = set.get(TypeUrl.Cluster)!.get('outbound|8080||backend.shop.svc.cluster.local')!;
    return { tls: lbs.filter((e) => e.metadata !== undefined).map((e) => e.endpoint.address.socket_address.address), cluster };
  };
  const plain = eps('');
  assert.deepEqual(plain.tls, ['10.0.0.1']);
  const matches = plain.cluster.transport_socket_matches as { name: string; transport_socket: { typed_config: Record<string, unknown> } }[];
  assert.deepEqual(matches.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
  assert.equal(matches[0].transport_socket.typed_config.sni, 'outbound_.8080_._.backend.shop.svc.cluster.local');
  assert.match(JSON.stringify(matches[0].transport_socket), /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/backend/);
  const disabled = eps('---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: backend, namespace: shop}\nspec:\n  selector: {matchLabels: {app: backend}}\n  mtls: {mode: DISABLE}\n');
  assert.deepEqual(disabled.tls, [], 'DISABLE at the server: clients send plaintext');
  const dr = eps('---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: backend, namespace: shop}\nspec:\n  host: backend\n  trafficPolicy: {tls: {mode: DISABLE}}\n');
  assert.equal(dr.cluster.transport_socket_matches, undefined, 'a DestinationRule tls setting wins over auto-mTLS');
});

test('PERMISSIVE, as Istio: TLS with Istio\'s ALPN goes to the mTLS chain, other TLS passes through to the application, plaintext to the plaintext chain', () => {
  const l = [...inbound('').set.get(TypeUrl.Listener)!.values()].find((x) => x.name === 'inbound_0.0.0.0_8080')!;
  const chains = (l.filter_chains as { filter_chain_match: Record<string, unknown>; transport_socket?: unknown; filters: { name: string; typed_config: Record<string, unknown> }[] }[]);
  assert.deepEqual(chains.map((c) => [c.filter_chain_match.transport_protocol, c.filter_chain_match.application_protocols ?? null, c.transport_socket !== undefined, c.filters[0].name]), [
    ['tls', ['istio-peer-exchange', 'istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'], true, 'envoy.filters.network.http_connection_manager'],
    ['tls', null, false, 'envoy.filters.network.tcp_proxy'],
    ['raw_buffer', null, false, 'envoy.filters.network.http_connection_manager'],
  ]);
  assert.equal(chains[1].filters[0].typed_config.cluster, 'inbound|8080||');
  const strict = inbound('---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n');
  const s = [...strict.set.get(TypeUrl.Listener)!.values()].find((x) => x.name === 'inbound_0.0.0.0_8080')!;
  assert.deepEqual((s.filter_chains as { filter_chain_match: Record<string, unknown> }[]).map((c) => c.filter_chain_match), [{ transport_protocol: 'tls' }], 'STRICT: any TLS client meets the mTLS chain');
});

test('Istio\'s TCP metadata exchange: the filter and its ALPN for proxies that have it, neither for a stock Envoy', () => {
  const snapshot = snapshotFromYaml(mesh, { trustBundle: [ROOT] });
  const strictDb = (proxy: typeof backend) => {
    const set = translate(snapshotFromYaml(mesh + '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n', { trustBundle: [ROOT] }), proxy);
    const l = [...set.get(TypeUrl.Listener)!.values()].find((x) => x.name === 'inbound_0.0.0.0_5432')!;
    const chain = (l.filter_chains as { transport_socket: { typed_config: { common_tls_context: { alpn_protocols: string[] } } }; filters: { name: string }[] }[])[0];
    return { filters: chain.filters.map((f) => f.name), alpn: chain.transport_socket.typed_config.common_tls_context.alpn_protocols };
  };
  const dbCluster = (proxy: typeof client) => translate(snapshot, proxy).get(TypeUrl.Cluster)!.get('outbound|5432||backend.shop.svc.cluster.local')! as {
    filters?: { name: string; typed_config: Record<string, unknown> }[];
    transport_socket_matches: { transport_socket: { typed_config: { common_tls_context: { alpn_protocols: string[] } } } }[];
  };
  const alpnOf = (c: ReturnType<typeof dbCluster>) => c.transport_socket_matches[0].transport_socket.typed_config.common_tls_context.alpn_protocols;

  // A Trellis proxy (or any node that is not a stock Envoy): as istiod configures istio-proxy.
  assert.deepEqual(strictDb(backend), { filters: ['istio.metadata_exchange', 'envoy.filters.network.tcp_proxy'], alpn: ['istio-peer-exchange', 'istio'] });
  const c = dbCluster(client);
  assert.deepEqual(c.filters?.map((f) => [f.name, f.typed_config.type_url, (f.typed_config.value as Record<string, unknown>).protocol]), [['istio.metadata_exchange', 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', 'istio-peer-exchange']]);
  assert.deepEqual(alpnOf(c), ['istio-peer-exchange', 'istio']);
  // HTTP chains never run it.
  const http = [...translate(snapshot, backend).get(TypeUrl.Listener)!.values()].find((x) => x.name === 'inbound_0.0.0.0_8080')!;
  assert.ok(!JSON.stringify(http).includes('istio.metadata_exchange'));

  // A stock Envoy says so (user_agent_name envoy) and lists no istio.metadata_exchange extension.
  const envoy = (n: typeof client) => proxyNodeFromXds({ id: n.id, metadata: { ...n.metadata }, user_agent_name: 'envoy', extensions: [{ name: 'envoy.filters.network.tcp_proxy' }] });
  assert.deepEqual(strictDb(envoy(backend)), { filters: ['envoy.filters.network.tcp_proxy'], alpn: ['istio'] });
  const e = dbCluster(envoy(client));
  assert.equal(e.filters, undefined);
  assert.deepEqual(alpnOf(e), ['istio']);
  // istio-proxy lists Istio's filter among its extensions: it gets the exchange.
  const istioProxy = proxyNodeFromXds({ id: client.id, metadata: { ...client.metadata }, user_agent_name: 'envoy', extensions: [{ name: 'istio.metadata_exchange' }] });
  assert.equal(dbCluster(istioProxy).filters?.length, 1);
});
