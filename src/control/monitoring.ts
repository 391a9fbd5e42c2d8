/**
 * The control plane's own metrics in istiod's names (port 15014 `/metrics`), so Istio's pilot
 * dashboard and alerts read Trellis: `pilot_xds` (connected proxies), `pilot_xds_pushes{type}`,
 * `pilot_xds_push_time{type}` and `pilot_xds_config_size_bytes{type}` (histograms per response
 * sent), `pilot_proxy_convergence_time` (config change to a proxy's push done),
 * `pilot_total_xds_rejects{type}` (NACKs), `pilot_total_xds_internal_errors` (failed generations),
 * `pilot_push_triggers{type}`, `pilot_k8s_cfg_events{type,event}` and `pilot_k8s_reg_events`
 * (config and registry changes by kind), `istio_build{component,tag}`, plus prom-client's Node
 * process metrics (`process_*`, `nodejs_*`; istiod's Go runtime series have no Node equivalent).
 * prom-client is fast enough here: these move per push and per scrape, not per request.
 */
import client from 'prom-client';
import type { StoreEvent } from '../config/store/types.ts';
import { ResourceTypes } from '../config/resource.ts';

/** Istio's xDS type label values. */
function typeLabel(short: string): string {
  return short.toLowerCase();
}

/** Istio's buckets for pilot_xds_push_time / pilot_proxy_convergence_time (seconds). */
const PushTimeBuckets = [0.01, 0.1, 0.5, 1, 3, 5];
const ConvergenceBuckets = [0.1, 0.5, 1, 3, 5, 10, 20, 30];
/** Istio's buckets for pilot_xds_config_size_bytes. */
const ConfigSizeBuckets = [1, 10000, 1000000, 4000000, 10000000, 40000000];

/** Registry kinds (Istio's pilot_k8s_reg_events); every other kind is config (pilot_k8s_cfg_events). */
const RegistryKinds = new Map<string, string>([
  [ResourceTypes.Service, 'Services'],
  [ResourceTypes.EndpointSlice, 'EndpointSlice'],
  [ResourceTypes.WorkloadEntry, 'WorkloadEntry'],
]);

export class ControlPlaneMetrics {
  readonly registry = new client.Registry();
  readonly #pushes: client.Counter<'type'>;
  readonly #pushTime: client.Histogram<'type'>;
  readonly #configSize: client.Histogram<'type'>;
  readonly #convergence: client.Histogram;
  readonly #rejects: client.Counter<'type'>;
  readonly #internalErrors: client.Counter;
  readonly #triggers: client.Counter<'type'>;
  readonly #cfgEvents: client.Counter<'type' | 'event'>;
  readonly #regEvents: client.Counter<'type' | 'event'>;

  /** `connected` reads the number of proxies with an open ADS stream at scrape time. */
  constructor(opts: { connected: () => number; version: string }) {
    const registers = [this.registry];
    const connected = opts.connected;
    new client.Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', registers, collect() {
      this.set(connected());
    } });
    this.#pushes = new client.Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers });
    this.#pushTime = new client.Histogram({ name: 'pilot_xds_push_time', help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.', labelNames: ['type'], buckets: PushTimeBuckets, registers });
    this.#configSize = new client.Histogram({ name: 'pilot_xds_config_size_bytes', help: 'Distribution of configuration sizes pushed to clients', labelNames: ['type'], buckets: ConfigSizeBuckets, registers });
    this.#convergence = new client.Histogram({ name: 'pilot_proxy_convergence_time', help: 'Delay in seconds between config change and a proxy receiving all required configuration.', buckets: ConvergenceBuckets, registers });
    this.#rejects = new client.Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers });
    this.#internalErrors = new client.Counter({ name: 'pilot_total_xds_internal_errors', help: 'Total number of internal XDS errors in pilot.', registers });
    this.#triggers = new client.Counter({ name: 'pilot_push_triggers', help: 'Total number of times a push was triggered, labeled by reason for the push.', labelNames: ['type'], registers });
    this.#cfgEvents = new client.Counter({ name: 'pilot_k8s_cfg_events', help: 'Events from k8s config.', labelNames: ['type', 'event'], registers });
    this.#regEvents = new client.Counter({ name: 'pilot_k8s_reg_events', help: 'Events from k8s registry.', labelNames: ['type', 'event'], registers });
    new client.Gauge({ name: 'istio_build', help: 'Istio component build info', labelNames: ['component', 'tag'], registers }).set({ component: 'pilot', tag: opts.version }, 1);
    // Counters Istio's dashboards sum exist from the start (at 0), as istiod's do.
    this.#internalErrors.inc(0);
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** A response of `type` (CDS, EDS, ...) was sent: its size and how long since the push began. */
  sent(type: string, bytes: number, seconds: number | undefined): void {
    const t = typeLabel(type);
    this.#pushes.inc({ type: t });
    this.#configSize.observe({ type: t }, bytes);
    if (seconds !== undefined) this.#pushTime.observe({ type: t }, seconds);
  }

  rejected(type: string): void {
    this.#rejects.inc({ type: typeLabel(type) });
  }

  internalError(): void {
    this.#internalErrors.inc();
  }

  /** A push was triggered (Istio's reasons: config, endpoint, secret, proxy, ...). */
  triggered(type: string): void {
    this.#triggers.inc({ type });
  }

  /** A proxy finished receiving the push a change started `seconds` ago. */
  converged(seconds: number): void {
    this.#convergence.observe(seconds);
  }

  /** Config store events by kind (Istio: add / update / delete). */
  storeEvents(events: readonly StoreEvent[]): void {
    for (const e of events) {
      const event = e.kind === 'added' ? 'add' : e.kind === 'updated' ? 'update' : 'delete';
      const reg = RegistryKinds.get(e.resource.type);
      if (reg !== undefined) this.#regEvents.inc({ type: reg, event });
      else this.#cfgEvents.inc({ type: e.resource.type.slice(e.resource.type.indexOf('/') + 1), event });
    }
  }

  /** The push-trigger type of a batch of store events: `endpoint` when only workloads changed, else `config`. */
  static triggerType(events: readonly StoreEvent[]): string {
    return events.every((e) => e.resource.type === ResourceTypes.WorkloadEntry || e.resource.type === ResourceTypes.EndpointSlice) ? 'endpoint' : 'config';
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
