/**
 * TEST-ONLY: a minimal real ClusterManager over fixed endpoints, so the HTTP engine can be tested
 * end to end against real local servers while the production cluster manager (src/proxy/upstream)
 * is built separately. Round-robin over endpoints (skipping previously tried ones when asked),
 * HTTP/1.1 via node:http with keep-alive or HTTP/2 (h2c prior knowledge) via node:http2, raw TCP
 * for upgrades, and a max_retries counter. Not for production: no health, no outlier detection.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type {
  ClusterHandle, ClusterManager, HeaderMap, UpstreamConnectInit, UpstreamConnection, UpstreamRequestInit, UpstreamResponse,
} from '../../src/proxy/upstream/types.ts';
import { UpstreamError, type CancelToken } from '../../src/proxy/upstream/types.ts';

/** One test cluster. */
export interface StaticCluster {
  endpoints: string[];
  http2?: boolean;
  /** Circuit breaker max_retries (Envoy default 3). */
  maxRetries?: number;
}

function splitEndpoint(ep: string): [string, number] {
  const c = ep.lastIndexOf(':');
  return [ep.slice(0, c), Number(ep.slice(c + 1))];
}

function mapError(err: NodeJS.ErrnoException, endpoint: string, aborted: boolean): UpstreamError {
  if (aborted) return new UpstreamError('UR', 'attempt cancelled', { endpoint, cause: err, resetReason: 'local reset' });
  if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ETIMEDOUT') return new UpstreamError('UF', `connect to ${endpoint} failed: ${err.code}`, { endpoint, cause: err });
  if (err.code === 'ERR_HTTP2_STREAM_ERROR' && /REFUSED_STREAM/.test(err.message)) return new UpstreamError('UR', 'refused stream', { endpoint, cause: err, refusedStream: true, resetReason: 'remote refused stream reset' });
  return new UpstreamError('UC', `upstream ${endpoint}: ${err.message}`, { endpoint, cause: err, resetReason: 'connection termination' });
}

class StaticClusterHandle implements ClusterHandle {
  readonly name: string;
  private readonly cfg: StaticCluster;
  private next = 0;
  private retries = 0;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  /** Requests seen, for test assertions. */
  readonly log: { endpoint: string; init: UpstreamRequestInit }[] = [];

  constructor(name: string, cfg: StaticCluster) {
    this.name = name;
    this.cfg = cfg;
  }

  private pick(avoid: readonly string[] | undefined): string {
    const eps = this.cfg.endpoints;
    if (eps.length === 0) throw new UpstreamError('UH', `cluster ${this.name} has no endpoints`);
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[this.next++ % eps.length];
      if (!avoid?.includes(ep)) return ep;
    }
    return eps[this.next++ % eps.length];
  }

  tryAcquireRetry(): boolean {
    if (this.retries >= (this.cfg.maxRetries ?? 3)) return false;
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    this.retries--;
  }

  async connect(init: UpstreamConnectInit): Promise<UpstreamConnection> {
    const endpoint = this.pick(undefined);
    const [host, port] = splitEndpoint(endpoint);
    return await new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once('connect', () => resolve({ socket: s, endpoint }));
      s.once('error', (e) => reject(mapError(e, endpoint, false)));
      init.signal.addEventListener('abort', () => s.destroy(), { once: true });
    });
  }

  request(init: UpstreamRequestInit): Promise<UpstreamResponse> {
    signals.set(init, signalOf(init.cancel));
    const endpoint = this.pick(init.previousEndpoints);
    this.log.push({ endpoint, init });
    return this.cfg.http2 ? this.request2(endpoint, init) : this.request1(endpoint, init);
  }

  close(): void {
    this.agent.destroy();
    for (const s of this.sessions.values()) s.destroy();
  }

  private request1(endpoint: string, init: UpstreamRequestInit): Promise<UpstreamResponse> {
    const [host, port] = splitEndpoint(endpoint);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = { ...init.headers, host: init.authority };
      const req = http.request({ host, port, method: init.method, path: init.path, headers, agent: this.agent, signal: signals.get(init) });
      req.on('error', (e) => reject(mapError(e, endpoint, init.cancel.cancelled)));
      req.on('response', (res) => {
        const trailers = new Promise<HeaderMap>((r) => {
          res.on('end', () => r({ ...(res.trailers as HeaderMap) }));
          res.on('close', () => r({ ...(res.trailers as HeaderMap) }));
        });
        trailers.catch(() => {});
        res.on('error', () => {});
        const body = Object.assign(res, { destroy: res.destroy.bind(res) });
        resolve({ status: res.statusCode ?? 502, headers: res.headers as HeaderMap, body, trailers, endpoint });
      });
      void pump(init.body, req);
    });
  }

  private session(endpoint: string): http2.ClientHttp2Session {
    let s = this.sessions.get(endpoint);
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(`http://${endpoint}`);
      s.on('error', () => {});
      const created = s;
      s.on('close', () => { if (this.sessions.get(endpoint) === created) this.sessions.delete(endpoint); });
      this.sessions.set(endpoint, s);
    }
    return s;
  }

  private request2(endpoint: string, init: UpstreamRequestInit): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const s = this.session(endpoint);
      const headers: http2.OutgoingHttpHeaders = { ...init.headers, ':method': init.method, ':path': init.path, ':authority': init.authority, ':scheme': init.scheme };
      const stream = s.request(headers, { endStream: init.body === null, signal: signals.get(init) });
      let trailersResolve: (h: HeaderMap) => void = () => {};
      const trailers = new Promise<HeaderMap>((r) => { trailersResolve = r; });
      stream.on('trailers', (t) => trailersResolve(stripPseudo(t)));
      stream.on('close', () => trailersResolve({}));
      stream.on('error', (e) => reject(mapError(e, endpoint, init.cancel.cancelled)));
      stream.on('response', (h) => {
        const body = Object.assign(stream, { destroy: stream.destroy.bind(stream) });
        resolve({ status: Number(h[':status'] ?? 502), headers: stripPseudo(h), body, trailers, endpoint });
      });
      void pump(init.body, stream);
    });
  }
}

function stripPseudo(h: http2.IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) out[k] = v;
  return out;
}

async function pump(body: AsyncIterable<Uint8Array> | null, out: NodeJS.WritableStream & { destroyed?: boolean; destroy?(e?: Error): void }): Promise<void> {
  if (!body) {
    if (!(out as http.ClientRequest).writableEnded) (out as http.ClientRequest).end();
    return;
  }
  try {
    for await (const chunk of body) {
      if (out.destroyed) return;
      if (!out.write(chunk)) await new Promise((r) => { out.once('drain', r); out.once('close', r); });
    }
    out.end();
  } catch (err) {
    out.destroy?.(err as Error);
  }
}

/** A ClusterManager over fixed clusters (test-only). */
export class StaticClusterManager implements ClusterManager {
  readonly clusters = new Map<string, StaticClusterHandle>();

  constructor(clusters: Record<string, StaticCluster>) {
    for (const [name, cfg] of Object.entries(clusters)) this.clusters.set(name, new StaticClusterHandle(name, cfg));
  }

  get(name: string): ClusterHandle | undefined {
    return this.clusters.get(name);
  }

  /** The request log of a cluster. */
  log(name: string): { endpoint: string; init: UpstreamRequestInit }[] {
    return this.clusters.get(name)?.log ?? [];
  }

  close(): void {
    for (const c of this.clusters.values()) c.close();
  }
}

/** node's http clients take an AbortSignal: one per request, aborted by the attempt's cancel token. */
const signals = new WeakMap<UpstreamRequestInit, AbortSignal>();
function signalOf(token: CancelToken): AbortSignal {
  const ac = new AbortController();
  if (token.cancelled) ac.abort(token.reason);
  else token.hook = { onCancel: (reason) => ac.abort(reason) };
  return ac.signal;
}
