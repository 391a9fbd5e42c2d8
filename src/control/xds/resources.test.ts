import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl } from '../../xds/types.ts';
import { encodeSet, pushOrder, shortTypeName, versionOf } from './resources.ts';
import { edsCluster, resourceSet } from './testdata/resource-sets.ts';

test('versions: same content same version, any change a new one, order-free', () => {
  const a = encodeSet(resourceSet({ [TypeUrl.Cluster]: [...edsCluster('a', 1), ...edsCluster('b', 1)] }));
  const b = encodeSet(resourceSet({ [TypeUrl.Cluster]: [...edsCluster('b', 1), ...edsCluster('a', 1)] }));
  const c = encodeSet(resourceSet({ [TypeUrl.Cluster]: [{ ...edsCluster('a', 1)[0], connect_timeout: '2s' }, ...edsCluster('b', 1)] }));
  const v = (s: typeof a) => versionOf(s.types.get(TypeUrl.Cluster)!.resources.values());
  assert.equal(v(a), v(b));
  assert.notEqual(v(a), v(c));
  assert.equal(versionOf([]), 'empty');
});

test('a resource that does not encode is left out and reported', () => {
  const s = encodeSet(resourceSet({ [TypeUrl.Cluster]: [{ name: 'ok' }, { name: 'bad', conect_timeout: '1s' }] }));
  assert.deepEqual([...s.types.get(TypeUrl.Cluster)!.resources.keys()], ['ok']);
  assert.match(s.errors[0], /^CDS bad: .*unknown field 'conect_timeout'/);
});

test('push order is CDS, EDS, LDS, RDS, SDS then others', () => {
  assert.deepEqual(pushOrder([TypeUrl.RouteConfiguration, 'type.googleapis.com/x.Y', TypeUrl.Listener, TypeUrl.Secret, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]).map(shortTypeName), ['CDS', 'EDS', 'LDS', 'RDS', 'SDS', 'x.Y']);
});

test('a re-translated resource with the same content reuses its encoding; changed content is encoded anew', () => {
  const first = encodeSet(resourceSet({ [TypeUrl.Cluster]: edsCluster('reuse', 1) }));
  const again = encodeSet(resourceSet({ [TypeUrl.Cluster]: edsCluster('reuse', 1) })); // new objects, same content
  const changed = encodeSet(resourceSet({ [TypeUrl.Cluster]: [{ ...edsCluster('reuse', 1)[0], connect_timeout: '3s' }] }));
  const any = (s: typeof first) => s.types.get(TypeUrl.Cluster)!.resources.get('reuse')!;
  assert.equal(any(again).any, any(first).any, 'same bytes object, not re-encoded');
  assert.equal(any(again).hash, any(first).hash);
  assert.notEqual(any(changed).hash, any(first).hash);
  assert.match(JSON.stringify(any(changed).json), /"3s"/);
});
