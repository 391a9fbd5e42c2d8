import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { findTool } from '../../../test/support/tools.ts';
import { skipUnlessTools } from '../../../test/support/skip.ts';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import { get, h2Options, staticCluster } from '../upstream/test-support.ts';
import { UpstreamError } from '../upstream/types.ts';
import { staticSecrets } from './secret-provider.ts';
import { parseUpstreamTlsContext } from './upstream-tls-config.ts';

const skip = skipUnlessTools('openssl');
const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-'));
const pem: Record<string, string> = {};
const spiffe = 'spiffe://cluster.local/ns/default/sa/backend';

function openssl(...args: string[]): void {
  execFileSync(findTool('openssl')!, args, { cwd: dir, stdio: 'pipe' });
}

function issue(name: string, cn: string, san: string): void {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  pem[`${name}.key`] = readFileSync(join(dir, `${name}.key`), 'utf8');
  pem[`${name}.pem`] = readFileSync(join(dir, `${name}.pem`), 'utf8');
}

let server: https.Server;
let h2server: http2.Http2SecureServer;
let port = 0;
let h2port = 0;

before(async () => {
  if (skip) return;
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=trellis-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  pem['ca.pem'] = readFileSync(join(dir, 'ca.pem'), 'utf8');
  issue('server', 'backend', `DNS:backend.test,URI:${spiffe}`);
  issue('client', 'frontend', 'URI:spiffe://cluster.local/ns/default/sa/frontend');
  server = https.createServer({ key: pem['server.key'], cert: pem['server.pem'], ca: pem['ca.pem'], requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.end(`hello ${peer.subject?.CN} sni=${(req.socket as TLSSocket & { servername?: string }).servername}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  h2server = http2.createSecureServer({ key: pem['server.key'], cert: pem['server.pem'], ca: pem['ca.pem'], requestCert: true, rejectUnauthorized: true, allowHTTP1: false }, (req, res) => {
    res.end(`h2 ${req.httpVersion} alpn=${(req.socket as TLSSocket).alpnProtocol}`);
  });
  await new Promise<void>((r) => h2server.listen(0, '127.0.0.1', r));
  h2port = (h2server.address() as AddressInfo).port;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await new Promise<void>((r) => (h2server ? h2server.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

function tlsSocket(common: Record<string, unknown>, sni = 'backend.test') {
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni, common_tls_context: common },
    },
  };
}

function mtls(san: string) {
  return {
    tls_certificates: [{ certificate_chain: { inline_string: pem['client.pem'] }, private_key: { filename: join(dir, 'client.key') } }],
    validation_context: { trusted_ca: { filename: join(dir, 'ca.pem') }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: san } }] },
  };
}

test('mutual TLS to a server that requires client certificates, with SAN check and SNI', { skip }, async () => {
  const cm = createClusterManager();
  cm.update([staticCluster('tls', [port], tlsSocket(mtls(spiffe)))], new Map());
  const r = await get(cm.get('tls')!);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello frontend sni=backend.test');
  await cm.close();
});

test('SAN mismatch fails the connection with UF', { skip }, async () => {
  const cm = createClusterManager();
  cm.update([staticCluster('tls', [port], tlsSocket(mtls('spiffe://cluster.local/ns/other/sa/impostor')))], new Map());
  await assert.rejects(get(cm.get('tls')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && /SAN|subject alt/i.test(err.message));
  await cm.close();
});

test('an untrusted server certificate fails with UF', { skip }, async () => {
  const cm = createClusterManager();
  const common = { ...mtls(spiffe), validation_context: { trusted_ca: { inline_string: pem['client.pem'] } } };
  cm.update([staticCluster('tls', [port], tlsSocket(common))], new Map());
  await assert.rejects(get(cm.get('tls')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF');
  await cm.close();
});

test('without a client certificate the server refuses the exchange', { skip }, async () => {
  const cm = createClusterManager();
  cm.update([staticCluster('tls', [port], tlsSocket({ validation_context: { trusted_ca: { inline_string: pem['ca.pem'] } } }))], new Map());
  await assert.rejects(get(cm.get('tls')!), (err: unknown) => err instanceof UpstreamError && ['UF', 'UC', 'UR'].includes(err.responseFlag));
  await cm.close();
});

test('client certificate from SDS through the SecretProvider; missing secret -> UF', { skip }, async () => {
  const common = {
    tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] },
      validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
    },
  };
  const rootCa = { trustedCa: pem['ca.pem'], sanMatchers: [] };
  const withSecrets = createClusterManager({ secrets: staticSecrets({ default: { certChain: pem['client.pem'], privateKey: pem['client.key'] } }, { ROOTCA: rootCa }) });
  withSecrets.update([staticCluster('tls', [port], tlsSocket(common))], new Map());
  assert.equal((await get(withSecrets.get('tls')!)).body, 'hello frontend sni=backend.test');
  await withSecrets.close();
  const without = createClusterManager({ secrets: staticSecrets({}, { ROOTCA: rootCa }) });
  without.update([staticCluster('tls', [port], tlsSocket(common))], new Map());
  await assert.rejects(get(without.get('tls')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && /default/.test(err.message));
  await without.close();
});

test('HTTP/2 over TLS negotiates h2 by ALPN', { skip }, async () => {
  const cm = createClusterManager();
  cm.update([staticCluster('h2tls', [h2port], { ...tlsSocket(mtls(spiffe)), ...h2Options })], new Map());
  const c = cm.get('h2tls')!;
  const rs = await Promise.all([get(c), get(c), get(c)]);
  assert.ok(rs.every((r) => r.body === 'h2 2.0 alpn=h2'), rs.map((r) => r.body).join());
  assert.equal(cm.stats().get('h2tls')!.upstream_cx_total, 1);
  await cm.close();
});

test('HTTP/2 over TLS keeps a configured ALPN list (Istio style) and still negotiates h2', { skip }, async () => {
  const cm = createClusterManager();
  cm.update([staticCluster('h2tls', [h2port], { ...tlsSocket({ ...mtls(spiffe), alpn_protocols: ['istio-peer-exchange', 'istio', 'h2'] }), ...h2Options })], new Map());
  assert.equal((await get(cm.get('h2tls')!)).body, 'h2 2.0 alpn=h2');
  await cm.close();
});

test('transport_socket_matches: only endpoints labelled tlsMode=istio get TLS', { skip }, async () => {
  const cm = createClusterManager();
  const la = {
    cluster_name: 'm',
    endpoints: [{ lb_endpoints: [
      { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } }, metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } } },
      { endpoint: { address: { socket_address: { address: '127.0.0.2', port_value: port } } } },
    ] }],
  };
  cm.update([{ name: 'm', type: 'STATIC', connect_timeout: '1s', load_assignment: la, transport_socket_matches: [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, ...tlsSocket(mtls(spiffe)) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
  ] }], new Map());
  const c = cm.get('m')!;
  const results = await Promise.allSettled([get(c), get(c)]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  // The labelled endpoint speaks mTLS and succeeds; the plaintext one hits a TLS server and fails.
  assert.equal(ok.length, 1);
  assert.equal((ok[0] as PromiseFulfilledResult<{ endpoint: string }>).value.endpoint, `127.0.0.1:${port}`);
  await cm.close();
});

test('UpstreamTlsContext parsing keeps ALPN and SNI', () => {
  const cfg = parseUpstreamTlsContext({ sni: 'x', common_tls_context: { alpn_protocols: ['istio', 'h2'] } }, 't');
  assert.deepEqual(cfg.alpn, ['istio', 'h2']);
  assert.equal(cfg.sni, 'x');
  assert.equal(cfg.validation, undefined);
});
