/**
 * `npm run bench -- --idle-probe 0,30,120`: how a path's latency depends on how long it sat idle
 * before a run (issue 16: the 2-hop mTLS p99 at 64 connections grew with the idle time between
 * its runs in the full bench). For each gap and each path: prime it (fortio at the fixed rate,
 * 2 s), leave it alone for the gap, then run fortio at the fixed rate with an access log, and
 * split that run's latencies into its first second and the rest. Around the gap it records each
 * proxy's established TCP connections (`ss`), and which of its upstream connections survived the
 * gap and the run, so a pool that re-opens (TLS handshakes) shows as such.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PathDef } from './paths.ts';
import { fortioRun } from './load.ts';
import { groupCpuSeconds, groupPids, groupRssMb } from './procstat.ts';
import { median } from './results.ts';

/** One proxy's established connections: accepted (on a port it listens on) and opened by it (keyed by local port). */
export interface ProxyConns { pid: number; inbound: number; outbound: Set<string> }

/** One post-idle run. */
export interface IdleRun {
  path: string;
  gapSeconds: number;
  conns: number;
  p99: number;
  p99First: number;
  p99Rest: number;
  maxFirst: number;
  /** Proxy CPU-seconds per 1,000 requests during the run (all the path's proxies). */
  cpuPer1k: number;
  /** RSS per proxy, MB: before the gap (after priming), after it, after the run. */
  rssMb: [number, number, number];
  countFirst: number;
  countRest: number;
  /** Per proxy, "in/out" connections before the gap, after it and after the run, and how many of the "before" outbound ones were still there after the run. */
  connections: string[];
  error?: string;
}

interface SsRow { pid: number; local: string; peer: string }

function ssRows(args: string[]): SsRow[] {
  const r = spawnSync('ss', ['-tnpH', ...args], { encoding: 'utf8' });
  const rows: SsRow[] = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    // The last three fields are local address, peer address and users (a `state` filter drops the State column).
    const f = line.trim().split(/\s+/);
    const m = /pid=(\d+)/.exec(line);
    if (!m || f.length < 5) continue;
    rows.push({ pid: Number(m[1]), local: f[f.length - 3]!, peer: f[f.length - 2]! });
  }
  return rows;
}

/** Established connections of every process of `pgids`, split into accepted and opened ones. */
export function proxyConnections(pgids: readonly number[]): ProxyConns[] {
  const pids = new Set(groupPids(pgids));
  const listening = new Set(ssRows(['-l']).filter((r) => pids.has(r.pid)).map((r) => r.local.slice(r.local.lastIndexOf(':') + 1)));
  const out = new Map<number, ProxyConns>();
  for (const pid of pids) out.set(pid, { pid, inbound: 0, outbound: new Set() });
  for (const r of ssRows(['state', 'established'])) {
    const c = out.get(r.pid);
    if (c === undefined) continue;
    if (listening.has(r.local.slice(r.local.lastIndexOf(':') + 1))) c.inbound++;
    else c.outbound.add(`${r.local}>${r.peer}`);
  }
  return [...out.values()];
}

interface AccessLine { latency: number; timestamp: number }

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Latencies (ms) of a fortio access log, split at `splitSeconds` after its first request. */
export function splitAccessLog(text: string, splitSeconds: number): { first: number[]; rest: number[] } {
  const lines: AccessLine[] = [];
  for (const l of text.split('\n')) if (l.startsWith('{')) lines.push(JSON.parse(l) as AccessLine);
  const t0 = Math.min(...lines.map((l) => l.timestamp));
  const first: number[] = [];
  const rest: number[] = [];
  for (const l of lines) (l.timestamp - t0 < splitSeconds * 1e9 ? first : rest).push(l.latency * 1000);
  first.sort((a, b) => a - b);
  rest.sort((a, b) => a - b);
  return { first, rest };
}

function describe(before: ProxyConns[], idle: ProxyConns[], after: ProxyConns[]): string[] {
  return before.map((b) => {
    const i = idle.find((x) => x.pid === b.pid);
    const a = after.find((x) => x.pid === b.pid);
    const kept = a ? [...b.outbound].filter((k) => a.outbound.has(k)).length : 0;
    return `pid ${b.pid}: in/out ${b.inbound}/${b.outbound.size} -> ${i?.inbound ?? '-'}/${i?.outbound.size ?? '-'} -> ${a?.inbound ?? '-'}/${a?.outbound.size ?? '-'}, ${kept} of ${b.outbound.size} outbound kept`;
  });
}

/**
 * For each gap, every path is primed, then the gap passes untouched, then each path runs in turn
 * (so the n-th path of the list idles `gap` plus the runs before it; the order rotates per rep).
 */
export async function idleProbe(fortio: string, paths: readonly PathDef[], gaps: readonly number[], opts: { reps: number; qps: number; conns: number; duration: number; workDir: string; log: (m: string) => void }): Promise<IdleRun[]> {
  const runs: IdleRun[] = [];
  const accessLog = join(opts.workDir, 'idle-access.json');
  for (let rep = 0; rep < opts.reps; rep++) {
    const order = paths.map((_, i) => paths[(i + rep) % paths.length]!);
    for (const gap of gaps) {
      for (const d of order) await fortioRun(fortio, d, opts.qps, opts.conns, 2);
      const before = new Map(order.map((d) => [d.id, proxyConnections(d.pgids)]));
      const rssBefore = new Map(order.map((d) => [d.id, groupRssMb(d.pgids) / d.proxies]));
      await new Promise((r) => setTimeout(r, gap * 1000));
      for (const d of order) {
        const idle = proxyConnections(d.pgids);
        const rssIdle = groupRssMb(d.pgids) / d.proxies;
        rmSync(accessLog, { force: true });
        const cpu0 = groupCpuSeconds(d.pgids);
        const run = await fortioRun(fortio, d, opts.qps, opts.conns, opts.duration, ['-access-log-file', accessLog]);
        const cpuPer1k = ((groupCpuSeconds(d.pgids) - cpu0) / Math.max(1, run.count)) * 1000;
        const after = proxyConnections(d.pgids);
        const rssAfter = groupRssMb(d.pgids) / d.proxies;
        let split = { first: [] as number[], rest: [] as number[] };
        try {
          split = splitAccessLog(readFileSync(accessLog, 'utf8'), 1);
        } catch {
          // no access log: only the whole-run figures
        }
        const r: IdleRun = {
          path: d.id, gapSeconds: gap, conns: opts.conns, p99: run.p99,
          p99First: percentile(split.first, 99), p99Rest: percentile(split.rest, 99), maxFirst: split.first.at(-1) ?? NaN,
          cpuPer1k, rssMb: [rssBefore.get(d.id)!, rssIdle, rssAfter],
          countFirst: split.first.length, countRest: split.rest.length,
          connections: describe(before.get(d.id)!, idle, after), ...(run.error ? { error: run.error } : {}),
        };
        runs.push(r);
        opts.log(`idle ${gap}s ${d.id} c=${opts.conns}: p99 ${r.p99.toFixed(2)} ms; first 1 s p99 ${r.p99First.toFixed(2)} (max ${r.maxFirst.toFixed(2)}, ${r.countFirst} req), rest p99 ${r.p99Rest.toFixed(2)} ms; ${r.cpuPer1k.toFixed(3)} proxy CPU-s per 1k requests; RSS/proxy ${r.rssMb.map((x) => x.toFixed(1)).join(' -> ')} MB${r.error ? ` ERROR ${r.error}` : ''}`);
        for (const c of r.connections) opts.log(`    ${c}`);
      }
    }
  }
  return runs;
}

/** Medians per path and gap, as a Markdown table. */
export function renderIdleTable(runs: readonly IdleRun[]): string {
  const keys = [...new Set(runs.map((r) => `${r.path}\t${r.gapSeconds}`))];
  const rows = keys.map((k) => {
    const [path, gap] = k.split('\t');
    const rs = runs.filter((r) => r.path === path && String(r.gapSeconds) === gap);
    return `| ${path} | ${gap} | ${rs.length} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ${median(rs.map((r) => r.p99First)).toFixed(2)} | ${median(rs.map((r) => r.p99Rest)).toFixed(2)} | ${median(rs.map((r) => r.maxFirst)).toFixed(2)} | ${median(rs.map((r) => r.cpuPer1k)).toFixed(3)} | ${[0, 1, 2].map((i) => median(rs.map((r) => r.rssMb[i]!)).toFixed(1)).join(' / ')} |`;
  });
  return ['| path | idle s | runs | p99 ms | p99 first 1 s | p99 rest | max first 1 s | proxy CPU-s / 1k req | RSS/proxy MB: primed / after idle / after run |', '|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}
