/**
 * Envoy's cluster circuit breakers (priority DEFAULT): limits on connections, pending requests,
 * requests in flight and concurrent retries (or a retry budget: a fraction of active requests,
 * floored at min_retry_concurrency). A request over a limit is not queued: it fails at once with
 * UpstreamError flag UO and bumps upstream_rq_pending_overflow / upstream_rq_retry_overflow, so the
 * HTTP side answers 503 UO as Envoy does.
 */
import type { BreakerThresholds } from './cluster-config.ts';
import type { ClusterStats } from './stats.ts';

/** The live counts one cluster's breakers guard. */
export class CircuitBreaker {
  thresholds: BreakerThresholds;
  readonly #stats: ClusterStats;
  activeRequests = 0;
  activeRetries = 0;

  constructor(thresholds: BreakerThresholds, stats: ClusterStats) {
    this.thresholds = thresholds;
    this.#stats = stats;
  }

  /**
   * Admit a request. `connectionBound`: the pool holds one request per connection (HTTP/1.1), so
   * requests beyond max_connections wait as pending and are limited by max_pending_requests.
   * Returns false on overflow (counted).
   */
  tryAcquireRequest(connectionBound: boolean): boolean {
    const t = this.thresholds;
    if (this.activeRequests >= t.maxRequests) {
      this.#stats.upstream_rq_pending_overflow++;
      return false;
    }
    if (connectionBound && this.activeRequests >= t.maxConnections) {
      const pending = this.activeRequests - t.maxConnections;
      if (pending >= t.maxPendingRequests) {
        this.#stats.upstream_rq_pending_overflow++;
        return false;
      }
      this.#stats.upstream_cx_overflow++;
    }
    this.activeRequests++;
    this.#stats.upstream_rq_active = this.activeRequests;
    this.#stats.upstream_rq_pending_active = connectionBound ? Math.max(0, this.activeRequests - t.maxConnections) : 0;
    return true;
  }

  releaseRequest(connectionBound: boolean): void {
    if (this.activeRequests > 0) this.activeRequests--;
    this.#stats.upstream_rq_active = this.activeRequests;
    this.#stats.upstream_rq_pending_active = connectionBound ? Math.max(0, this.activeRequests - this.thresholds.maxConnections) : 0;
  }

  /** Admit a retry (max_retries, or the retry budget when configured). */
  tryAcquireRetry(): boolean {
    const t = this.thresholds;
    const limit = t.retryBudget === undefined
      ? t.maxRetries
      : Math.max(t.retryBudget.minRetryConcurrency, Math.floor(t.retryBudget.budgetFraction * this.activeRequests));
    if (this.activeRetries >= limit) {
      this.#stats.upstream_rq_retry_overflow++;
      return false;
    }
    this.activeRetries++;
    this.#stats.upstream_rq_retry++;
    return true;
  }

  releaseRetry(): void {
    if (this.activeRetries > 0) this.activeRetries--;
  }
}
