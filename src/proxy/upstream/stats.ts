/**
 * Per-cluster counters and gauges under Envoy's stat names (`cluster.<name>.<stat>` in Envoy's
 * /stats), kept as plain mutable numbers in one object per cluster. The admin/stats code reads
 * them; nothing here formats or exports.
 */

/** Envoy stat names we maintain, in /stats order. */
export const clusterStatNames = [
  'upstream_cx_total',
  'upstream_cx_active',
  'upstream_cx_connect_fail',
  'upstream_cx_connect_timeout',
  'upstream_cx_overflow',
  'upstream_cx_none_healthy',
  'upstream_cx_destroy_remote',
  'upstream_rq_total',
  'upstream_rq_active',
  'upstream_rq_pending_active',
  'upstream_rq_pending_overflow',
  'upstream_rq_2xx',
  'upstream_rq_3xx',
  'upstream_rq_4xx',
  'upstream_rq_5xx',
  'upstream_rq_rx_reset',
  'upstream_rq_timeout',
  'upstream_rq_retry',
  'upstream_rq_retry_overflow',
  'membership_total',
  'membership_healthy',
  'membership_degraded',
  'outlier_detection.ejections_active',
  'outlier_detection.ejections_total',
  'outlier_detection.ejections_overflow',
  'outlier_detection.ejections_enforced_total',
  'outlier_detection.ejections_enforced_consecutive_5xx',
  'outlier_detection.ejections_detected_consecutive_5xx',
  'outlier_detection.ejections_enforced_consecutive_gateway_failure',
  'outlier_detection.ejections_detected_consecutive_gateway_failure',
  'outlier_detection.ejections_enforced_consecutive_local_origin_failure',
  'outlier_detection.ejections_detected_consecutive_local_origin_failure',
  'outlier_detection.ejections_enforced_success_rate',
  'outlier_detection.ejections_detected_success_rate',
  'outlier_detection.ejections_enforced_failure_percentage',
  'outlier_detection.ejections_detected_failure_percentage',
] as const;

export type ClusterStatName = (typeof clusterStatNames)[number];

/** One cluster's stats. */
export type ClusterStats = Record<ClusterStatName, number>;

/** All-zero stats. */
export function newClusterStats(): ClusterStats {
  const s = {} as ClusterStats;
  for (const n of clusterStatNames) s[n] = 0;
  return s;
}

/** Counts a response status into upstream_rq_Nxx. */
export function countStatus(stats: ClusterStats, status: number): void {
  if (status >= 500) stats.upstream_rq_5xx++;
  else if (status >= 400) stats.upstream_rq_4xx++;
  else if (status >= 300) stats.upstream_rq_3xx++;
  else if (status >= 200) stats.upstream_rq_2xx++;
}
