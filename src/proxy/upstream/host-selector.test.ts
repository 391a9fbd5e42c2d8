import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Host } from './host.ts';
import { HostSelector, type SelectorOptions } from './host-selector.ts';
import { lbFactory } from './lb/index.ts';
import { seededRandom } from './lb/types.ts';
import type { HealthStatus } from './load-assignment.ts';

function host(i: number, priority = 0, health: HealthStatus = 'HEALTHY', zone = 'z1', localityWeight: number | 'unset' = 1): Host {
  const lw = localityWeight === 'unset' ? undefined : localityWeight;
  return new Host(`10.0.${priority}.${i}`, 80, { weight: 1, health, locality: { region: 'r', zone, subZone: '' }, localityWeight: lw, priority, tls: undefined });
}

function selector(over: Partial<SelectorOptions> = {}): HostSelector {
  return new HostSelector({ factory: lbFactory('ROUND_ROBIN'), lb: { random: seededRandom(11) }, panicThreshold: 0.5, overprovisioningFactor: 1.4, localityWeighted: false, hashPolicy: false, ...over });
}

const pct = (s: HostSelector) => s.priorityLoads().map((p) => Math.round(p.load * 100));

test('priority loads follow Envoy: health x overprovisioning, spill to the next level, normalized', () => {
  const s = selector();
  const level = (p: number, healthy: number, total: number) => Array.from({ length: total }, (_, i) => host(i, p, i < healthy ? 'HEALTHY' : 'UNHEALTHY'));
  s.setHosts([...level(0, 10, 10), ...level(1, 10, 10)]);
  assert.deepEqual(pct(s), [100, 0]);
  s.setHosts([...level(0, 6, 10), ...level(1, 10, 10)]);
  assert.deepEqual(pct(s), [84, 16]);
  // Both levels degraded: 0.2x1.4=28 + 0.2x1.4=28 -> normalized to 50/50.
  s.setHosts([...level(0, 2, 10), ...level(1, 2, 10)]);
  assert.deepEqual(pct(s), [50, 50]);
  assert.deepEqual(s.priorityLoads().map((p) => p.panic), [true, true]);
  // A custom overprovisioning factor (policy.overprovisioning_factor 100 -> 1.0).
  const strict = selector({ overprovisioningFactor: 1 });
  strict.setHosts([...level(0, 8, 10), ...level(1, 10, 10)]);
  assert.deepEqual(pct(strict), [80, 20]);
});

test('nothing available anywhere: all load on P0 in panic', () => {
  const s = selector();
  s.setHosts([host(1, 0, 'UNHEALTHY'), host(1, 1, 'UNHEALTHY')]);
  assert.deepEqual(pct(s), [100, 0]);
  assert.equal(s.priorityLoads()[0].panic, true);
  assert.ok(s.pick({}), 'panic routes to an unhealthy host rather than none');
  const noPanic = selector({ panicThreshold: 0 });
  noPanic.setHosts([host(1, 0, 'UNHEALTHY')]);
  assert.equal(noPanic.pick({}), undefined);
});

test('DEGRADED counts as available; retries avoid previously tried hosts', () => {
  const hs = [host(1), host(2, 0, 'DEGRADED'), host(3)];
  const s = selector();
  s.setHosts(hs);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(s.pick({})!.key);
  assert.equal(seen.size, 3);
  for (let i = 0; i < 20; i++) {
    const h = s.pick({}, [hs[0].key, hs[1].key], 5); // Istio's host_selection_retry_max_attempts
    assert.equal(h?.key, hs[2].key);
  }
  // No re-picks allowed: the first pick stands even when it was tried before.
  const firstPicks = new Set(Array.from({ length: 6 }, () => s.pick({}, [hs[0].key, hs[1].key], 0)!.key));
  assert.ok(firstPicks.has(hs[0].key) || firstPicks.has(hs[1].key));
});

test('locality-weighted: unset locality weight gets no traffic; availability scales a locality down', () => {
  const s = selector({ localityWeighted: true });
  s.setHosts([host(1, 0, 'HEALTHY', 'z1', 1), host(2, 0, 'HEALTHY', 'z2', 'unset')]);
  for (let i = 0; i < 10; i++) assert.equal(s.pick({})!.locality.zone, 'z1');
  // z1: 1 of 4 healthy -> availability 0.35, weight 1 -> 0.35; z2 fully available, weight 1 -> 1.
  const z1 = [host(1, 0, 'HEALTHY', 'z1'), host(2, 0, 'UNHEALTHY', 'z1'), host(3, 0, 'UNHEALTHY', 'z1'), host(4, 0, 'UNHEALTHY', 'z1')];
  const z2 = [host(5, 0, 'HEALTHY', 'z2'), host(6, 0, 'HEALTHY', 'z2'), host(7, 0, 'HEALTHY', 'z2'), host(8, 0, 'HEALTHY', 'z2')];
  const t = selector({ localityWeighted: true, panicThreshold: 0 });
  t.setHosts([...z1, ...z2]);
  let n1 = 0;
  for (let i = 0; i < 1350; i++) if (t.pick({})!.locality.zone === 'z1') n1++;
  assert.ok(Math.abs(n1 - 350) < 20, `z1 got ${n1} of 1350`);
});

test('hash policies pick the priority from the hash, so a key stays put', () => {
  const s = selector({ factory: lbFactory('RING_HASH'), hashPolicy: true });
  const level = (p: number, healthy: number) => Array.from({ length: 10 }, (_, i) => host(i, p, i < healthy ? 'HEALTHY' : 'UNHEALTHY'));
  s.setHosts([...level(0, 5), ...level(1, 10)]);
  for (let k = 0; k < 20; k++) {
    const first = s.pick({ hashKey: `k${k}` })!.key;
    for (let i = 0; i < 5; i++) assert.equal(s.pick({ hashKey: `k${k}` })!.key, first);
  }
});
