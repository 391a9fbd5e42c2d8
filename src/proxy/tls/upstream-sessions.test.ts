/**
 * Upstream TLS session resumption: new connections resume the last session to the endpoint, keep
 * the destination principal, and still apply the SAN matchers (against the identity verified when
 * the session was made): a resumed session to a server whose identity the cluster does not accept
 * is refused. Also across a server-side Trellis listener (terminateTls), which must still see and
 * check the client certificate on a resumed session.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import { staticCluster } from '../upstream/test-support.ts';
import type { ClusterHandle, UpstreamResponse } from '../upstream/types.ts';
import { cancelOnAbort, UpstreamError } from '../upstream/types.ts';
import { parseDownstreamTransportSocket, terminateTls } from '../listener/downstream-tls.ts';
import { staticSecrets } from './secret-provider.ts';
import { testCa } from '../../../test/support/test-pki.ts';

const backendId = 'spiffe://cluster.local/ns/default/sa/backend';
const clientId = 'spiffe://cluster.local/ns/default/sa/frontend';

function sdsTls(sanExact: string) {
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: 'backend.test',
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: sanExact } }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
          },
        },
      },
    },
    // One request per connection: every request opens (and may resume) a connection.
    max_requests_per_connection: 1,
  };
}

async function send(c: ClusterHandle): Promise<UpstreamResponse & { text: string }> {
  const res = await c.request({ method: 'GET', path: '/', authority: 'backend.test', scheme: 'http', headers: {}, body: null, cancel: cancelOnAbort(AbortSignal.timeout(5000)), isRetry: false });
  let text = '';
  for await (const chunk of res.body) text += Buffer.from(chunk).toString();
  return Object.assign(res, { text });
}

async function pki() {
  const ca = await testCa();
  const server = await ca.leaf('backend', ['backend.test'], [backendId]);
  const client = await ca.leaf('frontend', ['frontend.test'], [clientId]);
  // One certificate object and one trust bundle, as SDS hands them out: every cluster shares the secure context and its sessions.
  const secrets = staticSecrets({ default: Object.freeze({ certChain: client.cert, privateKey: client.key }) }, { ROOTCA: Object.freeze({ trustedCa: ca.cert, sanMatchers: [] }) });
  return { ca, server, secrets };
}

test('upstream mTLS resumes sessions, keeps the destination principal, and refuses a resumed session to an identity the cluster does not accept', async (t) => {
  const { ca, server, secrets } = await pki();
  const resumed: boolean[] = [];
  const srv = https.createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.end(`peer=${(req.socket as TLSSocket).getPeerCertificate().subjectaltname}`);
  });
  srv.on('secureConnection', (s: TLSSocket) => resumed.push(s.isSessionReused()));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const cm = createClusterManager({ secrets });
  cm.update([staticCluster('right', [port], sdsTls(backendId)), staticCluster('wrong', [port], sdsTls('spiffe://cluster.local/ns/other/sa/impostor'))], new Map());
  t.after(async () => { await cm.close(); srv.closeAllConnections(); await new Promise<void>((r) => srv.close(() => r())); });

  for (let i = 0; i < 4; i++) {
    const r = await send(cm.get('right')!);
    assert.equal(r.status, 200);
    assert.ok(r.text.includes(`URI:${clientId}`), r.text);
    assert.equal(r.peerPrincipal, backendId, `request ${i}: the destination principal survives resumption`);
  }
  assert.equal(resumed[0], false, 'the first connection is a full handshake');
  assert.ok(resumed.slice(1).some(Boolean), `later connections resume (${resumed.join()})`);

  await assert.rejects(send(cm.get('wrong')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && /match none of the configured subject alt name matchers \(resumed TLS session\)/.test(err.message));
  assert.equal(cm.stats().get('wrong')!.upstream_cx_connect_fail, 1);
  // The refused session is dropped: the next try is a full handshake, refused by node's own check.
  await assert.rejects(send(cm.get('wrong')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && /match none of the configured/.test(err.message) && !/resumed/.test(err.message));
  // The accepted identity still resumes (a session is kept per endpoint, not per cluster).
  assert.equal((await send(cm.get('right')!)).peerPrincipal, backendId);
});

test('a Trellis TLS listener checks the client certificate on resumed sessions too', async (t) => {
  const { ca, server, secrets } = await pki();
  const cfg = parseDownstreamTransportSocket({
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }],
        validation_context: { trusted_ca: { inline_string: ca.cert }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: clientId } }] },
      },
    },
  }, 'chain')!;
  const peers: { resumed: boolean; sans: string | undefined }[] = [];
  const listener = net.createServer((socket) => {
    terminateTls(socket, cfg, staticSecrets({})).then((s) => {
      peers.push({ resumed: s.isSessionReused(), sans: s.getPeerCertificate().subjectaltname });
      s.on('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
      s.on('error', () => {});
    }, () => socket.destroy());
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as AddressInfo).port;
  const cm = createClusterManager({ secrets });
  cm.update([staticCluster('c', [port], sdsTls(backendId))], new Map());
  t.after(async () => { await cm.close(); await new Promise<void>((r) => listener.close(() => r())); });
  for (let i = 0; i < 3; i++) assert.equal((await send(cm.get('c')!)).text, 'ok');
  assert.equal(peers.length, 3);
  assert.ok(peers.slice(1).some((p) => p.resumed), `a later connection resumed (${peers.map((p) => p.resumed).join()})`);
  assert.ok(peers.every((p) => p.sans?.includes(clientId)), 'the client identity is known on every connection, resumed or not');
});
