/**
 * The HTTP filter pipeline and the per-request stream object filters work on. Envoy's model:
 * each configured filter has a factory built once from its typed config, which creates a fresh
 * filter per stream; request headers go through the filters in order (`continue` passes on,
 * `stop` means the filter answered: a local reply or, for the terminal router, the proxied
 * response); response headers go back through the filters that saw the request, in reverse order,
 * for local replies and upstream responses alike. `HttpStream` owns writing to the downstream
 * (status, headers, body with backpressure, trailers), local replies (plain text, or gRPC
 * trailers-only for gRPC requests) and the StreamInfo.
 */
import type { ClusterManager, HeaderMap } from '../upstream/types.ts';
import type { Json } from '../xds-json.ts';
import type { HeaderSource } from './matchers.ts';
import type { PerFilterConfigParser, WeightedCluster } from '../router/route-action.ts';
import { applyRouteHeaders, perFilterConfig, routeHeadersNeedFormat, DISABLED_FILTER } from '../router/route-rewrite.ts';
import type { FormatContext } from '../router/header-format.ts';
import type { CompiledRouteTable, RouteMatch, RouteRequest } from '../router/route-table.ts';
import { httpToGrpcStatus, type ResponseFlag, type StreamInfo } from './stream-info.ts';
import { GrpcFrameCounter } from './grpc-frames.ts';
import type { ActiveSpan } from '../tracing/http-tracer.ts';
import { deadlineList, type DeadlineEntry, type DeadlineList } from './deadline-list.ts';

/** What a filter's request hook tells the pipeline. */
export type FilterStatus = 'continue' | 'stop';

/** Mutable response head passed to response hooks before it is written. */
export interface ResponseHead {
  status: number;
  headers: HeaderMap;
}

/** A filter as a stream runs it (its own instance, or one shared by streams when it keeps no per-stream state). All hooks are optional. */
export interface HttpFilter {
  /** Request headers (and access to the request body through `stream.body`). */
  onRequestHeaders?(stream: HttpStream): FilterStatus | Promise<FilterStatus>;
  /** Response headers about to be written (upstream response or local reply): mutate in place. */
  onResponseHeaders?(stream: HttpStream, head: ResponseHead): void;
  /** The stream ended (normally or reset). */
  onStreamComplete?(stream: HttpStream): void;
}

/** Built once per configured filter; gives each stream its filter. */
export interface HttpFilterFactory {
  /** The configured filter name (key for typed_per_filter_config). */
  readonly name: string;
  /** True for the router: must be last. */
  readonly terminal: boolean;
  /**
   * The filter for `stream`, called right before its request hook runs (the route is the one the
   * hook sees). A filter that keeps nothing per stream returns one shared object (the router,
   * fault; CORS on a route without a policy): an object per request is garbage (issue 16).
   */
  createFilter(stream: HttpStream): HttpFilter;
}

/** What filter factories get besides their typed config. */
export interface FilterFactoryContext {
  readonly clusterManager: ClusterManager;
  /** Uniform random in [0,1); tests inject a seeded source. */
  readonly random: () => number;
  readonly statPrefix: string;
  /** The listener's `metadata.filter_metadata` (Envoy leaves it to filters; e.g. `trellis.authz`). */
  readonly listenerMetadata?: Readonly<Record<string, Json>>;
}

/** How a filter kind is registered: its names, its factory and its per-route config parser. */
export interface FilterRegistration {
  /** Canonical name, e.g. `envoy.filters.http.fault`. */
  readonly name: string;
  /** Type URLs of its typed_config (lookup by @type first, as Envoy does). */
  readonly typeUrls: readonly string[];
  /** Parse the typed config (throw TrellisError(XDS_INVALID) with `path` on bad config). */
  createFactory(typedConfig: Json, ctx: FilterFactoryContext, path: string, configuredName: string): HttpFilterFactory;
  /** Parse a typed_per_filter_config entry once, at route table compile time. */
  parsePerRoute?(raw: Json, path: string): unknown;
}

/**
 * The HTTP filter kinds a connection manager can build from: filters/registry.ts's FilterRegistry,
 * handed in by whoever assembles the proxy (data-plane.ts), so the HTTP engine never imports the
 * filters it runs.
 */
export interface HttpFilterKinds {
  /** Factories for an HCM `http_filters` list (the router last). */
  buildChain(httpFilters: unknown, ctx: FilterFactoryContext, path: string): HttpFilterFactory[];
  /** Parser of typed_per_filter_config entries, for the route tables these filters run with. */
  perFilterConfigParser(): PerFilterConfigParser;
}

/** Writes a response to the downstream connection (HTTP/1.1 or HTTP/2 response object). */
export interface DownstreamSink {
  readonly headersSent: boolean;
  writeHead(status: number, headers: HeaderMap): void;
  /** Resolves when the chunk was accepted (waits for drain under backpressure). */
  write(chunk: Uint8Array): Promise<void> | undefined;
  /** Ends the response, after `last` (the body's last chunk, written as write() would) when given. */
  end(trailers?: HeaderMap, last?: Uint8Array): void;
  /** Abort the downstream stream (HTTP/2 RST_STREAM, HTTP/1.1 connection close). */
  reset(): void;
}

/** What every stream of one connection manager shares: built once per manager, one reference per stream. */
export interface StreamSettings {
  readonly random: () => number;
  readonly serverName: string | undefined;
  readonly serverHeader: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  /** A filter threw or rejected (a bug): the pipeline calls it instead of rejecting. */
  readonly onFilterError?: (stream: HttpStream, err: unknown) => void;
  /** HCM stream_idle_timeout in ms (0 = disabled); a route's idle_timeout overrides it. */
  readonly streamIdleTimeoutMs: number;
  /** HCM common_http_protocol_options.max_stream_duration in ms (0 = disabled); a route's overrides it. */
  readonly maxStreamDurationMs: number;
}

/** One request/response exchange as filters see it. */
export class HttpStream implements HeaderSource, DeadlineEntry {
  readonly info: StreamInfo;
  /** Request path with query; filters may rewrite it (the router applies route rewrites to a copy). */
  path: string;
  authority: string;
  /** Request headers without pseudo-headers (lower-case); a filter may replace the map (read it from here after filters). */
  headers: HeaderMap;
  /** Downstream request body (read it once, through the router's replay buffer), null when the request has none. */
  readonly body: AsyncIterable<Uint8Array> | null;
  readonly routeTable: CompiledRouteTable | undefined;
  /** Matched route, undefined for no match; recomputed by clearRouteCache(). */
  route: RouteMatch | undefined;
  /** Weighted cluster the router chose (its header mutations and per-filter configs apply). */
  weightedCluster: WeightedCluster | undefined;
  /**
   * The request as the router forwards it (route header mutations, path and host rewrites
   * applied); response header formats read it, as Envoy's mutate the request headers in place.
   */
  forwarded: { readonly headers: HeaderMap; readonly path: string; readonly authority: string } | undefined;
  /** True once the downstream went away (client reset / disconnect) or the stream gave up on it (idle / duration timeout). */
  downstreamAborted = false;
  /** The downstream connection's original destination, when the listener knew it. */
  readonly originalDestination: { readonly address: string; readonly port: number } | undefined;
  /**
   * Told at once when the downstream goes away (the router's attempt driver), without an abort
   * listener on the signal (an EventTarget listener costs a map and objects per request).
   */
  downstreamWatcher: { onDownstreamAbort(): void } | undefined;
  /** Set when a filter has started answering. */
  responseStarted = false;
  /** The response headers as written downstream (access logs read them). */
  responseHeaders: HeaderMap | undefined;
  /** What few streams use (StreamExtras), made on first use. */
  private x: StreamExtras | undefined = undefined;
  private readonly sink: DownstreamSink;
  /** The stream's filters, in a list sized by run() for the chain (a growing array would allocate 16 slots). */
  private filters: HttpFilter[] = NO_FILTERS;
  private filterCount = 0;
  private readonly settings: StreamSettings;
  private readonly routeRandom: number;
  private closed = false;
  /** The idle timeout's list (deadline-list.ts: no Timeout per request), undefined when disabled. */
  private readonly idleList: DeadlineList | undefined;
  deadlinePrev: DeadlineEntry | undefined = undefined;
  deadlineNext: DeadlineEntry | undefined = undefined;
  deadlineList: DeadlineList | undefined = undefined;
  deadlineFrom = 0;

  /**
   * The manager's shared settings, then this request's own inputs, as arguments (an init object
   * per request was ~0.13 KB of garbage; issue 16). `body` is null when the request has none;
   * `originalDestination` is the connection's (transparent capture), for ORIGINAL_DST clusters.
   */
  constructor(
    settings: StreamSettings, info: StreamInfo, headers: HeaderMap, path: string, authority: string, body: AsyncIterable<Uint8Array> | null,
    sink: DownstreamSink, routeTable: CompiledRouteTable | undefined, originalDestination: { readonly address: string; readonly port: number } | undefined,
  ) {
    this.settings = settings;
    this.info = info;
    this.path = path;
    this.authority = authority;
    this.headers = headers;
    this.body = body;
    this.sink = sink;
    this.routeTable = routeTable;
    this.routeRandom = settings.random();
    this.originalDestination = originalDestination;
    this.clearRouteCache();
    const a = this.route?.action.kind === 'route' ? this.route.action : undefined;
    const idleMs = a?.idleTimeoutMs ?? settings.streamIdleTimeoutMs;
    const maxMs = a?.maxStreamDurationMs ?? settings.maxStreamDurationMs;
    this.idleList = idleMs > 0 ? deadlineList(idleMs) : undefined;
    this.idleList?.start(this);
    if (maxMs > 0) this.extras.durationTimer = setTimeout(onDurationTimeout, maxMs, this).unref();
  }

  /** The request method (the StreamInfo's: one copy per request). */
  get method(): string {
    return this.info.method;
  }

  /** The request's scheme (x-forwarded-proto / :scheme / the connection's; the StreamInfo's). */
  get scheme(): 'http' | 'https' {
    return this.info.scheme;
  }

  /** The request's tracing span (the connection manager's), undefined when the request is not traced. */
  get tracingSpan(): ActiveSpan | undefined {
    return this.x?.tracingSpan;
  }

  set tracingSpan(span: ActiveSpan | undefined) {
    if (span !== undefined || this.x !== undefined) this.extras.tracingSpan = span;
  }

  private get extras(): StreamExtras {
    return (this.x ??= new StreamExtras());
  }

  /** Uniform random in [0,1): the manager's source (seeded in tests). */
  get random(): () => number {
    return this.settings.random;
  }

  /** Activity on the stream: restarts the idle timer (stream_idle_timeout / route idle_timeout). */
  touch(): void {
    if (this.idleList === undefined || this.info.completed || this.closed) return;
    this.idleList.start(this);
  }

  /** DeadlineEntry: the idle timeout passed without activity. */
  onDeadline(): void {
    this.giveUp('SI', 'stream timeout', 'stream_idle_timeout');
  }

  /** Envoy on idle/duration timeouts: 408 when the response has not started, otherwise reset. */
  giveUp(flag: ResponseFlag, body: string, details: string): void {
    if (this.info.completed) return;
    this.info.responseFlags.add(flag);
    // Envoy (since envoyproxy/envoy#20026): 504 when the request was fully read, 408 while it was
    // still arriving (the client is the slow one).
    const complete = this.body === null || (this.body as { complete?: boolean }).complete === true;
    if (!this.sink.headersSent) this.sendLocalReply(complete ? 504 : 408, body, { details });
    else this.resetDownstream();
    this.abortDownstream();
  }

  /** Aborted when the downstream goes away (client reset / disconnect), for filters that pass a signal on. */
  get downstreamSignal(): AbortSignal {
    const x = this.extras;
    if (x.downstreamAbort === undefined) {
      x.downstreamAbort = new AbortController();
      if (this.downstreamAborted) x.downstreamAbort.abort();
    }
    return x.downstreamAbort.signal;
  }

  /** The downstream went away (or the stream gave up on it): abort its signal, tell the watcher. */
  abortDownstream(): void {
    if (this.downstreamAborted) return;
    this.downstreamAborted = true;
    this.x?.downstreamAbort?.abort();
    this.downstreamWatcher?.onDownstreamAbort();
  }

  /** Stop the stream's timers (the response is finished or the stream is gone). */
  clearTimers(): void {
    this.idleList?.stop(this);
    const x = this.x;
    if (x?.durationTimer !== undefined) {
      clearTimeout(x.durationTimer);
      x.durationTimer = undefined;
    }
  }

  /** Re-run route matching (after a filter changed headers or the path). */
  clearRouteCache(): void {
    const t = this.routeTable;
    if (t !== undefined) {
      // One request object for every match (matching is synchronous and keeps no reference to it).
      const q = MATCH_REQUEST;
      q.headers = this.headers;
      q.method = this.method;
      q.path = this.path;
      q.authority = this.authority;
      q.scheme = this.scheme;
      q.random = this.routeRandom;
      try {
        this.route = t.match(q);
      } finally {
        q.headers = NO_HEADERS;
      }
    } else {
      this.route = undefined;
    }
    this.info.virtualHostName = this.route?.virtualHost.name;
    this.info.routeName = this.route?.route.name;
  }

  /** The route's typed_per_filter_config for a filter (most specific level), or undefined. */
  perFilterConfig(filterName: string): unknown {
    if (!this.routeTable) return undefined;
    const c = perFilterConfig(this.routeTable, this.route, this.weightedCluster, filterName);
    return c === DISABLED_FILTER ? undefined : c;
  }

  /** True when the matched route disabled this filter through FilterConfig.disabled. */
  filterDisabled(filterName: string): boolean {
    return !!this.routeTable && perFilterConfig(this.routeTable, this.route, this.weightedCluster, filterName) === DISABLED_FILTER;
  }

  /** Dynamic metadata a filter wrote under `namespace` (e.g. `envoy.filters.http.jwt_authn`). */
  metadata(namespace: string): Readonly<Record<string, unknown>> | undefined {
    return this.x?.dynamic?.get(namespace);
  }

  /** Sets `key` in the dynamic metadata namespace `namespace`. */
  setMetadata(namespace: string, key: string, value: unknown): void {
    const dynamic = (this.extras.dynamic ??= new Map());
    let ns = dynamic.get(namespace);
    if (ns === undefined) dynamic.set(namespace, (ns = {}));
    ns[key] = value;
  }

  /** True once response headers were written (or staged) downstream. */
  get headersSent(): boolean {
    return this.sink.headersSent;
  }

  /** True for gRPC requests. */
  get grpc(): boolean {
    return this.info.grpc;
  }

  /**
   * Run the pipeline over the request headers. Filters that answer synchronously are not awaited
   * (no promise or microtask turn per filter; the router answers 'stop' at once and its attempt
   * driver carries the exchange on), so the plain path makes no promise here. A filter that
   * answers with a promise is waited for, and the pipeline goes on from the next one. A filter
   * that throws or rejects goes to `onFilterError` (without it: a synchronous throw is rethrown).
   */
  run(factories: readonly HttpFilterFactory[]): void {
    this.filters = new Array<HttpFilter>(factories.length);
    this.runFrom(factories, 0);
  }

  private runFrom(factories: readonly HttpFilterFactory[], start: number): void {
    try {
      for (let i = start; i < factories.length; i++) {
        const f = factories[i];
        if (this.responseStarted) break;
        if (f.terminal === false && this.filterDisabled(f.name)) continue;
        const filter = f.createFilter(this);
        this.filters[this.filterCount++] = filter;
        const r = filter.onRequestHeaders ? filter.onRequestHeaders(this) : 'continue';
        if (typeof r !== 'string') return this.resumeAfter(r, factories, i + 1);
        if (r === 'stop') return;
      }
      if (!this.responseStarted) this.sendLocalReply(404, '', { flag: 'NR', details: 'no_terminal_filter' });
    } catch (err) {
      this.filterFailed(err);
    }
  }

  /**
   * Go on from filter `next` once a filter's promise says so. Its own method: closures in runFrom
   * would make it allocate a context per call and one per loop turn (~0.2 KB per request) though
   * filters on the plain path never return a promise.
   */
  private resumeAfter(r: Promise<FilterStatus>, factories: readonly HttpFilterFactory[], next: number): void {
    r.then((status) => {
      if (status !== 'stop') this.runFrom(factories, next);
    }, (err: unknown) => this.filterFailed(err));
  }

  private filterFailed(err: unknown): void {
    // Without a handler (unit use), a filter's throw surfaces to the caller and its rejection as an unhandled one, as before.
    const onFilterError = this.settings.onFilterError;
    if (onFilterError === undefined) throw err;
    onFilterError(this, err);
  }

  /** What response header formats read: the request as forwarded, and this response. */
  private responseFormatContext(head: ResponseHead): FormatContext {
    const upstream = this.info.responseCodeDetails === 'via_upstream';
    return {
      info: this.info, method: this.method, scheme: this.scheme,
      // Envoy mutates a local reply's headers (direct response, redirect) before it adds the
      // body's content-type and length, and before it records the response code.
      responseHeaders: head.headers, localReply: !upstream,
      status: upstream ? head.status : 0,
      path: this.forwarded?.path ?? this.path, authority: this.forwarded?.authority ?? this.authority, requestHeaders: this.forwarded?.headers ?? this.headers,
    };
  }

  /** Write response headers: response filters (reverse order), route response header mutations, server header. */
  writeHeaders(status: number, headers: HeaderMap): void {
    if (this.sink.headersSent) return;
    this.responseStarted = true;
    const head: ResponseHead = { status, headers };
    for (let i = this.filterCount - 1; i >= 0; i--) this.filters[i].onResponseHeaders?.(this, head);
    if (this.route && this.routeTable) {
      const format = routeHeadersNeedFormat(this.routeTable, this.route, this.weightedCluster, 'response') ? this.responseFormatContext(head) : undefined;
      applyRouteHeaders(head.headers, this.routeTable, this.route, this.weightedCluster, 'response', format);
    }
    const { serverName, serverHeader } = this.settings;
    if (serverName !== undefined) {
      if (serverHeader === 'OVERWRITE' || (serverHeader === 'APPEND_IF_ABSENT' && head.headers.server === undefined)) head.headers.server = serverName;
    }
    this.info.responseCode = head.status;
    if (this.info.grpc) {
      const gs = head.headers['grpc-status'];
      if (typeof gs === 'string') this.info.grpcStatus = Number(gs);
    }
    this.responseHeaders = head.headers;
    this.sink.writeHead(head.status, head.headers);
  }

  /** A body chunk on its way downstream: bytes sent, and gRPC messages when gRPC. */
  private countSent(chunk: Uint8Array): void {
    this.info.bytesSent += chunk.byteLength;
    if (this.info.grpc) this.info.grpcResponseMessages += (this.extras.responseFrames ??= new GrpcFrameCounter()).push(chunk);
  }

  /** Write a body chunk; resolves when it may continue (backpressure). */
  writeBody(chunk: Uint8Array): Promise<void> | undefined {
    this.countSent(chunk);
    this.touch();
    return this.sink.write(chunk);
  }

  /** Finish the response, with trailers when given, after `last` (the body's last chunk, counted as writeBody counts it) when given. */
  endResponse(trailers?: HeaderMap, last?: Uint8Array): void {
    if (last !== undefined) this.countSent(last);
    if (trailers && this.info.grpc) {
      const gs = trailers['grpc-status'];
      if (typeof gs === 'string') this.info.grpcStatus = Number(gs);
    }
    this.info.completed = true;
    this.clearTimers();
    this.sink.end(trailers, last);
  }

  /** Abort the downstream (when the upstream failed after the response started). */
  resetDownstream(): void {
    this.sink.reset();
  }

  /**
   * Envoy-style local reply: status + text/plain body; for gRPC requests an HTTP 200 trailers-only
   * response with grpc-status mapped from the HTTP status and grpc-message = body.
   */
  sendLocalReply(status: number, body: string, opts: { flag?: ResponseFlag; details?: string; headers?: HeaderMap; grpcStatus?: number } = {}): void {
    if (opts.flag) this.info.responseFlags.add(opts.flag);
    this.info.responseCodeDetails = opts.details ?? 'local_reply';
    if (this.sink.headersSent) {
      this.resetDownstream();
      return;
    }
    const headers: HeaderMap = { ...(opts.headers ?? {}) };
    if (this.info.grpc) {
      headers['content-type'] = 'application/grpc';
      headers['grpc-status'] = String(opts.grpcStatus ?? httpToGrpcStatus(status));
      if (body) headers['grpc-message'] = encodeURIComponent(body);
      this.writeHeaders(200, headers);
      this.endResponse();
      return;
    }
    const buf = Buffer.from(body);
    if (buf.length > 0) headers['content-type'] ??= 'text/plain';
    headers['content-length'] = String(buf.length);
    this.writeHeaders(status, headers);
    if (buf.length > 0 && this.method !== 'HEAD') void this.writeBody(buf);
    this.endResponse();
  }

  /** Notify filters the stream is over. */
  complete(): void {
    this.closed = true;
    this.clearTimers();
    const filters = this.filters;
    for (let i = 0; i < this.filterCount; i++) {
      try {
        filters[i].onStreamComplete?.(this);
      } catch {
        // An observer failing must not take the connection down.
      }
    }
  }
}

/**
 * The parts of a stream few requests use, made on first use (issue 16: fields cost every request
 * its bytes): the tracing span, dynamic metadata (jwt_authn, rbac), the gRPC response frame
 * counter, the AbortController behind `downstreamSignal`, and the max stream duration timer.
 */
class StreamExtras {
  tracingSpan: ActiveSpan | undefined = undefined;
  dynamic: Map<string, Record<string, unknown>> | undefined = undefined;
  responseFrames: GrpcFrameCounter | undefined = undefined;
  downstreamAbort: AbortController | undefined = undefined;
  durationTimer: NodeJS.Timeout | undefined = undefined;
}

const NO_FILTERS: HttpFilter[] = [];
const NO_HEADERS: HeaderMap = Object.freeze({}) as HeaderMap;
const MATCH_REQUEST: { -readonly [K in keyof RouteRequest]-?: RouteRequest[K] } = { headers: NO_HEADERS, method: '', path: '', authority: '', scheme: 'http', random: 0 };

function onDurationTimeout(s: HttpStream): void {
  s.giveUp('DT', 'downstream duration timeout', 'max_duration_timeout');
}
