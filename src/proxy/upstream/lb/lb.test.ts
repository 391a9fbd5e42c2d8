import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lbFactories } from './index.ts';
import { runLbSuite } from './lb-suite.ts';
import { leastRequest, roundRobin } from './simple.ts';
import { seededRandom } from './types.ts';
import { xxhash64 } from './xxhash64.ts';

for (const [policy, factory] of Object.entries(lbFactories)) {
  runLbSuite(policy, factory, policy === 'RING_HASH' || policy === 'MAGLEV');
}

test('xxhash64 matches the reference vectors', () => {
  assert.equal(xxhash64('').toString(16), 'ef46db3751d8e999');
  assert.equal(xxhash64('abc').toString(16), '44bc2cf5ad770999');
  assert.equal(xxhash64('Nobody inspects the spammish repetition').toString(16), 'fbcea83c8a378bf1');
});

test('ROUND_ROBIN is smooth: weights 5:1:1 never send 5 in a row to the heavy host', () => {
  const hs = [{ key: 'a', weight: 5, activeRequests: 0 }, { key: 'b', weight: 1, activeRequests: 0 }, { key: 'c', weight: 1, activeRequests: 0 }];
  const lb = roundRobin(hs, { random: seededRandom(1) });
  const seq = Array.from({ length: 7 }, () => lb.pick({})!.key).join('');
  assert.equal(seq.split('').filter((c) => c === 'a').length, 5);
  assert.ok(!seq.includes('aaaaa'), seq);
});

test('LEAST_REQUEST prefers the host with fewer active requests', () => {
  const hs = [{ key: 'busy', weight: 1, activeRequests: 50 }, { key: 'idle', weight: 1, activeRequests: 0 }];
  const lb = leastRequest(hs, { random: seededRandom(3) });
  let idle = 0;
  for (let i = 0; i < 1000; i++) if (lb.pick({})!.key === 'idle') idle++;
  // P2C over 2 hosts: the busy host wins only when both draws pick it (1/4).
  assert.ok(idle > 700, `idle got ${idle}`);
  const weighted = leastRequest([{ key: 'busy', weight: 2, activeRequests: 50 }, { key: 'idle', weight: 1, activeRequests: 0 }], { random: seededRandom(3) });
  let idle2 = 0;
  for (let i = 0; i < 1000; i++) if (weighted.pick({})!.key === 'idle') idle2++;
  assert.ok(idle2 > 900, `weighted idle got ${idle2}`);
});
