import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrebuiltRoot, parseProtoRoot, prebuiltRootJson } from './proto-root.ts';

test('the prebuilt root (what the build stores in dist/) is the parsed root, and is ignored when built from other protos', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proto-root-'));
  try {
    const parsed = parseProtoRoot();
    const file = join(dir, 'proto-root.json');
    writeFileSync(file, prebuiltRootJson(parsed));
    const loaded = loadPrebuiltRoot(file);
    assert.ok(loaded !== undefined);
    assert.equal(JSON.stringify(loaded.toJSON()), JSON.stringify(parsed.toJSON()));
    // The same message encodes to the same bytes through both.
    const msg = { name: 'outbound|80||a.default.svc.cluster.local', type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { service_name: 'x' }, metadata: { filter_metadata: { istio: { fields: { config: { string_value: '/apis/x' } } } } } };
    const [a, b] = [parsed, loaded].map((r) => {
      const T = r.lookupType('envoy.config.cluster.v3.Cluster');
      return Buffer.from(T.encode(T.fromObject(msg)).finish());
    });
    assert.ok(a.equals(b));
    writeFileSync(file, JSON.stringify({ key: 'built from other protos', root: parsed.toJSON() }));
    assert.equal(loadPrebuiltRoot(file), undefined);
    assert.equal(loadPrebuiltRoot(join(dir, 'absent.json')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
