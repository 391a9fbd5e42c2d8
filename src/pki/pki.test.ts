import assert from 'node:assert/strict';
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { hasCode } from '../errors.ts';
import { generateKey } from './keys.ts';
import { issueCertificate } from './certificate.ts';
import { createCsr } from './csr-create.ts';
import { parseCsr } from './csr.ts';
import { pemBlocks, splitCertificates, toPem } from './pem.ts';

const hour = 3_600_000;

for (const alg of ['ECDSA_P256', 'RSA_2048'] as const) {
  test(`${alg}: root -> intermediate -> workload from a CSR; chain verifies, SAN and key usage as Istio`, async () => {
    const root = await generateKey(alg);
    const now = Date.now();
    const rootPem = issueCertificate({ organization: 'cluster.local', isCa: true, notBefore: new Date(now - 60_000), notAfter: new Date(now + 24 * hour), publicKey: root.publicKey }, { certificate: undefined, privateKey: root.privateKey });
    const rootCert = new X509Certificate(rootPem);
    assert.equal(rootCert.ca, true);
    assert.equal(rootCert.verify(root.publicKey), true);
    const mid = await generateKey('ECDSA_P256');
    const midCert = new X509Certificate(issueCertificate({ organization: 'cluster.local', commonName: 'intermediate', isCa: true, notBefore: new Date(now), notAfter: new Date(now + hour), publicKey: mid.publicKey }, { certificate: rootCert, privateKey: root.privateKey }));
    assert.equal(midCert.checkIssued(rootCert), true);
    const wl = await generateKey(alg);
    const csr = parseCsr(createCsr(wl.privateKey, ['spiffe://cluster.local/ns/shop/sa/web']));
    assert.deepEqual(csr.uriSans, ['spiffe://cluster.local/ns/shop/sa/web']);
    const leaf = new X509Certificate(issueCertificate({ uriSans: csr.uriSans, isCa: false, notBefore: new Date(now), notAfter: new Date(now + hour), publicKey: csr.publicKey }, { certificate: midCert, privateKey: mid.privateKey }));
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');
    assert.equal(leaf.ca, false);
    assert.equal(leaf.checkIssued(midCert), true);
    assert.equal(leaf.verify(mid.publicKey), true);
    assert.equal(leaf.checkPrivateKey(wl.privateKey), true);
    assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });
}

test('parseCsr rejects garbage, a tampered signature and a weak key', async () => {
  assert.throws(() => parseCsr('hello'), (e: unknown) => hasCode(e, 'PKI_CSR_INVALID') && /no PEM block/.test((e as Error).message));
  assert.throws(() => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.from('nonsense'))), /not a PKCS #10/);
  const k = await generateKey('ECDSA_P256');
  const good = createCsr(k.privateKey, ['spiffe://cluster.local/ns/a/sa/b']);
  const der = pemBlocks(good)[0].der;
  const i = der.indexOf(Buffer.from('spiffe://cluster.local/ns/a/sa/b'));
  der[i + 'spiffe://cluster.local/ns/'.length] = 'z'.charCodeAt(0); // ns/a -> ns/z after signing
  assert.throws(() => parseCsr(toPem('CERTIFICATE REQUEST', der)), /signature does not verify/);
});

test('splitCertificates keeps order and drops non-certificate blocks', async () => {
  const k = await generateKey('ECDSA_P256');
  const a = issueCertificate({ organization: 'a', isCa: true, notBefore: new Date(), notAfter: new Date(Date.now() + hour), publicKey: k.publicKey }, { certificate: undefined, privateKey: k.privateKey });
  const key = k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  assert.deepEqual(splitCertificates(`${key}${a}${a}`), [a, a]);
});
