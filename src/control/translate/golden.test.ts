/**
 * Golden tests: each `testdata/NAME.yaml` (config; a first-line `# include: a.yaml b.yaml` pulls
 * in files relative to the repository root first) with `testdata/NAME.proxy.json` (one xDS node
 * or a list) is translated and compared with `testdata/NAME.golden.json` (clusters, endpoints,
 * listeners and the route configuration names per proxy; route contents are golden-tested in
 * routes/). Refresh with TRELLIS_UPDATE_GOLDEN=1; a missing golden fails otherwise. A case including
 * files from `../shared` skips (reason shared-data) when it is absent. Every resource must also encode with the
 * protobuf codec (unknown fields throw) and the set must be consistent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { translate } from './index.ts';
import { consistencyProblems } from '../../xds/consistency.ts';
import { loadCase, skipUnlessIncludesPresent } from './test-support.ts';
import { TypeUrl } from '../../xds/types.ts';
import { encodeResource } from '../../xds/codec.ts';

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, 'testdata');
const update = process.env.TRELLIS_UPDATE_GOLDEN === '1';

for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
  const name = file.slice(0, -'.yaml'.length);
  test(`golden ${name}`, { skip: skipUnlessIncludesPresent(readFileSync(join(dir, file), 'utf8')) }, () => {
    const { snapshot, proxies } = loadCase(join(dir, file));
    const out: Record<string, unknown> = {};
    for (const proxy of proxies) {
      const set = translate(snapshot, proxy);
      assert.deepEqual(consistencyProblems(set), [], `${name}/${proxy.id}: consistent`);
      for (const [type, resources] of set) {
        // Route configurations are encoded by routes/ golden tests (their owner).
        if (type === TypeUrl.RouteConfiguration) continue;
        for (const [rname, json] of resources) {
          assert.doesNotThrow(() => encodeResource(type, json), `${name}/${proxy.id}: ${type} ${rname} encodes`);
        }
      }
      const pick = (t: string) => Object.fromEntries([...(set.get(t as never) ?? new Map())]);
      out[proxy.id] = {
        clusters: pick(TypeUrl.Cluster),
        endpoints: pick(TypeUrl.ClusterLoadAssignment),
        listeners: pick(TypeUrl.Listener),
        routes: [...(set.get(TypeUrl.RouteConfiguration)?.keys() ?? [])].sort(),
      };
    }
    const goldenPath = join(dir, `${name}.golden.json`);
    const text = JSON.stringify(out, null, 2) + '\n';
    if (update) {
      writeFileSync(goldenPath, text);
      return;
    }
    assert.ok(existsSync(goldenPath), `${goldenPath} missing: run with TRELLIS_UPDATE_GOLDEN=1 to write it, then review and commit it`);
    assert.equal(text, readFileSync(goldenPath, 'utf8'), `${name}: differs from golden (TRELLIS_UPDATE_GOLDEN=1 to refresh)`);
  });
}
