/**
 * One live cluster: its hosts (from EDS, the inline assignment, DNS, or the original destination),
 * the host selector (priorities, localities, LB policy), circuit breakers, outlier detection, one
 * pool per host and protocol, and its stats. `request()` is the per-attempt path: admit (UO) ->
 * pick (UH) -> pool (UF/UC/UR) -> record the outcome for outlier detection when the exchange ends.
 */
import type { SecretProvider } from '../tls/secret-provider.ts';
import { autoTlsNames, type AutoTlsNames } from '../tls/upstream-tls.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { BreakerCounts } from './breaker-counts.ts';
import type { ClusterConfig } from './cluster-config.ts';
import type { Clock, ClockTimer } from './clock.ts';
import { connectHost } from './connector.ts';
import type { Resolver } from './dns.ts';
import { Host } from './host.ts';
import { HealthChecker } from './health-checker.ts';
import { HostSelector, type SelectorOptions } from './host-selector.ts';
import { buildHosts } from './host-set.ts';
import { lbFactory } from './lb/index.ts';
import type { PickContext } from './lb/types.ts';
import type { LoadAssignment } from './load-assignment.ts';
import { OutlierDetector, type OutlierReason } from './outlier-detector.ts';
import type { HostCountsProvider } from './outlier-counts.ts';
import type { HostPool, PooledResponse, PoolObserver } from './pool.ts';
import { createH1Pool } from './pool-h1.ts';
import { createH2Pool } from './pool-h2.ts';
import { countStatus, newClusterStats, type ClusterStats } from './stats.ts';
import type { ClusterHandle, ResponseReceiver, UpstreamConnectInit, UpstreamConnection, UpstreamRequestInit, UpstreamResponse } from './types.ts';
import { UpstreamError } from './types.ts';
import type { UpstreamClusterStatus } from './cluster-status.ts';
import { clusterStatus } from './cluster-status.ts';

/** What a cluster needs from its surroundings (all injectable for tests). */
export interface ClusterDeps {
  readonly clock: Clock;
  readonly random: () => number;
  readonly secrets: SecretProvider;
  readonly resolver: Resolver;
  /** Called when a DNS refresh fails (the last good hosts stay). */
  readonly onDnsError?: (cluster: string, err: unknown) => void;
  /** Breaker counts shared with the proxy's other workers, by cluster name (else this process's own). */
  readonly breakerCounts?: (cluster: string) => BreakerCounts | undefined;
  /** Outlier detection here enforced an ejection (worker processes announce it to the others). */
  readonly onOutlierEjection?: (cluster: string, hostKey: string, reason: OutlierReason) => void;
  /** Consecutive outlier counters shared with the other workers, by cluster name. */
  readonly outlierCounts?: (cluster: string) => HostCountsProvider | undefined;
}

// ORIGINAL_DST hosts are created per destination; keep the set bounded (Envoy cleans them up on an interval).
const maxOriginalDstHosts = 1024;

/** A live cluster; also the `ClusterHandle` the router uses. */
export class Cluster implements ClusterHandle {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly stats: ClusterStats = newClusterStats();
  readonly breaker: CircuitBreaker;
  readonly #deps: ClusterDeps;
  readonly #selector: HostSelector;
  readonly #outlier: OutlierDetector | undefined;
  readonly #healthChecker: HealthChecker | undefined;
  readonly #pools = new Map<string, HostPool>();
  #hosts: Host[] = [];
  #assignment: LoadAssignment | undefined;
  #dnsTimer: ClockTimer | undefined;
  #closed = false;

  constructor(config: ClusterConfig, deps: ClusterDeps) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    this.breaker = new CircuitBreaker(config.breakers, this.stats, deps.breakerCounts?.(config.name));
    this.#selector = new HostSelector(this.#selectorOptions(undefined));
    if (config.outlier !== undefined) {
      this.#outlier = new OutlierDetector(config.outlier, {
        clock: deps.clock,
        random: deps.random,
        stats: this.stats,
        onChange: () => this.#healthChanged(),
        cluster: config.name,
        ...(deps.onOutlierEjection ? { onEject: (hostKey: string, reason: OutlierReason) => deps.onOutlierEjection?.(config.name, hostKey, reason) } : {}),
        // Shared counters address hosts by position: only where every worker builds the same list.
        ...(config.type === 'EDS' || config.type === 'STATIC' ? { sharedCounts: deps.outlierCounts?.(config.name) } : {}),
      });
    }
    if (config.healthCheck !== undefined && config.type !== 'ORIGINAL_DST') {
      this.#healthChecker = new HealthChecker(config.healthCheck, { clock: deps.clock, secrets: deps.secrets, clusterName: config.name, onChange: () => this.#healthChanged() });
    }
    if (config.type === 'STATIC' || config.type === 'LOGICAL_DNS') this.setAssignment(config.loadAssignment);
    if (config.type === 'STRICT_DNS') {
      this.#assignment = config.loadAssignment;
      void this.refreshDns();
      this.#dnsTimer = deps.clock.setInterval(() => void this.refreshDns(), config.dnsRefreshRateMs);
    }
  }

  /** Current hosts (read-only view). */
  get hosts(): readonly Host[] {
    return this.#hosts;
  }

  /** The load assignment in use (undefined before EDS delivered one). */
  get assignment(): LoadAssignment | undefined {
    return this.#assignment;
  }

  /** EDS / inline assignment. Hosts with unchanged address and port keep their state. */
  setAssignment(la: LoadAssignment | undefined): void {
    this.#assignment = la;
    if (this.config.type === 'STRICT_DNS') {
      void this.refreshDns();
      return;
    }
    this.#setHosts(buildHosts(this.config, la, this.#hosts));
  }

  /** STRICT_DNS: resolve every endpoint name now; on failure the previous hosts stay. */
  async refreshDns(): Promise<void> {
    const la = this.#assignment;
    if (la === undefined || this.#closed) return;
    const names = new Set<string>();
    la.priorities.forEach((p) => p.localities.forEach((l) => l.endpoints.forEach((e) => names.add(e.address))));
    const resolved = new Map<string, string[]>();
    try {
      await Promise.all([...names].map(async (n) => resolved.set(n, await this.#deps.resolver(n, this.config.dnsLookupFamily))));
    } catch (err) {
      this.#deps.onDnsError?.(this.name, err);
      return;
    }
    if (this.#closed || la !== this.#assignment) return;
    this.#setHosts(buildHosts(this.config, la, this.#hosts, resolved));
  }

  request(init: UpstreamRequestInit): Promise<UpstreamResponse> {
    return this.#dispatch(init, undefined)!;
  }

  /** `request` answered through `receiver`: no promise per attempt on a pool that can do so (HTTP/1.1). */
  send(init: UpstreamRequestInit, receiver: ResponseReceiver): void {
    void this.#dispatch(init, receiver);
  }

  /** Admission, host choice and the pool; answers through `receiver` when given (then returns undefined). */
  #dispatch(init: UpstreamRequestInit, receiver: ResponseReceiver | undefined): Promise<UpstreamResponse> | undefined {
    if (init.cancel.cancelled) return refuse(init.cancel.reason, receiver);
    const h2 = this.config.protocol === 'http2' || (this.config.protocol === 'downstream' && init.downstreamProtocol === 'http2');
    if (!this.breaker.tryAcquireRequest(!h2)) {
      return refuse(new UpstreamError('UO', `cluster '${this.name}': circuit breaker overflow (max_requests ${this.config.breakers.maxRequests}, max_pending_requests ${this.config.breakers.maxPendingRequests})`), receiver);
    }
    this.stats.upstream_rq_total++;
    const host = this.#pick(init.hashKey, init.previousEndpoints, this.#destination(init), init.hostReselects);
    if (host === undefined) {
      this.breaker.releaseRequest(!h2);
      this.stats.upstream_cx_none_healthy++;
      return refuse(new UpstreamError('UH', `cluster '${this.name}': no healthy upstream`), receiver);
    }
    return this.#send(host, init, h2, receiver);
  }

  /**
   * The pooled response is handed on as it is (no copy per request); the pool reports its head,
   * failure and end to the pool's observer (#observer), which does the bookkeeping below.
   */
  #send(host: Host, init: UpstreamRequestInit, h2: boolean, receiver: ResponseReceiver | undefined): Promise<UpstreamResponse> | undefined {
    host.activeRequests++;
    host.counters.rqTotal++;
    let pool: HostPool;
    try {
      pool = this.#pool(host, h2, this.#autoTls(host, init.authority, init.headers));
    } catch (err) {
      this.#requestFailed(host, h2, err);
      return refuse(err, receiver);
    }
    if (receiver === undefined) return pool.request(init);
    if (pool.send !== undefined) pool.send(init, receiver);
    else answerByPromise(pool.request(init), receiver);
    return undefined;
  }

  /** What a pool for `host` reports per request: one object per pool, none per request. */
  #observer(host: Host, h2: boolean): PoolObserver {
    return {
      onResponseHead: (res: PooledResponse) => {
        countStatus(this.stats, res.status);
        if (res.status >= 500) host.counters.rq5xx++;
        this.#outlier?.record(host, { kind: 'status', status: res.status });
        res.endpoint = host.key;
        if (host.peerPrincipal !== undefined) res.peerPrincipal = host.peerPrincipal;
      },
      onRequestFailed: (err: unknown) => this.#requestFailed(host, h2, err),
      onExchangeDone: () => this.#release(host, h2),
    };
  }

  #release(host: Host, h2: boolean): void {
    host.activeRequests--;
    this.breaker.releaseRequest(!h2);
  }

  #requestFailed(host: Host, h2: boolean, err: unknown): void {
    this.#release(host, h2);
    host.counters.rqError++;
    if (err instanceof UpstreamError) {
      if (err.responseFlag === 'UR') this.stats.upstream_rq_rx_reset++;
      const failure = err.responseFlag === 'UF' ? 'connect' : err.responseFlag === 'UT' ? 'timeout' : 'reset';
      this.#outlier?.record(host, { kind: 'local', failure });
    }
  }

  async connect(init: UpstreamConnectInit): Promise<UpstreamConnection> {
    const host = this.#pick(init.hashKey, undefined, this.#destination(init));
    if (host === undefined) {
      this.stats.upstream_cx_none_healthy++;
      throw new UpstreamError('UH', `cluster '${this.name}': no healthy upstream`);
    }
    if (this.stats.upstream_cx_active >= this.config.breakers.maxConnections) {
      this.stats.upstream_cx_overflow++;
      throw new UpstreamError('UO', `cluster '${this.name}': max_connections ${this.config.breakers.maxConnections} reached`);
    }
    try {
      const auto = init.requestHost === undefined ? undefined : this.#autoTls(host, init.requestHost);
      const socket = await connectHost(host, { timeoutMs: this.config.connectTimeoutMs, secrets: this.#deps.secrets, stats: this.stats, auto, signal: init.signal, family: this.#family() });
      this.#outlier?.record(host, { kind: 'local-success' });
      // The exchange runs only where the cluster asks for it and the server chose its ALPN protocol.
      const alpn = (socket as { alpnProtocol?: string | false }).alpnProtocol;
      const peerExchange = this.config.peerExchange !== undefined && alpn === this.config.peerExchange;
      return { socket, endpoint: host.key, peerPrincipal: host.tls !== undefined ? host.peerPrincipal : undefined, peerExchange };
    } catch (err) {
      this.#outlier?.record(host, { kind: 'local', failure: 'connect' });
      throw err;
    }
  }

  tryAcquireRetry(): boolean {
    return this.breaker.tryAcquireRetry();
  }

  releaseRetry(): void {
    this.breaker.releaseRetry();
  }

  /** Another worker ejected `hostKey`: avoid it here too (no-op without outlier detection). */
  ejectFromPeer(hostKey: string, reason: OutlierReason): void {
    this.#outlier?.ejectFromPeer(hostKey, reason);
  }

  /** Priority loads (for tests and /clusters). */
  priorityLoads(): { priority: number; load: number; panic: boolean }[] {
    return this.#selector.priorityLoads();
  }

  /** Plain data for the admin /clusters endpoint. */
  status(): UpstreamClusterStatus {
    return clusterStatus(this, this.priorityLoads());
  }

  /** Stop timers and drain pools (in-flight requests finish; then connections close). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dnsTimer?.cancel();
    this.#outlier?.close();
    this.#healthChecker?.close();
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.drain()));
  }

  /** Close everything immediately. */
  destroy(): void {
    this.#closed = true;
    this.#dnsTimer?.cancel();
    this.#outlier?.close();
    this.#healthChecker?.close();
    for (const p of this.#pools.values()) p.destroy();
    this.#pools.clear();
  }

  /** Where an ORIGINAL_DST cluster connects: the original destination, or (dynamic forward proxy) the request's authority. */
  #destination(init: { originalDestination?: { address: string; port: number }; authority?: string }): { address: string; port: number } | undefined {
    if (!this.config.dynamicForwardProxy) return init.originalDestination;
    return authorityDestination(init.authority ?? '', this.config.tls !== undefined ? 443 : 80);
  }

  #pick(hashKey: string | number | undefined, avoid: readonly string[] | undefined, dst: { address: string; port: number } | undefined, reselects?: number): Host | undefined {
    // Most requests have no hash key: one shared context for them, not an object per request.
    if (this.config.type !== 'ORIGINAL_DST') return this.#selector.pick(hashKey === undefined ? NO_HASH_KEY : { hashKey }, avoid, reselects);
    if (dst === undefined) return undefined;
    const probe = new Host(dst.address, dst.port, { weight: 1, health: 'HEALTHY', locality: { region: '', zone: '', subZone: '' }, localityWeight: undefined, priority: 0, tls: this.config.tls });
    const existing = this.#hosts.find((h) => h.key === probe.key);
    if (existing !== undefined) return existing;
    const hosts = [...this.#hosts, probe];
    if (hosts.length > maxOriginalDstHosts) {
      const idle = hosts.findIndex((h) => h.activeRequests === 0 && h !== probe);
      if (idle >= 0) hosts.splice(idle, 1);
    }
    this.#setHosts(hosts);
    return probe;
  }

  /** The request's SNI / expected SAN when the cluster has auto_sni / auto_san_validation and the host speaks TLS. */
  #autoTls(host: Host, authority: string, headers?: UpstreamRequestInit['headers']): AutoTlsNames | undefined {
    return host.tls === undefined ? undefined : autoTlsNames(this.config.upstreamHttp, authority, headers);
  }

  #pool(host: Host, h2: boolean, auto: AutoTlsNames | undefined): HostPool {
    // Connections made for one SNI / expected name never carry requests for another (Envoy hashes them into the pool key).
    const autoKey = auto === undefined ? '' : `${auto.sni ?? ''}/${auto.san ?? ''}`;
    // The key of a pool without auto SNI/SAN is the host's own (no string built per request).
    const key = autoKey === '' ? (h2 ? host.h2PoolKey : host.h1PoolKey) : `${h2 ? 'h2' : 'h1'}|${host.key}|${autoKey}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const connect = { timeoutMs: this.config.connectTimeoutMs, secrets: this.#deps.secrets, stats: this.stats, auto, family: this.#family() };
      const observer = this.#observer(host, h2);
      pool = h2
        ? createH2Pool(host, { connect, idleTimeoutMs: this.config.idleTimeoutMs, maxRequestsPerConnection: this.config.maxRequestsPerConnection, observer })
        : createH1Pool(host, { connect, maxConnections: this.config.breakers.maxConnections, idleTimeoutMs: this.config.idleTimeoutMs, maxRequestsPerConnection: this.config.maxRequestsPerConnection, observer });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** LOGICAL_DNS resolves per connection, in the configured family; other types connect to IPs. */
  #family(): 4 | 6 | undefined {
    if (this.config.type !== 'LOGICAL_DNS') return undefined;
    return this.config.dnsLookupFamily === 'V4_ONLY' ? 4 : this.config.dnsLookupFamily === 'V6_ONLY' ? 6 : undefined;
  }

  #setHosts(hosts: Host[]): void {
    const keep = new Set(hosts.map((h) => h.key));
    for (const [key, pool] of this.#pools) {
      if (!keep.has(key.split('|')[1])) {
        this.#pools.delete(key);
        void pool.drain();
      }
    }
    this.#hosts = hosts;
    this.#outlier?.setHosts(hosts);
    this.#healthChecker?.setHosts(hosts);
    this.#selector.setHosts(hosts, this.#selectorOptions(this.#assignment));
    this.#membership();
  }

  #healthChanged(): void {
    this.#selector.invalidate();
    this.#membership();
  }

  #membership(): void {
    this.stats.membership_total = this.#hosts.length;
    this.stats.membership_healthy = this.#hosts.filter((h) => h.available && h.health !== 'DEGRADED').length;
    this.stats.membership_degraded = this.#hosts.filter((h) => h.available && h.health === 'DEGRADED').length;
  }

  #selectorOptions(la: LoadAssignment | undefined): SelectorOptions {
    const c = this.config;
    return {
      factory: lbFactory(c.lbPolicy),
      lb: { random: this.#deps.random, ringHash: c.ringHash, maglevTableSize: c.maglevTableSize, leastRequest: c.leastRequest },
      panicThreshold: c.panicThreshold,
      overprovisioningFactor: la?.overprovisioningFactor ?? 1.4,
      localityWeighted: c.localityWeighted,
      hashPolicy: c.lbPolicy === 'RING_HASH' || c.lbPolicy === 'MAGLEV',
    };
  }
}

/** host[:port] (IPv6 in brackets) -> address and port; undefined when there is no host. */
export function authorityDestination(authority: string, defaultPort: number): { address: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/@\[\]]+))(?::(\d{1,5}))?$/.exec(authority.trim());
  if (m === null) return undefined;
  const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (port < 1 || port > 65535) return undefined;
  return { address: (m[1] ?? m[2]).toLowerCase(), port };
}

const NO_HASH_KEY: PickContext = Object.freeze({ hashKey: undefined });

/** A refused request: a rejected promise, or the receiver told in a microtask (as a rejection's reaction would run). */
function refuse(err: unknown, receiver: ResponseReceiver | undefined): Promise<never> | undefined {
  if (receiver === undefined) return Promise.reject(err);
  queueMicrotask(() => receiver.onUpstreamError(err));
  return undefined;
}

/** A pool without `send` answers `receiver` through its promise (a function of its own: a closure in #send would cost it a context per request). */
function answerByPromise(answer: Promise<UpstreamResponse>, receiver: ResponseReceiver): void {
  answer.then((res) => receiver.onUpstreamResponse(res), (err: unknown) => receiver.onUpstreamError(err));
}
