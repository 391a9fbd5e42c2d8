/**
 * The HTTP/2 side of the connection manager: node's HTTP/2 server on its core API (the server's
 * 'stream' event, no compatibility-layer request/response objects) in "no listen" mode with the
 * manager's SETTINGS and flood limits, the rapid-reset session guard (h2-session-guard.ts), and
 * requests started on the next turn of the event loop (after the rest of their packet,
 * RST_STREAMs included, was read). Each request goes to the manager's `serve` as an `H2Request`;
 * its response is written by h2-response-sink.ts.
 *
 * What node's compatibility layer did on its own, kept as it was: CONNECT (no extended CONNECT is
 * offered) is answered 405 and an `expect` other than `100-continue` 417. `expect: 100-continue`
 * gets its 100 from the connection manager once the request passed its checks, as on HTTP/1.1.
 */
import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { HcmOptions } from './hcm-options.ts';
import type { HcmCounters } from './hcm-stats.ts';
import { guardSession, rawSocketOf } from './h2-session-guard.ts';

/** One HTTP/2 request as the connection manager's `serve` reads it (field names as on node's IncomingMessage). */
export interface H2Request {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** The connection's own socket (not the session's proxy of it). */
  readonly socket: Socket;
  readonly method: string;
}

/** What the HTTP/2 server needs from its connection manager. */
export interface H2ServerContext {
  readonly options: HcmOptions;
  readonly counters: HcmCounters;
  /** GOAWAY a session after this many premature resets (see h2-session-guard.ts). */
  readonly prematureResetLimit: number;
  /** The manager's open sessions (drain sends each a GOAWAY); this module adds and removes them. */
  readonly sessions: Set<Http2Session>;
  /** True once the manager drains: new sessions get GOAWAY at once. */
  draining(): boolean;
  serve(req: H2Request, res: ServerHttp2Stream, isH2: true, target: string, authority: string): void;
  internalError(where: string, err: unknown, res?: ServerHttp2Stream): void;
  /** A session was closed by the rapid-reset guard. */
  onTooManyResets(session: Http2Session): void;
}

const kSocket = Symbol('trellis.h2SessionSocket');
type SessionWithSocket = Http2Session & { [kSocket]?: Socket };

/** Build the HTTP/2 server a connection manager hands its h2 / h2c sockets to (`emit('connection')`). */
export function createH2Server(ctx: H2ServerContext): http2.Http2Server {
  const o = ctx.options;
  const { sessions, internalError } = ctx;

  // Rapid reset: a client resets streams right after opening them, usually in the same packet.
  // Requests start on the next turn of the event loop, after the rest of the packet (its
  // RST_STREAMs) was processed: a stream reset by then never reaches the filters or a backend.
  // The requests of one turn share one setImmediate (stream, headers, raw headers, ...).
  let pending: unknown[] = [];
  let spare: unknown[] = [];
  function onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void {
    try {
      const method = headers[':method'];
      if (method === 'CONNECT') return answerOnly(stream, http2.constants.HTTP_STATUS_METHOD_NOT_ALLOWED);
      const expect = headers.expect;
      // 100-continue is answered by the connection manager once the request passed its checks.
      if (expect !== undefined && expect !== '100-continue') return answerOnly(stream, http2.constants.HTTP_STATUS_EXPECTATION_FAILED);
    } catch (err) {
      return internalError('http2_request', err, stream);
    }
    if (pending.length === 0) setImmediate(startPending);
    pending.push(stream, headers, rawHeaders);
  }
  function startPending(): void {
    const batch = pending;
    pending = spare;
    for (let i = 0; i < batch.length; i += 3) startRequest2(batch[i] as ServerHttp2Stream, batch[i + 1] as IncomingHttpHeaders, batch[i + 2] as string[]);
    batch.length = 0;
    spare = batch;
  }
  function startRequest2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void {
    try {
      if (stream.destroyed || stream.closed) return;
      const session = stream.session as SessionWithSocket | undefined;
      const socket = session?.[kSocket];
      if (socket === undefined) return;
      const req: H2Request = { stream, headers, rawHeaders, socket, method: String(headers[':method'] ?? 'GET') };
      ctx.serve(req, stream, true, String(headers[':path'] ?? '/'), String(headers[':authority'] ?? headers.host ?? ''));
    } catch (err) {
      internalError('http2_request', err, stream);
    }
  }

  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: o.maxConcurrentStreams, maxHeaderListSize: o.maxHeaderBytes, ...(o.initialWindowSize ? { initialWindowSize: o.initialWindowSize } : {}) },
    // Up to twice the limit gets a proper 431 from our own check; beyond that nghttp2 refuses the stream.
    maxHeaderListPairs: o.maxHeadersCount * 2 + 16,
    maxSessionInvalidFrames: 100,
    // A packet of HEADERS + RST_STREAM pairs fills node's stream table (closed streams leave it
    // a turn later) and node refuses the rest; at 100 refusals it ends the session with a second
    // GOAWAY after ours. The rapid-reset guard ends such sessions instead.
    maxSessionRejectedStreams: 10_000,
    maxOutstandingPings: 10,
  });
  // No 'request' listener: node then installs no compatibility layer.
  h2.on('stream', onStream);
  // One options object for every session (a closure per session would live as long as it).
  const sessionGuard = {
    limit: ctx.prematureResetLimit, idleMs: o.idleTimeoutMs, counters: ctx.counters,
    onTooManyResets: ctx.onTooManyResets,
  };
  h2.on('session', (session: SessionWithSocket) => {
    try {
      // The session's `socket` is a Proxy (every property read a trap): requests read the real one.
      session[kSocket] = rawSocketOf(session);
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      if (ctx.draining()) session.close();
      if (o.connectionWindowSize !== undefined) session.setLocalWindowSize(o.connectionWindowSize);
      guardSession(session, sessionGuard);
    } catch (err) {
      internalError('http2_session', err);
      session.destroy();
    }
  });
  h2.on('sessionError', () => {});
  h2.on('streamError', () => {});
  return h2;
}

/** A status-only answer node's compatibility layer gave by itself (405 for CONNECT, 417 for an unknown expectation). */
function answerOnly(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ':status': status }, { endStream: true });
}
