/**
 * One running `trellis proxy`: the data plane engine fed by the ADS client, plus the admin,
 * health (`/healthz/ready` only after the first complete config is applied) and Prometheus
 * servers. Shutdown (SIGTERM): readiness turns false, listeners stop accepting, in-flight requests
 * finish (bounded by the drain timeout), then everything closes.
 */
import type { NodeJson } from '../xds/ads-wire.ts';
import { TypeUrl, type XdsTypeUrl } from '../xds/types.ts';
import { AdsClient } from './xds-client/ads-client.ts';
import type { DataPlane } from './data-plane.ts';
import { startAdminServers, type AdminPorts, type AdminSource } from './admin/admin-server.ts';
import type { AppProbe } from './admin/app-probes.ts';
import type { AppMetricsTarget } from './admin/app-metrics.ts';
import { RateLimitedLog } from './rate-limited-log.ts';
import { buildConfigDump } from './config-dump.ts';
import type { IdentityAgent, IdentityAgentOptions } from './tls/identity-agent.ts';
import { renderFamilies } from '../telemetry/metric-store.ts';
import { telemetryOptions } from './telemetry-options.ts';

export type ProxyLogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ProxyOptions {
  /** `host:port` of the control plane's ADS server. */
  xdsAddress: string;
  node: NodeJson;
  adminPort: number;
  healthPort: number;
  prometheusPort: number;
  /** Istio's status port (app probes through the proxy); negative or absent = off. */
  statusPort?: number;
  /** Original HTTP probes by `/app-health/...` path (from the injector). */
  appProbes?: ReadonlyMap<string, AppProbe>;
  /** The app's metrics to merge into the status port's /stats/prometheus. */
  appMetrics?: AppMetricsTarget;
  adminHost?: string;
  drainTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  setLogLevel?: (level: string) => boolean;
  logLevel?: () => string;
  /** Called by POST /quitquitquit. */
  onQuit?: () => void;
  /** Worker processes sharing the listeners; 1 (default) serves in this process. */
  concurrency?: number;
  /** The workload identity: certificate from the mesh CA (secret `default`); none without it. */
  identity?: IdentityAgentOptions;
}

export interface RunningProxy {
  readonly ports: AdminPorts;
  /** The in-process data plane (undefined with concurrency > 1: workers hold theirs). */
  readonly dataPlane: DataPlane | undefined;
  readonly ads: AdsClient;
  /** The workload identity agent, when the proxy has an identity. */
  readonly identity: IdentityAgent | undefined;
  /** Resolves once the first complete config is applied. */
  readonly ready: Promise<void>;
  /** Drain and stop everything. */
  shutdown(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const drainMs = opts.drainTimeoutMs ?? 5_000;
  // Each part is imported only when this proxy uses it: with workers the primary holds no data
  // plane (the workers do), and without an identity no CA client (grpc service, key generation).
  const workers = (opts.concurrency ?? 1) > 1 ? await (await import('./workers.ts')).WorkerPool.start(opts.concurrency!, opts.log) : undefined;
  const dataPlane = workers ? undefined : new (await import('./data-plane.ts')).DataPlane({ drainTimeoutMs: opts.drainTimeoutMs, log: opts.log, telemetry: telemetryOptions(opts.node, opts.identity?.spiffeId) });
  const engine = workers ?? dataPlane!;
  const identity = opts.identity !== undefined ? new (await import('./tls/identity-agent.ts')).IdentityAgent({ ...opts.identity, log: opts.identity.log ?? opts.log }) : undefined;
  const applier = identity !== undefined ? new (await import('./tls/local-secrets.ts')).LocalSecretsApplier(engine, identity) : engine;
  const ads = new AdsClient({ address: opts.xdsAddress, node: opts.node, applier, log: opts.log });
  let shuttingDown = false;
  const started = Date.now();
  const source: AdminSource = {
    // Ready once configured and, with an identity, holding a certificate (so no first request fails mTLS).
    ready: () => ads.isReady && !shuttingDown && (identity === undefined || identity.current !== undefined),
    configDump: ({ includeEds }) => buildConfigDump(opts.node, ads.state, { includeEds }),
    clusters: () => (workers ? workers.clusters() : dataPlane!.clusterView()),
    stats: async () => [
      ...(workers ? await workers.stats() : dataPlane!.stats()),
      { name: 'server.live', value: shuttingDown ? 0 : 1, type: 'gauge' },
      { name: 'server.uptime', value: Math.floor((Date.now() - started) / 1000), type: 'gauge' },
      { name: 'server.concurrency', value: opts.concurrency ?? 1, type: 'gauge' },
      { name: 'control_plane.connected_state', value: ads.connected ? 1 : 0, type: 'gauge' },
      // Istio's proxies reach istiod through the `xds-grpc` cluster; the pilot dashboard counts them by it.
      { name: 'cluster.xds-grpc.upstream_cx_active', value: ads.connected ? 1 : 0, type: 'gauge', family: 'cluster.upstream_cx_active', labels: { cluster_name: 'xds-grpc' } },
      ...xdsUpdateStats(ads),
      ...certificateStats(identity),
    ],
    prometheusExtra: async () => renderFamilies(workers ? await workers.istioMetrics() : dataPlane!.istioMetrics()),
    setLogLevel: (l) => opts.setLogLevel?.(l) ?? false,
    logLevel: () => opts.logLevel?.() ?? 'info',
    drainListeners: async () => {
      if (workers) await workers.shutdown(drainMs);
      else await dataPlane!.listeners.drainAll(drainMs);
    },
    quit: () => opts.onQuit?.(),
    info: () => ({
      version: 'trellis/0.1.0',
      state: shuttingDown ? 'DRAINING' : ads.isReady ? 'LIVE' : 'PRE_INITIALIZING',
      uptime_current_epoch: `${Math.floor((Date.now() - started) / 1000)}s`,
      concurrency: opts.concurrency ?? 1,
      node: opts.node,
      control_plane: { address: opts.xdsAddress, connected: ads.connected },
    }),
  };
  const appMetricsLog = new RateLimitedLog(opts.log);
  const admin = await startAdminServers(source, {
    host: opts.adminHost,
    adminPort: opts.adminPort,
    healthPort: opts.healthPort,
    prometheusPort: opts.prometheusPort,
    statusPort: opts.statusPort,
    appProbes: opts.appProbes,
    ...(opts.appMetrics !== undefined ? { appMetrics: opts.appMetrics, onAppMetricsFailure: (reason: string) => appMetricsLog.event('APP_METRICS_SCRAPE_FAILED', 'warn', `app metrics not merged: ${reason}`) } : {}),
  });
  identity?.start();
  ads.start();
  return {
    ports: admin.ports,
    dataPlane,
    ads,
    identity,
    ready: identity === undefined ? ads.ready : Promise.all([ads.ready, identity.ready]).then(() => undefined),
    async shutdown() {
      if (shuttingDown) return;
      shuttingDown = true;
      // Stop taking config first: nothing changes under a draining proxy, and no NACK is sent
      // for an update that shutdown interrupted.
      ads.stop();
      identity?.stop();
      if (workers) await workers.shutdown(drainMs);
      else await dataPlane!.shutdown();
      await admin.close();
    },
  };
}

/** Envoy's xDS update counters (cluster_manager.cds.*, listener_manager.lds.*). */
function xdsUpdateStats(ads: AdsClient): import('./admin/stats-format.ts').Stat[] {
  const out: import('./admin/stats-format.ts').Stat[] = [];
  const names: [string, string][] = [[TypeUrl.Cluster, 'cluster_manager.cds'], [TypeUrl.Listener, 'listener_manager.lds']];
  for (const [typeUrl, prefix] of names) {
    const c = ads.updates.get(typeUrl as XdsTypeUrl) ?? { success: 0, rejected: 0 };
    out.push({ name: `${prefix}.update_success`, value: c.success, type: 'counter' }, { name: `${prefix}.update_rejected`, value: c.rejected, type: 'counter' });
  }
  return out;
}

/** Envoy's certificate expiry gauge plus the workload certificate's own numbers (admin stats, Prometheus). */
function certificateStats(identity: IdentityAgent | undefined): import('./admin/stats-format.ts').Stat[] {
  if (identity === undefined) return [];
  const c = identity.current;
  const left = c === undefined ? 0 : Math.max(0, (c.notAfter - Date.now()) / 1000);
  return [
    { name: 'server.days_until_first_cert_expiring', value: Math.floor(left / 86_400), type: 'gauge' },
    { name: 'server.seconds_until_first_cert_expiring', value: Math.floor(left), type: 'gauge' },
    { name: 'workload_cert.expiry_timestamp_seconds', value: c === undefined ? 0 : Math.floor(c.notAfter / 1000), type: 'gauge' },
    { name: 'workload_cert.renewals', value: identity.stats.renewals, type: 'counter' },
    { name: 'workload_cert.renewal_failures', value: identity.stats.failures, type: 'counter' },
  ];
}
