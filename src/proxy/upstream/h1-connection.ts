/**
 * One HTTP/1.1 upstream connection: writes a request (head as latin1 bytes, h1-head.ts; body streamed
 * with content-length or chunked) and parses its response with the connection's own parser, one
 * exchange at a time (no pipelining). Wire behaviour follows what undici's client sent before
 * (issue 16): `host` first, `connection: keep-alive` (or `close` on the last request the
 * connection may carry and after HEAD), content-length from the request when it has one,
 * otherwise chunked; a body is written with its head in one corked write. A connection is reused
 * only after a complete, keep-alive response with nothing after it, its request fully written,
 * and no body sent on a method that has none; a server's `keep-alive: timeout=N` shortens the
 * idle time to N less undici's margin of 2 s so the server's close does not race our next
 * request. Without that header the cluster's idle timeout applies (Envoy's 1 h by default; 0: none).
 */
import type { Socket } from 'node:net';
import { H1ProtocolError, H1ResponseParser, type H1ResponseHandler } from './h1-parser.ts';
import type { ExchangeCarrier, H1Exchange } from './h1-exchange.ts';
import { writeHead } from './h1-head.ts';
import { mapExchangeError } from './pool.ts';
import type { HeaderMap } from './types.ts';
import { UpstreamError } from './types.ts';

/** What the connection tells its pool. */
export interface ConnectionOwner {
  /** The connection finished an exchange and can take another. */
  onConnectionFree(conn: H1Connection): void;
  /** The socket closed (any reason); the connection is gone. */
  onConnectionClosed(conn: H1Connection): void;
}

export interface H1ConnectionOptions {
  /** host:port, for error messages. */
  readonly endpoint: string;
  /** 0: no idle timeout (Envoy's meaning of idle_timeout 0s). */
  readonly idleTimeoutMs: number;
  /** 0: unlimited. */
  readonly maxRequests: number;
  readonly maxHeaderSize: number;
}

/** Taken off a server's keep-alive timeout so we stop using a connection before it does (undici's default). */
const KEEP_ALIVE_MARGIN_MS = 2000;

/** Methods whose requests carry a body by definition (undici sends content-length: 0 for them). */
function expectsPayload(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'QUERY' || method === 'PROPFIND' || method === 'PROPPATCH';
}

/** A live connection to one upstream host. */
export class H1Connection implements H1ResponseHandler, ExchangeCarrier {
  readonly socket: Socket;
  private readonly parser: H1ResponseParser;
  private exchange: H1Exchange | undefined;
  private requests = 0;
  /** False once this connection must close after its current exchange. */
  private reusable = true;
  /** The exchange whose request body is still being written (the request is not complete on the wire). */
  private bodyWriter: H1Exchange | undefined;
  private completed = false;
  private closed = false;
  private socketError: Error | undefined;
  private keepAliveMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleTimerMs = 0;
  private idleSince = 0;
  private drainWaiter: (() => void) | undefined;
  /** An exchange whose response head the parser gave in this read: handed on after the parser returned. */
  private headed: H1Exchange | undefined;

  private readonly owner: ConnectionOwner;
  private readonly opts: H1ConnectionOptions;

  constructor(socket: Socket, owner: ConnectionOwner, opts: H1ConnectionOptions) {
    this.socket = socket;
    this.owner = owner;
    this.opts = opts;
    this.keepAliveMs = opts.idleTimeoutMs;
    this.parser = new H1ResponseParser(this, opts.maxHeaderSize);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  /** True when the connection can take a request now. */
  get usable(): boolean {
    return !this.closed && this.exchange === undefined && this.bodyWriter === undefined && this.reusable && !this.socket.destroyed && !this.socket.readableEnded;
  }

  /** Sends `ex` on this connection. */
  send(ex: H1Exchange): void {
    const init = ex.init;
    this.exchange = ex;
    ex.carrier = this;
    this.completed = false;
    this.requests++;
    if (this.idleTimer !== undefined) this.idleSince = 0;
    const method = init.method;
    // After HEAD undici closed the connection: a server that wrongly sends a body would desync it.
    if (method === 'HEAD' || (this.opts.maxRequests > 0 && this.requests >= this.opts.maxRequests)) this.reusable = false;
    const keepAlive = this.reusable;
    this.parser.start(method === 'HEAD');
    const payload = expectsPayload(method);
    let length = ex.contentLength;
    if (length === 0 && !payload) length = null;
    if (init.body === null) {
      if (length !== null && length !== 0) {
        this.failExchange(new UpstreamError('UC', `upstream exchange with ${this.opts.endpoint} failed: content-length ${length} without a request body`, { endpoint: this.opts.endpoint }));
        this.close();
        return;
      }
      this.socket.write(this.head(ex, keepAlive, length === 0 ? 'content-length: 0\r\n\r\n' : '\r\n'));
      return;
    }
    this.bodyWriter = ex;
    void this.writeBody(ex, init.body, keepAlive, length, payload);
  }

  /** The head of `ex`'s request, ended by `tail`. */
  private head(ex: H1Exchange, keepAlive: boolean, tail: string): Buffer {
    const init = ex.init;
    return writeHead(init.method, init.path, init.authority, keepAlive, init.headers, tail);
  }

  /** Streams the request body; the head goes with its first bytes (or alone when it is empty). */
  private async writeBody(ex: H1Exchange, body: AsyncIterable<Uint8Array>, keepAlive: boolean, length: number | null, payload: boolean): Promise<void> {
    const socket = this.socket;
    const chunked = length === null;
    let written = 0;
    try {
      for await (const piece of body) {
        if (this.exchange !== ex || socket.destroyed) return;
        let chunk = piece;
        let n = chunk.byteLength;
        if (n === 0) continue;
        if (length !== null && written + n > length) {
          // Never write past the declared length: the excess would be read as another request.
          this.reusable = false;
          n = length - written;
          if (n === 0) continue;
          chunk = chunk.subarray(0, n);
        }
        socket.cork();
        if (written === 0) {
          if (!payload) this.reusable = false;
          socket.write(this.head(ex, keepAlive, chunked ? `transfer-encoding: chunked\r\n\r\n${n.toString(16)}\r\n` : `content-length: ${length}\r\n\r\n`));
        } else if (chunked) {
          socket.write(`\r\n${n.toString(16)}\r\n`, 'latin1');
        }
        written += n;
        const ok = socket.write(chunk);
        socket.uncork();
        // All the declared bytes are out: the request is complete on the wire, and a response
        // that completes now leaves the connection reusable (the iterator's own end comes later).
        if (written === length) this.bodyWriter = undefined;
        if (!ok && written !== length) await new Promise<void>((r) => { this.drainWaiter = r; });
      }
      if (this.exchange !== ex || socket.destroyed) return;
      if (written === 0) socket.write(this.head(ex, keepAlive, payload ? 'content-length: 0\r\n\r\n' : '\r\n'));
      else if (chunked) socket.write('\r\n0\r\n\r\n', 'latin1');
      // A body shorter than declared leaves the server waiting for the rest.
      else if (written !== length) this.reusable = false;
    } catch (err) {
      // The request body failed (the downstream went away mid-upload): this exchange cannot finish.
      if (this.exchange === ex) {
        this.failExchange(mapExchangeError(err, this.opts.endpoint));
        this.close();
      }
      return;
    } finally {
      if (this.bodyWriter === ex) this.bodyWriter = undefined;
    }
  }

  // H1ResponseHandler: called by the parser from onData.
  onResponseHead(status: number, headers: HeaderMap): void {
    const ex = this.exchange;
    if (ex === undefined) return;
    ex.head(status, headers);
    this.headed = ex;
  }

  onResponseBody(chunk: Buffer): void {
    this.exchange?.data(chunk);
  }

  onResponseComplete(trailers: HeaderMap | undefined): void {
    const ex = this.exchange;
    this.exchange = undefined;
    this.completed = true;
    ex?.received(trailers);
  }

  // ExchangeCarrier
  abandon(ex: H1Exchange, _reason: unknown): void {
    if (this.exchange !== ex) return;
    this.exchange = undefined;
    this.close();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes the connection now (whatever it carries fails through onClose). */
  close(): void {
    this.reusable = false;
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.exchange === undefined || !this.parser.busy) {
      // Bytes nobody asked for: a response to no request. The connection cannot be trusted.
      this.close();
      return;
    }
    try {
      this.read(chunk);
    } finally {
      // The head goes to its attempt only now, with the parser and this read done: the attempt may
      // write downstream and destroy the body (closing this socket) from there (issue 16: no
      // promise per request, and nothing re-enters the parser).
      const ex = this.headed;
      if (ex !== undefined) {
        this.headed = undefined;
        ex.deliverHead();
      }
    }
  };

  private read(chunk: Buffer): void {
    let consumed: number;
    try {
      consumed = this.parser.execute(chunk);
    } catch (err) {
      this.protocolError(err);
      return;
    }
    if (!this.completed || this.exchange !== undefined) return;
    // A response complete before its request (an early 413, say): the server may still be reading
    // what we send, so undici closed the connection; so do we.
    if (this.bodyWriter !== undefined) this.close();
    else this.afterResponse(consumed < chunk.length);
  }

  /** The response is complete: reuse the connection or close it. */
  private afterResponse(trailingBytes: boolean): void {
    this.completed = false;
    const p = this.parser;
    if (p.keepAliveTimeoutSec !== undefined) {
      const serverMs = p.keepAliveTimeoutSec * 1000 - KEEP_ALIVE_MARGIN_MS;
      if (serverMs <= 0) this.reusable = false;
      else this.keepAliveMs = this.opts.idleTimeoutMs === 0 ? serverMs : Math.min(serverMs, this.opts.idleTimeoutMs);
    } else {
      this.keepAliveMs = this.opts.idleTimeoutMs;
    }
    if (trailingBytes || !p.keepAlive || !this.reusable || this.closed || this.socket.readableEnded) {
      this.close();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.owner.onConnectionFree(this);
  }

  /** Starts the idle clock (the pool put the connection on its idle list). */
  startIdle(): void {
    if (this.keepAliveMs === 0) return;
    this.idleSince = performance.now();
    if (this.idleTimer === undefined || this.idleTimerMs !== this.keepAliveMs) {
      if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
      this.idleTimerMs = this.keepAliveMs;
      this.idleTimer = setTimeout(this.onIdleTimer, this.keepAliveMs);
      this.idleTimer.unref();
    } else {
      this.idleTimer.refresh();
    }
  }

  private readonly onIdleTimer = (): void => {
    if (this.idleSince === 0 || this.exchange !== undefined || this.bodyWriter !== undefined) return;
    if (performance.now() - this.idleSince >= this.idleTimerMs - 1) this.close();
    else this.idleTimer?.refresh();
  };

  private protocolError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof H1ProtocolError ? err.code : undefined;
    // Envoy resets the stream with reason ProtocolError: flag UPE, a 502 rather than the 503 of a closed connection.
    this.failExchange(new UpstreamError('UPE', `upstream exchange with ${this.opts.endpoint} failed: protocol error: ${message}`, { cause: err, endpoint: this.opts.endpoint, context: { code } }));
    this.close();
  }

  /** Fails the current exchange (request rejected or body errored) with `err`, or its abort reason. */
  private failExchange(err: unknown): void {
    const ex = this.exchange;
    if (ex === undefined) return;
    this.exchange = undefined;
    ex.fail(ex.init.cancel.cancelled ? ex.init.cancel.reason : err);
  }

  private readonly onEnd = (): void => {
    if (this.exchange !== undefined && this.parser.readsUntilClose) {
      this.parser.finish();
      this.afterResponse(false);
      return;
    }
    if (this.exchange !== undefined) {
      const before = this.exchange.pending;
      this.failExchange(new UpstreamError('UC', `upstream connection to ${this.opts.endpoint} terminated: other side closed${before ? ' before response headers' : ' mid-response'}`, { endpoint: this.opts.endpoint }));
    }
    this.close();
  };

  private readonly onError = (err: Error): void => {
    // A reset that ends a body read until close still ends it (undici: some systems reset instead of FIN).
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' && this.exchange !== undefined && this.parser.readsUntilClose) {
      this.parser.finish();
      this.afterResponse(false);
      return;
    }
    this.socketError ??= err;
  };

  private readonly onClose = (): void => {
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.exchange !== undefined) {
      const err = this.socketError !== undefined
        ? mapExchangeError(this.socketError, this.opts.endpoint)
        : new UpstreamError('UC', `upstream connection to ${this.opts.endpoint} terminated: connection closed`, { endpoint: this.opts.endpoint });
      this.failExchange(err);
    }
    this.onDrain();
    this.owner.onConnectionClosed(this);
  };

  private readonly onDrain = (): void => {
    const w = this.drainWaiter;
    this.drainWaiter = undefined;
    w?.();
  };
}
