/**
 * The connection pool contract: one pool per (host, protocol, SNI) carries requests to that host.
 * `request` resolves at response headers. The cluster that made the pool hears about every request
 * through the pool's `PoolObserver` (head, failure, end of the exchange: when it releases
 * circuit-breaker slots and the host's active-request count), so it keeps no object, closure or
 * promise of its own per request. Error mapping to Envoy flags is shared here so both pools agree.
 */
import type { HeaderMap, PushBody, ResponseReceiver, UpstreamRequestInit } from './types.ts';
import { UpstreamError } from './types.ts';

/** A response from a pool, plus when the exchange is finished. */
export interface PooledResponse {
  status: number;
  headers: HeaderMap;
  body: AsyncIterable<Uint8Array> & { destroy?(): void } & Partial<PushBody>;
  trailers: Promise<HeaderMap>;
  /** Calls `listener` once (never with an error) when the body has ended or been destroyed; one listener per response. */
  onDone(listener: () => void): void;
  /** Filled in by the cluster at response headers, so the pooled response is the UpstreamResponse itself (no copy). */
  endpoint: string;
  peerPrincipal?: string | undefined;
}

/**
 * What the cluster hears from one host's pool, per request and synchronously, before the
 * request's promise settles: either `onRequestFailed` (no head), or `onResponseHead` then, once
 * the exchange is over (body ended, failed or destroyed), `onExchangeDone`.
 */
export interface PoolObserver {
  onResponseHead(res: PooledResponse): void;
  onRequestFailed(err: unknown): void;
  onExchangeDone(): void;
}

/** One host's pool. */
export interface HostPool {
  request(init: UpstreamRequestInit): Promise<PooledResponse>;
  /** `request` answered through `receiver` (types.ts ResponseReceiver); optional (the HTTP/1.1 pool has it). */
  send?(init: UpstreamRequestInit, receiver: ResponseReceiver): void;
  /** Stop taking requests; close connections once in-flight requests end. */
  drain(): Promise<void>;
  /** Close everything now. */
  destroy(): void;
}

/** Node/undici error codes that mean the peer reset the connection or stream. */
const resetCodes = new Set(['ECONNRESET', 'EPIPE', 'ERR_HTTP2_STREAM_ERROR', 'UND_ERR_SOCKET']);

/** Maps a transport error after the connection was made to an UpstreamError (UR reset, UC termination). */
export function mapExchangeError(err: unknown, endpoint: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code;
  const causeCode = e?.cause?.code;
  if (code === 'ECONNRESET' || causeCode === 'ECONNRESET' || code === 'ERR_HTTP2_STREAM_ERROR') {
    const refused = /REFUSED_STREAM/.test(e?.message ?? '');
    return new UpstreamError('UR', `upstream reset from ${endpoint}: ${e?.message ?? String(err)}`, { cause: err, endpoint, refusedStream: refused, resetReason: refused ? 'refused stream' : 'remote reset' });
  }
  if (resetCodes.has(code ?? '') || code === 'UND_ERR_CLOSED' || code === 'ERR_HTTP2_SESSION_ERROR' || code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') {
    return new UpstreamError('UC', `upstream connection to ${endpoint} terminated: ${e?.message ?? String(err)}`, { cause: err, endpoint });
  }
  return new UpstreamError('UC', `upstream exchange with ${endpoint} failed: ${e?.message ?? String(err)}`, { cause: err, endpoint });
}
