/**
 * One running `trellis proxy`: the data plane engine fed by the ADS client, plus the admin,
 * health (`/healthz/ready` only after the first complete config is applied) and Prometheus
 * servers. Shutdown (SIGTERM): readiness turns false, listeners stop accepting, in-flight requests
 * finish (bounded by the drain timeout), then everything closes.
 */
import type { NodeJson } from '../xds/ads-wire.ts';
import { AdsClient } from './xds/ads-client.ts';
import { DataPlane } from './data-plane.ts';
import { startAdminServers, type AdminPorts, type AdminSource } from './admin/admin-server.ts';
import { buildConfigDump } from './config-dump.ts';

export type ProxyLogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ProxyOptions {
  /** `host:port` of the control plane's ADS server. */
  xdsAddress: string;
  node: NodeJson;
  adminPort: number;
  healthPort: number;
  prometheusPort: number;
  adminHost?: string;
  drainTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  setLogLevel?: (level: string) => boolean;
  logLevel?: () => string;
  /** Called by POST /quitquitquit. */
  onQuit?: () => void;
}

export interface RunningProxy {
  readonly ports: AdminPorts;
  readonly dataPlane: DataPlane;
  readonly ads: AdsClient;
  /** Resolves once the first complete config is applied. */
  readonly ready: Promise<void>;
  /** Drain and stop everything. */
  shutdown(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const dataPlane = new DataPlane({ drainTimeoutMs: opts.drainTimeoutMs, log: opts.log });
  const ads = new AdsClient({ address: opts.xdsAddress, node: opts.node, applier: dataPlane, log: opts.log });
  let shuttingDown = false;
  const started = Date.now();
  const source: AdminSource = {
    ready: () => ads.isReady && !shuttingDown,
    configDump: ({ includeEds }) => buildConfigDump(opts.node, ads.state, { includeEds }),
    clusters: () =>
      dataPlane.clusters.snapshot().map((c) => ({
        name: c.name,
        hosts: c.hosts.map((h) => ({
          address: h.address,
          healthy: !h.ejected && h.healthStatus !== 'UNHEALTHY',
          flags: [...(h.ejected ? ['/failed_outlier_check'] : []), ...(h.healthStatus === 'UNHEALTHY' ? ['/failed_eds_health'] : [])],
          weight: h.weight,
          activeRequests: h.activeRequests,
          stats: { ...h.counters } as Record<string, number>,
        })),
      })),
    stats: () => [
      ...dataPlane.stats(),
      { name: 'server.live', value: shuttingDown ? 0 : 1, type: 'gauge' },
      { name: 'server.uptime', value: Math.floor((Date.now() - started) / 1000), type: 'gauge' },
      { name: 'control_plane.connected_state', value: ads.connected ? 1 : 0, type: 'gauge' },
    ],
    setLogLevel: (l) => opts.setLogLevel?.(l) ?? false,
    logLevel: () => opts.logLevel?.() ?? 'info',
    drainListeners: () => dataPlane.listeners.drainAll(opts.drainTimeoutMs ?? 5_000),
    quit: () => opts.onQuit?.(),
    info: () => ({
      version: 'trellis/0.1.0',
      state: shuttingDown ? 'DRAINING' : ads.isReady ? 'LIVE' : 'PRE_INITIALIZING',
      uptime_current_epoch: `${Math.floor((Date.now() - started) / 1000)}s`,
      node: opts.node,
      control_plane: { address: opts.xdsAddress, connected: ads.connected },
    }),
  };
  const admin = await startAdminServers(source, {
    host: opts.adminHost,
    adminPort: opts.adminPort,
    healthPort: opts.healthPort,
    prometheusPort: opts.prometheusPort,
  });
  ads.start();
  return {
    ports: admin.ports,
    dataPlane,
    ads,
    ready: ads.ready,
    async shutdown() {
      if (shuttingDown) return;
      shuttingDown = true;
      await dataPlane.shutdown();
      ads.stop();
      await admin.close();
    },
  };
}
