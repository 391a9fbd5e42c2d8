/**
 * The three load generators and what we read from them: fortio for latency at a fixed rate (run
 * as Istio's benchmark runs it: `-qps 1000 -c N -uniform -nocatchup -keepalive=true -json -`),
 * wrk for maximum HTTP/1.1 throughput, h2load for HTTP/2 (h2c prior knowledge). Each run returns
 * numbers or an `error` string; a run with non-2xx answers or socket errors is an error, never
 * a number.
 */
import { runCapture } from './procs.ts';

/** One fortio run at a fixed rate. Latencies in milliseconds. */
export interface LatencyRun {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  actualQps: number;
  count: number;
  error?: string;
}

/** One throughput run. */
export interface ThroughputRun {
  rps: number;
  requests: number;
  seconds: number;
  error?: string;
  /** Something to know that does not invalidate the number (wrk request timeouts, > 2 s). */
  warning?: string;
}

export interface Target {
  url: string;
  host: string;
  /** Extra request headers (e.g. a JWT for the security-filter paths). */
  headers?: Readonly<Record<string, string>>;
}

function extraHeaders(t: Target, h2 = false): string[] {
  return Object.entries(t.headers ?? {}).flatMap(([k, v]) => ['-H', `${h2 ? k.toLowerCase() : k}: ${v}`]);
}

function secs(d: number): string {
  return `${d}s`;
}

/** `fortio load` at `qps` with `conns` connections for `duration` seconds. */
export async function fortioRun(fortio: string, t: Target, qps: number, conns: number, duration: number, extra: readonly string[] = []): Promise<LatencyRun> {
  const args = ['load', ...extra, '-qps', String(qps), '-c', String(conns), '-uniform', '-nocatchup', '-keepalive=true', '-t', secs(duration),
    '-p', '50,90,99,99.9', '-H', `Host: ${t.host}`, ...extraHeaders(t), '-json', '-', '-loglevel', 'Error', t.url];
  const r = await runCapture('fortio', fortio, args, (duration + 30) * 1000);
  const empty: LatencyRun = { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, actualQps: 0, count: 0 };
  let j: { DurationHistogram?: { Count: number; Max: number; Percentiles?: { Percentile: number; Value: number }[] }; RetCodes?: Record<string, number>; ActualQPS?: number };
  try {
    j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch {
    return { ...empty, error: `fortio exit ${r.code}: ${r.stderr.trim().slice(-300) || 'no JSON output'}` };
  }
  const h = j.DurationHistogram;
  const pct = (p: number) => (h?.Percentiles?.find((x) => x.Percentile === p)?.Value ?? NaN) * 1000;
  const out: LatencyRun = { p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9), max: (h?.Max ?? NaN) * 1000, actualQps: j.ActualQPS ?? 0, count: h?.Count ?? 0 };
  const codes = j.RetCodes ?? {};
  const bad = Object.entries(codes).filter(([c]) => c !== '200');
  if (bad.length > 0 || out.count === 0) out.error = `non-200 answers: ${JSON.stringify(codes)}`;
  return out;
}

/** `wrk -t threads -c conns -d duration` with a Host header. */
export async function wrkRun(wrk: string, t: Target, conns: number, duration: number, threads: number): Promise<ThroughputRun> {
  const r = await runCapture('wrk', wrk, ['-t', String(threads), '-c', String(conns), '-d', secs(duration), '-H', `Host: ${t.host}`, ...extraHeaders(t), t.url], (duration + 30) * 1000);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(r.stdout);
  if (!rps || !total) return { rps: NaN, requests: 0, seconds: 0, error: `wrk exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}` };
  const unit = total[3] === 'ms' ? 0.001 : total[3] === 'm' ? 60 : 1;
  const out: ThroughputRun = { rps: Number(rps[1]), requests: Number(total[1]), seconds: Number(total[2]) * unit };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  const sockErr = /Socket errors: (.*)/.exec(r.stdout);
  if (non2xx) out.error = `${non2xx[1]} non-2xx/3xx answers`;
  else if (sockErr && /(connect|read|write) [1-9]/.test(sockErr[1]!)) out.error = `socket errors: ${sockErr[1]}`;
  else if (sockErr && /timeout [1-9]/.test(sockErr[1]!)) out.warning = `requests over wrk's 2 s timeout: ${sockErr[1]}`;
  return out;
}

/** `h2load -c conns -m streams -D duration` (h2c prior knowledge for http:// URLs). */
export async function h2loadRun(h2load: string, t: Target, conns: number, streams: number, duration: number): Promise<ThroughputRun> {
  const r = await runCapture('h2load', h2load, ['-c', String(conns), '-m', String(streams), '-D', String(duration), '-H', `:authority: ${t.host}`, ...extraHeaders(t, true), t.url], (duration + 30) * 1000);
  const fin = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(r.stdout);
  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
  if (!fin || !req) return { rps: NaN, requests: 0, seconds: 0, error: `h2load exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}` };
  const out: ThroughputRun = { rps: Number(fin[3]), requests: Number(req[2]), seconds: Number(fin[1]) * (fin[2] === 'ms' ? 0.001 : 1) };
  if (Number(req[2]) === 0 || Number(req[3]) > 0 || Number(req[4]) > 0 || (codes && Number(codes[2]) + Number(codes[3]) + Number(codes[4]) > 0)) out.error = `h2load: ${req[0]}${codes ? `; ${codes[0]}` : ''}`;
  return out;
}
