/**
 * What a benchmark path is (a URL + Host header the load generators hit, and the process groups
 * whose CPU and memory count as "the proxy"), the catalogue of path ids, and the small helpers
 * every proxy family needs: free loopback ports and waiting until a path answers 200.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import http from 'node:http';

/** A runnable path, or one that is not available (with the reason, shown in the table). */
export interface PathDef {
  id: string;
  family: 'direct' | 'envoy' | 'nginx' | 'haproxy' | 'trellis';
  hops: 0 | 1 | 2;
  tls: boolean;
  concurrency: number;
  /** Trellis paths: `off` (no Istio metrics), `metrics` (the default), `full` (metrics, 100% tracing, access logs). */
  telemetry?: 'off' | 'metrics' | 'full';
  url: string;
  host: string;
  /** h2c (prior knowledge) URL when the path's first hop speaks it. */
  h2Url?: string;
  /** Extra request headers the load generators send (the JWT on `-authz` paths). */
  headers?: Record<string, string>;
  /** Process groups of the proxies on this path (empty for direct). */
  pgids: number[];
  /** Proxies on the path (1 or 2), for per-proxy resource figures. */
  proxies: number;
  unavailable?: string;
}

/** Every path id the bench knows, in table order. */
export const AllPathIds = [
  'direct',
  'envoy-1hop', 'envoy-2hop', 'envoy-2hop-tls', 'envoy-1hop-c2', 'envoy-2hop-tls-c2',
  'nginx-1hop', 'nginx-2hop', 'nginx-2hop-tls',
  'haproxy-1hop', 'haproxy-2hop', 'haproxy-2hop-tls',
  'trellis-1hop', 'trellis-1hop-authz', 'trellis-2hop', 'trellis-2hop-mtls', 'trellis-1hop-c2', 'trellis-2hop-mtls-c2',
  'trellis-2hop-notel', 'trellis-2hop-tel',
] as const;

/** The smaller set `--quick` runs. */
export const QuickPathIds = ['direct', 'envoy-1hop', 'envoy-2hop-tls', 'nginx-1hop', 'haproxy-1hop', 'trellis-1hop', 'trellis-2hop-mtls'];

/** Splits an id like `envoy-2hop-tls-c2` into its parts. */
export function parsePathId(id: string): { family: PathDef['family']; hops: 0 | 1 | 2; tls: boolean; concurrency: number; authz: boolean; telemetry: 'off' | 'metrics' | 'full' } {
  if (id === 'direct') return { family: 'direct', hops: 0, tls: false, concurrency: 1, authz: false, telemetry: 'metrics' };
  const m = /^(envoy|nginx|haproxy|trellis)-(1|2)hop(-m?tls)?(-authz)?(?:-c(\d+))?(-notel|-tel)?$/.exec(id);
  // Security filters and telemetry variants are Trellis's own comparisons (off vs on in one proxy).
  if (!m || ((m[4] !== undefined || m[6] !== undefined) && m[1] !== 'trellis')) throw new Error(`unknown path '${id}' (known: ${AllPathIds.join(', ')})`);
  const telemetry = m[6] === '-notel' ? 'off' : m[6] === '-tel' ? 'full' : 'metrics';
  return { family: m[1] as PathDef['family'], hops: Number(m[2]) as 1 | 2, tls: m[3] !== undefined, concurrency: m[5] ? Number(m[5]) : 1, authz: m[4] !== undefined, telemetry };
}

/** A free TCP port on 127.0.0.1 (bound then released; the proxy binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function getOnce(url: string, host: string, headers: Readonly<Record<string, string>> = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { ...headers, host }, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Polls `url` until it answers 200 (true) or `timeoutMs` passes (false); `alive` stops early. */
export async function waitFor200(url: string, host: string, timeoutMs: number, alive: () => boolean = () => true, headers: Readonly<Record<string, string>> = {}): Promise<{ ok: boolean; last: number }> {
  const end = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < end && alive()) {
    last = await getOnce(url, host, headers);
    if (last === 200) return { ok: true, last };
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ok: false, last };
}

/** GET returning status code (0 on connection error). */
export const probe = getOnce;
