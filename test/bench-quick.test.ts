/**
 * The data-plane benchmark harness (bench/dataplane.ts) in its smallest mode: direct and one
 * nginx hop, one connection count, 1 s runs. Asserts it completes, writes valid JSON with
 * numbers for both paths, and leaves no process behind (every process group it recorded is gone).
 * Numbers are not asserted: this machine is shared and noisy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessTools } from './support/tools.ts';

const root = new URL('..', import.meta.url).pathname;

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'bench/dataplane.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // SIGTERM lets the harness stop its own process groups before it exits.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function alivePgrps(pgids: readonly number[]): number[] {
  const want = new Set(pgids);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (want.has(pgrp)) out.push(Number(name));
    } catch {
      // exited
    }
  }
  return out;
}

test('bench --quick (direct, nginx-1hop) completes, writes JSON, leaves no process', { skip: skipUnlessTools('fortio', 'wrk', 'nginx', 'go', 'openssl'), timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-quick-test-'));
  try {
    const out = join(dir, 'result.json');
    const r = await run(['--quick', '--paths', 'direct,nginx-1hop', '--conns', '2', '--duration', '1', '--tput-duration', '1', '--out', out], 100_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    const j = JSON.parse(readFileSync(out, 'utf8')) as {
      mode: string; startedPgids: number[];
      paths: { id: string; unavailable?: string; latency: Record<string, { runs: { p50: number | null; error?: string }[] }>; throughput: { rps?: number } }[];
    };
    assert.equal(j.mode, 'quick');
    assert.deepEqual(j.paths.map((p) => p.id), ['direct', 'nginx-1hop']);
    for (const p of j.paths) {
      assert.equal(p.unavailable, undefined, `${p.id}: ${p.unavailable}`);
      const run1 = p.latency['2']!.runs[0]!;
      assert.equal(run1.error, undefined, `${p.id}: ${run1.error}`);
      assert.ok(typeof run1.p50 === 'number' && run1.p50 > 0, `${p.id} p50`);
      assert.ok((p.throughput.rps ?? 0) > 0, `${p.id} throughput`);
    }
    assert.match(r.stdout, /Latency at 1000 requests\/s/);
    assert.ok(j.startedPgids.length >= 3, 'upstream, nginx and load generators recorded');
    assert.deepEqual(alivePgrps(j.startedPgids), [], 'every process the bench started is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench rejects an unknown path name', async () => {
  const r = await run(['--paths', 'direct,bogus-3hop'], 30_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /unknown path 'bogus-3hop'/);
  const d = await run(['--duration', 'soon'], 30_000);
  assert.notEqual(d.code, 0);
  assert.match(d.stderr, /--duration must be a positive number of seconds/);
});
