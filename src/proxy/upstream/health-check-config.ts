/**
 * Parsing a cluster's `health_checks` (Envoy active health checking) into a frozen config. Only
 * the first entry is used (Envoy runs each; Istio never sends any). HTTP and TCP checkers are
 * supported; gRPC health checks are rejected so the NACK says so instead of silently not checking.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optArr, optDurationMs, optObj, optStr, optUint } from '../xds-json.ts';

export interface HealthCheckConfig {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  /** undefined = TCP connect check. */
  readonly http: { readonly path: string; readonly host: string | undefined; readonly expected: readonly (readonly [number, number])[] } | undefined;
}

/** undefined when the cluster has no health_checks. */
export function parseHealthChecks(json: XdsJson, at: string): HealthCheckConfig | undefined {
  const list = optArr(json.health_checks, child(at, 'health_checks'));
  if (list.length === 0) return undefined;
  const p = child(child(at, 'health_checks'), 0);
  const hc = list[0];
  if (!isObj(hc)) configError(p, 'expected an object');
  const timeoutMs = optDurationMs(hc.timeout, child(p, 'timeout'));
  const intervalMs = optDurationMs(hc.interval, child(p, 'interval'));
  if (timeoutMs === undefined || timeoutMs === 0) configError(child(p, 'timeout'), 'required and greater than 0');
  if (intervalMs === undefined || intervalMs === 0) configError(child(p, 'interval'), 'required and greater than 0');
  const unhealthyThreshold = optUint(hc.unhealthy_threshold, child(p, 'unhealthy_threshold'));
  const healthyThreshold = optUint(hc.healthy_threshold, child(p, 'healthy_threshold'));
  if (unhealthyThreshold === undefined) configError(child(p, 'unhealthy_threshold'), 'required');
  if (healthyThreshold === undefined) configError(child(p, 'healthy_threshold'), 'required');
  if (hc.grpc_health_check !== undefined || hc.custom_health_check !== undefined) configError(p, 'only http_health_check and tcp_health_check are supported');
  const http = optObj(hc.http_health_check, child(p, 'http_health_check'));
  if (http === undefined && optObj(hc.tcp_health_check, child(p, 'tcp_health_check')) === undefined) configError(p, 'one of http_health_check, tcp_health_check is required');
  let httpCfg: HealthCheckConfig['http'];
  if (http !== undefined) {
    const hp = child(p, 'http_health_check');
    const path = optStr(http.path, child(hp, 'path'));
    if (path === undefined || !path.startsWith('/')) configError(child(hp, 'path'), 'required, starting with /');
    const expected = optArr(http.expected_statuses, child(hp, 'expected_statuses')).map((r, i): readonly [number, number] => {
      const rp = child(child(hp, 'expected_statuses'), i);
      if (!isObj(r)) configError(rp, 'expected an object');
      const start = optUint(r.start, child(rp, 'start'), 599) ?? 0;
      const end = optUint(r.end, child(rp, 'end'), 600) ?? 0;
      if (start < 100 || end <= start) configError(rp, 'needs 100 <= start < end <= 600 (end exclusive)');
      return [start, end];
    });
    const host = optStr(http.host, child(hp, 'host'));
    httpCfg = Object.freeze({ path, host: host === '' ? undefined : host, expected: Object.freeze(expected.length > 0 ? expected : [[200, 201] as const]) });
  }
  return Object.freeze({ timeoutMs, intervalMs, unhealthyThreshold, healthyThreshold, http: httpCfg });
}
