/**
 * Parsing Envoy's `OutlierDetection` cluster field into a frozen `OutlierConfig` with Envoy's
 * defaults (consecutive_5xx 5, interval 10s, base_ejection_time 30s, max_ejection_percent 10,
 * enforcing_consecutive_5xx 100%, consecutive_gateway_failure 5 enforced 0%, local-origin 5
 * enforced 100% when split, success rate: 5 hosts, 100 requests, stdev factor 1.9, enforced 100%;
 * failure percentage: 85%, 5 hosts, 50 requests, enforced 0%).
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, optBool, optDurationMs, optUint } from '../xds-json.ts';

export interface OutlierConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  /** Fraction 0..1 of hosts that may be ejected at once. */
  readonly maxEjectionFraction: number;
  /** Enforcement probabilities 0..1. */
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingSuccessRate: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** success_rate_stdev_factor / 1000 (default 1.9). */
  readonly successRateStdevFactor: number;
  /** failure_percentage_threshold as a fraction (default 0.85); enforcement defaults to 0 (detect only). */
  readonly failurePercentageThreshold: number;
  readonly enforcingFailurePercentage: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
}

/** undefined when the cluster has no outlier_detection (Envoy then never ejects). */
export function parseOutlierConfig(json: XdsJson | undefined, at: string): OutlierConfig | undefined {
  if (json === undefined) return undefined;
  const pct = (field: string, def: number): number => (optUint(json[field], child(at, field), 100) ?? def) / 100;
  const base = optDurationMs(json.base_ejection_time, child(at, 'base_ejection_time')) ?? 30_000;
  return Object.freeze({
    consecutive5xx: optUint(json.consecutive_5xx, child(at, 'consecutive_5xx')) ?? 5,
    consecutiveGatewayFailure: optUint(json.consecutive_gateway_failure, child(at, 'consecutive_gateway_failure')) ?? 5,
    consecutiveLocalOriginFailure: optUint(json.consecutive_local_origin_failure, child(at, 'consecutive_local_origin_failure')) ?? 5,
    intervalMs: Math.max(1, optDurationMs(json.interval, child(at, 'interval')) ?? 10_000),
    baseEjectionTimeMs: base,
    maxEjectionTimeMs: Math.max(base, optDurationMs(json.max_ejection_time, child(at, 'max_ejection_time')) ?? 300_000),
    maxEjectionFraction: pct('max_ejection_percent', 10),
    enforcingConsecutive5xx: pct('enforcing_consecutive_5xx', 100),
    enforcingConsecutiveGatewayFailure: pct('enforcing_consecutive_gateway_failure', 0),
    enforcingConsecutiveLocalOriginFailure: pct('enforcing_consecutive_local_origin_failure', 100),
    enforcingSuccessRate: pct('enforcing_success_rate', 100),
    splitExternalLocalOriginErrors: optBool(json.split_external_local_origin_errors, child(at, 'split_external_local_origin_errors')) ?? false,
    successRateMinimumHosts: optUint(json.success_rate_minimum_hosts, child(at, 'success_rate_minimum_hosts')) ?? 5,
    successRateRequestVolume: optUint(json.success_rate_request_volume, child(at, 'success_rate_request_volume')) ?? 100,
    successRateStdevFactor: (optUint(json.success_rate_stdev_factor, child(at, 'success_rate_stdev_factor')) ?? 1900) / 1000,
    failurePercentageThreshold: pct('failure_percentage_threshold', 85),
    enforcingFailurePercentage: pct('enforcing_failure_percentage', 0),
    failurePercentageMinimumHosts: optUint(json.failure_percentage_minimum_hosts, child(at, 'failure_percentage_minimum_hosts')) ?? 5,
    failurePercentageRequestVolume: optUint(json.failure_percentage_request_volume, child(at, 'failure_percentage_request_volume')) ?? 50,
  });
}
