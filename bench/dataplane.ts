/**
 * `npm run bench`: the data-plane benchmark (issue 6). Builds the Go upstream (1 KB answers,
 * HTTP/1.1 + h2c), measures it direct at high load, starts every path (direct; Envoy, nginx,
 * HAProxy and Trellis at 1 hop / 2 hops / 2 hops TLS), then runs, interleaved across paths
 * (A B C A B C) and repeated: fortio at a fixed rate for latency (+ proxy CPU and RSS under that
 * load), wrk for maximum throughput (+ proxy CPU-seconds), h2load for HTTP/2. Prints the tables,
 * writes bench/results/<date>-dataplane[-quick].json and, for full runs, bench/README.md's table.
 * Every process it starts is stopped at the end, on Ctrl-C and on errors (dataplane/procs.ts).
 * Flags: see `usage` below and bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findTool, pinnedVersions } from '../test/support/tools.ts';
import { makeCerts } from './dataplane/certs.ts';
import type { SetupContext } from './dataplane/context.ts';
import { setupClassic } from './dataplane/classic.ts';
import { envoyBinary, setupEnvoy } from './dataplane/envoy.ts';
import { fortioRun, h2loadRun, wrkRun } from './dataplane/load.ts';
import { describeMachine, loadavgNow } from './dataplane/machine.ts';
import type { PathDef } from './dataplane/paths.ts';
import { AllPathIds, BaselineSuffix, parsePathId, QuickPathIds, waitFor200 } from './dataplane/paths.ts';
import { livePids, startedPgids, startProc, stopAll } from './dataplane/procs.ts';
import { groupCpuSeconds, groupRssMb } from './dataplane/procstat.ts';
import { profilesIn, topAllocations, topFrames } from './dataplane/profile.ts';
import type { BenchResult, PathResult } from './dataplane/results.ts';
import { ratios, renderTables, summarize } from './dataplane/results.ts';
import { setupTrellis } from './dataplane/trellis.ts';
import { setupNaive } from './dataplane/naive.ts';
import { heapDelta, heapTotals } from './dataplane/heap.ts';
import { idleProbe, renderIdleTable } from './dataplane/idle.ts';

const usage = `usage: npm run bench -- [options]
  --quick                 smoke run: fewer paths, 1 repetition, 2 s runs (< 2 minutes)
  --paths a,b,...         paths to run (default: all; quick: ${QuickPathIds.join(',')})
                          known: ${AllPathIds.join(',')}
  --reps N                repetitions, interleaved across paths (default 3; quick 1)
  --duration S            seconds per fortio latency run (default 4; quick 2)
  --tput-duration S       seconds per wrk / h2load run (default 3; quick 2)
  --conns 2,16,64         fortio connection counts (default 2,16,64)
  --qps N                 fortio request rate (default 1000)
  --wrk-threads N         wrk threads (default 1: leaves the second core to the proxy)
  --baseline DIR          also run every Trellis path with DIR/bin/trellis.js (another checkout, built), as
                          <path>@baseline, interleaved with the others: before/after in one run
  --profile               run Trellis proxies under node --cpu-prof and the sampling heap profiler
                          (bench/results/profiles-*/) and list top frames and allocation sites
  --out FILE              JSON output (default bench/results/<date>-dataplane.json for a full run: all
                          paths, no --baseline or --profile; -quick.json or -partial.json otherwise)
  --render FILE           only re-print the tables of an earlier JSON result (and, for a full run, bench/README.md)
  --no-readme             do not rewrite bench/README.md's results section (only full runs do)
  --idle-probe 0,30,120   instead of the latency and throughput runs: prime every path, leave it idle
                          that many seconds, run fortio at the largest --conns (first second vs the
                          rest, connections kept across the gap; dataplane/idle.ts)
`;

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

function secondsArg(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v.replace(/s$/, ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number of seconds, got '${v}'`);
  return n;
}

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function buildUpstream(go: string | undefined, buildDir: string): Promise<string> {
  const out = join(buildDir, 'upstream');
  if (go === undefined) throw new Error('go not found (needed to build bench/upstream): install Go or put it on PATH');
  const r = spawnSync(go, ['build', '-o', out, '.'], { cwd: join(root, 'bench/upstream'), encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' } });
  if (r.status !== 0) throw new Error(`go build bench/upstream failed: ${r.stderr}`);
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' }, paths: { type: 'string' }, reps: { type: 'string' }, duration: { type: 'string' },
      'tput-duration': { type: 'string' }, conns: { type: 'string' }, qps: { type: 'string' }, 'wrk-threads': { type: 'string' },
      profile: { type: 'boolean' }, 'idle-probe': { type: 'string' }, baseline: { type: 'string' }, out: { type: 'string' }, render: { type: 'string' }, 'no-readme': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(usage); return 0; }
  if (values.render !== undefined) {
    const r = JSON.parse(readFileSync(values.render, 'utf8')) as BenchResult;
    summarize(r.paths);
    r.ratios = ratios(r.paths, String(r.options.refConns ?? 16));
    const tables = renderTables(r, String(r.options.refConns ?? 16));
    process.stdout.write(`${tables}\n`);
    if (r.mode === 'full' && values['no-readme'] !== true) updateReadme(r, tables);
    return 0;
  }
  const quick = values.quick === true;
  // Only a full run (every path, no baseline, not profiled) stands for the project's figures: a
  // narrower run writes its own file and leaves the full run's JSON and the README table alone.
  const full = !quick && values.paths === undefined && values.baseline === undefined && values.profile !== true && values['idle-probe'] === undefined;
  const idleGaps = values['idle-probe']?.split(',').map((g) => {
    const n = Number(g.replace(/s$/, ''));
    if (!Number.isFinite(n) || n < 0) throw new Error(`--idle-probe takes seconds >= 0, got '${g}'`);
    return n;
  });
  const ids = values.paths ? values.paths.split(',').map((s) => s.trim()).filter(Boolean) : quick ? QuickPathIds : [...AllPathIds];
  for (const id of ids) parsePathId(id);
  if (values.baseline !== undefined) {
    if (!existsSync(join(values.baseline, 'bin/trellis.js'))) throw new Error(`--baseline ${values.baseline}: no bin/trellis.js there`);
    for (const id of ids.filter((i) => i.startsWith('trellis-') && !i.endsWith(BaselineSuffix))) ids.splice(ids.indexOf(id) + 1, 0, `${id}${BaselineSuffix}`);
  }
  if (!ids.includes('direct')) ids.unshift('direct');
  const reps = values.reps ? Number(values.reps) : quick ? 1 : 3;
  const duration = secondsArg(values.duration, quick ? 2 : 4, 'duration');
  const tputDuration = secondsArg(values['tput-duration'], quick ? 2 : 3, 'tput-duration');
  const conns = (values.conns ?? '2,16,64').split(',').map(Number);
  const qps = values.qps ? Number(values.qps) : 1000;
  const wrkThreads = values['wrk-threads'] ? Number(values['wrk-threads']) : 1;
  if (!Number.isInteger(reps) || reps < 1 || conns.some((c) => !Number.isInteger(c) || c < 1) || !(qps > 0)) throw new Error('bad --reps, --conns or --qps');
  const refConns = conns.includes(16) ? '16' : String(conns[0]);
  const t0 = Date.now();

  const tools: Record<string, string | undefined> = {};
  for (const t of ['envoy', 'nginx', 'haproxy', 'fortio', 'wrk', 'h2load', 'openssl', 'go']) tools[t] = findTool(t);
  if (tools.fortio === undefined) throw new Error('fortio not found (go install fortio.org/fortio@latest; findTool looks in ~/go/bin)');
  const envoyBin = tools.envoy ? envoyBinary(tools.envoy) : undefined;
  const node = join(root, 'node_modules/.bin/node');
  const machine = describeMachine(tools, envoyBin, node);
  log(`machine: ${machine.nproc} cores, ${machine.cpu}, load ${machine.loadavgAtStart}`);
  log(`envoy: ${machine.envoy} (pinned: ${pinnedVersions().ENVOY_VERSION}, scripts/tool-versions.sh)`);

  const workDir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir);
  const resultsDir = join(root, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const buildDir = join(root, 'bench/.build');
  mkdirSync(buildDir, { recursive: true });
  let ok = false;
  try {
    // Upstream.
    const upstreamBin = await buildUpstream(tools.go, buildDir);
    const upstream = startProc('upstream', upstreamBin, ['-addr', '127.0.0.1:0', '-size', '1024'], { logDir });
    let upstreamPort = 0;
    for (let i = 0; i < 100 && upstreamPort === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const m = /listening (\d+)/.exec(existsSync(upstream.log) ? readFileSync(upstream.log, 'utf8') : '');
      if (m) upstreamPort = Number(m[1]);
    }
    if (upstreamPort === 0) throw new Error('upstream did not start');
    const certs = tools.openssl ? makeCerts(tools.openssl, workDir) : undefined;
    const profileDir = values.profile ? join(resultsDir, `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`) : undefined;
    const ctx: SetupContext = { workDir, logDir, upstreamPort, certs, tools, root, profileDir, ...(values.baseline !== undefined ? { baselineRoot: values.baseline } : {}) };

    // Upstream at higher load than any proxy sees: it must not be the bottleneck.
    const upstreamInfo: BenchResult['upstream'] = { note: 'direct to the Go upstream, 64 connections' };
    const direct: PathDef = { id: 'direct', family: 'direct', hops: 0, tls: false, concurrency: 1, url: `http://127.0.0.1:${upstreamPort}/`, h2Url: `http://127.0.0.1:${upstreamPort}/`, host: 'bench.local', pgids: [], proxies: 0 };
    await waitFor200(direct.url, direct.host, 5000);
    if (tools.wrk) {
      const c0 = groupCpuSeconds([upstream.pid]);
      const w = await wrkRun(tools.wrk, direct, 64, tputDuration, wrkThreads);
      upstreamInfo.wrkRps = w.rps;
      upstreamInfo.vcpu = (groupCpuSeconds([upstream.pid]) - c0) / (w.seconds || tputDuration);
    }
    if (tools.h2load) upstreamInfo.h2Rps = (await h2loadRun(tools.h2load, direct, 64, 10, tputDuration)).rps;
    log(`upstream direct: ${upstreamInfo.wrkRps?.toFixed(0) ?? '-'} rps HTTP/1.1 (wrk 64 conns, upstream used ${upstreamInfo.vcpu?.toFixed(2) ?? '-'} vCPU), ${upstreamInfo.h2Rps?.toFixed(0) ?? '-'} rps h2c (h2load 64 conns x 10 streams)`);

    // Paths.
    log(`starting paths: ${ids.join(', ')}`);
    const defs: PathDef[] = [direct];
    defs.push(...await setupNaive(ids, ctx));
    defs.push(...await setupEnvoy(ids.filter((i) => i.startsWith('envoy-')), ctx));
    defs.push(...await setupClassic(ids.filter((i) => i.startsWith('nginx-') || i.startsWith('haproxy-')), ctx));
    defs.push(...await setupTrellis(ids.filter((i) => i.startsWith('trellis-')), ctx));
    const ordered = ids.map((id) => defs.find((d) => d.id === id)!).filter(Boolean);
    for (const d of ordered) if (d.unavailable) log(`${d.id}: not available: ${d.unavailable}`);
    const runnable = ordered.filter((d) => !d.unavailable);
    const results = new Map<string, PathResult>(ordered.map((d) => [d.id, {
      id: d.id, family: d.family, hops: d.hops, tls: d.tls, concurrency: d.concurrency, proxies: d.proxies, unavailable: d.unavailable,
      errors: [], latency: {}, throughput: { runs: [] }, h2: { runs: [] }, resources: { samples: [] },
    }]));
    await new Promise((r) => setTimeout(r, 1000));
    for (const d of runnable) if (d.proxies > 0) results.get(d.id)!.resources.idleRssMbPerProxy = groupRssMb(d.pgids) / d.proxies;

    // Warm-up: every path once at the fixed rate (connections, JIT, TLS sessions).
    for (const d of runnable) await fortioRun(tools.fortio, d, qps, Math.max(...conns), 1);

    if (idleGaps !== undefined) {
      const runs = await idleProbe(tools.fortio, runnable.filter((d) => d.proxies > 0), idleGaps, { reps, qps, conns: Math.max(...conns), duration, workDir, log });
      const table = renderIdleTable(runs);
      process.stdout.write(`\n${table}\n`);
      const out = values.out ?? join(resultsDir, `${new Date().toISOString().slice(0, 10)}-dataplane-idle.json`);
      writeFileSync(out, JSON.stringify({ options: { paths: ids, gaps: idleGaps, reps, qps, conns: Math.max(...conns), duration }, machine: { ...machine, loadavgAtEnd: loadavgNow() }, runs }, null, 2) + '\n');
      log(`wrote ${out}`);
      // The proxies' logs (e.g. --trace-gc through TRELLIS_BENCH_NODE_ARGS) are what a probe is read with: kept.
      log(`logs kept in ${logDir}`);
      return 0;
    }
    // Latency, interleaved: for each repetition and connection count, A B C ...
    const totalLat = reps * conns.length * runnable.length;
    let n = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const c of conns) {
        for (const d of runnable) {
          const res = results.get(d.id)!;
          const heap0 = d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined;
          const cpu0 = groupCpuSeconds(d.pgids);
          const w0 = performance.now();
          const run = await fortioRun(tools.fortio, d, qps, c, duration);
          const wall = (performance.now() - w0) / 1000;
          if (String(c) === refConns && d.proxies > 0 && run.error === undefined) {
            const cpuSeconds = groupCpuSeconds(d.pgids) - cpu0;
            const rssMb = groupRssMb(d.pgids);
            const heap = heapDelta(heap0, d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined);
            res.resources.samples.push({ cpuSeconds, wallSeconds: wall, qps: run.actualQps, rssMb, requests: run.count, ...(heap ? { allocBytes: heap.allocatedBytes, gcs: heap.gcs, gcMs: heap.gcMs } : {}) });
          }
          (res.latency[String(c)] ??= { runs: [] }).runs.push(run);
          if (run.error) res.errors.push(`fortio c=${c}: ${run.error}`);
          n++;
          log(`latency ${n}/${totalLat} ${d.id} c=${c}: ${run.error ? `ERROR ${run.error}` : `p50 ${run.p50.toFixed(3)} p90 ${run.p90.toFixed(3)} p99 ${run.p99.toFixed(3)} ms`}`);
        }
      }
    }
    // Throughput (wrk) and HTTP/2 (h2load), interleaved the same way.
    if (tools.wrk) {
      for (let rep = 0; rep < reps; rep++) {
        for (const d of runnable) {
          const heap0 = d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined;
          const cpu0 = groupCpuSeconds(d.pgids);
          const run = await wrkRun(tools.wrk, d, 64, tputDuration, wrkThreads);
          const cpuSeconds = groupCpuSeconds(d.pgids) - cpu0;
          const heap = heapDelta(heap0, d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined);
          const res = results.get(d.id)!;
          res.throughput.runs.push({ ...run, cpuSeconds, ...(heap ? { allocBytes: heap.allocatedBytes } : {}) });
          if (run.error) res.errors.push(`wrk: ${run.error}`);
          if (run.warning) res.errors.push(`wrk (warning, number kept): ${run.warning}`);
          log(`throughput ${d.id}: ${run.error ? `ERROR ${run.error}` : `${run.rps.toFixed(0)} rps${run.warning ? ` (${run.warning})` : ''}`}`);
        }
      }
    }
    if (tools.h2load) {
      const h2 = runnable.filter((d) => d.h2Url !== undefined);
      for (let rep = 0; rep < reps; rep++) {
        for (const d of h2) {
          // Proxy CPU and heap around the run, as for wrk: the issue's h2c target is per CPU-second.
          const heap0 = d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined;
          const cpu0 = groupCpuSeconds(d.pgids);
          const run = await h2loadRun(tools.h2load, { url: d.h2Url!, host: d.host, headers: d.headers }, 16, 10, tputDuration);
          const cpuSeconds = groupCpuSeconds(d.pgids) - cpu0;
          const heap = heapDelta(heap0, d.heapDirs ? await heapTotals(d.pgids, d.heapDirs) : undefined);
          const res = results.get(d.id)!;
          res.h2.runs.push({ ...run, ...(d.proxies > 0 ? { cpuSeconds } : {}), ...(heap ? { allocBytes: heap.allocatedBytes } : {}) });
          if (run.error) res.errors.push(`h2load: ${run.error}`);
          log(`h2c ${d.id}: ${run.error ? `ERROR ${run.error}` : `${run.rps.toFixed(0)} rps${d.proxies > 0 && cpuSeconds > 0 ? `, ${(run.requests / cpuSeconds).toFixed(0)} per proxy CPU-s` : ''}`}`);
        }
      }
    }

    const paths = [...results.values()];
    summarize(paths);
    const date = new Date().toISOString().slice(0, 10);
    const result: BenchResult = {
      date, mode: quick ? 'quick' : full ? 'full' : 'partial',
      options: { paths: ids, reps, ...(values.baseline !== undefined ? { baseline: values.baseline } : {}), duration, tputDuration, conns, qps, wrkThreads, tputConns: 64, h2: 'h2load -c 16 -m 10', refConns: Number(refConns) },
      machine: { ...machine, loadavgAtEnd: loadavgNow() },
      upstream: upstreamInfo,
      load: { note: `fortio load -qps ${qps} -c N -uniform -nocatchup -keepalive=true -t ${duration}s; wrk -t${wrkThreads} -c64 -d${tputDuration}s; h2load -c16 -m10 -D${tputDuration}` },
      paths, ratios: ratios(paths, refConns), elapsedSeconds: 0, startedPgids: [],
    };

    // Node writes a CPU profile on orderly exit only: give the proxies time to drain and write it.
    await stopAll(profileDir ? 15000 : 3000);
    if (profileDir !== undefined && existsSync(profileDir)) {
      for (const file of profilesIn(profileDir)) {
        process.stdout.write(`\nTop frames by self time: ${file}\n`);
        for (const fr of topFrames(file, root)) process.stdout.write(`  ${fr.percent.toFixed(1).padStart(5)}%  ${fr.selfMs.toFixed(0).padStart(7)} ms  ${fr.frame}\n`);
      }
      for (const file of profilesIn(profileDir, '.heapprofile')) {
        const top = topAllocations(file, root);
        process.stdout.write(`\nTop allocation sites (sampling heap profiler, collected objects included; ${top[0]?.totalMb.toFixed(0) ?? 0} MB sampled over the process's life): ${file}\n`);
        for (const a of top) process.stdout.write(`  ${a.percent.toFixed(1).padStart(5)}%  ${a.mb.toFixed(1).padStart(7)} MB  ${a.frame}\n`);
      }
    }
    result.elapsedSeconds = Math.round((Date.now() - t0) / 1000);
    result.startedPgids = startedPgids();
    const tables = renderTables(result, refConns);
    process.stdout.write(`\n${tables}\n\nupstream direct: ${upstreamInfo.wrkRps?.toFixed(0) ?? '-'} rps (h1, wrk 64 conns), ${upstreamInfo.h2Rps?.toFixed(0) ?? '-'} rps (h2c)\nelapsed ${result.elapsedSeconds}s, load average at end ${result.machine.loadavgAtEnd}\n`);
    const out = values.out ?? join(resultsDir, `${date}-dataplane${quick ? '-quick' : full ? '' : '-partial'}.json`);
    writeFileSync(out, JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    log(`wrote ${out}`);
    if (full && values['no-readme'] !== true && values.out === undefined) updateReadme(result, tables);
    ok = true;
  } finally {
    await stopAll();
    const left = livePids();
    if (left.length > 0) log(`still tracked after stop: ${left.join(', ')}`);
    if (ok) rmSync(workDir, { recursive: true, force: true });
    else log(`logs kept in ${logDir}`);
  }
  return 0;
}

function updateReadme(r: BenchResult, tables: string): void {
  const file = join(root, 'bench/README.md');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const begin = '<!-- results:begin -->';
  const end = '<!-- results:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return;
  const m = r.machine;
  const block = `${begin}\nLatest full run: ${r.date}, ${r.elapsedSeconds}s. Machine: ${m.nproc} cores (${m.cpu}), ${m.memory}; load average ${m.loadavgAtStart} at start, ${m.loadavgAtEnd} at end.\n` +
    `Tools: node ${m.node}; envoy ${m.envoy}; ${m.nginx}; ${m.haproxy}; fortio ${m.fortio}; ${m.wrk}; ${m.h2load}; ${m.openssl}; ${m.go}.\n` +
    `Upstream direct: ${r.upstream.wrkRps?.toFixed(0) ?? '-'} rps HTTP/1.1, ${r.upstream.h2Rps?.toFixed(0) ?? '-'} rps h2c.\n\n${tables}\n${end}`;
  writeFileSync(file, text.slice(0, i) + block + text.slice(j + end.length));
}

main().then((code) => { process.exitCode = code; }, async (err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});

