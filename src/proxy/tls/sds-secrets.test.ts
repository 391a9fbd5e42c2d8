import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../../errors.ts';
import { createSdsSecrets } from './sds-secrets.ts';

test('SDS secrets: certificates and validation contexts by name, replaced atomically', () => {
  const s = createSdsSecrets();
  s.update(new Map([
    ['default', { name: 'default', tls_certificate: { certificate_chain: { inline_string: 'CERT' }, private_key: { inline_bytes: Buffer.from('KEY').toString('base64') } } }],
    ['ROOTCA', { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: 'CA' }, match_subject_alt_names: [{ prefix: 'spiffe://' }] } }],
  ]));
  assert.deepEqual(s.tlsCertificate('default'), { certChain: 'CERT', privateKey: 'KEY' });
  assert.equal(s.validationContext('ROOTCA')?.trustedCa, 'CA');
  assert.equal(s.validationContext('ROOTCA')?.sanMatchers.length, 1);
  assert.throws(
    () => s.update(new Map([['default', { tls_certificate: { certificate_chain: { inline_string: 'X' } } }]])),
    (err: unknown) => hasCode(err, 'XDS_INVALID') && /secret 'default'.tls_certificate.private_key: required/.test((err as Error).message),
  );
  assert.equal(s.tlsCertificate('default')?.certChain, 'CERT', 'a rejected update changes nothing');
  assert.throws(() => s.update(new Map([['x', { generic_secret: {} }]])), /only tls_certificate and validation_context/);
  assert.throws(() => s.update(new Map([['x', 'nope' as unknown as Record<string, unknown>]])), /secret 'x': expected an object/);
  s.update(new Map());
  assert.equal(s.tlsCertificate('default'), undefined);
});
