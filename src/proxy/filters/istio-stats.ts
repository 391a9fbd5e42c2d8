/**
 * `trellis.filters.http.stats`: Istio's standard HTTP metrics (istio_requests_total, the duration
 * and size histograms) and Istio's HTTP metadata exchange, configured per HTTP connection manager
 * by the control plane (`reporter`: DESTINATION on inbound listeners, SOURCE on outbound listeners
 * and gateways; Telemetry API overrides in `metrics`).
 *
 * Exchange: a SOURCE reporter strips peer headers the application sent and adds its own to the
 * request; the DESTINATION reporter reads and strips them, and answers with its own on the
 * response only when the request carried them (so no workload metadata leaks to clients outside
 * the mesh); the SOURCE reporter reads and strips the response's.
 *
 * Recording happens once per stream (onStreamComplete), so the filter goes first in the chain: a
 * request answered by a later filter (fault abort, RBAC deny) is counted too. Label sets are
 * resolved once per (cluster, service, peer, principals, outcome) and cached per connection
 * manager, so a request costs a key string and four number updates (six for gRPC: the message
 * counts, istio_request_messages_total / istio_response_messages_total).
 */
import { configError, optArr, optBool, optObj, optStr, type Json } from '../xds-json.ts';
import type { FilterRegistration, HttpFilter, HttpStream, ResponseHead } from '../http/stream.ts';
import { formatResponseFlags, type StreamInfo } from '../http/stream-info.ts';
import type { HeaderMap } from '../upstream/types.ts';
import { hasAnyField, withoutFields } from '../upstream/header-map.ts';
import { IstioMetricNames, peerLabelValues, HttpLabelNames, UnknownService, boundedLabel, type IstioMetricName, type ServiceLabels } from '../../telemetry/istio-metrics.ts';
import { PeerMetadataHeader, PeerMetadataIdHeader, UnknownPeer, type Peer } from '../../telemetry/peer-metadata.ts';
import { Unknown, type MetricFamily, type Series } from '../../telemetry/metric-store.ts';
import { pickService, stripPort, type ProxyTelemetry } from '../istio-telemetry.ts';

export const StatsFilterName = 'trellis.filters.http.stats';
export const StatsTypeUrl = 'type.googleapis.com/trellis.filters.http.stats.v1.Stats';

/** A Telemetry API metric override as the control plane sends it. */
export interface MetricOverride {
  /** An Istio metric name, or ALL_METRICS. */
  readonly name: IstioMetricName | 'ALL_METRICS';
  readonly drop: boolean;
  readonly tagsToRemove: readonly string[];
  /** tag -> literal value (Istio's CEL string literals). */
  readonly tagOverrides: Readonly<Record<string, string>>;
}

export interface StatsConfig {
  readonly reporter: 'source' | 'destination';
  readonly disableHostHeaderFallback: boolean;
  readonly metrics: readonly MetricOverride[];
}

/** Parses the filter's typed config. */
export function parseStatsConfig(raw: Json, path: string): StatsConfig {
  const reporter = optStr(raw.reporter, `${path}.reporter`) ?? 'SOURCE';
  if (reporter !== 'SOURCE' && reporter !== 'DESTINATION') configError(`${path}.reporter`, `expected SOURCE or DESTINATION, got '${reporter}'`);
  const metrics = optArr(raw.metrics, `${path}.metrics`).map((m, i): MetricOverride => {
    const p = `${path}.metrics[${i}]`;
    const o = optObj(m, p) ?? configError(p, 'expected an object');
    const name = optStr(o.name, `${p}.name`) ?? 'ALL_METRICS';
    if (name !== 'ALL_METRICS' && !IstioMetricNames.includes(name as IstioMetricName)) configError(`${p}.name`, `unknown metric '${name}' (one of ALL_METRICS, ${IstioMetricNames.join(', ')})`);
    const tags = optArr(o.tags_to_remove, `${p}.tags_to_remove`).map((t, j) => (typeof t === 'string' ? t : configError(`${p}.tags_to_remove[${j}]`, 'expected a string')));
    const overrides: Record<string, string> = {};
    for (const [k, v] of Object.entries(optObj(o.tag_overrides, `${p}.tag_overrides`) ?? {})) {
      if (typeof v !== 'string') configError(`${p}.tag_overrides.${k}`, 'expected a string');
      overrides[k] = v;
    }
    return Object.freeze({ name: name as MetricOverride['name'], drop: optBool(o.drop, `${p}.drop`) ?? false, tagsToRemove: Object.freeze(tags), tagOverrides: Object.freeze(overrides) });
  });
  return Object.freeze({ reporter: reporter === 'DESTINATION' ? 'destination' : 'source', disableHostHeaderFallback: optBool(raw.disable_host_header_fallback, `${path}.disable_host_header_fallback`) ?? false, metrics: Object.freeze(metrics) });
}

/** How one family is written under the overrides: dropped, or with some labels replaced. */
interface FamilyPlan {
  readonly family: MetricFamily;
  /** label index -> fixed value ('' removes the label). */
  readonly fixed: ReadonlyMap<number, string>;
}

function planFamily(family: MetricFamily, metric: IstioMetricName, overrides: readonly MetricOverride[]): FamilyPlan | undefined {
  const fixed = new Map<number, string>();
  let dropped = false;
  for (const o of overrides) {
    if (o.name !== 'ALL_METRICS' && o.name !== metric) continue;
    dropped = o.drop;
    for (const t of o.tagsToRemove) {
      const i = HttpLabelNames.indexOf(t);
      if (i >= 0) fixed.set(i, '');
    }
    for (const [t, v] of Object.entries(o.tagOverrides)) {
      const i = HttpLabelNames.indexOf(t);
      if (i >= 0) fixed.set(i, v);
    }
  }
  return dropped ? undefined : { family, fixed };
}

/** The series one request updates (undefined where the family is dropped; message counts for gRPC only). */
type SeriesSet = readonly (Series | undefined)[];

interface LastLabels {
  readonly cluster: string | undefined;
  readonly serviceKey: string;
  readonly peerId: number;
  readonly sourcePrincipal: string;
  readonly destinationPrincipal: string;
  readonly policy: string;
  readonly protocol: string;
  readonly code: number;
  readonly grpcCode: number | undefined;
  readonly flags: string;
  readonly set: SeriesSet;
}

/** Per connection manager: config, the families as overridden, and the label-set cache. */
class StatsState {
  readonly t: ProxyTelemetry;
  readonly cfg: StatsConfig;
  readonly plans: readonly (FamilyPlan | undefined)[];
  readonly #cache = new Map<string, SeriesSet>();
  /** The label values of the last request recorded and their series. */
  #last: LastLabels | undefined;

  constructor(t: ProxyTelemetry, cfg: StatsConfig) {
    this.t = t;
    this.cfg = cfg;
    const f = t.families;
    this.plans = [
      planFamily(f.requests, 'REQUEST_COUNT', cfg.metrics),
      planFamily(f.duration, 'REQUEST_DURATION', cfg.metrics),
      planFamily(f.requestBytes, 'REQUEST_SIZE', cfg.metrics),
      planFamily(f.responseBytes, 'RESPONSE_SIZE', cfg.metrics),
      planFamily(f.requestMessages, 'GRPC_REQUEST_MESSAGES', cfg.metrics),
      planFamily(f.responseMessages, 'GRPC_RESPONSE_MESSAGES', cfg.metrics),
    ];
  }

  record(s: HttpStream, peer: Peer): void {
    const info = s.info;
    const t = this.t;
    const services = t.servicesOf(info.clusterName);
    let service: ServiceLabels;
    let serviceKey: string;
    if (services !== undefined) {
      service = pickService(services, info.authority);
      serviceKey = services.length === 1 ? '' : service.host;
    } else if (!this.cfg.disableHostHeaderFallback && info.authority !== '') {
      // Istio's fallback for clusters without service metadata (passthrough): the Host header.
      const host = boundedLabel(stripPort(info.authority));
      service = { host, name: host === Unknown ? Unknown : host.split('.')[0], namespace: Unknown };
      serviceKey = host;
    } else {
      service = UnknownService;
      serviceKey = '';
    }
    const destinationReporter = this.cfg.reporter === 'destination';
    const sec = info.connectionSecurity;
    const mtls = sec.policy === 'mutual_tls';
    const sourcePrincipal = destinationReporter ? (sec.peer?.spiffeId ?? Unknown) : Unknown;
    // The client side knows the destination's principal from the upstream connection's verified certificate.
    const destinationPrincipal = destinationReporter ? (mtls ? t.principal : Unknown) : (info.upstreamPeerPrincipal ?? Unknown);
    const policy = destinationReporter ? (mtls ? 'mutual_tls' : 'none') : Unknown;
    const protocol = info.grpc ? 'grpc' : 'http';
    const grpcCode = info.grpc ? info.grpcStatus : undefined;
    const flags = info.responseFlags.size === 0 ? '-' : formatResponseFlags(info);
    // Most requests repeat the previous one's labels: compare them field by field before building
    // the cache key (a string per request otherwise).
    const last = this.#last;
    if (last !== undefined && last.cluster === info.clusterName && last.serviceKey === serviceKey && last.peerId === peer.id
      && last.sourcePrincipal === sourcePrincipal && last.destinationPrincipal === destinationPrincipal && last.policy === policy
      && last.protocol === protocol && last.code === info.responseCode && last.grpcCode === grpcCode && last.flags === flags) {
      return this.#observe(last.set, info);
    }
    const code = String(info.responseCode);
    const grpcStatus = grpcCode !== undefined ? String(grpcCode) : '';
    const key = `${info.clusterName ?? ''}|${serviceKey}|${peer.id}|${sourcePrincipal}|${destinationPrincipal}|${policy}|${protocol}|${code}|${grpcStatus}|${flags}`;
    let set = this.#cache.get(key);
    if (set === undefined) {
      const values = [
        ...peerLabelValues({
          reporter: this.cfg.reporter,
          source: destinationReporter ? peer.labels : t.local,
          sourcePrincipal,
          destination: destinationReporter ? t.local : peer.labels,
          destinationPrincipal,
          service,
        }),
        protocol, code, grpcStatus, flags, policy,
      ];
      const series = (p: FamilyPlan | undefined): Series | undefined => {
        if (p === undefined) return undefined;
        if (p.fixed.size === 0) return p.family.series(values);
        const v = [...values];
        for (const [i, x] of p.fixed) v[i] = x;
        return p.family.series(v);
      };
      set = [series(this.plans[0]), series(this.plans[1]), series(this.plans[2]), series(this.plans[3]),
        ...(info.grpc ? [series(this.plans[4]), series(this.plans[5])] : [])];
      // Bounded: peers, codes and flags are few; anything beyond is junk not worth remembering.
      if (this.#cache.size >= 4096) this.#cache.clear();
      this.#cache.set(key, set);
    }
    this.#last = {
      cluster: info.clusterName, serviceKey, peerId: peer.id, sourcePrincipal, destinationPrincipal, policy, protocol,
      code: info.responseCode, grpcCode, flags, set,
    };
    this.#observe(set, info);
  }

  #observe(set: SeriesSet, info: StreamInfo): void {
    set[0]?.inc();
    set[1]?.observe(info.durationMs ?? 0);
    set[2]?.observe(info.bytesReceived);
    set[3]?.observe(info.bytesSent);
    if (info.grpc) {
      set[4]?.inc(info.grpcRequestMessages);
      set[5]?.inc(info.grpcResponseMessages);
    }
  }
}

const PeerHeaders = [PeerMetadataHeader, PeerMetadataIdHeader];

/** `h` itself when it has no exchange fields, else a copy without them (not `delete`: see header-map.ts). */
function withoutPeerHeaders(h: HeaderMap): HeaderMap {
  return hasAnyField(h, PeerHeaders) ? withoutFields(h, PeerHeaders) : h;
}

class IstioStatsFilter implements HttpFilter {
  readonly #state: StatsState;
  #peer: Peer = UnknownPeer;
  #exchanged = false;

  constructor(state: StatsState) {
    this.#state = state;
  }

  onRequestHeaders(s: HttpStream): 'continue' {
    if (this.#state.cfg.reporter === 'destination') {
      const v = s.headers[PeerMetadataHeader];
      if (v !== undefined) {
        this.#exchanged = true;
        this.#peer = this.#state.t.peers.decode(v);
      }
      s.headers = withoutPeerHeaders(s.headers);
    } else {
      const h = (s.headers = withoutPeerHeaders(s.headers));
      h[PeerMetadataHeader] = this.#state.t.peerHeader;
      h[PeerMetadataIdHeader] = this.#state.t.nodeId;
    }
    return 'continue';
  }

  onResponseHeaders(_s: HttpStream, head: ResponseHead): void {
    if (this.#state.cfg.reporter === 'source') {
      const v = head.headers[PeerMetadataHeader];
      if (v !== undefined) this.#peer = this.#state.t.peers.decode(v);
      head.headers = withoutPeerHeaders(head.headers);
    } else if (this.#exchanged) {
      head.headers[PeerMetadataHeader] = this.#state.t.peerHeader;
      head.headers[PeerMetadataIdHeader] = this.#state.t.nodeId;
    }
  }

  onStreamComplete(s: HttpStream): void {
    this.#state.record(s, this.#peer);
  }
}

/** The filter kind, bound to one proxy's telemetry. */
export function istioStatsFilter(telemetry: ProxyTelemetry): FilterRegistration {
  return {
    name: StatsFilterName,
    typeUrls: [StatsTypeUrl],
    createFactory: (cfg, _ctx, path, configuredName) => {
      const state = new StatsState(telemetry, parseStatsConfig(cfg, path));
      return { name: configuredName, terminal: false, createFilter: () => new IstioStatsFilter(state) };
    },
  };
}
