/**
 * Envoy's retry decisions (x-envoy-retry-on / RetryPolicy.retry_on semantics) as pure functions:
 * which responses and which failures are retriable, and the jittered exponential back-off.
 * The router filter owns the attempts; this module only answers "retry this?" and "wait how long?".
 */
import type { HeaderMap, UpstreamError } from '../upstream/types.ts';
import type { RetryPolicy } from './route-action.ts';

const GRPC_RETRY_ON: ReadonlyMap<string, number> = new Map([
  ['cancelled', 1], ['deadline-exceeded', 4], ['resource-exhausted', 8], ['internal', 13], ['unavailable', 14],
]);

/** True when an upstream response (headers) must be retried under `policy`. */
export function isRetriableResponse(policy: RetryPolicy, status: number, headers: HeaderMap, grpc: boolean): boolean {
  const on = policy.retryOn;
  if (on.has('5xx') && status >= 500 && status <= 599) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return true;
  if (on.has('envoy-ratelimited') && headers['x-envoy-ratelimited'] !== undefined) return true;
  if (on.has('retriable-headers') && policy.retriableHeaders.length > 0) {
    const src = { headers, method: '', path: '', authority: '', scheme: '' };
    if (policy.retriableHeaders.some((m) => m(src))) return true;
  }
  if (grpc) {
    // Only a trailers-only response carries grpc-status in the headers; those are the retriable ones.
    const gs = headers['grpc-status'];
    if (typeof gs === 'string') {
      const code = Number(gs);
      for (const [cond, c] of GRPC_RETRY_ON) if (c === code && on.has(cond)) return true;
    }
  }
  return false;
}

/** True when a failure before response headers (connect failure, reset, per-try timeout) must be retried. */
export function isRetriableFailure(policy: RetryPolicy, failure: UpstreamError | 'per-try-timeout'): boolean {
  const on = policy.retryOn;
  const anyReset = on.has('5xx') || on.has('gateway-error') || on.has('reset');
  if (failure === 'per-try-timeout') return anyReset;
  switch (failure.responseFlag) {
    case 'UF':
      return anyReset || on.has('connect-failure') || on.has('reset-before-request');
    case 'UR':
    case 'UC':
      if (failure.refusedStream && on.has('refused-stream')) return true;
      return anyReset;
    case 'UT':
    case 'UPE':
      // Envoy retries a protocol-error reset on 5xx / gateway-error / reset like any other reset.
      return anyReset;
    default:
      // UO (circuit breaker overflow), UH (no healthy upstream), URX: retrying would not help.
      return false;
  }
}

/** Envoy's jittered back-off for retry number `n` (1-based): uniform in [0, min(max, (2^n - 1) * base)]. */
export function backoffMs(policy: RetryPolicy, n: number, random: number): number {
  const ceiling = Math.min(policy.maxIntervalMs, (2 ** n - 1) * policy.baseIntervalMs);
  return Math.floor(random * ceiling);
}
