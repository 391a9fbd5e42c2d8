import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from './resource.ts';
import { caBundle, certificateAndKey, credentialSecret, secretStrings } from './credentials.ts';

test('credentialSecret: the proxy namespace unless the name carries one; other SDS providers are not Secrets', () => {
  assert.deepEqual(credentialSecret('shop-cert', 'istio-system'), { namespace: 'istio-system', name: 'shop-cert' });
  assert.deepEqual(credentialSecret('kubernetes://shop-cert', 'istio-system'), { namespace: 'istio-system', name: 'shop-cert' });
  assert.deepEqual(credentialSecret('kubernetes://shop/shop-cert', 'istio-system'), { namespace: 'shop', name: 'shop-cert' });
  assert.equal(credentialSecret('file:///etc/certs/a.pem', 'istio-system'), undefined);
  assert.equal(credentialSecret('kubernetes://', 'istio-system'), undefined);
  assert.equal(credentialSecret('kubernetes:///x', 'istio-system'), undefined);
});

test('secret data: base64 data and stringData; certificate and key, CA', () => {
  const secret = { body: { data: { 'tls.crt': Buffer.from('CERT').toString('base64') }, stringData: { 'tls.key': 'KEY' } } } as unknown as Resource;
  const data = secretStrings(secret);
  assert.deepEqual(certificateAndKey(data), { cert: 'CERT', key: 'KEY' });
  assert.deepEqual(certificateAndKey({ cert: 'C', key: 'K' }), { cert: 'C', key: 'K' });
  assert.equal(certificateAndKey({ 'tls.crt': 'C' }), undefined);
  assert.equal(caBundle({ 'ca.crt': '' , cacert: 'CA' }), 'CA');
  assert.equal(caBundle({}), undefined);
});
