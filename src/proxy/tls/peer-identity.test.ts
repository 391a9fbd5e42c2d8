import assert from 'node:assert/strict';
import { test } from 'node:test';
import net from 'node:net';
import { connectionSecurityOf, parseSpiffeId, PlaintextConnection } from './peer-identity.ts';

test('parseSpiffeId: workload ids only', () => {
  assert.deepEqual(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/web'), {
    spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', principal: 'cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web',
  });
  assert.equal(parseSpiffeId('spiffe://cluster.local/ns/shop'), undefined);
  assert.equal(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/web/extra'), undefined);
  assert.equal(parseSpiffeId('https://cluster.local/ns/shop/sa/web'), undefined);
});

test('a plaintext socket has policy none and no peer, cached per socket', () => {
  const s = new net.Socket();
  assert.equal(connectionSecurityOf(s), PlaintextConnection);
  assert.equal(connectionSecurityOf(s).peer, undefined);
  s.destroy();
});
