/**
 * The ADS server: `envoy.service.discovery.v3.AggregatedDiscoveryService` (SotW and delta) on
 * @grpc/grpc-js, thin over a cache the way go-control-plane's server is (cache.ts): it reads a
 * proxy's resources from the cache when the proxy connects and after a cache write that can affect
 * it marks it dirty; pushes are debounced and only types whose content changed are sent, in
 * CDS -> EDS -> LDS -> RDS order. A set that is not consistent (src/xds/consistency.ts) is not
 * served by default. Serves Envoy (wildcard LDS/CDS) and proxyless gRPC (named LDS
 * for `xds:///SERVICE`, expecting API listeners) alike. Owns proxy status and what was sent to
 * whom (`status()`, `configDump()`), which the debug HTTP server exposes.
 */
import { Server, ServerCredentials, type ChannelOptions, type ServerDuplexStream } from '@grpc/grpc-js';
import { TrellisError } from '../../errors.ts';
import { adsServiceDefinition, type DeltaDiscoveryRequestMsg, type DeltaDiscoveryResponseMsg, type DiscoveryRequestMsg, type DiscoveryResponseMsg } from '../../xds/ads-wire.ts';
import type { XdsJson } from '../../xds/types.ts';
import type { ResourceCache } from './cache.ts';
import { installFramedPassthrough } from '../../xds/grpc-framing.ts';
import { serveDelta } from './delta.ts';
import { PushQueue } from './push-queue.ts';
import { pushOrder, shortTypeName } from './resources.ts';
import { silentLogger, type SessionDeps, type XdsLogger, type XdsObserver } from './session.ts';
import { serveSotw, type StreamHandle } from './sotw.ts';
import { StatusTracker, type ProxyStatus, type XdsCounters } from './status.ts';

export type { XdsLogger, XdsObserver } from './session.ts';
export type { ProxyStatus, SyncState, TypeStatus, XdsCounters } from './status.ts';

/** How the server is built. */
export interface XdsServerOptions {
  /** Where proxies' resources come from; its writes trigger pushes. */
  cache: ResourceCache;
  /** Quiet time before a push (default 100 ms). */
  debounceMs?: number;
  /** Longest a push waits (default 1000 ms). */
  maxDelayMs?: number;
  /** 'reject' (default): an inconsistent set is reported and not served (the previous one stays); 'warn': served and reported. */
  consistency?: 'warn' | 'reject';
  /** Longest LDS/RDS are held after a CDS push adding EDS clusters, waiting for warming (default 1000 ms). */
  warmingHoldMs?: number;
  /** Sent as control_plane.identifier. */
  controlPlaneId?: string;
  log?: XdsLogger;
  /** Extra grpc-js server options. */
  grpcOptions?: ChannelOptions;
  /** Monitoring hooks (istiod's pilot_* metrics, src/control/monitoring.ts). */
  observer?: XdsObserver;
}

/** What one proxy was sent, per type, as our JSON form (each resource with "@type"). */
export interface ConfigDump {
  id: string;
  connectionId: string;
  types: Record<string, { typeUrl: string; version?: string; resources: XdsJson[] }>;
}

export interface XdsServer {
  /** Binds the gRPC server (default 127.0.0.1, port 0 = any); resolves to the bound port. */
  listen(opts?: { host?: string; port?: number; credentials?: ServerCredentials }): Promise<number>;
  /** The underlying grpc-js server (to add more services on the same port). */
  readonly grpcServer: Server;
  /** Pushes pending changes now and resolves when every stream has handled them (tests, shutdown). */
  flush(): Promise<void>;
  /** Status of every connected proxy. */
  status(): ProxyStatus[];
  /** What a proxy (node id, or unique id prefix) was sent; undefined if not connected or ambiguous. */
  configDump(proxy: string): ConfigDump | undefined;
  readonly counters: Readonly<XdsCounters>;
  /** Ends every stream and stops the server (forcefully after `graceMs`, default 2000). */
  close(graceMs?: number): Promise<void>;
}

/** Creates the ADS server; call `listen()` to serve. */
export function createXdsServer(options: XdsServerOptions): XdsServer {
  installFramedPassthrough();
  const status = new StatusTracker();
  const deps: SessionDeps = {
    resources: (proxy) => options.cache.resources(proxy),
    status,
    log: options.log ?? silentLogger,
    controlPlaneId: options.controlPlaneId ?? 'trellis',
    consistency: options.consistency ?? 'reject',
    warmingHoldMs: options.warmingHoldMs ?? 1000,
    ...(options.observer !== undefined ? { observer: options.observer } : {}),
  };
  /** performance.now() of the first change since the last push (pilot_proxy_convergence_time). */
  let changedAt: number | undefined;
  const streams = new Set<StreamHandle>();
  const onClose = (h: StreamHandle): void => void streams.delete(h);
  let closing = false;

  const queue = new PushQueue({
    debounceMs: options.debounceMs,
    maxDelayMs: options.maxDelayMs,
    flush(reasons) {
      let n = 0;
      const since = changedAt;
      changedAt = undefined;
      for (const s of streams) {
        if (s.session.dirty) {
          n++;
          s.refresh();
          if (since !== undefined && options.observer?.converged !== undefined) {
            void s.session.idle().then(() => options.observer!.converged!((performance.now() - since) / 1000));
          }
        }
      }
      if (n > 0) deps.log.info({ proxies: n, reasons: [...new Set(reasons)].slice(0, 10) }, 'xds: push');
    },
  });

  // A cache write marks the proxies it can affect dirty; they are regenerated and pushed after the debounce.
  const unwatch = options.cache.watch((change) => {
    status.counters.pushTriggers++;
    options.observer?.triggered?.(change.type ?? 'config');
    changedAt ??= performance.now();
    let marked = 0;
    for (const s of streams) {
      const p = s.session.proxy;
      if (p === undefined || change.affects === undefined || change.affects(p)) {
        s.session.dirty = true;
        marked++;
      }
    }
    if (marked > 0) queue.trigger(change.reason);
  });

  const server = new Server({ 'grpc.keepalive_permit_without_calls': 1, ...options.grpcOptions });
  server.addService(adsServiceDefinition, {
    StreamAggregatedResources(call: ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>) {
      if (closing) return call.end();
      streams.add(serveSotw(call, deps, onClose));
    },
    DeltaAggregatedResources(call: ServerDuplexStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg>) {
      if (closing) return call.end();
      streams.add(serveDelta(call, deps, onClose));
    },
  });

  function findStream(proxy: string): StreamHandle | undefined {
    const all = [...streams].filter((s) => s.session.proxy !== undefined);
    const exact = all.filter((s) => s.session.proxy?.id === proxy);
    if (exact.length > 0) return exact[exact.length - 1];
    const byPrefix = all.filter((s) => s.session.proxy?.id.startsWith(proxy));
    const ids = new Set(byPrefix.map((s) => s.session.proxy?.id));
    return ids.size === 1 ? byPrefix[byPrefix.length - 1] : undefined;
  }

  return {
    grpcServer: server,
    counters: status.counters,
    listen(opts = {}) {
      const addr = `${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}`;
      return new Promise<number>((resolve, reject) => {
        server.bindAsync(addr, opts.credentials ?? ServerCredentials.createInsecure(), (err, port) => {
          if (err !== null) reject(new TrellisError('XDS_LISTEN', `xDS server cannot listen on ${addr}: ${err.message}`, { cause: err }));
          else resolve(port);
        });
      });
    },
    async flush() {
      queue.flushNow();
      await Promise.all([...streams].map((s) => s.session.idle()));
    },
    status: () => status.list(),
    configDump(proxy) {
      const s = findStream(proxy);
      if (s === undefined || s.session.proxy === undefined) return undefined;
      const row = status.get(s.session.connectionId);
      const types: ConfigDump['types'] = {};
      for (const typeUrl of pushOrder(s.session.sentTypes())) {
        const key = shortTypeName(typeUrl);
        const resources = s.session.sentResources(typeUrl).map((r) =>
          r['@type'] === undefined ? { '@type': typeUrl, ...r } : r,
        );
        types[key] = { typeUrl, version: row?.types[key]?.sentVersion, resources };
      }
      return { id: s.session.proxy.id, connectionId: s.session.connectionId, types };
    },
    async close(graceMs = 2000) {
      closing = true;
      unwatch();
      queue.close();
      for (const s of [...streams]) s.end();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
