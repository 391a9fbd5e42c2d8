/**
 * HTTP/2 abuse guard for one downstream session (CVE-2023-44487 "rapid reset"): counts streams the
 * client reset before they completed; once `limit` such resets make up at least half of the
 * session's streams, the session gets one GOAWAY(ENHANCE_YOUR_CALM) naming the last stream
 * processed, nothing more is read from the connection and it is closed once the GOAWAY is out.
 * Counted as Envoy counts it (`downstream_rq_too_many_premature_resets`). Idle sessions are closed
 * with GOAWAY(NO_ERROR) after `idleMs`. Errors on the session or its streams are absorbed here.
 *
 * Why not `session.destroy(err, code)`: called from inside nghttp2's processing of a packet it
 * only runs after the packet, whose remaining frames meanwhile trip nghttp2's own reset limit
 * (GOAWAY INTERNAL_ERROR) or node's rejected-stream limit, and the late terminate then sends a
 * second GOAWAY with a higher last-stream id, which RFC 9113 section 6.8 forbids. A GOAWAY
 * submitted at once stops both (nghttp2 sends no second one once one was submitted).
 */
import http2, { type Http2Session, type Http2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { HcmCounters } from './hcm-stats.ts';

const kRawSocket = Symbol('trellis.h2RawSocket');

/** Remembers the connection's own socket (a session only exposes a proxy that refuses reads and closes). */
export function markRawSocket(socket: Socket): void {
  (socket as Socket & { [kRawSocket]?: Socket })[kRawSocket] = socket;
}

/** The connection's own socket under a session (marked by markRawSocket), else the session's proxy of it. */
export function rawSocketOf(session: Http2Session): Socket {
  const proxy = session.socket as unknown as (Socket & { [kRawSocket]?: Socket }) | undefined;
  return proxy?.[kRawSocket] ?? (proxy as Socket);
}

export interface SessionGuardOptions {
  /** Premature resets before the session is closed (Envoy's premature_reset_total_stream_count, 500). */
  readonly limit: number;
  readonly idleMs: number;
  readonly counters: HcmCounters;
  /** Told once per session closed for resets (for a rate-limited log line). */
  readonly onTooManyResets: (session: Http2Session) => void;
}

/** One session's guard state, reached by the shared stream listeners below. */
interface GuardState {
  readonly session: Http2Session;
  readonly o: SessionGuardOptions;
  streams: number;
  resets: number;
  ended: boolean;
}
const kGuard = Symbol('trellis.h2Guard');
type GuardedStream = Http2Stream & { [kGuard]?: GuardState };

/** Installs the guard on a new session. */
export function guardSession(session: Http2Session, o: SessionGuardOptions): void {
  const g: GuardState = { session, o, streams: 0, resets: 0, ended: false };
  session.on('error', () => {
    if (!g.ended) o.counters.downstream_cx_protocol_error++;
  });
  session.on('stream', (stream: GuardedStream) => {
    g.streams++;
    // Shared listeners: a stream costs no closures of its own.
    stream[kGuard] = g;
    stream.on('error', ignoreStreamError);
    stream.on('aborted', onStreamAborted);
  });
  if (o.idleMs > 0) {
    session.setTimeout(o.idleMs, () => {
      if (session.closed || session.destroyed) return;
      session.close();
    });
  }
}

function ignoreStreamError(): void {}

function onStreamAborted(this: GuardedStream): void {
  const g = this[kGuard];
  if (g === undefined) return;
  const { session, o } = g;
  g.resets++;
  o.counters.downstream_rq_rx_reset++;
  if (g.ended || g.resets < o.limit || g.resets * 2 < g.streams || session.destroyed || session.closed) return;
  g.ended = true;
  o.counters.downstream_rq_too_many_premature_resets++;
  o.onTooManyResets(session);
  endAbusiveSession(session);
}

function endAbusiveSession(session: Http2Session): void {
  const raw = (session.socket as unknown as { [kRawSocket]?: Socket } | undefined)?.[kRawSocket];
  try {
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, session.state.lastProcStreamID ?? 0);
  } catch {
    // Already going away.
  }
  if (raw === undefined) return void session.destroy();
  // Stop reading: the client's next packets would only feed the flood.
  try {
    (raw as Socket & { _handle?: { readStop?: () => void } })._handle?.readStop?.();
  } catch {
    // Handle already gone.
  }
  // The GOAWAY is written when this packet's processing ends; close after it.
  setImmediate(() => {
    raw.end();
    setTimeout(() => raw.destroy(), 1000).unref();
  });
}
