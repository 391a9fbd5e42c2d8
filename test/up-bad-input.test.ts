/**
 * `trellis up` on bad input must say clearly what is wrong and leave nothing running: a config
 * with errors (diagnostics, exit 1, nothing started), a workload whose command fails (named, with
 * its output, everything rolled back), a gateway port already in use (named, nothing started),
 * transparent capture where it cannot run. Real processes; `ps` checks nothing is left.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, trellis } from './support/trellis-up.ts';
import { readState } from '../src/runtime/state.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-upbad-'));
  dirs.push(d);
  return d;
}
/** Processes whose command line mentions `needle`. */
function processesMentioning(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}

after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('trellis up: bad input', { timeout: 120_000 }, () => {
  test('a config with errors prints diagnostics, exits 1 and starts nothing', async () => {
    const config = tmp();
    writeFileSync(join(config, 'bad.yaml'), `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: broken
spec:
  replicas: 1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r
spec:
  hosts: [nowhere]
  http:
  - route:
    - destination:
        host: nowhere
        subset: v9
`);
    const state = join(tmp(), 'state');
    for (const detach of [[], ['--detach']]) {
      const r = await trellis(['up', ...detach, '--config', config, '--state-dir', state]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /error/);
      assert.match(r.stderr, /bad\.yaml:\d+/);
      assert.match(r.stderr, /command/);
      assert.match(r.stderr, /nothing was started/);
      assert.equal(readState(state)?.processes.length ?? 0, 0);
      assert.deepEqual(processesMentioning(state), []);
    }
  });

  test('a workload whose command fails is named with its output, and everything is rolled back', async () => {
    const config = tmp();
    cpSync(join(root, 'examples/demo/mesh'), config, { recursive: true });
    writeFileSync(join(config, 'failing.yaml'), `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: crashy
  labels: {app: crashy}
spec:
  command: [sh, -c, "echo 'crashy: cannot open database' >&2; exit 3"]
  ports: [{port: 8080}]
`);
    const state = join(tmp(), 'state');
    const r = await trellis(['up', '--detach', '--config', config, '--state-dir', state, '--gateway-port', '0', '--start-timeout', '30']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /workload default\/crashy/);
    assert.match(r.stderr, /exited with code 3/);
    assert.match(r.stderr, /cannot open database/);
    const st = readState(state);
    assert.equal(st?.phase, 'failed');
    assert.deepEqual(st?.processes, []);
    assert.deepEqual(processesMentioning(state), []);
    const down = await trellis(['down', '--state-dir', state]);
    assert.equal(down.code, 0);
  });

  test('a gateway port already in use is reported and nothing starts', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const state = join(tmp(), 'state');
      const r = await trellis(['up', '--detach', '--state-dir', state, '--gateway-port', String(port)]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`gateway port ${port} .*already in use`));
      assert.deepEqual(processesMentioning(state), []);
      assert.equal(existsSync(join(state, 'registrations')) ? readState(state)?.processes.length ?? 0 : 0, 0);
    } finally {
      server.close();
    }
  });

  test('bad flags are usage errors (exit 2)', async () => {
    assert.equal((await trellis(['up', '--capture', 'sideways'])).code, 2);
    assert.equal((await trellis(['up', '--gateway-port', '70000'])).code, 2);
    assert.equal((await trellis(['up', '--config', '/nonexistent/trellis'])).code, 2);
  });

  test('transparent capture: refused without root', async () => {
    // Run as root (always, in CI), the command runs as nobody: the refusal is tested either way.
    const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = await trellis(['up', '--capture', 'transparent', '--state-dir', join(tmp(), 'state')], unprivileged);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs root/);
  });

  test('status and down with nothing running', async () => {
    const state = join(tmp(), 'state');
    const s = await trellis(['status', '--state-dir', state]);
    assert.equal(s.code, 1);
    assert.match(s.stdout, /nothing is running/);
    const d = await trellis(['down', '--state-dir', state]);
    assert.equal(d.code, 0);
  });
});
