import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forgetMesh, recordMesh, resolveStateDir, runningMeshes } from './meshes.ts';
import { writeState, type RuntimeState } from './state.ts';

function state(stateDir: string, pid: number): RuntimeState {
  return {
    version: 1, phase: 'ready', supervisorPid: pid, stateDir, configDirs: [], registrationDir: join(stateDir, 'registrations'),
    capture: 'explicit', gatewayPorts: {}, processes: [], netns: [], startedAt: new Date().toISOString(),
  };
}

test('the running meshes of a user: found from anywhere, dead ones pruned, several are ambiguous', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'meshes-'));
  const env = { XDG_STATE_HOME: join(tmp, 'xdg') };
  const cwd = tmp;
  try {
    const cwdState = resolveStateDir(undefined, { requireLive: true, env, cwd });
    assert.deepEqual(cwdState, { stateDir: '.trellis', source: 'default' });
    assert.deepEqual(resolveStateDir('x', { requireLive: true, env, cwd }), { stateDir: 'x', source: 'flag' });
    assert.deepEqual(resolveStateDir(undefined, { requireLive: true, env: { ...env, TRELLIS_STATE_DIR: 'y' }, cwd }), { stateDir: 'y', source: 'env' });

    const a = join(tmp, 'a');
    writeState(state(a, process.pid));
    recordMesh({ stateDir: a, supervisorPid: process.pid, startedAt: '2026-01-01T00:00:00Z' }, env);
    assert.deepEqual(resolveStateDir(undefined, { requireLive: true, env, cwd }), { stateDir: a, source: 'list' });

    // A mesh whose supervisor is gone is dropped from the list.
    const dead = join(tmp, 'dead');
    writeState(state(dead, 2 ** 22 + 12345));
    recordMesh({ stateDir: dead, supervisorPid: 2 ** 22 + 12345, startedAt: '2026-01-02T00:00:00Z' }, env);
    assert.deepEqual(runningMeshes(env).map((m) => m.stateDir), [a]);
    assert.equal(readdirSync(join(tmp, 'xdg/trellis/meshes')).length, 1);

    const b = join(tmp, 'b');
    writeState(state(b, process.pid));
    recordMesh({ stateDir: b, supervisorPid: process.pid, startedAt: '2026-01-03T00:00:00Z' }, env);
    assert.throws(() => resolveStateDir(undefined, { requireLive: true, env, cwd }), (err: Error & { code?: string }) =>
      err.code === 'MESH_AMBIGUOUS' && err.message.includes(a) && err.message.includes(b) && err.message.includes('--state-dir'));
    forgetMesh(b, env);
    assert.deepEqual(resolveStateDir(undefined, { requireLive: true, env, cwd }), { stateDir: a, source: 'list' });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
