/**
 * A `Host` is one upstream endpoint with its live state: configured health, outlier ejection,
 * requests in flight, per-host counters. Hosts survive config updates when their address, port and
 * priority stay the same (so outlier state and pools are kept), which is why the mutable parts
 * live here and the configured parts are replaced by `update()`.
 */
import type { UpstreamTlsConfig } from '../tls/upstream-tls-config.ts';
import type { HealthStatus, Locality } from './load-assignment.ts';
import type { LbHost } from './lb/types.ts';

/** Per-host counters (plain data for /clusters). */
export interface HostCounters {
  rqTotal: number;
  rqSuccess: number;
  rqError: number;
  rq5xx: number;
  cxConnectFail: number;
  cxTotal: number;
}

/** `address:port`, IPv6 literals bracketed so the result is always a valid authority. */
export function endpointKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A live upstream endpoint. */
export class Host implements LbHost {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  weight: number;
  health: HealthStatus;
  locality: Locality;
  /** The locality's load_balancing_weight (undefined = unset: no traffic under locality-weighted LB). */
  localityWeight: number | undefined;
  priority: number;
  /** Chosen from transport_socket_matches (or the cluster's socket); undefined = plaintext. */
  tls: UpstreamTlsConfig | undefined;
  activeRequests = 0;
  activeConnections = 0;
  /** The SPIFFE id the host's TLS certificate proved on the last verified connection (mTLS), else undefined. */
  peerPrincipal: string | undefined;
  /** Outlier detection: ejected until this time (ms), 0 when not ejected. */
  ejectedUntil = 0;
  ejected = false;
  /** Active health checking marked it failed (/failed_active_hc). */
  activeHcFailed = false;
  /** Active health checking has not seen it pass yet (/pending_active_hc). */
  activeHcNeverPassed = true;
  numEjections = 0;
  lastEjectionReason: string | undefined;
  readonly counters: HostCounters = { rqTotal: 0, rqSuccess: 0, rqError: 0, rq5xx: 0, cxConnectFail: 0, cxTotal: 0 };
  #h1PoolKey: string | undefined;
  #h2PoolKey: string | undefined;

  constructor(address: string, port: number, init: { weight: number; health: HealthStatus; locality: Locality; localityWeight: number | undefined; priority: number; tls: UpstreamTlsConfig | undefined }) {
    this.address = address;
    this.port = port;
    this.key = endpointKey(address, port);
    this.weight = init.weight;
    this.health = init.health;
    this.locality = init.locality;
    this.localityWeight = init.localityWeight;
    this.priority = init.priority;
    this.tls = init.tls;
  }
  /** The cluster's key for this host's HTTP/1.1 pool without auto SNI/SAN (made once, not per request). */
  get h1PoolKey(): string {
    return this.#h1PoolKey ??= `h1|${this.key}|`;
  }

  /** The same for its HTTP/2 pool. */
  get h2PoolKey(): string {
    return this.#h2PoolKey ??= `h2|${this.key}|`;
  }


  /** Eligible for traffic outside panic: configured health allows it and not ejected (DEGRADED counts as available). */
  get available(): boolean {
    return !this.ejected && !this.activeHcFailed && (this.health === 'UNKNOWN' || this.health === 'HEALTHY' || this.health === 'DEGRADED');
  }
}
