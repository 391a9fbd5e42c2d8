/**
 * The data plane engine of one proxy process: cluster manager, route tables (RDS), listener
 * manager with HTTP connection managers, and the `ConfigApplier` the xDS client feeds. Each xDS
 * type is validated completely before any of it is applied (Rule 1 of DESIGN.md: bad config is
 * NACKed, the old config keeps serving). Route tables are looked up per request by name, so RDS
 * updates never touch listeners or connections; unchanged clusters keep their pools.
 */
import type { XdsJson, XdsTypeUrl } from '../xds/types.ts';
import { TypeUrl } from '../xds/types.ts';
import { TrellisError, describeError } from '../errors.ts';
import type { ConfigApplier } from './xds-client/ads-client.ts';
import { createClusterManager, type UpstreamClusterManager } from './upstream/cluster-manager.ts';
import type { BreakerCounts } from './upstream/breaker-counts.ts';
import type { OutlierReason } from './upstream/outlier-detector.ts';
import type { HostCountsProvider } from './upstream/outlier-counts.ts';
import { ListenerManager } from './listener/listener-manager.ts';
import type { HttpConnectionHandler } from './listener/listener-config.ts';
import { createConnectionManager, type RouteProvider } from './http/connection-manager.ts';
import { compileRouteConfiguration, type CompiledRouteTable } from './router/route-table.ts';
import { defaultFilterRegistry, type FilterRegistry } from './filters/registry.ts';
import type { SecretProvider } from './tls/secret-provider.ts';
import { createSdsSecrets, type SdsSecrets } from './tls/sds-secrets.ts';
import { HttpStats } from './http-stats.ts';
import { MtlsStats } from './tls/mtls-stats.ts';
import { requestEndChannel } from './http/stream-info.ts';
import { originalDestination } from './listener/original-dst.ts';
import type { Stat } from './admin/stats-format.ts';
import { ProxyTelemetry, type ProxyTelemetryOptions } from './istio-telemetry.ts';
import { istioStatsFilter } from './filters/istio-stats.ts';
import { istioTcpMeter } from './tcp/istio-tcp-meter.ts';
import type { ExportedFamily } from '../telemetry/metric-store.ts';
import { HttpTracer, type TracerIdentity } from './tracing/http-tracer.ts';
import { ProxySpanSinks } from './tracing/proxy-span-sinks.ts';
import { LogFiles } from './access-log/log-files.ts';
import { AccessLogs } from './access-log/access-logs.ts';
import { tcpAccessLogMeter } from './access-log/tcp-access-log.ts';
import type { TcpProxyConfig } from './tcp/tcp-proxy.ts';

export interface DataPlaneOptions {
  /** Connections still open this long after their listener changed (or on shutdown) are closed. */
  drainTimeoutMs?: number;
  sniffTimeoutMs?: number;
  secrets?: SecretProvider;
  filterRegistry?: FilterRegistry;
  originalDestination?: ConstructorParameters<typeof ListenerManager>[0]['originalDestination'];
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
  /** Bind listeners with SO_REUSEPORT (worker processes sharing ports). */
  reusePort?: boolean;
  /** Worker processes: circuit-breaker counts shared with the other workers, by cluster name. */
  breakerCounts?: (cluster: string) => BreakerCounts | undefined;
  /** Worker processes: an outlier ejection enforced here, to announce to the other workers. */
  onOutlierEjection?: (cluster: string, hostKey: string, reason: OutlierReason) => void;
  /** Worker processes: consecutive outlier counters shared with the other workers, by cluster name. */
  outlierCounts?: (cluster: string) => HostCountsProvider | undefined;
  /** Who this proxy is, for Istio's metrics and metadata exchange (node metadata, id, principal). */
  telemetry?: ProxyTelemetryOptions;
}

export class DataPlane implements ConfigApplier {
  readonly clusters: UpstreamClusterManager;
  readonly listeners: ListenerManager;
  readonly httpStats = new HttpStats();
  readonly mtlsStats = new MtlsStats();
  /** Istio's standard metrics of this data plane. */
  readonly telemetry: ProxyTelemetry;
  /** Span queues of every tracing provider this proxy's connection managers use. */
  readonly spanSinks: ProxySpanSinks;
  /** Access-log files (`access_log` of connection managers). */
  readonly logFiles = new LogFiles();
  /** TLS material received by SDS (unless a fixed provider was given). */
  readonly secrets: SdsSecrets | undefined;
  readonly #routes = new Map<string, CompiledRouteTable>();
  readonly #registry: FilterRegistry;
  #assignments = new Map<string, XdsJson>();
  #clusterJson: XdsJson[] = [];
  readonly #drainTimeoutMs: number;
  readonly #tcpLogs = new WeakMap<TcpProxyConfig, AccessLogs>();

  constructor(opts: DataPlaneOptions = {}) {
    this.secrets = opts.secrets === undefined ? createSdsSecrets() : undefined;
    const secrets: SecretProvider = opts.secrets ?? this.secrets!;
    this.telemetry = new ProxyTelemetry(opts.telemetry);
    this.#registry = opts.filterRegistry ?? defaultFilterRegistry().register(istioStatsFilter(this.telemetry));
    this.#drainTimeoutMs = opts.drainTimeoutMs ?? 5_000;
    this.clusters = createClusterManager({ secrets, random: opts.random, breakerCounts: opts.breakerCounts, onOutlierEjection: opts.onOutlierEjection, outlierCounts: opts.outlierCounts });
    this.spanSinks = new ProxySpanSinks((cluster) => this.#healthyHosts(cluster));
    const local = this.telemetry.local;
    const tracerIdentity: TracerIdentity = {
      nodeId: this.telemetry.nodeId,
      // Istio names a proxy's traces `<canonical service>.<namespace>`.
      serviceName: `${local.canonicalService}.${local.namespace}`,
      zone: '',
    };
    const routeProvider: RouteProvider = { get: (name) => this.#routes.get(name) };
    this.listeners = new ListenerManager({
      clusters: this.clusters,
      secrets,
      sniffTimeoutMs: opts.sniffTimeoutMs,
      reusePort: opts.reusePort,
      drainTimeoutMs: this.#drainTimeoutMs,
      originalDestination: opts.originalDestination ?? originalDestination,
      log: opts.log,
      random: opts.random,
      peerExchangePrefix: this.telemetry.peerExchangePrefix,
      tcpMeter: (listener, cluster, downstream, tcp) => {
        const istio = istioTcpMeter(this.telemetry, listener.trafficDirection, cluster, downstream);
        const logs = this.#tcpAccessLogs(tcp);
        return logs === undefined ? istio : tcpAccessLogMeter(logs, istio, downstream, cluster, tcp.statPrefix);
      },
      hcmFactory: (json, at, direction, listenerMetadata): HttpConnectionHandler => {
        const hcm = createConnectionManager({
          listenerMetadata,
          config: json,
          clusterManager: this.clusters,
          routeProvider,
          filterRegistry: this.#registry,
          random: opts.random,
          path: at,
          tracerFactory: (cfg) => new HttpTracer(cfg, direction, tracerIdentity, this.spanSinks, opts.random ?? Math.random),
          logFiles: this.logFiles,
          counters: (prefix) => this.httpStats.countersFor(prefix),
          log: opts.log,
        });
        return {
          handleConnection: (socket, protocol, meta) => hcm.handleConnection(socket, protocol, meta),
          shutdown: (graceMs) => void hcm.close(graceMs),
          close: () => void hcm.close(0),
        };
      },
    });
    this.httpStats.subscribe();
    requestEndChannel.subscribe(this.mtlsStats.listener);
  }

  /** A TCP proxy's compiled `access_log` (once per config object; validated when the listener was compiled). */
  #tcpAccessLogs(tcp: TcpProxyConfig): AccessLogs | undefined {
    if (tcp.accessLog === undefined) return undefined;
    let logs = this.#tcpLogs.get(tcp);
    if (logs === undefined) {
      logs = AccessLogs.parse(tcp.accessLog, 'access_log', this.logFiles)!;
      this.#tcpLogs.set(tcp, logs);
    }
    return logs;
  }

  #healthyHosts(cluster: string): string[] {
    const c = this.clusters.status().find((x) => x.name === cluster);
    return c === undefined ? [] : c.hosts.filter((h) => !h.ejected && h.healthStatus !== 'UNHEALTHY').map((h) => h.address);
  }

  /** Route table names currently known. */
  routeNames(): string[] {
    return [...this.#routes.keys()];
  }

  async apply(typeUrl: XdsTypeUrl, resources: ReadonlyMap<string, XdsJson>): Promise<void> {
    switch (typeUrl) {
      case TypeUrl.Cluster: {
        const list = [...resources.values()];
        this.clusters.update(list, this.#assignments);
        this.#clusterJson = list;
        this.telemetry.updateClusters(list);
        return;
      }
      case TypeUrl.ClusterLoadAssignment: {
        this.clusters.updateAssignments(resources);
        this.#assignments = new Map(resources);
        return;
      }
      case TypeUrl.Listener:
        await this.listeners.apply(resources);
        return;
      case TypeUrl.RouteConfiguration: {
        const compiled = new Map<string, CompiledRouteTable>();
        const errors: string[] = [];
        for (const [name, json] of resources) {
          try {
            compiled.set(name, compileRouteConfiguration(json, this.#registry, `route_configuration '${name}'`));
          } catch (err) {
            errors.push(describeError(err));
          }
        }
        if (errors.length > 0) throw new TrellisError('XDS_INVALID', errors.join('; '));
        for (const name of [...this.#routes.keys()]) if (!compiled.has(name)) this.#routes.delete(name);
        for (const [name, table] of compiled) this.#routes.set(name, table);
        return;
      }
      case TypeUrl.Secret:
        if (this.secrets === undefined) throw new TrellisError('XDS_UNSUPPORTED_TYPE', 'this proxy uses fixed TLS material, not SDS');
        this.secrets.update(resources);
        return;
      default:
        throw new TrellisError('XDS_UNSUPPORTED_TYPE', `unsupported resource type ${typeUrl}`);
    }
  }

  /** Clusters and hosts for the admin `/clusters` endpoint. */
  clusterView(): import('./admin/admin-server.ts').ClusterStatus[] {
    return this.clusters.status().map((c) => ({
      name: c.name,
      hosts: c.hosts.map((h) => ({
        address: h.address,
        healthy: !h.ejected && h.healthStatus !== 'UNHEALTHY',
        flags: [...(h.ejected ? ['/failed_outlier_check'] : []), ...(h.healthStatus === 'UNHEALTHY' ? ['/failed_eds_health'] : [])],
        weight: h.weight,
        activeRequests: h.activeRequests,
        stats: { ...h.counters } as Record<string, number>,
      })),
    }));
  }

  /** Stats in Envoy's naming, for /stats and /stats/prometheus. */
  stats(): Stat[] {
    const out: Stat[] = [];
    for (const [name, s] of this.clusters.stats()) {
      for (const [k, v] of Object.entries(s)) {
        out.push({ name: `cluster.${name}.${k}`, value: v, type: k.endsWith('_active') || k.startsWith('membership') ? 'gauge' : 'counter', family: `cluster.${k}`, labels: { cluster_name: name } });
      }
    }
    for (const l of this.listeners.list()) {
      const prefix = `listener.${l.address}`;
      const labels = { envoy_listener_address: l.address };
      out.push({ name: `${prefix}.downstream_cx_total`, value: l.stats.downstreamCxTotal, type: 'counter', family: 'listener.downstream_cx_total', labels });
      out.push({ name: `${prefix}.downstream_cx_active`, value: l.stats.downstreamCxActive, type: 'gauge', family: 'listener.downstream_cx_active', labels });
      out.push({ name: `${prefix}.no_filter_chain_match`, value: l.stats.noFilterChainMatch, type: 'counter', family: 'listener.no_filter_chain_match', labels });
      out.push({ name: `${prefix}.server_ssl_socket_factory.ssl_handshake_error`, value: l.stats.tlsHandshakeFailures, type: 'counter', family: 'listener.ssl_handshake_error', labels });
    }
    const spans = this.spanSinks.stats();
    const logs = this.logFiles.stats();
    out.push({ name: 'access_log.lines_written', value: logs.written, type: 'counter' }, { name: 'access_log.lines_dropped', value: logs.dropped, type: 'counter' });
    out.push({ name: 'tracing.spans_sent', value: spans.sent, type: 'counter' }, { name: 'tracing.spans_dropped', value: spans.dropped, type: 'counter' }, { name: 'tracing.export_failures', value: spans.failedExports, type: 'counter' });
    out.push(...this.httpStats.stats());
    out.push(...this.mtlsStats.stats());
    return out;
  }

  /** Istio's standard metric families (istio_requests_total, ...), for /stats/prometheus. */
  istioMetrics(): ExportedFamily[] {
    return this.telemetry.families.store.export();
  }

  /** Stops accepting, drains connections (bounded), closes pools. */
  async shutdown(timeoutMs = this.#drainTimeoutMs): Promise<void> {
    await this.listeners.drainAll(timeoutMs);
    await this.spanSinks.close();
    this.logFiles.close();
    this.httpStats.unsubscribe();
    requestEndChannel.unsubscribe(this.mtlsStats.listener);
    await this.clusters.close();
  }
}
