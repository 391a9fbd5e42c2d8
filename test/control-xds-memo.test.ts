/**
 * The ADS server's per-set memoization (added for the control-plane benchmark): one encoding and
 * consistency check per shared resource set, and memoized type versions equal to `versionOf`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAndCheck, encodeSet, versionOf, versionOfAll } from '../src/control/xds/resources.ts';
import { consistencyProblems } from '../src/xds/consistency.ts';
import { TypeUrl, type XdsResourceSet, type XdsTypeUrl, type XdsJson } from '../src/xds/types.ts';

function set(clusterNames: string[], routeTo: string): XdsResourceSet {
  const clusters = new Map<string, XdsJson>(clusterNames.map((n) => [n, { name: n, type: 'STATIC', connect_timeout: '1s' }]));
  const routes = new Map<string, XdsJson>([['r', { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: routeTo } }] }] }]]);
  return new Map<XdsTypeUrl, ReadonlyMap<string, XdsJson>>([[TypeUrl.Cluster, clusters], [TypeUrl.RouteConfiguration, routes]]);
}

test('encodeAndCheck computes once per set object and agrees with encodeSet + consistencyProblems', () => {
  const s = set(['a', 'b'], 'missing');
  const first = encodeAndCheck(s);
  assert.equal(encodeAndCheck(s), first, 'same object for the same set');
  assert.deepEqual(first.inconsistent, consistencyProblems(s));
  assert.match(first.inconsistent.join(), /cluster 'missing' is not in the set/);
  const plain = encodeSet(s);
  assert.deepEqual([...first.encoded.types.keys()], [...plain.types.keys()]);
  const other = encodeAndCheck(set(['a', 'b'], 'a'));
  assert.notEqual(other, first);
  assert.deepEqual(other.inconsistent, []);
});

test('versionOfAll equals versionOf over the same resources and changes with content', () => {
  const a = encodeAndCheck(set(['a', 'b', 'c'], 'a')).encoded.types.get(TypeUrl.Cluster)!.resources;
  const b = encodeAndCheck(set(['a', 'b', 'd'], 'a')).encoded.types.get(TypeUrl.Cluster)!.resources;
  assert.equal(versionOfAll(a), versionOf(a.values()));
  assert.equal(versionOfAll(a), versionOfAll(a));
  assert.notEqual(versionOfAll(a), versionOfAll(b));
  assert.equal(versionOfAll(new Map()), 'empty');
});
