/**
 * One request/response exchange of the HTTP/2 pool (pool-h2.ts) on a node:http2 client stream.
 * The exchange object is the pooled response, the attempt's cancel hook and the holder of the
 * stream's state at once: the stream's listeners are shared functions that find it through a
 * symbol on the stream, so a request costs this object, its promise and node's stream, without a
 * closure, promise or abort listener per event (issue 16). `trailers` is a promise only when asked
 * for; the cluster's release is a callback (`onDone`) called when the stream closes.
 */
import http2 from 'node:http2';
import { once } from 'node:events';
import { keepHeaderLines } from './header-lines.ts';
import { mapExchangeError, type PooledResponse, type PoolObserver } from './pool.ts';
import type { CancelHook, HeaderMap, UpstreamRequestInit } from './types.ts';
import { UpstreamError } from './types.ts';

/** What an exchange tells its session when its stream closed. */
export interface StreamOwner {
  onStreamClosed(): void;
}

const EMPTY: HeaderMap = Object.freeze({}) as HeaderMap;
const kExchange = Symbol('trellis.h2Exchange');
type ExchangeStream = http2.ClientHttp2Stream & { [kExchange]?: H2Exchange };

/** One HTTP/2 request on its way, then its response (the body is the stream itself). */
export class H2Exchange implements PooledResponse, CancelHook {
  readonly init: UpstreamRequestInit;
  readonly endpoint: string;
  readonly promise: Promise<PooledResponse>;
  status = 0;
  headers: HeaderMap = EMPTY;
  body!: http2.ClientHttp2Stream;
  peerPrincipal: string | undefined = undefined;

  private stream: ExchangeStream | undefined;
  private owner: StreamOwner | undefined;
  /** True until response headers arrived or the request failed. */
  private pending = true;
  /** True once response headers arrived (then the end of the exchange is reported once). */
  private headed = false;
  /** True once the stream closed: trailers and done are settled. */
  private closed = false;
  private receivedTrailers: HeaderMap = EMPTY;
  private trailersPromise: Promise<HeaderMap> | undefined;
  private resolveTrailers: ((t: HeaderMap) => void) | undefined;
  private doneListener: (() => void) | undefined;
  private resolveHead!: (r: PooledResponse) => void;
  private rejectHead!: (err: unknown) => void;

  private readonly observer: PoolObserver | undefined;

  constructor(init: UpstreamRequestInit, endpoint: string, observer: PoolObserver | undefined) {
    this.init = init;
    this.endpoint = endpoint;
    this.observer = observer;
    this.promise = new Promise<PooledResponse>((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    init.cancel.hook = this;
  }

  /** True until it got response headers or failed (a cancelled exchange is no longer waiting for a stream). */
  get waiting(): boolean {
    return this.pending;
  }

  /** Trailers (empty when none) once the stream closed or sent them; created on first use. */
  get trailers(): Promise<HeaderMap> {
    if (this.trailersPromise === undefined) {
      this.trailersPromise = this.closed || this.receivedTrailers !== EMPTY
        ? Promise.resolve(this.receivedTrailers)
        : new Promise<HeaderMap>((r) => { this.resolveTrailers = r; });
    }
    return this.trailersPromise;
  }

  /** Calls `listener` once the stream closed (at once when it already has). One listener. */
  onDone(listener: () => void): void {
    if (this.closed) listener();
    else this.doneListener = listener;
  }

  /** Opens the stream on `session` (the caller counted it there; `owner` hears when it closes). Throws what node's request throws. */
  start(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, owner: StreamOwner): void {
    const init = this.init;
    const stream: ExchangeStream = session.request(headers, { endStream: init.body === null });
    this.stream = stream;
    this.body = stream;
    this.owner = owner;
    stream[kExchange] = this;
    // A cancel or reset may emit 'error' after the consumer's listeners are gone: never unhandled.
    stream.on('error', onStreamError);
    stream.once('close', onStreamClose);
    stream.once('response', onStreamResponse);
    stream.once('trailers', onStreamTrailers);
    if (init.body !== null) void pump(init.body, stream);
  }

  /** The request failed before response headers: reject once (a cancel already has). */
  failHead(err: unknown): void {
    if (!this.pending) return;
    this.pending = false;
    this.unhook();
    this.observer?.onRequestFailed(err);
    this.rejectHead(err);
  }

  /** The attempt was cancelled (init.cancel): reject if still waiting, reset the stream (RST_STREAM CANCEL). */
  onCancel(reason: unknown): void {
    this.failHead(reason);
    const stream = this.stream;
    if (stream !== undefined && !stream.destroyed) {
      // What node does for a request's aborted `signal`: CANCEL on the wire, the reason as the stream's error.
      stream.close(http2.constants.NGHTTP2_CANCEL);
      stream.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    }
  }

  response(h: http2.IncomingHttpHeaders, raw: string[] | undefined): void {
    if (!this.pending) return;
    this.pending = false;
    this.status = Number(h[':status']);
    const headers = strip(h);
    keepHeaderLines(headers, raw ?? []);
    this.headers = headers;
    this.headed = true;
    this.observer?.onResponseHead(this);
    this.resolveHead(this);
  }

  /** The stream failed before response headers (an error, or closed without a response). */
  headFailed(err: unknown): void {
    if (!this.pending) return;
    const stream = this.stream!;
    stream.destroy();
    if (this.init.cancel.cancelled) return this.failHead(this.init.cancel.reason);
    const code = (err as { code?: string }).code;
    if (code === 'ERR_HTTP2_STREAM_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' || stream.rstCode !== undefined && stream.rstCode !== 0) {
      const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
      return this.failHead(new UpstreamError('UR', `upstream stream to ${this.endpoint} reset (code ${stream.rstCode})`, { cause: err, endpoint: this.endpoint, refusedStream: refused, resetReason: refused ? 'refused stream' : 'remote reset' }));
    }
    this.failHead(mapExchangeError(err, this.endpoint));
  }

  gotTrailers(t: http2.IncomingHttpHeaders): void {
    this.receivedTrailers = strip(t);
    const r = this.resolveTrailers;
    this.resolveTrailers = undefined;
    r?.(this.receivedTrailers);
  }

  streamClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.unhook();
    if (this.pending) {
      const stream = this.stream!;
      this.headFailed(Object.assign(new Error(`stream closed before response headers (code ${stream.rstCode})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
    }
    const r = this.resolveTrailers;
    this.resolveTrailers = undefined;
    r?.(this.receivedTrailers);
    const owner = this.owner;
    this.owner = undefined;
    owner?.onStreamClosed();
    if (this.headed) this.observer?.onExchangeDone();
    const listener = this.doneListener;
    this.doneListener = undefined;
    listener?.();
  }

  private unhook(): void {
    if (!this.closed && this.stream !== undefined) return;
    const token = this.init.cancel;
    if (token.hook === this) token.hook = undefined;
  }
}

// Shared stream listeners (`this` is the stream): no closures per request.
function onStreamError(this: ExchangeStream, err: Error): void {
  this[kExchange]?.headFailed(err);
}
function onStreamClose(this: ExchangeStream): void {
  const ex = this[kExchange];
  this[kExchange] = undefined;
  ex?.streamClosed();
}
function onStreamResponse(this: ExchangeStream, h: http2.IncomingHttpHeaders, _flags: number, raw: string[] | undefined): void {
  this[kExchange]?.response(h, raw);
}
function onStreamTrailers(this: ExchangeStream, t: http2.IncomingHttpHeaders): void {
  this[kExchange]?.gotTrailers(t);
}

async function pump(body: AsyncIterable<Uint8Array>, stream: http2.ClientHttp2Stream): Promise<void> {
  try {
    for await (const chunk of body) {
      if (stream.destroyed) return;
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
  } catch {
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** Response headers or trailers without pseudo-headers. */
function strip(h: http2.IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = {};
  for (const k in h) {
    if (k.charCodeAt(0) === 58) continue;
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
