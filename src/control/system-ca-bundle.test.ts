import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultSystemCaBundle, detectSystemCaBundle, SystemCaBundleCandidates } from './system-ca-bundle.ts';

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
