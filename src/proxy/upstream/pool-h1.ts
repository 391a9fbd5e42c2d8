/**
 * HTTP/1.1 keep-alive pool for one host on undici's `Pool` (undici-lite.ts; chosen over node:http's Agent by
 * `bench/upstream-pool.ts`: ~1.8x the requests/second on loopback). Connections come from our own
 * connector (connect_timeout, TLS, counters); undici owns keep-alive reuse, the idle timeout
 * (keepAliveTimeout) and max_requests_per_connection (maxRequestsPerClient). Timeouts on headers
 * and body are the router's business (per-try and route timeouts), so undici's are disabled.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Pool, poolRequest } from './undici-lite.ts';
import type { Host } from './host.ts';
import { connectHost, type ConnectOptions } from './connector.ts';
import { mapExchangeError, type HostPool, type PooledResponse } from './pool.ts';
import type { HeaderMap, UpstreamRequestInit } from './types.ts';

// Connection management is the pool's job; undici also refuses these (and `expect`) as request headers.
const hopByHop = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect']);

export interface H1PoolOptions {
  readonly connect: Omit<ConnectOptions, 'signal'>;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
}

/** An HTTP/1.1 pool for `host`. */
export function createH1Pool(host: Host, opts: H1PoolOptions): HostPool {
  const pool = new Pool(`http://${host.key}`, {
    connections: opts.maxConnections,
    pipelining: 1,
    keepAliveTimeout: opts.idleTimeoutMs,
    keepAliveMaxTimeout: opts.idleTimeoutMs,
    maxRequestsPerClient: opts.maxRequestsPerConnection > 0 ? opts.maxRequestsPerConnection : undefined,
    headersTimeout: 0,
    bodyTimeout: 0,
    strictContentLength: false,
    connect: (_o, cb) => {
      connectHost(host, opts.connect).then((s) => cb(null, s), (err: Error) => cb(err, null));
    },
  });
  // undici emits connectionError for failed connects; requests see the same error.
  pool.on('connectionError', () => {});
  return {
    async request(init: UpstreamRequestInit): Promise<PooledResponse> {
      const headers: Record<string, string | string[]> = { host: init.authority };
      for (const k of Object.keys(init.headers)) if (!hopByHop.has(k)) headers[k] = init.headers[k];
      let res: Dispatcher.ResponseData;
      try {
        res = await poolRequest(pool, {
          path: init.path,
          method: init.method,
          headers,
          body: init.body === null ? undefined : Readable.from(init.body, { objectMode: false }),
          signal: init.signal,
        });
      } catch (err) {
        if (init.signal.aborted) throw init.signal.reason;
        throw mapExchangeError(err, host.key);
      }
      const body = res.body;
      let finish!: () => void;
      const done = new Promise<void>((r) => { finish = r; });
      const trailers = new Promise<HeaderMap>((resolve) => {
        body.once('end', () => resolve(normalize(res.trailers)));
        body.once('close', () => resolve({}));
        body.once('error', () => resolve({}));
      });
      body.once('close', finish);
      body.once('error', finish);
      body.once('end', finish);
      return { status: res.statusCode, headers: normalize(res.headers), body, trailers, done };
    },
    async drain() {
      await pool.close().catch(() => {});
    },
    destroy() {
      void pool.destroy().catch(() => {});
    },
  };
}

function normalize(h: Record<string, string | string[] | undefined> | null | undefined): HeaderMap {
  const out: HeaderMap = {};
  if (h == null) return out;
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v !== undefined) out[k.toLowerCase()] = v;
  }
  return out;
}
