/**
 * The plain-data view of a cluster for the admin `/clusters` endpoint and tests: per host its
 * address, priority, locality, weight, configured health, outlier ejection state, active requests
 * and connections and counters (with Envoy's health_flags wording), plus the cluster's stats,
 * circuit breaker thresholds and priority loads.
 */
import type { BreakerThresholds, DiscoveryType, LbPolicy } from './cluster-config.ts';
import type { HostCounters } from './host.ts';
import type { HealthStatus, Locality } from './load-assignment.ts';
import type { ClusterStats } from './stats.ts';
import type { Host } from './host.ts';

export interface UpstreamHostStatus {
  readonly address: string;
  readonly priority: number;
  readonly locality: Locality;
  readonly weight: number;
  readonly healthStatus: HealthStatus;
  /** Envoy's /clusters health_flags: healthy, /failed_eds_health, /failed_outlier_check, /eds_status_draining, /degraded_eds_health. */
  readonly healthFlags: string;
  readonly ejected: boolean;
  readonly ejectedUntil: number | undefined;
  readonly numEjections: number;
  readonly lastEjectionReason: string | undefined;
  readonly activeRequests: number;
  readonly activeConnections: number;
  readonly counters: Readonly<HostCounters>;
}

export interface UpstreamClusterStatus {
  readonly name: string;
  readonly type: DiscoveryType;
  readonly lbPolicy: LbPolicy;
  readonly stats: Readonly<ClusterStats>;
  readonly circuitBreakers: BreakerThresholds;
  readonly priorities: readonly { priority: number; load: number; panic: boolean }[];
  readonly hosts: readonly UpstreamHostStatus[];
}

function flags(h: Host): string {
  const f: string[] = [];
  if (h.health === 'UNHEALTHY' || h.health === 'TIMEOUT') f.push('/failed_eds_health');
  if (h.health === 'DRAINING') f.push('/eds_status_draining');
  if (h.health === 'DEGRADED') f.push('/degraded_eds_health');
  if (h.activeHcFailed) f.push('/failed_active_hc');
  if (h.ejected) f.push('/failed_outlier_check');
  return f.length === 0 ? 'healthy' : f.join('');
}

/** The status of a cluster-like object, as plain data (for /clusters and tests). */
export function clusterStatus(
  c: { name: string; config: { type: DiscoveryType; lbPolicy: LbPolicy; breakers: BreakerThresholds }; stats: ClusterStats; hosts: readonly Host[] },
  priorities: { priority: number; load: number; panic: boolean }[],
): UpstreamClusterStatus {
  return {
    name: c.name,
    type: c.config.type,
    lbPolicy: c.config.lbPolicy,
    stats: { ...c.stats },
    circuitBreakers: c.config.breakers,
    priorities,
    hosts: c.hosts.map((h) => ({
      address: h.key,
      priority: h.priority,
      locality: h.locality,
      weight: h.weight,
      healthStatus: h.health,
      healthFlags: flags(h),
      ejected: h.ejected,
      ejectedUntil: h.ejected ? h.ejectedUntil : undefined,
      numEjections: h.numEjections,
      lastEjectionReason: h.lastEjectionReason,
      activeRequests: h.activeRequests,
      activeConnections: h.activeConnections,
      counters: { ...h.counters },
    })),
  };
}
