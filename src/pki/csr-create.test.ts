import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import { hasCode } from '../errors.ts';
import { findTool } from '../../test/support/tools.ts';
import { skipUnlessTools } from '../../test/support/skip.ts';
import { createCsr } from './csr-create.ts';
import { parseCsr } from './csr.ts';
import { generateKey } from './keys.ts';

// Long enough that the SAN, the extension and the attribute need DER's long-form lengths.
const sans = ['spiffe://cluster.local/ns/shop/sa/web', `spiffe://cluster.local/ns/shop/sa/${'w'.repeat(200)}`];

for (const alg of ['ECDSA_P256', 'RSA_2048'] as const) {
  test(`${alg}: the CSR parses on the CA side with its URI SANs and the workload's public key`, async () => {
    const k = await generateKey(alg);
    const csr = parseCsr(createCsr(k.privateKey, sans));
    assert.deepEqual(csr.uriSans, sans);
    assert.deepEqual(csr.dnsSans, []);
    assert.ok(csr.publicKey.equals(k.publicKey));
  });

  test(`${alg}: openssl verifies the CSR's signature and reads an empty subject and a critical URI SAN`, { skip: skipUnlessTools('openssl') }, async () => {
    const k = await generateKey(alg);
    const text = execFileSync(findTool('openssl')!, ['req', '-noout', '-verify', '-text'], { input: createCsr(k.privateKey, sans), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.match(text, /Subject:\s*\n/);
    assert.match(text, /X509v3 Subject Alternative Name: critical\s*\n\s*URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/web, URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/w{200}\s*\n/);
    assert.match(text, alg === 'RSA_2048' ? /Signature Algorithm: sha256WithRSAEncryption/ : /Signature Algorithm: ecdsa-with-SHA256/);
  });
}

test('a URI SAN that is not printable ASCII (IA5String) is refused', async () => {
  const k = await generateKey('ECDSA_P256');
  assert.throws(() => createCsr(k.privateKey, ['spiffe://cluster.local/ns/é/sa/x']), (e) => hasCode(e, 'PKI_CSR_INVALID'));
});

test('making a CSR loads none of the ASN.1 schema libraries', () => {
  const script = `
    import { createRequire } from 'node:module';
    const { createCsr } = await import(${JSON.stringify(new URL('./csr-create.ts', import.meta.url).href)});
    const { generateKey } = await import(${JSON.stringify(new URL('./keys.ts', import.meta.url).href)});
    createCsr((await generateKey('ECDSA_P256')).privateKey, ['spiffe://cluster.local/ns/a/sa/b']);
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@peculiar') || f.includes('asn1'))));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout.trim()), []);
});
