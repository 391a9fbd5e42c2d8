/**
 * The control plane shares one translation between proxies that differ only in node id, IPs and
 * workload name (`translationKey` in src/control/translate/index.ts). That is only correct while
 * translate() reads none of those: this test translates every translate golden config for its
 * proxy and for a twin differing in exactly those fields, and requires identical output.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startControlPlane } from '../src/control/control-plane.ts';
import { translationKey } from '../src/control/translate/index.ts';
import { proxyNodeFromXds, type XdsNodeJson } from '../src/control/proxy-node.ts';
import { translate } from '../src/control/translate/index.ts';

const testdata = join(import.meta.dirname, '../src/control/translate/testdata');
const cases = readdirSync(testdata).filter((f) => f.endsWith('.proxy.json')).map((f) => f.slice(0, -'.proxy.json'.length));

test('translate() output does not depend on node id, IPs or workload name', { timeout: 120_000 }, async () => {
  assert.ok(cases.length >= 5, `found ${cases.length} golden cases`);
  for (const name of cases) {
    const node = JSON.parse(readFileSync(join(testdata, `${name}.proxy.json`), 'utf8')) as XdsNodeJson;
    const cp = await startControlPlane({ configPaths: [join(testdata, `${name}.yaml`)], xdsPort: 0, debugPort: 0, debounceMs: 10 });
    try {
      const a = proxyNodeFromXds(node);
      const twin = proxyNodeFromXds({ ...node, id: `${a.kind}~10.9.9.9~twin-pod-xyz.${a.namespace}~${a.namespace}.svc.cluster.local` });
      const b = Object.freeze({ ...twin, ips: Object.freeze(['10.9.9.9', 'fd00::9']), workloadName: 'twin-workload', namespace: a.namespace, kind: a.kind });
      assert.equal(translationKey(a), translationKey(b), `${name}: twins share a key`);
      const out = (p: typeof a) => JSON.stringify([...translate(cp.snapshot(), p)].map(([t, m]) => [t, [...m]]));
      assert.equal(out(b), out(a), `${name}: translation differs between twins`);
      assert.notEqual(translationKey(a), translationKey({ ...a, namespace: `${a.namespace}-other` }));
    } finally {
      await cp.close();
    }
  }
});
