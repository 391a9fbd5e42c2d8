/**
 * Application health probes through the proxy, as Istio's status port does it: the injector
 * points a pod's HTTP liveness/readiness/startup probes at `:15020/app-health/<container>/
 * livez|readyz|startupz` and hands the originals to the proxy, which runs them against the
 * application on loopback and answers with the application's status code. The kubelet's probe
 * then never meets the inbound capture or mTLS; the proxy's own connection to 127.0.0.1 is not
 * captured (uid 1337). Timeouts answer 503, unreachable applications 503 too, like a failed probe.
 */
import type { ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import https from 'node:https';

/** One original probe, as the injector records it. */
export interface AppProbe {
  readonly httpGet: { readonly path: string; readonly port: number; readonly scheme?: string; readonly httpHeaders?: readonly { name: string; value: string }[] };
  readonly timeoutSeconds?: number;
}

/** Parses the injector's `--app-probes` JSON (path -> probe); throws a message naming what is wrong. */
export function parseAppProbes(text: string): ReadonlyMap<string, AppProbe> {
  const raw = JSON.parse(text) as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('app probes must be a JSON object of path -> probe');
  const out = new Map<string, AppProbe>();
  for (const [path, p] of Object.entries(raw as Record<string, unknown>)) {
    const g = (p as { httpGet?: { path?: unknown; port?: unknown; scheme?: unknown } } | null)?.httpGet;
    if (!path.startsWith('/app-health/')) throw new Error(`app probe path '${path}' must start with /app-health/`);
    if (typeof g?.port !== 'number' || !Number.isInteger(g.port) || g.port < 1 || g.port > 65535) throw new Error(`app probe '${path}': httpGet.port must be a port number`);
    if (g.scheme !== undefined && g.scheme !== 'HTTP' && g.scheme !== 'HTTPS') throw new Error(`app probe '${path}': scheme must be HTTP or HTTPS`);
    out.set(path, Object.freeze(p as AppProbe));
  }
  return out;
}

/** Runs one probe against the application on 127.0.0.1; resolves to the status code to answer. */
export function runAppProbe(p: AppProbe): Promise<number> {
  const g = p.httpGet;
  const client = g.scheme === 'HTTPS' ? https : http;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/trellis' };
  for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise((resolve) => {
    const req = client.request({ host: '127.0.0.1', port: g.port, path: g.path || '/', method: 'GET', headers, timeout: (p.timeoutSeconds ?? 1) * 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 503);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(503));
    req.end();
  });
}

/** The `/app-health/...` handler; false when the path is not an app probe. */
export function appProbeHandler(probes: ReadonlyMap<string, AppProbe>): (path: string, res: ServerResponse) => boolean {
  return (path, res) => {
    const p = probes.get(path);
    if (p === undefined) return false;
    void runAppProbe(p).then((code) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code < 400 ? '' : `application probe failed: ${code}\n`);
    });
    return true;
  };
}
