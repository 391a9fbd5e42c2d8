/**
 * Readiness probes of a Workload replica, as its spec asks (see the Workload reference:
 * `readinessPath`, `ports[].protocol`), modelled on Kubernetes' readinessProbe: an HTTP GET that
 * must answer 2xx/3xx (over h2c for an HTTP2 port), the standard gRPC health check
 * (grpc.health.v1.Health/Check must answer SERVING, as Kubernetes' `grpc` probe), or a TCP
 * connect. `up` waits for every probe before registering a replica as an endpoint and, for HTTP
 * and gRPC probes, repeats them while it runs (replica.ts).
 */
import http from '../node-http.ts';
import { connect, constants } from 'node:http2';
import type { WorkloadSpec } from '../config/kinds.ts';
import { isListening } from './ports.ts';

/** One check against one of the app's ports (the declared port; callers map it to where it listens). */
export type Probe =
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'http'; readonly port: number; readonly path: string; readonly h2: boolean }
  | { readonly kind: 'grpc'; readonly port: number };

/**
 * The probes a replica's spec asks for, over the ports the app listens on (declared numbers,
 * ascending): GRPC ports get the gRPC health check; with `readinessPath`, every HTTP/HTTP2 port of
 * `ports` gets the HTTP GET (when none is declared, the first port of `ports`, else the lowest
 * port the app listens on); every other port a TCP connect.
 */
export function replicaProbes(spec: Pick<WorkloadSpec, 'ports' | 'readinessPath'>, appPorts: readonly number[]): Probe[] {
  const protocolOf = new Map(spec.ports.map((p) => [p.port, p.protocol ?? 'TCP'] as const));
  const httpPorts = new Set(spec.ports.filter((p) => p.protocol === 'HTTP' || p.protocol === 'HTTP2').map((p) => p.port));
  if (httpPorts.size === 0) {
    const fallback = spec.ports.find((p) => p.protocol !== 'GRPC')?.port ?? appPorts.find((p) => protocolOf.get(p) !== 'GRPC');
    if (fallback !== undefined) httpPorts.add(fallback);
  }
  return appPorts.map((port): Probe => {
    if (protocolOf.get(port) === 'GRPC') return { kind: 'grpc', port };
    if (spec.readinessPath !== undefined && httpPorts.has(port)) return { kind: 'http', port, path: spec.readinessPath, h2: protocolOf.get(port) === 'HTTP2' };
    return { kind: 'tcp', port };
  });
}

/** True when a probe needs repeating while the replica runs (TCP only gates the start). */
export function isContinuous(p: Probe): boolean {
  return p.kind !== 'tcp';
}

/** Why a probe failed, or undefined when it passed; `port` is where the app really listens. */
export function runProbe(p: Probe, port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<string | undefined> {
  switch (p.kind) {
    case 'tcp':
      return isListening(port, host, timeoutMs).then((ok) => (ok ? undefined : `port ${p.port} does not accept connections`));
    case 'http':
      return p.h2 ? h2Get(host, port, p.path, timeoutMs) : http1Get(host, port, p.path, timeoutMs);
    case 'grpc':
      return grpcHealth(host, port, timeoutMs);
  }
}

const ok2xx3xx = (status: number | undefined, path: string) =>
  status !== undefined && status >= 200 && status < 400 ? undefined : `GET ${path} answered ${status ?? 'nothing'}`;

function http1Get(host: string, port: number, path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'trellis-probe' } }, (res) => {
      res.resume();
      resolve(ok2xx3xx(res.statusCode, path));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(`GET ${path}: ${err.message}`));
    req.end();
  });
}

/** One h2c request; resolves with its status, headers and body, or an error message. */
function h2Request(host: string, port: number, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<{ status?: number; trailers: Record<string, unknown>; data: Buffer } | string> {
  return new Promise((resolve) => {
    const session = connect(`http://${host}:${port}`);
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    let finished = false;
    function done(v: Awaited<ReturnType<typeof h2Request>>) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      session.destroy();
      resolve(v);
    }
    session.on('error', (err) => done(err.message));
    const stream = session.request(headers, { endStream: body === undefined });
    let status: number | undefined;
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[constants.HTTP2_HEADER_STATUS]);
      trailers = { ...h };
    });
    stream.on('trailers', (t) => (trailers = { ...trailers, ...t }));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => done({ status, trailers, data: Buffer.concat(chunks) }));
    stream.on('error', (err) => done(err.message));
    if (body !== undefined) stream.end(body);
  });
}

async function h2Get(host: string, port: number, path: string, timeoutMs: number): Promise<string | undefined> {
  const r = await h2Request(host, port, { ':method': 'GET', ':path': path, 'user-agent': 'trellis-probe' }, undefined, timeoutMs);
  return typeof r === 'string' ? `GET ${path} (h2c): ${r}` : ok2xx3xx(r.status, path);
}

/** grpc.health.v1.Health/Check with an empty service name; SERVING is status 1 (field 1, varint). */
async function grpcHealth(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  const emptyRequest = Buffer.from([0, 0, 0, 0, 0]); // uncompressed, zero-length HealthCheckRequest
  const r = await h2Request(host, port, {
    ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'trellis-probe',
  }, emptyRequest, timeoutMs);
  if (typeof r === 'string') return `gRPC health check: ${r}`;
  const grpcStatus = String(r.trailers['grpc-status'] ?? '');
  if (grpcStatus !== '0') return `gRPC health check answered grpc-status ${grpcStatus || 'none'}${r.trailers['grpc-message'] ? ` (${String(r.trailers['grpc-message'])})` : ''}`;
  const msg = r.data.subarray(5);
  const serving = msg.length >= 2 && msg[0] === 0x08 && msg[1] === 0x01;
  return serving ? undefined : `gRPC health check: not SERVING (status ${msg.length >= 2 && msg[0] === 0x08 ? msg[1] : 0})`;
}
