/**
 * Server verification with a cluster's auto_sni / auto_san_validation (Envoy's
 * UpstreamHttpProtocolOptions), against real HTTPS servers of a test CA: the request's host becomes
 * the SNI and the name the certificate must carry (wildcards cover one label), connections made
 * for one host never carry another's requests, an untrusted root fails, and without the switches
 * no SNI is sent unless the context names one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { testCa, type TestCa } from '../../../test/support/test-pki.ts';
import { startExternalServer, type ExternalServer } from '../../../test/support/egress-mesh.ts';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import { parseCluster } from '../upstream/cluster-config.ts';
import { get, staticCluster } from '../upstream/test-support.ts';
import { UpstreamError } from '../upstream/types.ts';
import { autoTlsNames, dnsNameMatches, tlsConnectOptions } from './upstream-tls.ts';
import { staticSecrets } from './secret-provider.ts';
import { parseUpstreamTlsContext } from './upstream-tls-config.ts';

let ca: TestCa;
let named: ExternalServer;
let wildcard: ExternalServer;
let byIp: ExternalServer;
let untrusted: ExternalServer;

/** SNI of each request's connection a server saw ('' = none). */
const sniSeen = (s: ExternalServer) => s.seen.map((r) => r.sni ?? '');

before(async () => {
  ca = await testCa();
  const other = await testCa('Not Trusted Root');
  named = await startExternalServer('named', await ca.leaf('named', ['api.example.test']));
  wildcard = await startExternalServer('wildcard', await ca.leaf('wildcard', ['*.wild.example.test']));
  byIp = await startExternalServer('ip', await ca.leaf('ip', [], [], ['127.0.0.1']));
  untrusted = await startExternalServer('untrusted', await other.leaf('untrusted', ['api.example.test']));
});

after(async () => {
  await Promise.all([named, wildcard, byIp, untrusted].map((s) => s?.close()));
});

const upstreamOptions = (o: Record<string, unknown>) => ({
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http_protocol_options: {} },
      upstream_http_protocol_options: o,
    },
  },
});

/** A cluster to `port` verifying against the test CA (what translation sends for a rule without sni). */
function cluster(port: number, o: { auto?: Record<string, unknown>; sni?: string; ca?: boolean } = {}) {
  const ctx: Record<string, unknown> = { common_tls_context: o.ca === false ? {} : { validation_context: { trusted_ca: { filename: ca.certFile } } } };
  if (o.sni !== undefined) ctx.sni = o.sni;
  return staticCluster('ext', [port], {
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ...ctx } },
    ...(o.auto !== undefined ? upstreamOptions(o.auto) : {}),
  });
}

const auto = { auto_sni: true, auto_san_validation: true };
const failsUF = (re: RegExp) => (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && re.test(err.message);

test('the request host is the SNI and must be a DNS SAN of the server certificate; another host on the same cluster gets its own connection and fails', async () => {
  const cm = createClusterManager();
  cm.update([cluster(named.port, { auto })], new Map());
  const c = cm.get('ext')!;
  const r = await get(c, '/', { authority: 'API.example.test:443' });
  assert.deepEqual([r.status, r.body, named.seen[0]?.host], [200, 'named /\n', 'API.example.test:443']);
  assert.deepEqual(sniSeen(named), ['api.example.test']);
  // A pooled connection verified for api.example.test must not carry a request for another host.
  await assert.rejects(get(c, '/', { authority: 'evil.example.test' }), (err: unknown) => failsUF(/evil\.example\.test.*auto_san_validation/)(err)
    // The reason travels to the local reply and %UPSTREAM_TRANSPORT_FAILURE_REASON%.
    && /^TLS_error: ERR_TLS_SAN_MISMATCH: .*evil\.example\.test/.test((err as UpstreamError).transportFailureReason ?? '')
    && /^connection failure, transport failure reason: TLS_error/.test((err as UpstreamError).resetReason));
  assert.equal(named.seen.length, 1, 'the server never saw the request for the wrong host');
  assert.equal((await get(c, '/', { authority: 'api.example.test' })).status, 200);
  await cm.close();
});

test('wildcard SANs cover exactly one label', async () => {
  const cm = createClusterManager();
  cm.update([cluster(wildcard.port, { auto })], new Map());
  const c = cm.get('ext')!;
  assert.equal((await get(c, '/', { authority: 'a.wild.example.test' })).status, 200);
  assert.equal((await get(c, '/', { authority: 'B.Wild.Example.Test' })).status, 200);
  await assert.rejects(get(c, '/', { authority: 'wild.example.test' }), failsUF(/auto_san_validation/));
  await assert.rejects(get(c, '/', { authority: 'a.b.wild.example.test' }), failsUF(/auto_san_validation/));
  await cm.close();
});

test('a certificate from a root the cluster does not trust fails with UF, whatever its name', async () => {
  const cm = createClusterManager();
  cm.update([cluster(untrusted.port, { auto })], new Map());
  await assert.rejects(get(cm.get('ext')!, '/', { authority: 'api.example.test' }), failsUF(/certificate/i));
  assert.deepEqual(sniSeen(untrusted), []);
  await cm.close();
});

test('an IP host: no SNI, and the certificate must carry it as an IP SAN', async () => {
  const cm = createClusterManager();
  cm.update([cluster(byIp.port, { auto })], new Map());
  const r = await get(cm.get('ext')!, '/', { authority: `127.0.0.1:${byIp.port}` });
  assert.equal(r.status, 200);
  assert.deepEqual(sniSeen(byIp), ['']);
  cm.update([cluster(named.port, { auto })], new Map());
  await assert.rejects(get(cm.get('ext')!, '/', { authority: '127.0.0.1' }), failsUF(/127\.0\.0\.1/));
  await cm.close();
});

test('auto_sni alone: SNI from the host, the chain checked, no name check; without the switches no SNI but the configured one', async () => {
  const cm = createClusterManager();
  cm.update([cluster(named.port, { auto: { auto_sni: true } })], new Map());
  named.seen.length = 0;
  assert.equal((await get(cm.get('ext')!, '/', { authority: 'other.example.test' })).status, 200);
  assert.deepEqual(sniSeen(named), ['other.example.test']);
  cm.update([cluster(named.port)], new Map());
  assert.equal((await get(cm.get('ext')!, '/', { authority: 'api.example.test' })).status, 200);
  cm.update([cluster(named.port, { sni: 'configured.example.test' })], new Map());
  assert.equal((await get(cm.get('ext')!, '/', { authority: 'api.example.test' })).status, 200);
  assert.deepEqual(sniSeen(named), ['other.example.test', '', 'configured.example.test']);
  await cm.close();
});

test('override_auto_sni_header names where the host comes from', async () => {
  const cm = createClusterManager();
  cm.update([cluster(named.port, { auto: { ...auto, override_auto_sni_header: 'X-Upstream-Host' } })], new Map());
  named.seen.length = 0;
  const r = await get(cm.get('ext')!, '/', { authority: 'ignored.example.test', headers: { 'x-upstream-host': 'api.example.test' } });
  assert.equal(r.status, 200);
  assert.deepEqual(sniSeen(named), ['api.example.test']);
  await assert.rejects(get(cm.get('ext')!, '/', { authority: 'api.example.test', headers: { 'x-upstream-host': 'evil.example.test' } }), failsUF(/evil/));
  await cm.close();
});

test('auto_san_validation without a trusted CA is refused (any self-signed certificate could claim the name)', async () => {
  const cm = createClusterManager();
  cm.update([cluster(named.port, { auto, ca: false })], new Map());
  await assert.rejects(get(cm.get('ext')!, '/', { authority: 'api.example.test' }), failsUF(/trusted_ca/));
  await cm.close();
});

test('Envoy DNS SAN matching and the names taken from the request', () => {
  assert.ok(dnsNameMatches('a.example.com', '*.example.com'));
  assert.ok(dnsNameMatches('A.Example.COM', 'a.example.com'));
  assert.ok(!dnsNameMatches('example.com', '*.example.com'));
  assert.ok(!dnsNameMatches('a.b.example.com', '*.example.com'));
  assert.ok(!dnsNameMatches('.example.com', '*.example.com'));
  assert.ok(!dnsNameMatches('a.example.com', '*'));
  assert.ok(!dnsNameMatches('aexample.com', '*.example.com'));
  const on = { autoSni: true, autoSanValidation: true, overrideAutoSniHeader: undefined };
  assert.deepEqual(autoTlsNames(on, 'Api.Example.test:8443'), { sni: 'api.example.test', san: 'api.example.test' });
  assert.deepEqual(autoTlsNames(on, '[::1]:443'), { san: '::1' });
  assert.deepEqual(autoTlsNames({ ...on, autoSanValidation: false }, '10.0.0.1'), undefined);
  assert.deepEqual(autoTlsNames({ ...on, autoSni: false }, 'a.test'), { san: 'a.test' });
  assert.equal(autoTlsNames(on, ''), undefined);
  assert.equal(autoTlsNames(undefined, 'a.test'), undefined);
  assert.equal(autoTlsNames({ ...on, autoSni: false, autoSanValidation: false }, 'a.test'), undefined);
  assert.throws(() => tlsConnectOptions(parseUpstreamTlsContext({}, 't'), staticSecrets({}, {}), '127.0.0.1', { san: 'a.test' }), /trusted_ca/);
});

test('parsing: upstream_http_protocol_options from HttpProtocolOptions or the legacy cluster field; the dynamic forward proxy turns both on', () => {
  const typed = parseCluster(cluster(1, { auto: { auto_sni: true, override_auto_sni_header: 'X-Host' } }));
  assert.deepEqual(typed.upstreamHttp, { autoSni: true, autoSanValidation: false, overrideAutoSniHeader: 'x-host' });
  assert.equal(parseCluster(cluster(1)).upstreamHttp, undefined);
  const legacy = parseCluster({ ...staticCluster('l', [1]), upstream_http_protocol_options: { auto_san_validation: true } });
  assert.deepEqual(legacy.upstreamHttp, { autoSni: false, autoSanValidation: true, overrideAutoSniHeader: undefined });
  const dfp = parseCluster({ name: 'dfp', lb_policy: 'CLUSTER_PROVIDED', cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy', typed_config: {} } });
  assert.deepEqual(dfp.upstreamHttp, { autoSni: true, autoSanValidation: true, overrideAutoSniHeader: undefined });
  assert.throws(() => parseCluster(cluster(1, { auto: { auto_sni: true, override_auto_sni_header: 'bad header' } })), /override_auto_sni_header.*not a valid header name/);
  assert.throws(() => parseCluster(cluster(1, { auto: { auto_sni: 'yes' } })), /auto_sni/);
});
