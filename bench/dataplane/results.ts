/**
 * The result model (what goes into bench/results/*.json) and the tables printed at the end and
 * written to bench/README.md: latency per path and connection count with added latency versus
 * direct, throughput / CPU / memory (and, for Node.js proxies, heap allocation per request) per
 * path, and the Trellis ratios against Envoy, HAProxy and the naive Node.js proxy
 * with the issue's targets. Medians over repetitions everywhere; unavailable paths show why.
 */
import type { LatencyRun, ThroughputRun } from './load.ts';

export interface Percentiles { p50: number; p90: number; p99: number; max: number; qps?: number }

export interface PathResult {
  id: string;
  family: string;
  hops: number;
  tls: boolean;
  concurrency: number;
  proxies: number;
  unavailable?: string;
  errors: string[];
  latency: Record<string, { runs: LatencyRun[]; median?: Percentiles; added?: Percentiles }>;
  throughput: { runs: (ThroughputRun & { cpuSeconds: number; allocBytes?: number })[]; rps?: number; rpsPerCpuSecond?: number; allocKbPerRequestPerProxy?: number };
  h2: { runs: (ThroughputRun & { cpuSeconds?: number; allocBytes?: number })[]; rps?: number; rpsPerCpuSecond?: number; allocKbPerRequestPerProxy?: number };
  resources: {
    idleRssMbPerProxy?: number; loadRssMbPerProxy?: number; vcpuPer1000RpsPerProxy?: number;
    /** Node.js paths: V8 heap bytes allocated per proxied request, per proxy, at the fixed rate (heap.ts). */
    allocKbPerRequestPerProxy?: number;
    /** Node.js paths: GC pause milliseconds per second of wall time, per proxy, at the fixed rate. */
    gcMsPerSecondPerProxy?: number;
    samples: ResourceSample[];
  };
}

/** One fixed-rate run at the reference connection count: the proxies' CPU, RSS and (Node.js) heap figures. */
export interface ResourceSample { cpuSeconds: number; wallSeconds: number; qps: number; rssMb: number; requests?: number; allocBytes?: number; gcs?: number; gcMs?: number }

export interface BenchResult {
  date: string;
  mode: 'full' | 'quick' | 'partial';
  options: Record<string, unknown>;
  machine: Record<string, string>;
  upstream: { wrkRps?: number; h2Rps?: number; vcpu?: number; note: string };
  load: { note: string };
  paths: PathResult[];
  ratios: Ratio[];
  elapsedSeconds: number;
  /** Process groups the run started (all stopped before the JSON is written). */
  startedPgids: number[];
}

export interface Ratio { metric: string; pair: string; trellis?: number; other?: number; ratio?: number; target?: string; note?: string }

/** Median of the finite numbers (NaN when none). */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Fills medians, added-vs-direct, per-CPU and resource figures from the raw runs. */
export function summarize(paths: PathResult[]): void {
  const direct = paths.find((p) => p.id === 'direct');
  for (const p of paths) {
    for (const [c, l] of Object.entries(p.latency)) {
      const ok = l.runs.filter((r) => r.error === undefined);
      if (ok.length === 0) continue;
      l.median = { p50: median(ok.map((r) => r.p50)), p90: median(ok.map((r) => r.p90)), p99: median(ok.map((r) => r.p99)), max: median(ok.map((r) => r.max)), qps: median(ok.map((r) => r.actualQps)) };
    }
    for (const [c, l] of Object.entries(p.latency)) {
      const d = direct?.latency[c]?.median;
      if (l.median && d && p.id !== 'direct') l.added = { p50: l.median.p50 - d.p50, p90: l.median.p90 - d.p90, p99: l.median.p99 - d.p99, max: l.median.max - d.max };
    }
    const t = p.throughput.runs.filter((r) => r.error === undefined);
    if (t.length > 0) {
      p.throughput.rps = median(t.map((r) => r.rps));
      if (p.proxies > 0) p.throughput.rpsPerCpuSecond = median(t.filter((r) => r.cpuSeconds > 0).map((r) => r.requests / r.cpuSeconds));
      const a = t.filter((r) => r.allocBytes !== undefined && r.requests > 0);
      if (a.length > 0 && p.proxies > 0) p.throughput.allocKbPerRequestPerProxy = median(a.map((r) => r.allocBytes! / r.requests / 1024 / p.proxies));
    }
    const h = p.h2.runs.filter((r) => r.error === undefined);
    if (h.length > 0) {
      p.h2.rps = median(h.map((r) => r.rps));
      const c = h.filter((r) => r.cpuSeconds !== undefined && r.cpuSeconds > 0);
      if (c.length > 0 && p.proxies > 0) p.h2.rpsPerCpuSecond = median(c.map((r) => r.requests / r.cpuSeconds!));
      const a = h.filter((r) => r.allocBytes !== undefined && r.requests > 0);
      if (a.length > 0 && p.proxies > 0) p.h2.allocKbPerRequestPerProxy = median(a.map((r) => r.allocBytes! / r.requests / 1024 / p.proxies));
    }
    const s = p.resources.samples.filter((x) => x.wallSeconds > 0 && x.qps > 0);
    if (s.length > 0 && p.proxies > 0) {
      p.resources.vcpuPer1000RpsPerProxy = median(s.map((x) => x.cpuSeconds / x.wallSeconds / (x.qps / 1000) / p.proxies));
      p.resources.loadRssMbPerProxy = median(s.map((x) => x.rssMb / p.proxies));
      const a = s.filter((x) => x.allocBytes !== undefined && (x.requests ?? 0) > 0);
      if (a.length > 0) {
        p.resources.allocKbPerRequestPerProxy = median(a.map((x) => x.allocBytes! / x.requests! / 1024 / p.proxies));
        p.resources.gcMsPerSecondPerProxy = median(a.map((x) => (x.gcMs ?? 0) / x.wallSeconds / p.proxies));
      }
    }
  }
}

function get(paths: PathResult[], id: string): PathResult | undefined {
  return paths.find((p) => p.id === id && !p.unavailable);
}

/** Trellis versus Envoy and HAProxy on the same hop shape, with the issue's targets. */
export function ratios(paths: PathResult[], refConns: string): Ratio[] {
  const out: Ratio[] = [];
  const pairs: [string, ...string[]][] = [
    ['trellis-1hop', 'envoy-1hop', 'haproxy-1hop', 'naive-node'],
    ['trellis-2hop', 'envoy-2hop', 'haproxy-2hop'],
    ['trellis-2hop-mtls', 'envoy-2hop-tls', 'haproxy-2hop-tls'],
  ];
  const metrics: { name: string; pick: (p: PathResult) => number | undefined; target?: (trellisId: string, otherFamily: string) => string | undefined }[] = [
    { name: `added p90 ms @${refConns} conns`, pick: (p) => p.latency[refConns]?.added?.p90 },
    { name: `added p99 ms @${refConns} conns`, pick: (p) => p.latency[refConns]?.added?.p99, target: (t, o) => (t === 'trellis-2hop-mtls' && o === 'envoy' ? '<= 1.5' : undefined) },
    { name: 'max rps (wrk, 64 conns)', pick: (p) => p.throughput.rps },
    // Issue 16's targets: >= 0.6x Envoy on 1 hop, >= 0.5x on 2-hop mTLS; >= 0.8x the naive Node.js proxy.
    { name: 'rps per proxy CPU-second', pick: (p) => p.throughput.rpsPerCpuSecond, target: (t, o) => (o === 'naive-node' ? '>= 0.8' : o !== 'envoy' ? undefined : t === 'trellis-1hop' ? '>= 0.6' : t === 'trellis-2hop-mtls' ? '>= 0.5' : undefined) },
    // Issue 16: HTTP/2 (h2load h2c, 16 x 10 streams) >= 0.5x Envoy's requests per CPU-second.
    { name: 'h2c rps per proxy CPU-second', pick: (p) => p.h2.rpsPerCpuSecond, target: (t, o) => (o === 'envoy' && t === 'trellis-1hop' ? '>= 0.5' : undefined) },
    { name: 'vCPU per 1000 rps per proxy', pick: (p) => p.resources.vcpuPer1000RpsPerProxy },
    { name: 'RSS MB per proxy @1000 rps', pick: (p) => p.resources.loadRssMbPerProxy },
    { name: 'heap KB allocated per request per proxy', pick: (p) => p.resources.allocKbPerRequestPerProxy },
    { name: 'heap KB allocated per h2c request per proxy', pick: (p) => p.h2.allocKbPerRequestPerProxy },
  ];
  for (const [t, ...others0] of pairs) {
    // With --baseline, each Trellis path also against its own baseline run (before/after in one run).
    const others = [...others0, `${t}@baseline`];
    const tp0 = paths.find((p) => p.id === t);
    if (tp0 === undefined) continue;
    if (tp0.unavailable) {
      out.push({ metric: 'all', pair: `${t} / ${others.join(', ')}`, note: `${t} not available: ${tp0.unavailable.slice(0, 120)}` });
      continue;
    }
    for (const m of metrics) {
      for (const other of others) {
        const tp = get(paths, t);
        const op = get(paths, other);
        const tv = tp ? m.pick(tp) : undefined;
        const ov = op ? m.pick(op) : undefined;
        if (paths.find((p) => p.id === other) === undefined) continue;
        // Only Node.js paths report heap allocation: no row against Envoy or HAProxy.
        if (m.name.startsWith('heap') && op !== undefined && ov === undefined) continue;
        const r: Ratio = { metric: m.name, pair: `${t} / ${other}`, trellis: tv, other: ov, target: m.target?.(t, other.startsWith('naive-') ? other : other.split('-')[0]!) };
        if (m.name.startsWith('added') && ov !== undefined && ov <= 0) r.note = `${other} added <= 0 ms (noise)`;
        else if (tv !== undefined && ov !== undefined && Number.isFinite(tv) && Number.isFinite(ov) && ov !== 0) r.ratio = tv / ov;
        else r.note = !tp ? `${t} not available` : !op ? `${other} not available` : 'no data';
        out.push(r);
      }
    }
  }
  return out;
}

/** One row of the security-filters comparison: the same 1-hop router with and without them. */
export interface SecurityOverhead { metric: string; off?: number; on?: number; added?: number }

/**
 * What jwt_authn + RBAC cost on `trellis-1hop-authz` against `trellis-1hop` (same router, same
 * load; every request carries a valid token): latency at the reference connection count and CPU
 * time per request (from requests per proxy CPU-second under wrk).
 */
export function securityOverhead(paths: PathResult[], refConns: string): SecurityOverhead[] {
  const off = get(paths, 'trellis-1hop');
  const on = get(paths, 'trellis-1hop-authz');
  if (off === undefined || on === undefined) return [];
  const us = (p: PathResult) => (p.throughput.rpsPerCpuSecond ? 1e6 / p.throughput.rpsPerCpuSecond : undefined);
  const rows: [string, (p: PathResult) => number | undefined][] = [
    [`p50 ms @${refConns} conns`, (p) => p.latency[refConns]?.median?.p50],
    [`p99 ms @${refConns} conns`, (p) => p.latency[refConns]?.median?.p99],
    ['CPU µs per request (wrk, 64 conns)', us],
    ['max rps (wrk, 64 conns)', (p) => p.throughput.rps],
  ];
  return rows.map(([metric, pick]) => {
    const a = pick(off);
    const b = pick(on);
    return { metric, off: a, on: b, added: a !== undefined && b !== undefined ? b - a : undefined };
  });
}

function f(n: number | undefined, digits = 3): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  if (Math.abs(n) >= 100) return n.toFixed(1);
  return n.toFixed(digits);
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The markdown tables (also what the terminal shows). */
export function renderTables(r: BenchResult, refConns: string): string {
  const parts: string[] = [];
  const lat: string[][] = [];
  const conns = [...new Set(r.paths.flatMap((p) => Object.keys(p.latency)))].sort((a, b) => Number(a) - Number(b));
  for (const p of r.paths) {
    if (p.unavailable) { lat.push([p.id, '', '', `not available: ${p.unavailable.slice(0, 160)}`, '', '', '', '', '']); continue; }
    for (const c of conns) {
      const l = p.latency[c];
      const m = l?.median;
      const bad = l && !m ? `errors: ${(l.runs.find((x) => x.error)?.error ?? '').slice(0, 100)}` : undefined;
      lat.push([p.id, c, m?.qps !== undefined ? m.qps.toFixed(0) : '-', bad ?? f(m?.p50), f(m?.p90), f(m?.p99), f(m?.max), f(l?.added?.p90), f(l?.added?.p99)]);
    }
  }
  parts.push(`Latency at ${String(r.options.qps)} requests/s, ms (median of ${String(r.options.reps)} x ${String(r.options.duration)}s runs; a path whose achieved rate is well under the target could not keep up, and its latency is queueing)\n\n` + table(['path', 'conns', 'achieved rps', 'p50', 'p90', 'p99', 'max', '+p90 vs direct', '+p99 vs direct'], lat));
  const tp = r.paths.map((p) => p.unavailable
    ? [p.id, `not available`, '', '', '', '', '', '', '', '']
    : [p.id, f(p.throughput.rps, 0), f(p.throughput.rpsPerCpuSecond, 0), f(p.h2.rps, 0) + (p.h2.runs.some((x) => x.error) && p.h2.rps === undefined ? ' (error)' : ''), f(p.h2.rpsPerCpuSecond, 0),
      f(p.resources.vcpuPer1000RpsPerProxy), f(p.resources.idleRssMbPerProxy, 1), f(p.resources.loadRssMbPerProxy, 1),
      f(p.resources.allocKbPerRequestPerProxy, 1), f(p.resources.gcMsPerSecondPerProxy, 1)]);
  parts.push(`Throughput and resources (wrk ${String(r.options.tputConns)} conns, h2load h2c; CPU and RSS of the proxy processes only, per proxy; heap KB / request and GC ms / s (Node.js proxies only, V8 heap) at ${String(r.options.qps)} rps)\n\n` +
    table(['path', 'max rps (h1)', 'rps per CPU-s', 'h2c rps', 'h2c rps per CPU-s', 'vCPU / 1000 rps', 'RSS idle MB', `RSS @${String(r.options.qps)} rps MB`, 'heap KB / req', 'GC ms / s'], tp));
  const rat = r.ratios.map((x) => [x.pair, x.metric, f(x.trellis), f(x.other), x.ratio !== undefined ? f(x.ratio, 2) : (x.note ?? '-'), x.target ?? '']);
  parts.push(`Trellis ratios (reference connection count ${refConns})\n\n` + table(['pair', 'metric', 'trellis', 'other', 'ratio', 'target'], rat));
  const scale = ['envoy-1hop', 'envoy-1hop-c2', 'envoy-2hop-tls', 'envoy-2hop-tls-c2', 'trellis-1hop', 'trellis-1hop-c2', 'trellis-2hop-mtls', 'trellis-2hop-mtls-c2']
    .map((id) => r.paths.find((p) => p.id === id)).filter((p): p is PathResult => p !== undefined)
    .map((p) => [p.id, String(p.concurrency), p.unavailable ? `not available: ${p.unavailable.slice(0, 120)}` : f(p.throughput.rps, 0), p.unavailable ? '' : f(p.latency[refConns]?.median?.p99)]);
  if (scale.length > 0) parts.push('Scaling (proxy concurrency 1 vs 2)\n\n' + table(['path', 'concurrency', 'max rps', `p99 ms @${refConns}`], scale));
  const sec = securityOverhead(r.paths, refConns);
  if (sec.length > 0) parts.push('Security filters (jwt_authn + RBAC DENY + ALLOW) off vs on, trellis-1hop vs trellis-1hop-authz\n\n' + table(['metric', 'off', 'on', 'added'], sec.map((x) => [x.metric, f(x.off), f(x.on), f(x.added)])));
  const tel = ['trellis-2hop-notel', 'trellis-2hop', 'trellis-2hop-tel'].map((id) => r.paths.find((p) => p.id === id)).filter((p): p is PathResult => p !== undefined);
  const base = tel.find((p) => p.id === 'trellis-2hop-notel');
  const cpuUs = (p: PathResult | undefined) => (p?.throughput.rpsPerCpuSecond ? 1e6 / p.throughput.rpsPerCpuSecond : undefined);
  const p99 = (p: PathResult | undefined) => p?.latency[refConns]?.median?.p99;
  const rel = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? `${f(a / b, 2)}x` : '-');
  if (tel.length > 0) {
    parts.push(`Telemetry cost (2 hops; off = no Istio metrics, metrics = default, full = metrics + 100% tracing to OTLP/HTTP + JSON access logs; CPU of both proxies per request from the wrk runs)\n\n` + table(
      ['path', 'telemetry', 'CPU us / request', 'vs off', `p99 ms @${refConns} conns`, 'vs off', 'max rps'],
      tel.map((p) => p.unavailable
        ? [p.id, '', `not available: ${p.unavailable.slice(0, 100)}`, '', '', '', '']
        : [p.id, p.id.endsWith('-notel') ? 'off' : p.id.endsWith('-tel') ? 'full' : 'metrics', f(cpuUs(p), 1), rel(cpuUs(p), cpuUs(base)), f(p99(p)), rel(p99(p), p99(base)), f(p.throughput.rps, 0)])));
  }
  return parts.join('\n\n');
}
