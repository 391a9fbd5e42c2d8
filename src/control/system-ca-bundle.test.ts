import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseSystemCaBundle, DefaultSystemCaBundle, detectSystemCaBundle, SystemCaBundleCandidates } from './system-ca-bundle.ts';

test('the first existing candidate wins, in the documented order', () => {
  const present = new Set(['/etc/ssl/cert.pem', '/etc/pki/tls/certs/ca-bundle.crt']);
  assert.equal(detectSystemCaBundle(SystemCaBundleCandidates, (p) => present.has(p)), '/etc/pki/tls/certs/ca-bundle.crt');
  assert.equal(detectSystemCaBundle(SystemCaBundleCandidates, (p) => p === '/etc/ssl/cert.pem'), '/etc/ssl/cert.pem');
  assert.equal(detectSystemCaBundle(SystemCaBundleCandidates, () => false), undefined);
  assert.equal(DefaultSystemCaBundle, '/etc/ssl/certs/ca-certificates.crt');
});

test('real files: an empty file or a directory does not count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-bundle-'));
  const empty = join(dir, 'empty.pem');
  const full = join(dir, 'full.pem');
  writeFileSync(empty, '');
  writeFileSync(full, '-----BEGIN CERTIFICATE-----\n');
  assert.equal(detectSystemCaBundle([join(dir, 'missing.pem'), dir, empty, full]), full);
  assert.equal(detectSystemCaBundle([empty]), undefined);
});

test('the flag wins over TRELLIS_SYSTEM_CA_BUNDLE, which wins over detection; nothing found names the Debian path', () => {
  const found = () => '/etc/ssl/cert.pem';
  assert.deepEqual(chooseSystemCaBundle('/flag.pem', '/env.pem', found), { path: '/flag.pem', source: 'flag' });
  assert.deepEqual(chooseSystemCaBundle(undefined, '/env.pem', found), { path: '/env.pem', source: 'env' });
  assert.deepEqual(chooseSystemCaBundle('', '', found), { path: '/etc/ssl/cert.pem', source: 'detected' });
  assert.deepEqual(chooseSystemCaBundle(undefined, undefined, () => undefined), { path: DefaultSystemCaBundle, source: 'default' });
});
