/**
 * Envoy's outlier detection for one cluster: consecutive 5xx, consecutive gateway failures
 * (502/503/504), consecutive local-origin failures (connect failure, reset, timeout — counted as
 * 5xx/gateway failures unless split_external_local_origin_errors), and per interval success rate
 * (mean - stdev factor x stdev) and failure percentage.
 * An ejection is enforced with the configured probability and only while ejected hosts stay within
 * max_ejection_percent; it lasts base_ejection_time x times ejected (capped by max_ejection_time)
 * and ends at the first interval tick after that. Time comes from the `Clock` seam.
 *
 * With several worker processes each runs its own detector over its own traffic, with the
 * consecutive counters in memory the workers share (outlier-counts.ts) where the host list is the
 * same in every worker (EDS, STATIC), so thresholds count the proxy's failures as Envoy's do; an
 * ejection one worker enforces is announced (`onEject`) and applied by the others
 * (`ejectFromPeer`). Success-rate and failure-percentage counts stay per worker.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Clock, ClockTimer } from './clock.ts';
import type { Host } from './host.ts';
import type { OutlierConfig } from './outlier-config.ts';
import type { ClusterStats } from './stats.ts';
import { Consecutive5xx, ConsecutiveGateway, ConsecutiveLocal, LocalConsecutiveCounts, type ConsecutiveCounts, type HostCountsProvider } from './outlier-counts.ts';

function newMonitor(counts: ConsecutiveCounts): HostMonitor {
  return { counts, success: 0, total: 0, ejectedAt: 0, byPeer: false };
}

/** Named channel (undici style) with `{ cluster, host, event: 'eject' | 'return', reason? }` messages. */
export const outlierChannel = diagnostics_channel.channel('trellis:upstream:outlier');

/** What one attempt ended with, as outlier detection sees it. */
export type AttemptResult = { kind: 'status'; status: number } | { kind: 'local'; failure: 'connect' | 'reset' | 'timeout' } | { kind: 'local-success' };

export type OutlierReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure' | 'success_rate' | 'failure_percentage';
type Reason = OutlierReason;

interface HostMonitor {
  counts: ConsecutiveCounts;
  success: number;
  total: number;
  ejectedAt: number;
  /** The current ejection was announced by another worker (it counts in that worker's stats). */
  byPeer: boolean;
}

/** Outlier detection over a changing host list. */
export class OutlierDetector {
  #cfg: OutlierConfig;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #stats: ClusterStats;
  readonly #onChange: () => void;
  readonly #cluster: string;
  readonly #monitors = new Map<Host, HostMonitor>();
  readonly #onEject: ((hostKey: string, reason: Reason) => void) | undefined;
  readonly #shared: HostCountsProvider | undefined;
  #hostKeys = '';
  #timer: ClockTimer;

  constructor(cfg: OutlierConfig, deps: {
    clock: Clock; random: () => number; stats: ClusterStats; onChange: () => void; cluster?: string;
    onEject?: (hostKey: string, reason: Reason) => void;
    /** Consecutive counters shared with the other workers, by host position. */
    sharedCounts?: HostCountsProvider;
  }) {
    this.#cluster = deps.cluster ?? '';
    this.#onEject = deps.onEject;
    this.#shared = deps.sharedCounts;
    this.#cfg = cfg;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#stats = deps.stats;
    this.#onChange = deps.onChange;
    this.#timer = this.#clock.setInterval(() => this.tick(), cfg.intervalMs);
  }

  /** New config (interval restarts only if it changed). */
  reconfigure(cfg: OutlierConfig): void {
    const restart = cfg.intervalMs !== this.#cfg.intervalMs;
    this.#cfg = cfg;
    if (restart) {
      this.#timer.cancel();
      this.#timer = this.#clock.setInterval(() => this.tick(), cfg.intervalMs);
    }
  }

  /** The cluster's host list changed: forget removed hosts, watch new ones. */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const h of this.#monitors.keys()) if (!keep.has(h)) this.#monitors.delete(h);
    const shared = this.#shared;
    if (shared !== undefined) {
      // Shared counters are addressed by position: a different list means positions name other hosts.
      const keys = hosts.map((h) => h.key).join(',');
      const moved = keys !== this.#hostKeys;
      if (moved) {
        this.#hostKeys = keys;
        shared.hostsChanged();
      }
      hosts.forEach((h, i) => {
        const m = this.#monitors.get(h);
        if (m === undefined) this.#monitors.set(h, newMonitor(shared.counts(i) ?? new LocalConsecutiveCounts()));
        else if (moved) m.counts = shared.counts(i) ?? new LocalConsecutiveCounts();
      });
    } else {
      for (const h of hosts) if (!this.#monitors.has(h)) this.#monitors.set(h, newMonitor(new LocalConsecutiveCounts()));
    }
    this.#updateActive();
  }

  /** Record one attempt's outcome on a host. */
  record(host: Host, result: AttemptResult): void {
    const m = this.#monitors.get(host);
    if (m === undefined) return;
    const cfg = this.#cfg;
    let status: number | undefined;
    if (result.kind === 'status') status = result.status;
    else if (result.kind === 'local') {
      if (cfg.splitExternalLocalOriginErrors) {
        m.total++;
        if (m.counts.increment(ConsecutiveLocal) >= cfg.consecutiveLocalOriginFailure) {
          m.counts.reset(ConsecutiveLocal);
          this.#maybeEject(host, m, 'consecutive_local_origin_failure', cfg.enforcingConsecutiveLocalOriginFailure);
        }
        return;
      }
      // Unsplit: Envoy maps local failures to a 503 (connect) or 504 (timeout) / 503 (reset) status.
      status = result.failure === 'timeout' ? 504 : 503;
    } else {
      m.counts.reset(ConsecutiveLocal);
      return;
    }
    m.total++;
    if (status >= 500) {
      const gateway = status === 502 || status === 503 || status === 504;
      if (gateway) {
        if (m.counts.increment(ConsecutiveGateway) >= cfg.consecutiveGatewayFailure) {
          m.counts.reset(ConsecutiveGateway);
          this.#maybeEject(host, m, 'consecutive_gateway_failure', cfg.enforcingConsecutiveGatewayFailure);
        }
      } else {
        m.counts.reset(ConsecutiveGateway);
      }
      if (m.counts.increment(Consecutive5xx) >= cfg.consecutive5xx) {
        m.counts.reset(Consecutive5xx);
        this.#maybeEject(host, m, 'consecutive_5xx', cfg.enforcingConsecutive5xx);
      }
    } else {
      m.success++;
      m.counts.reset(Consecutive5xx);
      m.counts.reset(ConsecutiveGateway);
      if (result.kind === 'status' && !cfg.splitExternalLocalOriginErrors) m.counts.reset(ConsecutiveLocal);
    }
  }

  /** The interval timer: return hosts whose ejection time elapsed, then run success-rate detection. */
  tick(): void {
    const now = this.#clock.now();
    const cfg = this.#cfg;
    let changed = false;
    for (const [h, m] of this.#monitors) {
      if (!h.ejected) {
        continue;
      }
      const duration = Math.min(cfg.baseEjectionTimeMs * h.numEjections, Math.max(cfg.maxEjectionTimeMs, cfg.baseEjectionTimeMs));
      if (now >= m.ejectedAt + duration) {
        h.ejected = false;
        h.ejectedUntil = 0;
        m.byPeer = false;
        m.counts.reset(Consecutive5xx);
        m.counts.reset(ConsecutiveGateway);
        m.counts.reset(ConsecutiveLocal);
        changed = true;
        if (outlierChannel.hasSubscribers) outlierChannel.publish({ cluster: this.#cluster, host: h.key, event: 'return' });
      }
    }
    this.#successRate();
    this.#failurePercentage();
    for (const m of this.#monitors.values()) {
      m.success = 0;
      m.total = 0;
    }
    if (changed) {
      this.#updateActive();
      this.#onChange();
    }
  }

  /**
   * Another worker ejected the host `hostKey` (its detector counted and enforced it): avoid it here
   * too for the same time. Ignored for an unknown or already ejected host.
   */
  ejectFromPeer(hostKey: string, reason: Reason): void {
    for (const [h, m] of this.#monitors) {
      if (h.key !== hostKey) continue;
      if (h.ejected) return;
      this.#eject(h, m, reason, true);
      return;
    }
  }

  /** Stop the interval timer (cluster removed). */
  close(): void {
    this.#timer.cancel();
  }

  #successRate(): void {
    const cfg = this.#cfg;
    const rates: [Host, HostMonitor, number][] = [];
    for (const [h, m] of this.#monitors) if (!h.ejected && m.total >= cfg.successRateRequestVolume) rates.push([h, m, m.success / m.total]);
    if (rates.length === 0 || rates.length < cfg.successRateMinimumHosts) return;
    const mean = rates.reduce((s, r) => s + r[2], 0) / rates.length;
    const stdev = Math.sqrt(rates.reduce((s, r) => s + (r[2] - mean) ** 2, 0) / rates.length);
    const threshold = mean - cfg.successRateStdevFactor * stdev;
    for (const [h, m, rate] of rates) if (rate < threshold) this.#maybeEject(h, m, 'success_rate', cfg.enforcingSuccessRate);
  }

  #failurePercentage(): void {
    const cfg = this.#cfg;
    const eligible: [Host, HostMonitor][] = [];
    for (const [h, m] of this.#monitors) if (!h.ejected && m.total >= cfg.failurePercentageRequestVolume) eligible.push([h, m]);
    if (eligible.length === 0 || eligible.length < cfg.failurePercentageMinimumHosts) return;
    for (const [h, m] of eligible) {
      if ((m.total - m.success) / m.total >= cfg.failurePercentageThreshold) this.#maybeEject(h, m, 'failure_percentage', cfg.enforcingFailurePercentage);
    }
  }

  #maybeEject(host: Host, m: HostMonitor, reason: Reason, enforcing: number): void {
    if (host.ejected) return;
    const s = this.#stats;
    s[`outlier_detection.ejections_detected_${reason}`]++;
    if (enforcing <= 0 || this.#random() >= enforcing) return;
    const total = this.#monitors.size;
    let ejected = 0;
    for (const h of this.#monitors.keys()) if (h.ejected) ejected++;
    if (total === 0 || (ejected + 1) / total > this.#cfg.maxEjectionFraction) {
      s['outlier_detection.ejections_overflow']++;
      return;
    }
    s['outlier_detection.ejections_total']++;
    s['outlier_detection.ejections_enforced_total']++;
    s[`outlier_detection.ejections_enforced_${reason}`]++;
    this.#eject(host, m, reason, false);
    this.#onEject?.(host.key, reason);
  }

  #eject(host: Host, m: HostMonitor, reason: Reason, byPeer: boolean): void {
    const now = this.#clock.now();
    host.ejected = true;
    host.numEjections++;
    host.lastEjectionReason = reason;
    m.ejectedAt = now;
    m.byPeer = byPeer;
    host.ejectedUntil = now + Math.min(this.#cfg.baseEjectionTimeMs * host.numEjections, Math.max(this.#cfg.maxEjectionTimeMs, this.#cfg.baseEjectionTimeMs));
    if (outlierChannel.hasSubscribers) outlierChannel.publish({ cluster: this.#cluster, host: host.key, event: 'eject', reason, ...(byPeer ? { byPeer } : {}) });
    this.#updateActive();
    this.#onChange();
  }

  /** Ejections this worker enforced (a peer's count in the peer's stats, so summed stats count each once). */
  #updateActive(): void {
    let n = 0;
    for (const [h, m] of this.#monitors) if (h.ejected && !m.byPeer) n++;
    this.#stats['outlier_detection.ejections_active'] = n;
  }
}
