/**
 * `trellis proxy --bootstrap FILE`: the node and the xDS address come from the YAML file (whose
 * parser loads only when one is given), and a malformed file is a usage error naming it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanups, nodeBin, repoRoot, spawnTracked, tempDir, waitFor } from './support/processes.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

test('a proxy started with --bootstrap takes its node and xDS address from the YAML file', async () => {
  const dir = tempDir(cleanups, 'trellis-bootstrap-');
  const ready = join(dir, 'ready.json');
  const boot = join(dir, 'bootstrap.yaml');
  writeFileSync(boot, 'xds: 127.0.0.1:9\nnode:\n  id: sidecar~10.0.0.7~boot-1.shop~shop.svc.cluster.local\n  metadata: {NAMESPACE: shop}\n');
  // No control plane: the proxy starts its admin ports and keeps retrying xDS, which is enough here.
  // (90 s: a proxy took 7-29 s to start at load average 60-70 on the shared 2-core machine.)
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin/trellis.js'), 'proxy', '--bootstrap', boot, '--concurrency', '1', '--admin-port', '0', '--health-port', '0',
    '--prometheus-port', '0', '--ready-file', ready, '--log-level', 'error']);
  const info = await waitFor('proxy ready file', () => { try { return JSON.parse(readFileSync(ready, 'utf8')) as { node: string }; } catch { return undefined; } }, 90_000, 100);
  assert.equal(info.node, 'sidecar~10.0.0.7~boot-1.shop~shop.svc.cluster.local');
  await p.stop();
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'node: [unclosed\n');
  const b = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin/trellis.js'), 'proxy', '--bootstrap', bad, '--admin-port', '0']);
  assert.equal(await b.exited, 2, 'usage error');
  assert.match(b.output(), /cannot read bootstrap/);
});
