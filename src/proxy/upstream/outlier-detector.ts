/**
 * Envoy's outlier detection for one cluster: consecutive 5xx, consecutive gateway failures
 * (502/503/504), consecutive local-origin failures (connect failure, reset, timeout — counted as
 * 5xx/gateway failures unless split_external_local_origin_errors), and per interval success rate
 * (mean - stdev factor x stdev) and failure percentage.
 * An ejection is enforced with the configured probability and only while ejected hosts stay within
 * max_ejection_percent; it lasts base_ejection_time x times ejected (capped by max_ejection_time)
 * and ends at the first interval tick after that. Time comes from the `Clock` seam.
 *
 * With several worker processes each runs its own detector over its own traffic; an ejection one
 * of them enforces is announced (`onEject`) and applied by the others (`ejectFromPeer`), so a host
 * is avoided by the whole proxy as soon as any worker ejects it. The consecutive counters stay per
 * worker: with N workers a host may see up to N x threshold - (N - 1) failures before its first
 * ejection where Envoy, counting across threads, sees the threshold.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Clock, ClockTimer } from './clock.ts';
import type { Host } from './host.ts';
import type { OutlierConfig } from './outlier-config.ts';
import type { ClusterStats } from './stats.ts';

/** Named channel (undici style) with `{ cluster, host, event: 'eject' | 'return', reason? }` messages. */
export const outlierChannel = diagnostics_channel.channel('trellis:upstream:outlier');

/** What one attempt ended with, as outlier detection sees it. */
export type AttemptResult = { kind: 'status'; status: number } | { kind: 'local'; failure: 'connect' | 'reset' | 'timeout' } | { kind: 'local-success' };

export type OutlierReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure' | 'success_rate' | 'failure_percentage';
type Reason = OutlierReason;

interface HostMonitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
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
  #timer: ClockTimer;

  constructor(cfg: OutlierConfig, deps: { clock: Clock; random: () => number; stats: ClusterStats; onChange: () => void; cluster?: string; onEject?: (hostKey: string, reason: Reason) => void }) {
    this.#cluster = deps.cluster ?? '';
    this.#onEject = deps.onEject;
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
    for (const h of hosts) if (!this.#monitors.has(h)) this.#monitors.set(h, { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, success: 0, total: 0, ejectedAt: 0, byPeer: false });
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
        if (++m.consecutiveLocal >= cfg.consecutiveLocalOriginFailure) {
          m.consecutiveLocal = 0;
          this.#maybeEject(host, m, 'consecutive_local_origin_failure', cfg.enforcingConsecutiveLocalOriginFailure);
        }
        return;
      }
      // Unsplit: Envoy maps local failures to a 503 (connect) or 504 (timeout) / 503 (reset) status.
      status = result.failure === 'timeout' ? 504 : 503;
    } else {
      m.consecutiveLocal = 0;
      return;
    }
    m.total++;
    if (status >= 500) {
      const gateway = status === 502 || status === 503 || status === 504;
      if (gateway) {
        if (++m.consecutiveGateway >= cfg.consecutiveGatewayFailure) {
          m.consecutiveGateway = 0;
          this.#maybeEject(host, m, 'consecutive_gateway_failure', cfg.enforcingConsecutiveGatewayFailure);
        }
      } else {
        m.consecutiveGateway = 0;
      }
      if (++m.consecutive5xx >= cfg.consecutive5xx) {
        m.consecutive5xx = 0;
        this.#maybeEject(host, m, 'consecutive_5xx', cfg.enforcingConsecutive5xx);
      }
    } else {
      m.success++;
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
      if (result.kind === 'status' && !cfg.splitExternalLocalOriginErrors) m.consecutiveLocal = 0;
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
        m.consecutive5xx = 0;
        m.consecutiveGateway = 0;
        m.consecutiveLocal = 0;
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
