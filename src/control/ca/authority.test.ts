import assert from 'node:assert/strict';
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '../../errors.ts';
import { issueCertificate } from '../../pki/certificate.ts';
import { createCsr } from '../../pki/csr-create.ts';
import { generateKey } from '../../pki/keys.ts';
import { CertificateAuthority } from './authority.ts';
import { createSelfSignedCa, loadCaFiles } from './ca-files.ts';

const hour = 3_600_000;
const id = 'spiffe://cluster.local/ns/shop/sa/web';

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-ca-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function csr(): Promise<string> {
  return createCsr((await generateKey('ECDSA_P256')).privateKey, [id]);
}

/** A plug-in CA: root -> intermediate, in Istio's four files. */
async function pluginCa(dir: string, opts: { intermediateNotAfter?: number } = {}): Promise<void> {
  const now = Date.now();
  const root = await generateKey('ECDSA_P256');
  const rootPem = issueCertificate({ organization: 'corp', commonName: 'corp root', isCa: true, notBefore: new Date(now - hour), notAfter: new Date(now + 100 * hour), publicKey: root.publicKey }, { certificate: undefined, privateKey: root.privateKey });
  const mid = await generateKey('ECDSA_P256');
  const midPem = issueCertificate({ organization: 'corp', commonName: 'mesh intermediate', isCa: true, notBefore: new Date(now - 2 * hour), notAfter: new Date(opts.intermediateNotAfter ?? now + 50 * hour), publicKey: mid.publicKey }, { certificate: new X509Certificate(rootPem), privateKey: root.privateKey });
  writeFileSync(join(dir, 'ca-cert.pem'), midPem);
  writeFileSync(join(dir, 'ca-key.pem'), mid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  writeFileSync(join(dir, 'root-cert.pem'), rootPem);
  writeFileSync(join(dir, 'cert-chain.pem'), midPem + rootPem);
}

test('self-signed CA: generated on first start, persisted, the same root after a restart; issues SPIFFE leaf chains', async (t) => {
  const dir = tmp(t);
  const ca = await CertificateAuthority.open({ dir, selfSigned: true, trustDomain: 'cluster.local' });
  t.after(() => ca.close());
  const chain = ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 60, requester: 'a', nodeId: 'n' });
  assert.equal(chain.length, 2);
  const leaf = new X509Certificate(chain[0]);
  assert.equal(leaf.subjectAltName, `URI:${id}`);
  assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 60_000) < 5_000, leaf.validTo);
  assert.equal(leaf.verify(new X509Certificate(chain[1]).publicKey), true);
  assert.match(readFileSync(join(dir, 'ca-key.pem'), 'utf8'), /PRIVATE KEY/);
  const again = await CertificateAuthority.open({ dir, selfSigned: true, trustDomain: 'cluster.local' });
  t.after(() => again.close());
  assert.deepEqual(again.trustBundle(), ca.trustBundle());
  const wrongKey = (await generateKey('ECDSA_P256')).privateKey;
  assert.throws(() => ca.sign({ csr: createCsr(wrongKey, ['spiffe://cluster.local/ns/shop/sa/admin']), spiffeId: id, ttlSeconds: 0, requester: 'a', nodeId: '' }),
    (e: unknown) => hasCode(e, 'CA_REQUEST_INVALID') && /may only have spiffe:\/\/cluster.local\/ns\/shop\/sa\/web/.test((e as Error).message));
});

test('plug-in CA from files: the chain is leaf, intermediate, root', async (t) => {
  const dir = tmp(t);
  await pluginCa(dir);
  const ca = await CertificateAuthority.open({ dir, selfSigned: false, trustDomain: 'cluster.local' });
  t.after(() => ca.close());
  const chain = ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 0, requester: 'a', nodeId: '' }).map((p) => new X509Certificate(p));
  assert.deepEqual(chain.map((c) => c.subject?.split('\n').pop() ?? ''), ['', 'CN=mesh intermediate', 'CN=corp root']);
  assert.equal(chain[0].checkIssued(chain[1]) && chain[1].checkIssued(chain[2]), true);
  assert.ok(Date.parse(chain[0].validTo) - Date.now() > 23 * hour, 'default TTL 24 h');
});

test('bad CA files: each a CA_FILE_INVALID naming the file; the running CA keeps its last good material', async (t) => {
  const good = tmp(t);
  await pluginCa(good);
  const cases: [string, (d: string) => Promise<void> | void, RegExp][] = [
    ['malformed certificate', (d) => writeFileSync(join(d, 'ca-cert.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n'), /ca-cert\.pem: (certificate #1 is malformed|no PEM)/],
    ['missing key', (d) => rmSync(join(d, 'ca-key.pem')), /ca-key\.pem: missing/],
    ['garbage key', (d) => writeFileSync(join(d, 'ca-key.pem'), 'nope'), /ca-key\.pem: not a readable private key/],
    ['key of another certificate', async (d) => writeFileSync(join(d, 'ca-key.pem'), (await generateKey('ECDSA_P256')).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), /ca-key\.pem: the key does not match the certificate in ca-cert\.pem/],
    ['expired intermediate', (d) => pluginCa(d, { intermediateNotAfter: Date.now() - 60_000 }), /ca-cert\.pem: certificate '.*mesh intermediate' expired at/],
    ['root that did not issue the chain', async (d) => { const o = tmp(t); await createSelfSignedCa(o, { trustDomain: 'x' }); cpSync(join(o, 'root-cert.pem'), join(d, 'root-cert.pem')); }, /root-cert\.pem: no root here issued/],
  ];
  for (const [what, breakIt, message] of cases) {
    const d = tmp(t);
    cpSync(good, d, { recursive: true });
    await breakIt(d);
    assert.throws(() => loadCaFiles(d), (e: unknown) => hasCode(e, 'CA_FILE_INVALID') && message.test((e as Error).message) && (e as Error).message.includes(d), what);
  }
  // Live: a running CA sees a broken file, logs it, and keeps signing with what it had.
  const live = tmp(t);
  cpSync(good, live, { recursive: true });
  const logs: string[] = [];
  const ca = await CertificateAuthority.open({ dir: live, selfSigned: false, trustDomain: 'cluster.local', pollMs: 3_600_000, log: (_l, m, f) => logs.push(`${m} ${JSON.stringify(f)}`) });
  t.after(() => ca.close());
  const before = ca.trustBundle();
  writeFileSync(join(live, 'ca-key.pem'), 'garbage');
  utimesSync(join(live, 'ca-key.pem'), new Date(), new Date(Date.now() + 5000));
  ca.poll();
  assert.match(logs.join('\n'), /rejected.*ca-key\.pem: not a readable private key/);
  assert.match(ca.status().lastError ?? '', /ca-key\.pem/);
  assert.deepEqual(ca.trustBundle(), before);
  const chain = ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 0, requester: 'a', nodeId: '' });
  assert.match(new X509Certificate(chain[1]).subject, /mesh intermediate/);
});

test('root rotation: distribute the new root, then sign with it, and drop the old root once nobody holds a certificate under it', async (t) => {
  const dir = tmp(t);
  const ca = await CertificateAuthority.open({ dir, selfSigned: true, trustDomain: 'cluster.local', pollMs: 3_600_000 });
  t.after(() => ca.close());
  const oldRoot = ca.trustBundle()[0];
  const bundles: (readonly string[])[] = [];
  ca.onBundleChange((b) => bundles.push(b));
  const first = ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w1', nodeId: '' });
  ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w2', nodeId: '' });
  let everyoneHasIt = false;
  ca.distributed = () => everyoneHasIt;
  await createSelfSignedCa(dir, { trustDomain: 'cluster.local' });
  utimesSync(join(dir, 'ca-cert.pem'), new Date(), new Date(Date.now() + 5000));
  ca.poll();
  const newRoot = loadCaFiles(dir).root;
  assert.deepEqual(ca.trustBundle(), [oldRoot, newRoot], 'step 1: both trusted, old still first');
  assert.equal(ca.status().phase, 'distributing-new-root');
  assert.equal(ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w1', nodeId: '' }).at(-1), oldRoot, 'still signing with the old root');
  everyoneHasIt = true;
  ca.poll();
  assert.deepEqual(ca.trustBundle(), [newRoot, oldRoot], 'step 2: new root signs and comes first; old kept');
  assert.equal(ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w1', nodeId: '' }).at(-1), newRoot);
  ca.poll();
  assert.deepEqual(ca.trustBundle(), [newRoot, oldRoot], 'w2 still holds an old-root certificate');
  ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w2', nodeId: '' });
  ca.poll();
  assert.deepEqual(ca.trustBundle(), [newRoot], 'every workload renewed: the old root leaves');
  assert.equal(bundles.length, 3);
  assert.equal(first.at(-1), oldRoot);
});

test('a CA restarted during a root rotation remembers who still holds a certificate under the old root', async (t) => {
  const dir = tmp(t);
  const stateFile = join(tmp(t), 'issued-certificates.json');
  const opts = { dir, selfSigned: true, trustDomain: 'cluster.local', pollMs: 3_600_000, stateFile };
  const ca = await CertificateAuthority.open(opts);
  const oldRoot = ca.trustBundle()[0];
  ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w1', nodeId: 'n1' });
  ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w2', nodeId: 'n2' });
  await createSelfSignedCa(dir, { trustDomain: 'cluster.local' });
  utimesSync(join(dir, 'ca-cert.pem'), new Date(), new Date(Date.now() + 5000));
  ca.poll();
  ca.poll();
  const newRoot = loadCaFiles(dir).root;
  ca.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w1', nodeId: 'n1' });
  assert.deepEqual(ca.trustBundle(), [newRoot, oldRoot], 'w2 still holds an old-root certificate');
  ca.close(); // saves

  const restarted = await CertificateAuthority.open(opts);
  t.after(() => restarted.close());
  assert.deepEqual(restarted.trustBundle(), [newRoot, oldRoot], 'after the restart the old root stays while w2 holds it');
  assert.deepEqual(restarted.status().issued.map((r) => r.requester).sort(), ['w1', 'w2']);
  restarted.sign({ csr: await csr(), spiffeId: id, ttlSeconds: 600, requester: 'w2', nodeId: 'n2' });
  restarted.poll();
  assert.deepEqual(restarted.trustBundle(), [newRoot], 'w2 renewed: the old root leaves');
  // Expired holders are not remembered, and a broken state file is not fatal.
  writeFileSync(stateFile, '{not json');
  const logs: string[] = [];
  const third = await CertificateAuthority.open({ ...opts, log: (_l, m) => logs.push(m) });
  t.after(() => third.close());
  assert.deepEqual(third.trustBundle(), [newRoot]);
  assert.match(logs.join('\n'), /saved certificate holders are unreadable/);
});
