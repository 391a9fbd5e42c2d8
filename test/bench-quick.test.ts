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
import { skipUnlessTools } from './support/skip.ts';
import type { PathResult } from '../bench/dataplane/results.ts';

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

test('bench path ids parse, and bad ones are rejected', async () => {
  const { parsePathId, AllPathIds } = await import('../bench/dataplane/paths.ts');
  assert.deepEqual(parsePathId('trellis-2hop-mtls-c2'), { family: 'trellis', hops: 2, tls: true, concurrency: 2, authz: false, telemetry: 'metrics' });
  assert.deepEqual(parsePathId('trellis-1hop-authz'), { family: 'trellis', hops: 1, tls: false, concurrency: 1, authz: true, telemetry: 'metrics' });
  assert.deepEqual(parsePathId('trellis-2hop-notel'), { family: 'trellis', hops: 2, tls: false, concurrency: 1, authz: false, telemetry: 'off' });
  assert.deepEqual(parsePathId('trellis-2hop-tel'), { family: 'trellis', hops: 2, tls: false, concurrency: 1, authz: false, telemetry: 'full' });
  assert.deepEqual(parsePathId('direct'), { family: 'direct', hops: 0, tls: false, concurrency: 1, authz: false, telemetry: 'metrics' });
  for (const id of AllPathIds) assert.doesNotThrow(() => parsePathId(id));
  for (const bad of ['', 'envoy', 'envoy-3hop', 'squid-1hop', 'nginx-1hop-cx', 'envoy-1hop-authz', 'envoy-2hop-tel']) assert.throws(() => parsePathId(bad), /unknown path/);
});

test('bench summaries: medians, added latency vs direct, per-CPU figures, ratio notes', async () => {
  const { median, summarize, ratios } = await import('../bench/dataplane/results.ts');
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([NaN])));
  const lat = (p99: number) => ({ p50: 1, p90: 2, p99, p999: p99, max: p99, actualQps: 1000, count: 1000 });
  const mk = (id: string, proxies: number, p99s: number[]): PathResult => ({
    id, family: id.split('-')[0]!, hops: proxies, tls: false, concurrency: 1, proxies, errors: [],
    latency: { '16': { runs: p99s.map(lat) } },
    throughput: { runs: [{ rps: 1000, requests: 3000, seconds: 3, cpuSeconds: 1.5 }] },
    h2: { runs: [] },
    resources: { samples: [{ cpuSeconds: 0.4, wallSeconds: 2, qps: 1000, rssMb: 100 }] },
  });
  const paths = [mk('direct', 0, [1, 1, 1]), mk('envoy-1hop', 1, [2, 3, 4]), mk('trellis-1hop', 1, [5, 6, 100])];
  paths[2]!.latency['16']!.runs.push({ ...lat(1), error: 'non-200 answers' });
  summarize(paths);
  assert.equal(paths[1]!.latency['16']!.added!.p99, 2);
  assert.equal(paths[2]!.latency['16']!.median!.p99, 6, 'errored runs are left out, not counted as numbers');
  assert.equal(paths[2]!.throughput.rpsPerCpuSecond, 2000);
  assert.equal(paths[2]!.resources.vcpuPer1000RpsPerProxy, 0.2);
  const r = ratios(paths, '16').find((x) => x.pair === 'trellis-1hop / envoy-1hop' && x.metric.startsWith('added p99'));
  assert.equal(r?.ratio, 2.5);
  assert.equal(ratios(paths, '16').some((x) => x.pair.includes('haproxy')), false, 'no rows for paths that did not run');
});

test('bench profile reader: top frames by self time, idle left out', async () => {
  const { topFrames } = await import('../bench/dataplane/profile.ts');
  const { writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'bench-prof-test-'));
  try {
    const file = join(dir, 'x.cpuprofile');
    const frame = (id: number, functionName: string, hitCount: number) => ({ id, callFrame: { functionName, url: `file://${root}src/a.ts`, lineNumber: id }, hitCount });
    writeFileSync(file, JSON.stringify({ startTime: 0, endTime: 1_000_000, nodes: [frame(1, '(idle)', 50), frame(2, 'hot', 30), frame(3, 'warm', 20)] }));
    const top = topFrames(file, root);
    assert.deepEqual(top.map((t) => t.frame), ['hot src/a.ts:3', 'warm src/a.ts:4']);
    assert.equal(top[0]!.percent, 60);
    assert.equal(top[0]!.selfMs, 300);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
