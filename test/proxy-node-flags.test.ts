/**
 * `trellis proxy` re-executes itself once with the sidecar's V8 heap flags (bin/node-flags.js):
 * the rules that pick the flags, and a real proxy process whose command line carries them under
 * the same pid its ready file reports. Also the proxy's `--bootstrap` file, whose YAML parser
 * loads only when one is given.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APPLIED_ENV, DEFAULT_PROXY_NODE_FLAGS, proxyNodeFlags } from '../bin/node-flags.js';
import { Cleanups, nodeBin, repoRoot, spawnTracked, tempDir, waitFor } from './support/processes.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

test('proxy node flags: only for `proxy`, once, and the user\'s own choice wins', () => {
  assert.deepEqual(proxyNodeFlags(['proxy', '--xds', 'x'], [], {}), DEFAULT_PROXY_NODE_FLAGS);
  assert.equal(proxyNodeFlags(['control'], [], {}), undefined);
  assert.equal(proxyNodeFlags([], [], {}), undefined);
  assert.equal(proxyNodeFlags(['proxy'], [], { [APPLIED_ENV]: '1' }), undefined, 'the re-executed process and its workers do not re-execute');
  assert.equal(proxyNodeFlags(['proxy'], ['--max-semi-space-size=32'], {}), undefined, 'node flag given by the user');
  assert.equal(proxyNodeFlags(['proxy'], [], { NODE_OPTIONS: '--max_semi_space_size=16' }), undefined, 'NODE_OPTIONS, underscores or dashes');
  assert.equal(proxyNodeFlags(['proxy'], [], { TRELLIS_PROXY_NODE_OPTIONS: '' }), undefined, 'empty list: V8 defaults');
  assert.deepEqual(proxyNodeFlags(['proxy'], ['--cpu-prof'], { TRELLIS_PROXY_NODE_OPTIONS: ' --max-semi-space-size=4  --single-threaded-gc ' }), ['--max-semi-space-size=4', '--single-threaded-gc']);
});

test('a started proxy runs with the flags under the pid it reports', async () => {
  const dir = tempDir(cleanups, 'trellis-node-flags-');
  const ready = join(dir, 'ready.json');
  // No control plane: the proxy starts its admin ports and keeps retrying xDS, which is enough here.
  // (90 s: a proxy took 7-29 s to start at load average 60-70 on the shared 2-core machine.)
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin/trellis.js'), 'proxy', '--xds', '127.0.0.1:9', '--admin-port', '0', '--health-port', '0',
    '--prometheus-port', '0', '--ready-file', ready, '--log-level', 'error'], { env: { ...process.env, TRELLIS_PROXY_NODE_OPTIONS: undefined, [APPLIED_ENV]: undefined } });
  const info = await waitFor('proxy ready file', () => { try { return JSON.parse(readFileSync(ready, 'utf8')) as { pid: number }; } catch { return undefined; } }, 90_000, 100);
  assert.equal(info.pid, p.child.pid, 'same process: re-executed in place, not a child');
  const cmdline = readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').split('\0');
  for (const f of DEFAULT_PROXY_NODE_FLAGS) assert.ok(cmdline.includes(f), `${f} in ${cmdline.join(' ')}`);
  const env = readFileSync(`/proc/${info.pid}/environ`, 'utf8').split('\0');
  assert.ok(env.includes(`${APPLIED_ENV}=1`));
  await p.stop();
});

test('a proxy started with --bootstrap takes its node and xDS address from the YAML file', async () => {
  const dir = tempDir(cleanups, 'trellis-bootstrap-');
  const ready = join(dir, 'ready.json');
  const boot = join(dir, 'bootstrap.yaml');
  writeFileSync(boot, 'xds: 127.0.0.1:9\nnode:\n  id: sidecar~10.0.0.7~boot-1.shop~shop.svc.cluster.local\n  metadata: {NAMESPACE: shop}\n');
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin/trellis.js'), 'proxy', '--bootstrap', boot, '--admin-port', '0', '--health-port', '0',
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
