/**
 * Active health checking for one cluster, as Envoy does it: every interval each host gets an HTTP
 * GET (over the host's own transport socket, so TLS clusters are checked over TLS) or a TCP
 * connect; `unhealthy_threshold` consecutive failures mark it failed (/failed_active_hc),
 * `healthy_threshold` consecutive successes bring it back. A newly added host is checked at once
 * and counts as failed until its first check passes, as in Envoy. Time comes from the `Clock`.
 */
import http from '../../node-http.ts';
import type { SecretProvider } from '../tls/secret-provider.ts';
import type { Clock, ClockTimer } from './clock.ts';
import { connectHost } from './connector.ts';
import type { HealthCheckConfig } from './health-check-config.ts';
import type { Host } from './host.ts';
import { newClusterStats } from './stats.ts';

interface HostState {
  successes: number;
  failures: number;
  inFlight: boolean;
}

/** Runs active health checks over a changing host list. */
export class HealthChecker {
  readonly #cfg: HealthCheckConfig;
  readonly #clock: Clock;
  readonly #secrets: SecretProvider;
  readonly #clusterName: string;
  readonly #onChange: () => void;
  readonly #hosts = new Map<Host, HostState>();
  readonly #timer: ClockTimer;
  // Health-check connections are not request traffic: keep them out of the cluster's counters.
  readonly #scratchStats = newClusterStats();

  constructor(cfg: HealthCheckConfig, deps: { clock: Clock; secrets: SecretProvider; clusterName: string; onChange: () => void }) {
    this.#cfg = cfg;
    this.#clock = deps.clock;
    this.#secrets = deps.secrets;
    this.#clusterName = deps.clusterName;
    this.#onChange = deps.onChange;
    this.#timer = this.#clock.setInterval(() => this.checkAll(), cfg.intervalMs);
  }

  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const h of this.#hosts.keys()) if (!keep.has(h)) this.#hosts.delete(h);
    for (const h of hosts) {
      if (this.#hosts.has(h)) continue;
      h.activeHcFailed = true;
      this.#hosts.set(h, { successes: 0, failures: 0, inFlight: false });
      void this.#check(h);
    }
  }

  /** One round over every host (the interval timer calls this). */
  checkAll(): Promise<void> {
    return Promise.all([...this.#hosts.keys()].map((h) => this.#check(h))).then(() => {});
  }

  close(): void {
    this.#timer.cancel();
    this.#hosts.clear();
  }

  async #check(h: Host): Promise<void> {
    const st = this.#hosts.get(h);
    if (st === undefined || st.inFlight) return;
    st.inFlight = true;
    let ok = false;
    try {
      ok = await this.#probe(h);
    } catch {
      ok = false;
    }
    st.inFlight = false;
    if (this.#hosts.get(h) !== st) return;
    const before = h.activeHcFailed;
    if (ok) {
      st.failures = 0;
      st.successes++;
      // The first success of a new host brings it in at once (Envoy), later ones need the threshold.
      if (h.activeHcFailed && (st.successes >= this.#cfg.healthyThreshold || h.activeHcNeverPassed)) {
        h.activeHcFailed = false;
        h.activeHcNeverPassed = false;
      }
    } else {
      st.successes = 0;
      st.failures++;
      if (!h.activeHcFailed && st.failures >= this.#cfg.unhealthyThreshold) h.activeHcFailed = true;
    }
    if (before !== h.activeHcFailed) this.#onChange();
  }

  async #probe(h: Host): Promise<boolean> {
    const signal = AbortSignal.timeout(this.#cfg.timeoutMs);
    const socket = await connectHost(h, { timeoutMs: this.#cfg.timeoutMs, secrets: this.#secrets, stats: this.#scratchStats, signal });
    const httpCfg = this.#cfg.http;
    if (httpCfg === undefined) {
      socket.destroy();
      return true;
    }
    return await new Promise<boolean>((resolve) => {
      const req = http.request({
        createConnection: () => socket,
        method: 'GET',
        path: httpCfg.path,
        headers: { host: httpCfg.host ?? this.#clusterName, 'user-agent': 'Envoy/HC', connection: 'close' },
        signal,
      }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.once('end', () => socket.destroy());
        resolve(httpCfg.expected.some(([start, end]) => status >= start && status < end));
      });
      req.once('error', () => { socket.destroy(); resolve(false); });
      req.end();
    });
  }
}
