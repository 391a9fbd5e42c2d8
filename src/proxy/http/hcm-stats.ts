/**
 * The connection manager's own counters, named as Envoy names them under
 * `http.<stat_prefix>.`: what happens to connections and requests before (or instead of) a
 * request reaching the filter chain — protocol errors, path normalization, client resets, drains.
 * Request outcomes (downstream_rq_2xx...) come from finished requests instead (http-stats.ts).
 * `downstream_rq_internal_error` is Trellis's own: a bug on a request's path that was contained
 * (the request got 500 or a reset) instead of ending the process.
 */

export const HcmCounterNames = [
  'downstream_cx_http1_total',
  'downstream_cx_http2_total',
  'downstream_cx_protocol_error',
  'downstream_cx_drain_close',
  'downstream_rq_failed_path_normalization',
  'downstream_rq_redirected_with_normalized_path',
  'downstream_rq_non_relative_path',
  'downstream_rq_rx_reset',
  'downstream_rq_too_many_premature_resets',
  'downstream_rq_header_timeout',
  'downstream_rq_internal_error',
] as const;

export type HcmCounterName = (typeof HcmCounterNames)[number];
export type HcmCounters = Record<HcmCounterName, number>;

/** A fresh set of zeroed counters. */
export function newHcmCounters(): HcmCounters {
  return Object.fromEntries(HcmCounterNames.map((n) => [n, 0])) as HcmCounters;
}
