import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoSniOptions, upstreamTransportSocket } from './upstream-tls.ts';
import type { ClientTlsSettings } from '../../config/views.ts';

const roots = '/etc/ssl/certs/ca-certificates.crt';
const common = (tls: ClientTlsSettings) => {
  const socket = upstreamTransportSocket({ tls, port: 80, subset: '', host: 'api.example.com', identities: [], systemCaBundle: roots, metadataExchange: false });
  const typed = socket?.typed_config as Record<string, unknown> | undefined;
  return { ctx: typed?.common_tls_context as Record<string, unknown> | undefined, sni: typed?.sni };
};

test('SIMPLE / MUTUAL without caCertificates or credentialName: verified against the system roots', () => {
  assert.deepEqual(common({ mode: 'SIMPLE' }).ctx, { validation_context: { trusted_ca: { filename: roots } } });
  assert.deepEqual(common({ mode: 'SIMPLE', subjectAltNames: ['api.example.com'] }).ctx, {
    validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'api.example.com' } }], trusted_ca: { filename: roots } },
  });
  assert.deepEqual(common({ mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' }).ctx, {
    tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }],
    validation_context: { trusted_ca: { filename: roots } },
  });
  // A CA named by the rule wins; `caCertificates: ''` counts as unset.
  assert.deepEqual(common({ mode: 'SIMPLE', caCertificates: '/ca.pem' }).ctx, { validation_context: { trusted_ca: { filename: '/ca.pem' } } });
  assert.deepEqual(common({ mode: 'SIMPLE', caCertificates: '' }).ctx, { validation_context: { trusted_ca: { filename: roots } } });
  assert.equal(common({ mode: 'SIMPLE', sni: 'x.example.com' }).sni, 'x.example.com');
});

test('insecureSkipVerify keeps skipping; credentialName takes the CA from its secret, not the system roots', () => {
  assert.deepEqual(common({ mode: 'SIMPLE', insecureSkipVerify: true }).ctx, {});
  assert.deepEqual(common({ mode: 'SIMPLE', caCertificates: '/ca.pem', insecureSkipVerify: true }).ctx, {});
  const cred = common({ mode: 'SIMPLE', credentialName: 'ext' }).ctx!;
  assert.equal(cred.validation_context, undefined);
  assert.equal(((cred.combined_validation_context as Record<string, Record<string, unknown>>).validation_context_sds_secret_config).name, 'kubernetes://ext-cacert');
  assert.doesNotMatch(JSON.stringify(common({ mode: 'ISTIO_MUTUAL' }).ctx), /ca-certificates/);
});

test('auto_sni without sni; auto_san_validation also without subjectAltNames and unless insecureSkipVerify (Istio)', () => {
  assert.deepEqual(autoSniOptions({ mode: 'SIMPLE' }), { auto_sni: true, auto_san_validation: true });
  assert.deepEqual(autoSniOptions({ mode: 'MUTUAL', credentialName: 'c' }), { auto_sni: true, auto_san_validation: true });
  assert.deepEqual(autoSniOptions({ mode: 'SIMPLE', caCertificates: '/ca.pem' }), { auto_sni: true, auto_san_validation: true });
  assert.deepEqual(autoSniOptions({ mode: 'SIMPLE', subjectAltNames: ['a.example.com'] }), { auto_sni: true });
  assert.deepEqual(autoSniOptions({ mode: 'SIMPLE', insecureSkipVerify: true }), { auto_sni: true });
  assert.equal(autoSniOptions({ mode: 'SIMPLE', sni: 'a.example.com' }), undefined);
  assert.deepEqual(autoSniOptions({ mode: 'SIMPLE', sni: '' }), { auto_sni: true, auto_san_validation: true });
  assert.equal(autoSniOptions({ mode: 'ISTIO_MUTUAL' }), undefined);
  assert.equal(autoSniOptions({ mode: 'DISABLE' }), undefined);
  assert.equal(autoSniOptions(undefined), undefined);
});
