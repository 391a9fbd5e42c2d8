import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { request } from 'node:https';
import { createCa, issueCert } from './certs.ts';

test('certs: a CA signs a serving certificate that a TLS client verifies by IP and DNS name', async () => {
  const ca = await createCa('trellis-test-ca');
  assert.equal(ca.cert.ca, true);
  assert.ok(ca.cert.checkIssued(ca.cert), 'self-signed');
  const leaf = await issueCert(ca, { commonName: 'webhook', hosts: ['127.0.0.1', 'trellis.trellis-system.svc'] });
  assert.equal(leaf.cert.ca, false);
  assert.ok(leaf.cert.checkIssued(ca.cert));
  assert.ok(leaf.cert.verify(ca.cert.publicKey));
  assert.match(leaf.cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.match(leaf.cert.subjectAltName ?? '', /DNS:trellis\.trellis-system\.svc/);
  const server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'trellis.trellis-system.svc' }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'ok');
  } finally {
    server.close();
  }
});

test('certs: client certificates carry the organization (Kubernetes group) and clientAuth', async () => {
  const ca = await createCa('ca');
  const c = await issueCert(ca, { commonName: 'admin', organization: 'system:masters' });
  assert.match(c.cert.subject, /O=system:masters/);
  assert.match(c.cert.subject, /CN=admin/);
  assert.equal(c.cert.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), true, 'clientAuth');
});
