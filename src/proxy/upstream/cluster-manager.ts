/**
 * The proxy's cluster manager: applies CDS + EDS updates atomically and hands the router a
 * `ClusterHandle` by name. An update is validated completely first (any invalid Cluster or
 * ClusterLoadAssignment throws TrellisError('XDS_INVALID') naming resource and field, and nothing
 * changes, so the xDS client can NACK); then unchanged clusters keep their hosts, pools and outlier
 * state, changed ones are rebuilt, removed ones drain. `status()` and `stats()` are plain data
 * for the admin endpoints.
 */
import { TrellisError } from '../../errors.ts';
import type { XdsJson } from '../../xds/types.ts';
import { noSecrets, type SecretProvider } from '../tls/secret-provider.ts';
import { Cluster } from './cluster.ts';
import { parseCluster, type ClusterConfig } from './cluster-config.ts';
import { realClock, type Clock } from './clock.ts';
import { systemResolver, type Resolver } from './dns.ts';
import { parseLoadAssignment, type LoadAssignment } from './load-assignment.ts';
import type { UpstreamClusterStatus } from './cluster-status.ts';
import type { ClusterStats } from './stats.ts';
import type { ClusterHandle, ClusterManager } from './types.ts';
import type { BreakerCounts } from './breaker-counts.ts';
import type { OutlierReason } from './outlier-detector.ts';
import type { HostCountsProvider } from './outlier-counts.ts';

/** Injectable dependencies; every one has a production default. */
export interface ClusterManagerOptions {
  clock?: Clock;
  random?: () => number;
  secrets?: SecretProvider;
  resolver?: Resolver;
  onDnsError?: (cluster: string, err: unknown) => void;
  /** Breaker counts shared by the proxy's workers, by cluster name (worker processes only). */
  breakerCounts?: (cluster: string) => BreakerCounts | undefined;
  /** An ejection outlier detection enforced here (worker processes announce it to the others). */
  onOutlierEjection?: (cluster: string, hostKey: string, reason: OutlierReason) => void;
  /** Consecutive outlier counters shared by the proxy's workers, by cluster name (worker processes only). */
  outlierCounts?: (cluster: string) => HostCountsProvider | undefined;
}

/** The cluster manager the proxy assembles (a `ClusterManager` plus update and admin views). */
export interface UpstreamClusterManager extends ClusterManager {
  /**
   * Apply the full set of clusters (SotW CDS) and the load assignments received so far, keyed by
   * ClusterLoadAssignment name (the cluster's eds service name). An EDS cluster whose assignment is
   * absent from `assignments` keeps its previous one. Throws XDS_INVALID before changing anything.
   */
  update(clusters: readonly XdsJson[], assignments: ReadonlyMap<string, XdsJson>): void;
  /** Apply EDS updates only (assignments keyed by name). Throws XDS_INVALID before changing anything. */
  updateAssignments(assignments: ReadonlyMap<string, XdsJson>): void;
  get(name: string): ClusterHandle | undefined;
  /** Another worker's outlier detection ejected `hostKey` of `cluster`: avoid it here too. */
  ejectFromPeer(cluster: string, hostKey: string, reason: OutlierReason): void;
  /** Names of the current clusters. */
  names(): string[];
  /** Plain data per cluster for /clusters. */
  status(): UpstreamClusterStatus[];
  /** Stats per cluster name (live objects: read, do not write). */
  stats(): ReadonlyMap<string, Readonly<ClusterStats>>;
  /** Drain and close every cluster. */
  close(): Promise<void>;
}

interface Entry {
  cluster: Cluster;
  sourceKey: string;
  assignmentKey: string | undefined;
}

/** Creates a cluster manager with no clusters. */
export function createClusterManager(opts: ClusterManagerOptions = {}): UpstreamClusterManager {
  const deps = {
    clock: opts.clock ?? realClock,
    random: opts.random ?? Math.random,
    secrets: opts.secrets ?? noSecrets,
    resolver: opts.resolver ?? systemResolver,
    onDnsError: opts.onDnsError,
    breakerCounts: opts.breakerCounts,
    onOutlierEjection: opts.onOutlierEjection,
    outlierCounts: opts.outlierCounts,
  };
  let entries = new Map<string, Entry>();

  function parseAssignments(assignments: ReadonlyMap<string, XdsJson>): Map<string, { la: LoadAssignment; key: string }> {
    const out = new Map<string, { la: LoadAssignment; key: string }>();
    for (const [name, json] of assignments) {
      if (json === null || typeof json !== 'object') throw new TrellisError('XDS_INVALID', `cluster load assignment '${name}': expected an object`, { context: { resource: name } });
      out.set(name, { la: parseLoadAssignment(json, `cluster load assignment '${name}'`), key: JSON.stringify(json) });
    }
    return out;
  }

  function applyAssignment(e: Entry, parsed: Map<string, { la: LoadAssignment; key: string }>): void {
    if (e.cluster.config.type !== 'EDS') return;
    const a = parsed.get(e.cluster.config.edsServiceName);
    if (a === undefined || a.key === e.assignmentKey) return;
    e.assignmentKey = a.key;
    e.cluster.setAssignment(a.la);
  }

  return {
    update(clusters, assignments) {
      // Validate everything before touching anything.
      const configs: ClusterConfig[] = [];
      const names = new Set<string>();
      for (const json of clusters) {
        const cfg = parseCluster(json);
        if (names.has(cfg.name)) throw new TrellisError('XDS_INVALID', `cluster '${cfg.name}': duplicate cluster name`, { context: { resource: cfg.name } });
        names.add(cfg.name);
        configs.push(cfg);
      }
      const parsed = parseAssignments(assignments);
      const next = new Map<string, Entry>();
      for (const cfg of configs) {
        const sourceKey = JSON.stringify(cfg.source);
        const old = entries.get(cfg.name);
        if (old !== undefined && old.sourceKey === sourceKey) {
          next.set(cfg.name, old);
          applyAssignment(old, parsed);
          continue;
        }
        const e: Entry = { cluster: new Cluster(cfg, deps), sourceKey, assignmentKey: undefined };
        if (old !== undefined && cfg.type === 'EDS' && !parsed.has(cfg.edsServiceName) && old.cluster.config.type === 'EDS') {
          // A changed EDS cluster keeps serving its last assignment until EDS sends a new one (Envoy warming).
          const last = old.cluster.assignment;
          if (last !== undefined) {
            e.cluster.setAssignment(last);
            e.assignmentKey = old.assignmentKey;
          }
        }
        applyAssignment(e, parsed);
        next.set(cfg.name, e);
      }
      for (const [name, old] of entries) {
        if (next.get(name) !== old) void old.cluster.close();
      }
      entries = next;
    },
    updateAssignments(assignments) {
      const parsed = parseAssignments(assignments);
      for (const e of entries.values()) {
        applyAssignment(e, parsed);
      }
    },
    get(name) {
      return entries.get(name)?.cluster;
    },
    ejectFromPeer(cluster, hostKey, reason) {
      entries.get(cluster)?.cluster.ejectFromPeer(hostKey, reason);
    },
    names() {
      return [...entries.keys()];
    },
    status() {
      return [...entries.values()].map((e) => e.cluster.status());
    },
    stats() {
      return new Map([...entries].map(([n, e]) => [n, e.cluster.stats]));
    },
    async close() {
      const all = [...entries.values()];
      entries = new Map();
      await Promise.all(all.map((e) => e.cluster.close()));
    },
  };
}
