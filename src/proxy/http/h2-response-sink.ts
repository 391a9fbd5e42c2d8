/**
 * The HTTP/2 response sink: writes a response on node's core `ServerHttp2Stream` (respond / write /
 * end, trailers through `waitForTrailers` + `sendTrailers`, RST_STREAM through `close(code)`),
 * without the compatibility layer's request and response objects.
 *
 * The head is staged and goes out at the latest on the next turn of the event loop, so that what
 * arrives in the same turn shapes the frames: a headers-only answer (gRPC trailers-only) is one
 * HEADERS frame with END_STREAM, which gRPC clients require; a response whose first body chunk
 * and end arrive in the same turn is HEADERS + DATA(END_STREAM), without the 'wantTrailers' round
 * and the extra empty DATA(END_STREAM) frame (node's stand-in for empty trailers) the compatibility
 * layer had after every response. A response still streaming at that point asks for trailers
 * (`waitForTrailers`), since only its end tells whether it has any.
 */
import { constants as h2c, type ServerHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { HeaderMap } from '../upstream/types.ts';
import type { DownstreamSink } from './stream.ts';
import { DOWNSTREAM_REQUEST_FIELDS } from '../upstream/connection-fields.ts';


/** One response on one HTTP/2 stream; its methods on the prototype (no closures per request). */
export class H2ResponseSink implements DownstreamSink {
  private readonly stream: ServerHttp2Stream;
  private started = false;
  /** The staged head as a flat [name, value, ...] list (node copies an object head into a fresh null-prototype object first). */
  private head: unknown[] | undefined;
  /** Body chunks written before the head went out (usually one). */
  private early: Uint8Array[] | undefined;
  private trailers: HeaderMap | undefined;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
  }

  get headersSent(): boolean {
    return this.started || this.stream.headersSent;
  }

  writeHead(status: number, headers: HeaderMap): void {
    this.started = true;
    // What node's compatibility layer refused (its statusCode setter): informational and out-of-range codes.
    if (!(status >= 200 && status <= 599)) return this.reset();
    const head: unknown[] = [':status', status];
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined || DOWNSTREAM_REQUEST_FIELDS.has(k)) continue;
      head.push(k, v);
    }
    this.head = head;
    if (staged.length === 0) setImmediate(flushStagedHeads);
    staged.push(this);
  }

  /** Sends the staged head (the response goes on streaming: trailers may follow). */
  flushHead(): void {
    if (this.head === undefined) return;
    this.respond(false, true);
  }

  private respond(endStream: boolean, waitForTrailers: boolean): boolean {
    const head = this.head!;
    this.head = undefined;
    const s = this.stream;
    if (s.destroyed || s.closed) return false;
    try {
      s.respond(head as unknown as OutgoingHttpHeaders, endStream ? END_STREAM : waitForTrailers ? WAIT_FOR_TRAILERS : NO_TRAILERS);
    } catch {
      // An invalid field from upstream (a name that is not a token, `te` other than trailers):
      // the stream is reset, as before.
      this.reset();
      return false;
    }
    // 'wantTrailers' comes once per stream: a plain listener (once() wraps it in a closure).
    if (waitForTrailers && !endStream) s.on('wantTrailers', sendTrailers);
    const early = this.early;
    if (early !== undefined) {
      this.early = undefined;
      for (let i = 0; i < early.length; i++) this.writeNow(early[i]);
    }
    return true;
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return undefined;
    if (this.take(chunk)) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.on('drain', done);
      s.on('close', done);
    });
  }

  /** A body chunk: held while the head waits for this turn's end (see the module comment), else written; false when the stream wants a drain. */
  private take(chunk: Uint8Array): boolean {
    if (this.head === undefined) return this.writeNow(chunk);
    (this.early ??= []).push(chunk);
    return true;
  }

  private writeNow(chunk: Uint8Array): boolean {
    const s = this.stream;
    // HEAD, 204, 205 and 304: node ended the stream at respond(); a body would be an error.
    if (s.destroyed || s.writableEnded) return true;
    return s.write(chunk);
  }

  end(trailers?: HeaderMap, last?: Uint8Array): void {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return;
    // The body's last chunk, as write() takes it (no wait for a drain: the end follows).
    if (last !== undefined) this.take(last);
    const hasTrailers = trailers !== undefined && hasKeys(trailers);
    if (this.head !== undefined) {
      if (hasTrailers) this.trailers = trailers;
      const headersOnly = this.early === undefined && !hasTrailers;
      if (!this.respond(headersOnly, hasTrailers) || headersOnly) return;
    } else if (hasTrailers) {
      // The head went out asking for trailers; a head sent without (ended at respond) has none to carry.
      this.trailers = trailers;
    }
    if (!s.writableEnded) s.end();
  }

  /** The trailers to send when node asks for them ('wantTrailers'); none (node then ends with an empty DATA frame) when there are none. */
  takeTrailers(): HeaderMap {
    const t = this.trailers ?? EMPTY_TRAILERS;
    this.trailers = undefined;
    return t;
  }

  reset(): void {
    const s = this.stream;
    this.head = undefined;
    this.early = undefined;
    if (!s.destroyed && !s.closed) s.close(h2c.NGHTTP2_INTERNAL_ERROR);
  }
}

const END_STREAM = Object.freeze({ endStream: true });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const NO_TRAILERS = Object.freeze({});
const EMPTY_TRAILERS: HeaderMap = Object.freeze({}) as HeaderMap;

const kSink = Symbol('trellis.h2Sink');
type SinkStream = ServerHttp2Stream & { [kSink]?: H2ResponseSink };

/** Binds a sink to its stream (the shared 'wantTrailers' listener finds it there). */
export function h2ResponseSink(stream: ServerHttp2Stream): H2ResponseSink {
  const sink = new H2ResponseSink(stream);
  (stream as SinkStream)[kSink] = sink;
  return sink;
}

// Shared 'wantTrailers' listener (`this` is the stream).
function sendTrailers(this: SinkStream): void {
  const sink = this[kSink];
  if (this.destroyed || this.closed) return;
  try {
    this.sendTrailers(sink === undefined ? EMPTY_TRAILERS : (sink.takeTrailers() as OutgoingHttpHeaders));
  } catch {
    // An invalid trailer from upstream: end the stream without trailers instead.
    try {
      this.sendTrailers(EMPTY_TRAILERS as OutgoingHttpHeaders);
    } catch {
      this.close(h2c.NGHTTP2_INTERNAL_ERROR);
    }
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

// Heads staged in one turn of the event loop, flushed by one setImmediate (not one per response).
let staged: H2ResponseSink[] = [];
let stagedSpare: H2ResponseSink[] = [];

function flushStagedHeads(): void {
  const batch = staged;
  staged = stagedSpare;
  for (let i = 0; i < batch.length; i++) {
    try {
      batch[i].flushHead();
    } catch {
      // flushHead resets its own stream on failure; one stream must not hold up the others.
    }
  }
  batch.length = 0;
  stagedSpare = batch;
}
