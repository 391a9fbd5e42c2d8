import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoveryResponseWire, encodeResourcesField, kEncodedResources, type DiscoveryResponseMsg } from './ads-wire.ts';
import { toAny } from './codec.ts';

test('a DiscoveryResponse with pre-encoded resources decodes exactly like a plainly encoded one', () => {
  const resources = [
    toAny({ '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'a', connect_timeout: '1s' }),
    toAny({ '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'b', type: 'EDS' }),
  ];
  const base = { version_info: 'v7', type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', nonce: '42', control_plane: { identifier: 'trellis' } };
  const plain = discoveryResponseWire.serialize({ ...base, resources });
  const pre = discoveryResponseWire.serialize({ ...base, resources: [], [kEncodedResources]: encodeResourcesField(resources) } as DiscoveryResponseMsg);
  const a = discoveryResponseWire.deserialize(plain);
  const b = discoveryResponseWire.deserialize(pre);
  assert.deepEqual(JSON.parse(JSON.stringify(b, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))), JSON.parse(JSON.stringify(a, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))));
  assert.equal(b.resources?.length, 2);
  assert.equal(pre.length, plain.length);
});
