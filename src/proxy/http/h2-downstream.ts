/**
 * The HTTP/2 side of the connection manager: node's HTTP/2 server (compatibility API) in "no
 * listen" mode with the manager's SETTINGS and flood limits, the rapid-reset session guard
 * (h2-session-guard.ts), and requests started on the next turn of the event loop (after the rest
 * of their packet, RST_STREAMs included, was read). Each request goes to the manager's `serve`.
 */
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { HcmOptions } from './hcm-options.ts';
import type { HcmCounters } from './hcm-stats.ts';
import { guardSession } from './h2-session-guard.ts';

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
  serve(req: Http2ServerRequest, res: Http2ServerResponse, isH2: true, target: string, authority: string): void;
  internalError(where: string, err: unknown, res?: Http2ServerResponse): void;
  /** A session was closed by the rapid-reset guard. */
  onTooManyResets(session: Http2Session): void;
}

/** Build the HTTP/2 server a connection manager hands its h2 / h2c sockets to (`emit('connection')`). */
export function createH2Server(ctx: H2ServerContext): http2.Http2Server {
  const o = ctx.options;
  const { sessions, internalError } = ctx;

  // Rapid reset: a client resets streams right after opening them, usually in the same packet.
  // Requests start on the next turn of the event loop, after the rest of the packet (its
  // RST_STREAMs) was processed: a stream reset by then never reaches the filters or a backend.
  // The requests of one turn share one setImmediate (request, response, request, ...).
  let pending: (Http2ServerRequest | Http2ServerResponse)[] = [];
  let spare: (Http2ServerRequest | Http2ServerResponse)[] = [];
  function onRequest2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    if (pending.length === 0) setImmediate(startPending);
    pending.push(req, res);
  }
  function startPending(): void {
    const batch = pending;
    pending = spare;
    for (let i = 0; i < batch.length; i += 2) startRequest2(batch[i] as Http2ServerRequest, batch[i + 1] as Http2ServerResponse);
    batch.length = 0;
    spare = batch;
  }
  function startRequest2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    try {
      if (res.destroyed || req.stream.destroyed) return;
      ctx.serve(req, res, true, String(req.headers[':path'] ?? '/'), String(req.headers[':authority'] ?? req.headers.host ?? ''));
    } catch (err) {
      internalError('http2_request', err, res);
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
  }, onRequest2);
  // One options object for every session (a closure per session would live as long as it).
  const sessionGuard = {
    limit: ctx.prematureResetLimit, idleMs: o.idleTimeoutMs, counters: ctx.counters,
    onTooManyResets: ctx.onTooManyResets,
  };
  h2.on('session', (session: Http2Session) => {
    try {
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
