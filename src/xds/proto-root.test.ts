import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { loadPrebuiltRoot, parseProtoRoot, prebuiltRootJson } from './proto-root.ts';

/** Every message and enum type of a root, nested ones included. */
function allTypes(ns: protobuf.NamespaceBase, out: (protobuf.Type | protobuf.Enum)[] = []): (protobuf.Type | protobuf.Enum)[] {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum) out.push(obj);
    if (obj instanceof protobuf.Namespace) allTypes(obj, out);
  }
  return out;
}

/**
 * What encoding and decoding depend on: fields with their resolved types, oneofs, enum values.
 * Extension fields are left out: the index does not carry the option annotations' extensions of
 * descriptor options (lazy-root.ts).
 */
function shape(t: protobuf.Type | protobuf.Enum): unknown {
  if (t instanceof protobuf.Enum) return { values: { ...t.values } };
  return {
    fields: t.fieldsArray.filter((f) => f.declaringField === null || f.declaringField === undefined).map((f) => {
      f.resolve();
      return [f.name, f.id, f.rule, f.map ? (f as unknown as protobuf.MapField).keyType : '', f.resolvedType?.fullName ?? f.type, f.packed, f.partOf?.name];
    }),
    oneofs: t.oneofsArray.map((o) => [o.name, o.oneof]),
  };
}

test('the prebuilt index (what the build stores in dist/) builds every type as the parsed root has it, and is ignored when built from other protos', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proto-root-'));
  try {
    const parsed = parseProtoRoot();
    const file = join(dir, 'proto-root.json');
    writeFileSync(file, prebuiltRootJson(parsed));
    const loaded = loadPrebuiltRoot(file);
    assert.ok(loaded !== undefined);
    assert.equal(loaded.builtCount, 0);
    const types = allTypes(parsed);
    assert.ok(types.length > 700, `${types.length} types`);
    for (const t of types) {
      const built = loaded.exact(t.fullName.slice(1));
      assert.ok(built !== null && built.constructor === t.constructor, t.fullName);
      assert.deepEqual(shape(built as protobuf.Type | protobuf.Enum), shape(t), t.fullName);
    }
    // The same message encodes to the same bytes through both.
    const msg = { name: 'outbound|80||a.default.svc.cluster.local', type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { service_name: 'x' }, metadata: { filter_metadata: { istio: { fields: { config: { string_value: '/apis/x' } } } } } };
    const [a, b] = [parsed, loaded].map((r) => {
      const T = r.lookupType('envoy.config.cluster.v3.Cluster');
      return Buffer.from(T.encode(T.fromObject(msg)).finish());
    });
    assert.ok(a.equals(b));
    writeFileSync(file, JSON.stringify({ key: 'built from other protos', types: {} }));
    assert.equal(loadPrebuiltRoot(file), undefined);
    assert.equal(loadPrebuiltRoot(join(dir, 'absent.json')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
