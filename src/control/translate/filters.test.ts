import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hcmConfig } from './filters.ts';
import type { PathNormalizationMode } from '../../config/mesh-config.ts';

test('each MeshConfig pathNormalization mode sets the HCM path fields istiod sets; BASE by default', () => {
  const fields = (mode?: PathNormalizationMode) => {
    const c = hcmConfig({ statPrefix: 'p', routeConfigName: 'r', pathNormalization: mode });
    return [c.normalize_path, c.merge_slashes, c.path_with_escaped_slashes_action];
  };
  assert.deepEqual(fields(), [true, false, 'KEEP_UNCHANGED']);
  assert.deepEqual(fields('NONE'), [false, false, 'KEEP_UNCHANGED']);
  assert.deepEqual(fields('BASE'), [true, false, 'KEEP_UNCHANGED']);
  assert.deepEqual(fields('MERGE_SLASHES'), [true, true, 'KEEP_UNCHANGED']);
  assert.deepEqual(fields('DECODE_AND_MERGE_SLASHES'), [true, true, 'UNESCAPE_AND_FORWARD']);
  // Proxyless gRPC HCMs carry no path fields (grpc-js does not read them).
  assert.equal(hcmConfig({ statPrefix: 'p', routeConfigName: 'r', proxyless: true }).normalize_path, undefined);
});
