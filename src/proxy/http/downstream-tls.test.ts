import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import diagnostics from 'node:diagnostics_channel';
import type { StreamInfo } from './stream-info.ts';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, startBackend, testConnectionManager } from '../../../test/support/connection-manager-harness.ts';
import { findTool } from '../../../test/support/tools.ts';
import { skipUnlessTools } from '../../../test/support/skip.ts';

test('TLS sockets handed over after ALPN: h2 and http/1.1 both served, scheme https', { skip: skipUnlessTools('openssl') }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(findTool('openssl')!, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  execFileSync(findTool('openssl')!, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'ckey.pem'), '-out', join(dir, 'ccert.pem'), '-days', '1', '-subj', '/CN=client', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/client'], { stdio: 'ignore' });
  const clientKey = readFileSync(join(dir, 'ckey.pem'));
  const clientCert = readFileSync(join(dir, 'ccert.pem'));
  const ends: StreamInfo[] = [];
  const sub = (m: unknown) => ends.push(m as StreamInfo);
  diagnostics.subscribe('trellis:http:request-end', sub);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', sub));
  const key = readFileSync(join(dir, 'key.pem'));
  const cert = readFileSync(join(dir, 'cert.pem'));
  const be = await startBackend((req, res) => res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'] })));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const hcm = testConnectionManager({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }),
  });
  // What the listener layer does: terminate TLS, look at ALPN, hand the socket over.
  const front = tls.createServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'], requestCert: true, rejectUnauthorized: false }, (s) => hcm.handleConnection(s, s.alpnProtocol === 'h2' ? 'h2' : 'http/1.1', { originalDestination: { address: '10.1.2.3', port: 9999 } }));
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const port = (front.address() as AddressInfo).port;
  t.after(async () => { front.close(); await hcm.close(100); await be.close(); cm.close(); });

  const h2body = await new Promise<string>((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, { ca: cert, key: clientKey, cert: clientCert, servername: 'localhost', checkServerIdentity: () => undefined });
    s.on('error', reject);
    const st = s.request({ ':path': '/' });
    let b = '';
    st.setEncoding('utf8');
    st.on('data', (d) => { b += d; });
    st.on('end', () => { s.close(); resolve(b); });
  });
  assert.deepEqual(JSON.parse(h2body), { proto: 'https' });
  const h1body = await new Promise<string>((resolve, reject) => {
    const opts: https.RequestOptions = { host: '127.0.0.1', port, path: '/', ca: cert, servername: 'localhost', checkServerIdentity: () => undefined, agent: false };
    https.get(opts, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  assert.deepEqual(JSON.parse(h1body), { proto: 'https' });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ends.map((i) => [i.protocol, i.scheme, i.downstreamTls?.peerUriSans, i.downstreamTls?.sni, i.downstreamTls?.alpn]), [
    ['HTTP/2', 'https', ['spiffe://cluster.local/ns/default/sa/client'], 'localhost', 'h2'],
    ['HTTP/1.1', 'https', [], 'localhost', undefined], // the https client offered no ALPN
  ]);
  // Connection facts from the listener reach the cluster (ORIGINAL_DST), for both protocols.
  assert.deepEqual(cm.log('a').map((l) => [l.init.downstreamProtocol, l.init.originalDestination]), [
    ['http2', { address: '10.1.2.3', port: 9999 }], ['http1', { address: '10.1.2.3', port: 9999 }],
  ]);
});
