/**
 * Parsing a cluster's `health_checks` (Envoy active health checking) into a frozen config. Only
 * the first entry is used (Envoy runs each; Istio never sends any). HTTP and TCP checkers are
 * supported; gRPC health checks are rejected so the NACK says so instead of silently not checking.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, invalid, isObject, optArray, optDurationMs, optObject, optString, optUint, type FieldPath } from './xds-read.ts';

export interface HealthCheckConfig {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  /** undefined = TCP connect check. */
  readonly http: { readonly path: string; readonly host: string | undefined; readonly expected: readonly (readonly [number, number])[] } | undefined;
}

/** undefined when the cluster has no health_checks. */
export function parseHealthChecks(json: XdsJson, at: FieldPath): HealthCheckConfig | undefined {
  const list = optArray(json, 'health_checks', at);
  if (list.length === 0) return undefined;
  const p = child(child(at, 'health_checks'), 0);
  const hc = list[0];
  if (!isObject(hc)) throw invalid(p, 'expected an object');
  const timeoutMs = optDurationMs(hc, 'timeout', p);
  const intervalMs = optDurationMs(hc, 'interval', p);
  if (timeoutMs === undefined || timeoutMs === 0) throw invalid(child(p, 'timeout'), 'required and greater than 0');
  if (intervalMs === undefined || intervalMs === 0) throw invalid(child(p, 'interval'), 'required and greater than 0');
  const unhealthyThreshold = optUint(hc, 'unhealthy_threshold', p);
  const healthyThreshold = optUint(hc, 'healthy_threshold', p);
  if (unhealthyThreshold === undefined) throw invalid(child(p, 'unhealthy_threshold'), 'required');
  if (healthyThreshold === undefined) throw invalid(child(p, 'healthy_threshold'), 'required');
  if (hc.grpc_health_check !== undefined || hc.custom_health_check !== undefined) throw invalid(p, 'only http_health_check and tcp_health_check are supported');
  const http = optObject(hc, 'http_health_check', p);
  if (http === undefined && optObject(hc, 'tcp_health_check', p) === undefined) throw invalid(p, 'one of http_health_check, tcp_health_check is required');
  let httpCfg: HealthCheckConfig['http'];
  if (http !== undefined) {
    const hp = child(p, 'http_health_check');
    const path = optString(http, 'path', hp);
    if (path === undefined || !path.startsWith('/')) throw invalid(child(hp, 'path'), 'required, starting with /');
    const expected = optArray(http, 'expected_statuses', hp).map((r, i): readonly [number, number] => {
      const rp = child(child(hp, 'expected_statuses'), i);
      if (!isObject(r)) throw invalid(rp, 'expected an object');
      const start = optUint(r, 'start', rp, 599) ?? 0;
      const end = optUint(r, 'end', rp, 600) ?? 0;
      if (start < 100 || end <= start) throw invalid(rp, 'needs 100 <= start < end <= 600 (end exclusive)');
      return [start, end];
    });
    const host = optString(http, 'host', hp);
    httpCfg = Object.freeze({ path, host: host === '' ? undefined : host, expected: Object.freeze(expected.length > 0 ? expected : [[200, 201] as const]) });
  }
  return Object.freeze({ timeoutMs, intervalMs, unhealthyThreshold, healthyThreshold, http: httpCfg });
}
