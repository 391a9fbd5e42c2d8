/**
 * HTTP/2 abuse guard for one downstream session (CVE-2023-44487 "rapid reset"): counts streams the
 * client reset before they completed; once `limit` such resets make up at least half of the
 * session's streams, the session is ended with a single GOAWAY(ENHANCE_YOUR_CALM) (RFC 9113
 * section 6.8: a second GOAWAY may only lower the last-stream id, so we send one) and counted as
 * Envoy counts it (`downstream_rq_too_many_premature_resets`). Idle sessions are closed with
 * GOAWAY(NO_ERROR) after `idleMs`. Errors on the session or its streams are absorbed here.
 */
import http2, { type Http2Session } from 'node:http2';
import type { HcmCounters } from './hcm-stats.ts';

export interface SessionGuardOptions {
  /** Premature resets before the session is closed (Envoy's premature_reset_total_stream_count, 500). */
  readonly limit: number;
  readonly idleMs: number;
  readonly counters: HcmCounters;
  /** Told once per session closed for resets (for a rate-limited log line). */
  readonly onTooManyResets: (session: Http2Session) => void;
}

/** Installs the guard on a new session. */
export function guardSession(session: Http2Session, o: SessionGuardOptions): void {
  let streams = 0;
  let resets = 0;
  let ended = false;
  session.on('error', () => {
    if (!ended) o.counters.downstream_cx_protocol_error++;
  });
  session.on('stream', (stream) => {
    streams++;
    stream.on('error', () => {});
    stream.on('aborted', () => {
      resets++;
      o.counters.downstream_rq_rx_reset++;
      if (ended || resets < o.limit || resets * 2 < streams || session.destroyed || session.closed) return;
      ended = true;
      o.counters.downstream_rq_too_many_premature_resets++;
      o.onTooManyResets(session);
      // destroy(err, code) sends the one final GOAWAY, naming the last stream nghttp2 processed
      // (goaway() then destroy() sent two, the second with a higher last-stream id).
      session.destroy(new Error('too many premature resets'), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    });
  });
  if (o.idleMs > 0) {
    session.setTimeout(o.idleMs, () => {
      if (session.closed || session.destroyed) return;
      session.close();
    });
  }
}
