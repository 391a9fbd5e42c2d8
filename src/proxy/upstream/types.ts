/**
 * The seam between the HTTP engine (router filter, connection manager) and the upstream side
 * (cluster manager, load balancers, pools, circuit breakers, outlier detection). The router asks a
 * `ClusterManager` for a `ClusterHandle` by name and sends one *attempt* at a time through it; the
 * cluster picks the endpoint, the protocol (HTTP/1.1 or HTTP/2 is the cluster's business) and the
 * connection. Every attempt carries its own `CancelToken`, so retries, per-try timeouts, route
 * timeouts and hedging can cancel exactly one attempt without touching the others. Failures before
 * response headers reject with `UpstreamError`, whose `responseFlag` is Envoy's response flag.
 */
import type { Duplex } from 'node:stream';
import { TrellisError } from '../../errors.ts';

/** Header map as the engine carries it: lower-case names; repeated headers as arrays. */
export type HeaderMap = Record<string, string | string[]>;

/** One attempt of a request towards a cluster. */
export interface UpstreamRequestInit {
  /** HTTP method, upper case. */
  method: string;
  /** Path with query, after route rewrites. */
  path: string;
  /** `:authority` / Host to send, after host rewrites. */
  authority: string;
  /** Scheme to present upstream (`:scheme` on HTTP/2); TLS is the cluster's transport socket business. */
  scheme: 'http' | 'https';
  /** Request headers without pseudo-headers and without hop-by-hop headers. */
  headers: HeaderMap;
  /** Request body; null means no body. A retried attempt gets a fresh iterable over the buffered copy. */
  body: AsyncIterable<Uint8Array> | null;
  /** Cancelling it cancels this attempt only (reset the upstream stream / destroy the socket). */
  cancel: CancelToken;
  /** Hash for ring hash / maglev, computed by the router from the route's hash_policy. */
  hashKey?: string | number;
  /** True for the 2nd and later attempts (outlier detection / retry host predicates may use it). */
  isRetry: boolean;
  /** True when the request is a gRPC call (content-type application/grpc*): clusters may need HTTP/2. */
  grpc?: boolean;
  /** Endpoints (host:port) tried by earlier attempts, so the LB can avoid them (previous_hosts predicate). */
  previousEndpoints?: readonly string[];
  /** How many times to re-pick while the pick is in previousEndpoints (host_selection_retry_max_attempts; default 1). */
  hostReselects?: number;
  /** ORIGINAL_DST clusters: the downstream connection's original destination (the endpoint to use). */
  originalDestination?: { address: string; port: number };
  /** Protocol of the downstream request, for clusters with use_downstream_protocol_config. */
  downstreamProtocol?: 'http1' | 'http2';
}

/** What the pool carrying an attempt registers to hear that the attempt was cancelled. */
export interface CancelHook {
  onCancel(reason: unknown): void;
}

/**
 * Cancels one attempt; what an AbortSignal did before (issue 16: an AbortController per attempt
 * and an EventTarget listener on its signal, with its removal, cost ~0.7 KB per request). The
 * caller makes one per attempt (the attempt driver's attempt object is one) and calls
 * `cancel(reason)`; the pool carrying the attempt sets `hook` while there is something to cancel
 * and clears it once the exchange is over. One hook at a time: a pool takes it over, never shares
 * it. Cancelling twice, or after the exchange ended, does nothing.
 */
export class CancelToken {
  cancelled = false;
  /** Why (set by the first `cancel`): what the pool rejects the request with, or errors its body with. */
  reason: unknown = undefined;
  hook: CancelHook | undefined = undefined;

  cancel(reason?: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    // Without a reason, what AbortController.abort() gave.
    this.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const hook = this.hook;
    this.hook = undefined;
    hook?.onCancel(this.reason);
  }
}

/** A token cancelled (with the signal's reason) when `signal` aborts: for callers holding an AbortSignal. */
export function cancelOnAbort(signal: AbortSignal): CancelToken {
  const token = new CancelToken();
  if (signal.aborted) token.cancel(signal.reason);
  else signal.addEventListener('abort', () => token.cancel(signal.reason), { once: true });
  return token;
}

/**
 * Where a push-mode body delivers: `data` returns false to pause the body until `resumePush()`;
 * `end` (with the trailers, empty when none) or `error` ends it. One sink per body.
 */
export interface BodySink {
  onBodyData(chunk: Uint8Array): boolean;
  onBodyEnd(trailers: HeaderMap): void;
  /**
   * Optional: the body's last chunk and its end at once (the whole rest of the body had arrived),
   * instead of onBodyData then onBodyEnd: a sink can end its output with the chunk.
   */
  onBodyLast?(chunk: Uint8Array, trailers: HeaderMap): void;
  onBodyError(err: unknown): void;
}

/** A body that can push its chunks to a sink instead of being iterated (no promise per chunk). */
export interface PushBody {
  pushTo(sink: BodySink): void;
  resumePush(): void;
}

/** Response headers from the upstream; body and trailers follow. */
export interface UpstreamResponse {
  status: number;
  /**
   * Response headers without pseudo-headers: a map of this response's own, which the engine takes
   * over (forwards and mutates it in place).
   */
  headers: HeaderMap;
  /** The response body; `destroy()` (when present) releases/resets the upstream stream early. */
  body: AsyncIterable<Uint8Array> & { destroy?(): void } & Partial<PushBody>;
  /** Resolves with trailers (empty object when there are none) once the body ended. */
  trailers: Promise<HeaderMap>;
  /** The endpoint that answered, `host:port`. */
  endpoint: string;
  /** Its verified SPIFFE id when the connection is mTLS (Istio's destination_principal on the client side). */
  peerPrincipal?: string;
}

/** A raw connection for an HTTP/1.1 Upgrade (WebSocket) or CONNECT tunnel. */
export interface UpstreamConnectInit {
  /** Same meaning as in UpstreamRequestInit (LB hash and cancellation). */
  hashKey?: string | number;
  signal: AbortSignal;
  /** Where a dynamic forward proxy cluster connects (an HTTP request's authority, or tcp_proxy's downstream SNI). */
  authority: string;
  /**
   * The HTTP request's host (after rewrites) for an Upgrade/CONNECT from the router: the cluster's
   * auto_sni / auto_san_validation use it. tcp_proxy leaves it unset, as Envoy's applies neither.
   */
  requestHost?: string;
  /** ORIGINAL_DST clusters: the downstream connection's original destination. */
  originalDestination?: { address: string; port: number };
}

/** A connected raw stream to one endpoint (TLS already set up when the cluster uses it). */
export interface UpstreamConnection {
  socket: Duplex;
  endpoint: string;
  /** The SPIFFE id the endpoint's certificate proved (mTLS), Istio's destination_principal on the client side. */
  peerPrincipal?: string;
  /** The cluster's `istio.metadata_exchange` filter is on and the server selected its ALPN: both sides send a prefix first. */
  peerExchange?: boolean;
}

/** One cluster as the router sees it. */
export interface ClusterHandle {
  readonly name: string;
  /** Send one attempt; resolves at response headers; rejects with UpstreamError. */
  request(init: UpstreamRequestInit): Promise<UpstreamResponse>;
  /**
   * The same as `request`, answered through `receiver` instead of a promise (the router's attempt
   * driver: no promise, reaction or closures per attempt). Optional: without it, callers use `request`.
   */
  send?(init: UpstreamRequestInit, receiver: ResponseReceiver): void;
  /** Open a raw connection to an endpoint chosen by the LB (WebSocket upgrade). Rejects with UpstreamError. */
  connect(init: UpstreamConnectInit): Promise<UpstreamConnection>;
  /** Circuit breaker max_retries / retry budget: true when a retry may be started (then call releaseRetry once it ends). */
  tryAcquireRetry(): boolean;
  /** Release a slot taken by tryAcquireRetry. */
  releaseRetry(): void;
}

/**
 * Where `send` answers an attempt: once, with the response head or the failure (what `request`
 * resolves or rejects with). Never called from inside a parser or a write: a response head after
 * the connection's parser returned (h1-connection.ts), a failure in a microtask, as a promise's
 * reaction ran, so a receiver may write downstream, cancel, or destroy the body.
 */
export interface ResponseReceiver {
  onUpstreamResponse(res: UpstreamResponse): void;
  onUpstreamError(err: unknown): void;
}

/** Lookup of clusters by name; what the router and connection manager are given. */
export interface ClusterManager {
  get(name: string): ClusterHandle | undefined;
}

/**
 * Envoy response flags an upstream failure maps to:
 * UF connect failure, UO overflow (circuit breaker), UH no healthy upstream, UT upstream timeout,
 * URX retry limit exceeded, UC upstream connection termination, UR upstream remote reset,
 * UPE upstream protocol error (a malformed response: Envoy answers 502, not 503).
 */
export type UpstreamFailureFlag = 'UF' | 'UO' | 'UH' | 'UT' | 'URX' | 'UC' | 'UR' | 'UPE';

/** Error codes matching the flags, stable for callers and tests. */
export const UpstreamErrorCode = {
  UF: 'UPSTREAM_CONNECT_FAILURE',
  UO: 'UPSTREAM_OVERFLOW',
  UH: 'UPSTREAM_NO_HEALTHY',
  UT: 'UPSTREAM_TIMEOUT',
  URX: 'UPSTREAM_RETRY_LIMIT',
  UC: 'UPSTREAM_CONNECTION_TERMINATION',
  UR: 'UPSTREAM_RESET',
  UPE: 'UPSTREAM_PROTOCOL_ERROR',
} as const satisfies Record<UpstreamFailureFlag, string>;

/**
 * An attempt that failed before response headers. `resetReason` is Envoy's wording for the local
 * reply ("connection failure", "connection termination", "remote reset", "overflow", "refused stream",
 * "protocol error").
 * `refusedStream` marks HTTP/2 REFUSED_STREAM (retry_on refused-stream).
 */
export class UpstreamError extends TrellisError {
  readonly responseFlag: UpstreamFailureFlag;
  readonly resetReason: string;
  readonly endpoint: string | undefined;
  readonly refusedStream: boolean;
  /** Why the TLS handshake failed (Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON%), when it did. */
  readonly transportFailureReason: string | undefined;

  constructor(
    responseFlag: UpstreamFailureFlag,
    message: string,
    options: { cause?: unknown; endpoint?: string; resetReason?: string; refusedStream?: boolean; transportFailureReason?: string; context?: Record<string, unknown> } = {},
  ) {
    super(UpstreamErrorCode[responseFlag], message, { cause: options.cause, context: options.context });
    this.name = 'UpstreamError';
    this.responseFlag = responseFlag;
    this.endpoint = options.endpoint;
    this.refusedStream = options.refusedStream ?? false;
    this.transportFailureReason = options.transportFailureReason;
    this.resetReason = options.resetReason ?? defaultResetReason(responseFlag);
  }
}

function defaultResetReason(flag: UpstreamFailureFlag): string {
  switch (flag) {
    case 'UF': return 'connection failure';
    case 'UO': return 'overflow';
    case 'UC': return 'connection termination';
    case 'UR': return 'remote reset';
    case 'UT': return 'timeout';
    case 'UH': return 'no healthy upstream';
    case 'URX': return 'retry limit exceeded';
    case 'UPE': return 'protocol error';
  }
}
