import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileListener, type HcmFactory } from '../listener/listener-config.ts';
import { parseCluster } from '../upstream/cluster-config.ts';
import { MetadataExchangeType, metadataExchangeProtocol } from './metadata-exchange-config.ts';

const at = "listener 'x'.filter_chains[0].filters[0]";
// What istiod sends (TCPListenerMx / TCPClusterMx).
const mx = { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: MetadataExchangeType, value: { protocol: 'istio-peer-exchange', enable_discovery: true } } };
const tcp = { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'in', cluster: 'c' } };
const noHcm: HcmFactory = () => {
  throw new Error('no HTTP here');
};
const listener = (filters: unknown[]) => ({ name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters }] });

test('the metadata exchange filter as istiod sends it, typed directly, or another filter', () => {
  assert.equal(metadataExchangeProtocol(mx, at), 'istio-peer-exchange');
  assert.equal(metadataExchangeProtocol({ name: 'x', typed_config: { '@type': MetadataExchangeType, protocol: 'p' } }, at), 'p');
  assert.equal(metadataExchangeProtocol(tcp, at), undefined);
  assert.throws(() => metadataExchangeProtocol({ name: 'x', typed_config: { ...mx.typed_config, value: {} } }, at), /listener 'x'\.filter_chains\[0\]\.filters\[0\]\.typed_config\.value\.protocol: .*ALPN protocol/);
});

test('a chain runs it before its tcp_proxy; after it, or with no terminal filter, the listener is rejected', () => {
  const l = compileListener(listener([mx, tcp]), noHcm);
  const action = l.chains[0]?.action ?? l.defaultChain?.action;
  assert.equal(action?.kind, 'tcp');
  assert.equal(action?.kind === 'tcp' ? action.peerExchange : undefined, 'istio-peer-exchange');
  const plain = compileListener(listener([tcp]), noHcm);
  const plainAction = plain.chains[0]?.action ?? plain.defaultChain?.action;
  assert.equal(plainAction?.kind === 'tcp' ? plainAction.peerExchange : 'x', undefined);
  assert.throws(() => compileListener(listener([tcp, mx]), noHcm), /filters\[1\]: istio\.metadata_exchange must come before the terminal filter/);
  assert.throws(() => compileListener(listener([mx]), noHcm), /needs http_connection_manager or tcp_proxy/);
});

test('a cluster takes it in filters; any other upstream network filter is rejected, as Envoy does', () => {
  assert.equal(parseCluster({ name: 'c', type: 'STATIC', filters: [mx] }).peerExchange, 'istio-peer-exchange');
  assert.equal(parseCluster({ name: 'c', type: 'STATIC' }).peerExchange, undefined);
  assert.throws(() => parseCluster({ name: 'c', type: 'STATIC', filters: [{ name: 'envoy.filters.network.upstream.other', typed_config: { '@type': 'type.googleapis.com/x.Y' } }] }), /cluster .c.\.filters\[0\]: unsupported upstream network filter 'envoy\.filters\.network\.upstream\.other'/);
});
