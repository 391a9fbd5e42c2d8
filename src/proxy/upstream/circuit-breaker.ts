/**
 * Envoy's cluster circuit breakers (priority DEFAULT): limits on connections, pending requests,
 * requests in flight and concurrent retries (or a retry budget: a fraction of active requests,
 * floored at min_retry_concurrency). A request over a limit is not queued: it fails at once with
 * UpstreamError flag UO and bumps upstream_rq_pending_overflow / upstream_rq_retry_overflow, so the
 * HTTP side answers 503 UO as Envoy does.
 */
import type { BreakerThresholds } from './cluster-config.ts';
import type { ClusterStats } from './stats.ts';
import { LocalCounts, Requests, Retries, type BreakerCounts } from './breaker-counts.ts';

/**
 * One cluster's breakers over its live counts: this process's own, or shared with the proxy's
 * other workers (breaker-counts.ts), so limits hold for the whole proxy. Stats report this
 * worker's share; the primary sums the workers' stats.
 */
export class CircuitBreaker {
  thresholds: BreakerThresholds;
  readonly #stats: ClusterStats;
  readonly #counts: BreakerCounts;

  constructor(thresholds: BreakerThresholds, stats: ClusterStats, counts: BreakerCounts = new LocalCounts()) {
    this.thresholds = thresholds;
    this.#stats = stats;
    this.#counts = counts;
  }

  /** Requests in flight (whole proxy). */
  get activeRequests(): number {
    return this.#counts.total(Requests);
  }

  /** Retries in flight (whole proxy). */
  get activeRetries(): number {
    return this.#counts.total(Retries);
  }

  #report(connectionBound: boolean, active: number): void {
    this.#stats.upstream_rq_active = this.#counts.own(Requests);
    this.#stats.upstream_rq_pending_active = connectionBound ? Math.min(this.#counts.own(Requests), Math.max(0, active - this.thresholds.maxConnections)) : 0;
  }

  /**
   * Admit a request. `connectionBound`: the pool holds one request per connection (HTTP/1.1), so
   * requests beyond max_connections wait as pending and are limited by max_pending_requests.
   * Returns false on overflow (counted).
   */
  tryAcquireRequest(connectionBound: boolean): boolean {
    const t = this.thresholds;
    const active = this.activeRequests;
    if (active >= t.maxRequests) {
      this.#stats.upstream_rq_pending_overflow++;
      return false;
    }
    if (connectionBound && active >= t.maxConnections) {
      const pending = active - t.maxConnections;
      if (pending >= t.maxPendingRequests) {
        this.#stats.upstream_rq_pending_overflow++;
        return false;
      }
      this.#stats.upstream_cx_overflow++;
    }
    this.#counts.add(Requests, 1);
    this.#report(connectionBound, active + 1);
    return true;
  }

  releaseRequest(connectionBound: boolean): void {
    this.#counts.add(Requests, -1);
    this.#report(connectionBound, this.activeRequests);
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
    this.#counts.add(Retries, 1);
    this.#stats.upstream_rq_retry++;
    return true;
  }

  releaseRetry(): void {
    this.#counts.add(Retries, -1);
  }
}
