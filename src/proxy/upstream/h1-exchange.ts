/**
 * One request/response exchange of the HTTP/1.1 upstream client, and the response body as the
 * engine reads it. The exchange object is the pool's queue entry, the connection's current
 * request, the attempt's cancel hook (onCancel, no closure or listener per request) and the response body
 * iterator at once: a GET costs this object, the header map and the request
 * promise; `trailers` and `done` are promises only when someone asks for them (the engine reads
 * trailers once the body ended: an already-settled promise), and the cluster's release is a
 * callback (`onDone`). Body chunks arrive from the
 * connection's parser and are queued here until the engine asks for them; past a high-water mark
 * the socket is paused, as a Readable would.
 */
import type { PooledResponse, PoolObserver } from './pool.ts';
import type { BodySink, CancelHook, HeaderMap, PushBody, ResponseReceiver, UpstreamRequestInit } from './types.ts';

/** What an exchange needs from the connection carrying it. */
export interface ExchangeCarrier {
  /** The exchange gave up (abort, body destroyed before its end): the connection cannot be reused. */
  abandon(ex: H1Exchange, reason: unknown): void;
  pause(): void;
  resume(): void;
}

/** What an exchange needs from the pool while it waits for a connection. */
export interface ExchangeQueue {
  dequeue(ex: H1Exchange): void;
}

const EMPTY: HeaderMap = Object.freeze({}) as HeaderMap;
const HIGH_WATER = 64 * 1024;
const DONE_RESULT: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
/** No list of chunks: the list is made with its first two chunks (a `[]` grows to 17 slots at its first push). */
const NO_CHUNKS: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/**
 * Pending: waiting for a connection or for the response head. Body: head delivered, body
 * arriving. Received: the whole response arrived; the engine may still be reading buffered
 * chunks. Over: over for the engine (body read to its end, destroyed, or failed).
 */
const Phase = { Pending: 0, Body: 1, Received: 2, Over: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** One request on its way, then its response. */
export class H1Exchange implements PooledResponse, AsyncIterator<Uint8Array>, PushBody, CancelHook {
  readonly init: UpstreamRequestInit;
  /** The request's content-length (null: unknown, chunked if there is a body). */
  readonly contentLength: number | null;
  /** What `request` returns; undefined when a receiver takes the answer (`send`). */
  readonly promise: Promise<PooledResponse> | undefined;
  status = 0;
  headers: HeaderMap = EMPTY;
  /** Set by the cluster when the head arrives (UpstreamResponse). */
  endpoint = '';
  peerPrincipal: string | undefined = undefined;
  /** Where the exchange waits (pool queue) or runs (connection). */
  queue: ExchangeQueue | undefined;
  carrier: ExchangeCarrier | undefined;

  private phase: Phase = Phase.Pending;
  /**
   * Told the head or the failure instead of a promise. The head is handed over by the connection
   * once its parser returned (deliverHead): called from inside the parser, a receiver that writes
   * downstream, or destroys this body, would act on the connection mid-parse.
   */
  private readonly receiver: ResponseReceiver | undefined;
  private headPending = false;
  /** True once the exchange is over for the engine: trailers and done are settled. */
  private settled = false;
  private settledTrailers: HeaderMap = EMPTY;
  private doneListener: (() => void) | undefined;
  /**
   * Buffered body: one chunk alone in `one` (the usual case: the body came in the head's packet,
   * before the receiver took the head; no array for it), more in `chunks` from `chunkHead`.
   * `one` is set only while `chunks` is empty.
   */
  private one: Uint8Array | undefined = undefined;
  private chunks: Uint8Array[] = NO_CHUNKS;
  private chunkHead = 0;
  private buffered = 0;
  private paused = false;
  private receivedTrailers: HeaderMap | undefined;
  /** Push mode (pushTo): where chunks go, and whether the sink asked to pause. */
  private sink: BodySink | undefined;
  private sinkPaused = false;
  /** What only some exchanges use (ExchangeExtras), made on first use. */
  private x: ExchangeExtras | undefined = undefined;

  private readonly observer: PoolObserver | undefined;

  constructor(init: UpstreamRequestInit, contentLength: number | null, observer: PoolObserver | undefined, receiver?: ResponseReceiver) {
    this.init = init;
    this.observer = observer;
    this.contentLength = contentLength;
    this.receiver = receiver;
    this.promise = receiver !== undefined ? undefined : new Promise<PooledResponse>((resolve, reject) => {
      const x = this.extras;
      x.resolveHead = resolve;
      x.rejectHead = reject;
    });
    init.cancel.hook = this;
  }

  get body(): this {
    return this;
  }

  private get extras(): ExchangeExtras {
    return (this.x ??= new ExchangeExtras());
  }

  /** Trailers (empty when none) once the body ended; created on first use. */
  get trailers(): Promise<HeaderMap> {
    const x = this.extras;
    if (x.trailersPromise === undefined) {
      x.trailersPromise = this.settled ? Promise.resolve(this.settledTrailers) : new Promise<HeaderMap>((r) => { x.resolveTrailers = r; });
    }
    return x.trailersPromise;
  }

  /** Settles once the body ended or was destroyed; created on first use. */
  get done(): Promise<void> {
    const x = this.extras;
    if (x.donePromise === undefined) {
      x.donePromise = this.settled ? Promise.resolve() : new Promise<void>((r) => { x.resolveDone = r; });
    }
    return x.donePromise;
  }

  /** Calls `listener` once the body ended or was destroyed (at once when it already has). One listener. */
  onDone(listener: () => void): void {
    if (this.settled) listener();
    else this.doneListener = listener;
  }

  /** True until the response head arrived or the exchange failed. */
  get pending(): boolean {
    return this.phase === Phase.Pending;
  }

  /** True while the response (head or body) is still arriving on the connection. */
  get receiving(): boolean {
    return this.phase === Phase.Pending || this.phase === Phase.Body;
  }

  /** The connection parsed the final response head. */
  head(status: number, headers: HeaderMap): void {
    if (this.phase !== Phase.Pending) return;
    this.phase = Phase.Body;
    this.status = status;
    this.headers = headers;
    this.observer?.onResponseHead(this);
    if (this.receiver !== undefined) this.headPending = true;
    else this.x!.resolveHead!(this);
  }

  /**
   * The connection's parser returned: hand the head to the receiver (once). Whatever happened to
   * the body since (ended, failed) is the body's to tell, as after a resolved promise.
   */
  deliverHead(): void {
    if (!this.headPending) return;
    this.headPending = false;
    try {
      this.receiver!.onUpstreamResponse(this);
    } catch (err) {
      // A receiver's bug surfaces as it did from a promise reaction: an unhandled rejection.
      void Promise.reject(err);
    }
  }

  /** A piece of the body from the connection. */
  data(chunk: Uint8Array): void {
    if (this.phase !== Phase.Body) return;
    const sink = this.sink;
    if (sink !== undefined && !this.sinkPaused && !this.hasBuffered) {
      if (!sink.onBodyData(chunk)) this.sinkPaused = true;
      return;
    }
    const w = this.x?.waiting;
    if (w !== undefined) {
      this.x!.waiting = undefined;
      w.resolve({ done: false, value: chunk });
      return;
    }
    if (this.chunks !== NO_CHUNKS) {
      this.chunks.push(chunk);
    } else if (this.one === undefined) {
      this.one = chunk;
    } else {
      this.chunks = [this.one, chunk];
      this.one = undefined;
    }
    this.buffered += chunk.byteLength;
    if (this.buffered > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.carrier?.pause();
    }
  }

  /** The whole response arrived; the connection is free of this exchange. */
  received(trailers: HeaderMap | undefined): void {
    if (this.phase !== Phase.Body) return;
    this.phase = Phase.Received;
    this.receivedTrailers = trailers;
    this.carrier = undefined;
    if (this.sink !== undefined) {
      if (!this.sinkPaused) this.drainToSink();
      return;
    }
    const w = this.x?.waiting;
    if (w !== undefined) {
      this.x!.waiting = undefined;
      this.finish();
      w.resolve(DONE_RESULT);
    }
  }

  /** The exchange failed (transport, protocol, abort): rejects the request or errors the body. */
  fail(err: unknown): void {
    this.carrier = undefined;
    if (this.phase === Phase.Pending) {
      this.phase = Phase.Over;
      this.queue = undefined;
      this.unhook();
      this.observer?.onRequestFailed(err);
      const receiver = this.receiver;
      // As a rejection's reaction: in a microtask, never inside the pool's or the connection's code.
      if (receiver !== undefined) queueMicrotask(() => receiver.onUpstreamError(err));
      else this.x!.rejectHead!(err);
      return;
    }
    if (this.phase === Phase.Over) return;
    this.phase = Phase.Over;
    this.extras.failure = err;
    this.one = undefined;
    this.chunks = NO_CHUNKS;
    this.chunkHead = 0;
    this.settle();
    const sink = this.sink;
    if (sink !== undefined) {
      this.sink = undefined;
      sink.onBodyError(err);
      return;
    }
    const w = this.x?.waiting;
    if (w !== undefined) {
      this.x!.waiting = undefined;
      w.reject(err);
    }
  }

  /** The attempt was cancelled (init.cancel): end it wherever it is. */
  onCancel(reason: unknown): void {
    if (this.phase === Phase.Over) return;
    if (this.queue !== undefined) {
      this.queue.dequeue(this);
      this.queue = undefined;
    }
    const carrier = this.carrier;
    this.fail(reason);
    carrier?.abandon(this, reason);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Push mode: buffered and later chunks go to `sink` as they arrive, then its end (or error).
   * The engine's fast path for a plain response: no promise or iterator result per chunk.
   */
  pushTo(sink: BodySink): void {
    if (this.phase === Phase.Pending || this.sink !== undefined) throw new Error('pushTo: no response head yet, or already pushing');
    this.sink = sink;
    this.drainToSink();
  }

  /** The sink drained: deliver again. */
  resumePush(): void {
    if (this.sink === undefined || !this.sinkPaused) return;
    this.sinkPaused = false;
    this.drainToSink();
  }

  private drainToSink(): void {
    const sink = this.sink!;
    while (!this.sinkPaused && this.sink === sink) {
      if (this.hasBuffered) {
        const chunk = this.takeChunk();
        if (this.phase === Phase.Received && !this.hasBuffered && sink.onBodyLast !== undefined) {
          this.sink = undefined;
          this.finish();
          sink.onBodyLast(chunk, this.settledTrailers);
        } else if (!sink.onBodyData(chunk)) {
          this.sinkPaused = true;
        }
      } else if (this.phase === Phase.Received) {
        this.sink = undefined;
        this.finish();
        sink.onBodyEnd(this.settledTrailers);
      } else if (this.phase === Phase.Over) {
        this.sink = undefined;
        sink.onBodyError(this.x?.failure ?? new Error('response body destroyed'));
      } else {
        return;
      }
    }
  }

  private get hasBuffered(): boolean {
    return this.one !== undefined || this.chunkHead < this.chunks.length;
  }

  /** The next buffered chunk (hasBuffered); resumes the socket once the buffer is low again. */
  private takeChunk(): Uint8Array {
    let chunk = this.one;
    if (chunk !== undefined) {
      this.one = undefined;
    } else {
      chunk = this.chunks[this.chunkHead];
      this.chunks[this.chunkHead++] = undefined as unknown as Uint8Array;
      if (this.chunkHead === this.chunks.length) {
        this.chunks = NO_CHUNKS;
        this.chunkHead = 0;
      }
    }
    this.buffered -= chunk.byteLength;
    if (this.paused && this.buffered <= HIGH_WATER / 4) {
      this.paused = false;
      this.carrier?.resume();
    }
    return chunk;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.hasBuffered) return Promise.resolve({ done: false, value: this.takeChunk() });
    if (this.phase === Phase.Received) {
      this.finish();
      return Promise.resolve(DONE_RESULT);
    }
    if (this.phase === Phase.Over) return this.x?.failure !== undefined ? Promise.reject(this.x.failure) : Promise.resolve(DONE_RESULT);
    if (this.phase === Phase.Pending) return Promise.resolve(DONE_RESULT);
    return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
      this.extras.waiting = { resolve, reject };
    });
  }

  /** `for await` ended early (break / throw): same as destroy(). */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.destroy();
    return Promise.resolve(DONE_RESULT);
  }

  /** The engine does not want (the rest of) the body: a response still arriving costs the connection. */
  destroy(): void {
    if (this.phase === Phase.Over || this.phase === Phase.Pending) return;
    const carrier = this.phase === Phase.Body ? this.carrier : undefined;
    this.phase = Phase.Over;
    this.carrier = undefined;
    this.sink = undefined;
    this.one = undefined;
    this.chunks = NO_CHUNKS;
    this.chunkHead = 0;
    this.settle();
    carrier?.abandon(this, undefined);
    const w = this.x?.waiting;
    if (w !== undefined) {
      this.x!.waiting = undefined;
      w.resolve(DONE_RESULT);
    }
  }

  /** The engine read the body to its end. */
  private finish(): void {
    this.phase = Phase.Over;
    this.settle(this.receivedTrailers);
  }

  /** Nothing left to cancel: the token forgets this exchange (a later cancel does nothing here). */
  private unhook(): void {
    const token = this.init.cancel;
    if (token.hook === this) token.hook = undefined;
  }

  private settle(trailers?: HeaderMap): void {
    this.unhook();
    if (this.settled) return;
    this.settled = true;
    if (trailers !== undefined) this.settledTrailers = trailers;
    const x = this.x;
    if (x !== undefined) {
      x.resolveTrailers?.(this.settledTrailers);
      x.resolveDone?.();
    }
    this.observer?.onExchangeDone();
    const listener = this.doneListener;
    this.doneListener = undefined;
    listener?.();
  }
}

/**
 * The parts of an exchange only some use, made on first use (eight fields fewer on the plain
 * path's exchange, ~0.06 KB per request; issue 16): request()'s promise callbacks, the trailers
 * and done promises, the iterator's waiter, and why the body failed.
 */
class ExchangeExtras {
  resolveHead: ((r: PooledResponse) => void) | undefined = undefined;
  rejectHead: ((err: unknown) => void) | undefined = undefined;
  trailersPromise: Promise<HeaderMap> | undefined = undefined;
  resolveTrailers: ((t: HeaderMap) => void) | undefined = undefined;
  donePromise: Promise<void> | undefined = undefined;
  resolveDone: (() => void) | undefined = undefined;
  waiting: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (err: unknown) => void } | undefined = undefined;
  failure: unknown = undefined;
}
