/**
 * The HTTP connection manager (envoy.filters.network.http_connection_manager): built once from an
 * HttpConnectionManager config (proto3 JSON, read by hcm-config.ts), it serves HTTP/1.1
 * (keep-alive, Upgrade/WebSocket) and HTTP/2 (h2 after TLS ALPN, h2c prior knowledge) on sockets
 * the listener layer hands it. node:http / node:http2 servers run in "no listen" mode
 * (`emit('connection')`). Per request, in Envoy's order: HTTP version (426), authority (400),
 * request target (404 for non-relative paths), path normalization (path-normalization.ts: 400 /
 * 307 / the normalized path everything after sees), host port stripping, edge rules, route table
 * (inline or RDS, looked up per request), filter chain; StreamInfo is published on
 * `trellis:http:request-end`. Safety limits (header size and count -> 431, slowloris -> 408,
 * parse errors / smuggling -> 400, HTTP/2 floods and rapid reset -> GOAWAY) are enforced here.
 *
 * Containment: this is the boundary nothing a client sends may cross. Every callback node calls
 * us from is guarded; a throw costs its stream (500 or a reset) or its connection, is counted
 * (`downstream_rq_internal_error`, `downstream_cx_protocol_error`, ...) and logged, rate limited.
 */
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ClusterManager } from '../upstream/types.ts';
import type { Json } from '../xds-json.ts';
import { applyEdgeRules, clientAddress, normalizeAddress, requestHeaders, requestScheme, ResponseSink } from './downstream.ts';
import { HttpStream, type HttpFilterKinds } from './stream.ts';
import type { CompiledRouteTable } from '../router/route-table.ts';
import { compileHcmConfig } from './hcm-config.ts';
import { requestEndChannel, type DownstreamTlsInfo, type StreamInfo } from './stream-info.ts';
import { proxyUpgrade } from './websocket.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';
import type { TracingConfig } from '../tracing/tracing-config.ts';
import type { ActiveSpan, HttpTracer } from '../tracing/http-tracer.ts';
import { GrpcFrameCounter } from './grpc-frames.ts';
import type { LogFiles } from '../access-log/log-files.ts';
import { newHcmCounters, type HcmCounters } from './hcm-stats.ts';
import { normalizeRequestPath } from './path-normalization.ts';
import { guardSession, markRawSocket } from './h2-session-guard.ts';
import { RateLimitedLog, type ProxyLog } from '../rate-limited-log.ts';
import { describeError } from '../../errors.ts';
import { destroyOnError } from '../socket-handlers.ts';

/** Resolves RDS route configuration names to compiled tables (the xDS client implements it). */
export interface RouteProvider {
  get(name: string): CompiledRouteTable | undefined;
}

/** Everything a connection manager is built from. */
export interface ConnectionManagerOptions {
  /** HttpConnectionManager in proto3 JSON (typed_config of the network filter, "@type" optional); read by hcm-config.ts. */
  readonly config: Json;
  readonly clusterManager: ClusterManager;
  /** Needed when the config uses `rds`. */
  readonly routeProvider?: RouteProvider;
  /** The HTTP filter kinds (filters/registry.ts's FilterRegistry), from whoever assembles the proxy. */
  readonly filterRegistry: HttpFilterKinds;
  /** Uniform random in [0,1) for weighted clusters, runtime fractions, faults, back-off; seed it in tests. */
  readonly random?: () => number;
  /** Field path prefix for config errors. */
  readonly path?: string;
  /** The enclosing listener's `metadata.filter_metadata`, handed to filter factories. */
  readonly listenerMetadata?: Readonly<Record<string, Json>>;
  /** HTTP/2 rapid-reset guard: GOAWAY a session once this many streams were reset by the client
   * before completion and they are at least half of its streams (Envoy's premature reset check). Default 500. */
  readonly prematureResetLimit?: number;
  /** The counters to add to, by stat prefix (managers with one prefix share them, as in Envoy); own counters when absent. */
  readonly counters?: (statPrefix: string) => HcmCounters;
  /** Where contained errors and protocol errors are logged, rate limited per kind. */
  readonly log?: ProxyLog;
  /** Builds the tracer for a config with `tracing` (without it the field is validated, not acted on). */
  readonly tracerFactory?: (cfg: TracingConfig) => HttpTracer;
  /** Where `access_log` file loggers write (without it `access_log` is ignored). */
  readonly logFiles?: LogFiles;
}

/** Protocol a socket speaks, decided by the listener (ALPN or sniffing). */
export type DownstreamProtocol = 'http/1.1' | 'h2' | 'h2c-preface';

/** Facts about a downstream connection the listener knows and the router may need. */
export interface ConnectionMeta {
  /** SO_ORIGINAL_DST of the connection (transparent capture): ORIGINAL_DST clusters connect there. */
  readonly originalDestination?: { readonly address: string; readonly port: number };
}

const kMeta = Symbol('trellis.connectionMeta');
/** HTTP/1.1 exchanges not yet finished on a socket (pipelining): a parse error waits for them. */
const kInFlight = Symbol('trellis.inFlight');
/** Called once the socket's exchanges are all finished. */
const kOnIdle = Symbol('trellis.onIdle');
/** The connection manager's set of open connections the socket is in. */
const kConnections = Symbol('trellis.connections');
type TrackedSocket = Socket & { [kMeta]?: ConnectionMeta; [kInFlight]?: Map<ServerResponse, IncomingMessage>; [kOnIdle]?: () => void; [kConnections]?: Set<Socket> };

/** What an HTTP/1.1 response's shared 'close' listener needs from its connection manager. */
interface H1Tracker {
  readonly active: Set<ServerResponse>;
}
const kTracker = Symbol('trellis.h1Tracker');
type TrackedResponse = ServerResponse & { [kTracker]?: H1Tracker };

// Shared 'close' handler of an HTTP/1.1 response (`this`): no closure per request.
function forgetH1Response(this: TrackedResponse): void {
  this[kTracker]?.active.delete(this);
  const socket = this.req.socket as TrackedSocket;
  const inFlight = socket[kInFlight];
  if (inFlight === undefined) return;
  inFlight.delete(this);
  if (inFlight.size > 0) return;
  // An idle keep-alive connection keeps no per-request state (a pipelined request makes a new map).
  socket[kInFlight] = undefined;
  const onIdle = socket[kOnIdle];
  if (onIdle !== undefined) {
    socket[kOnIdle] = undefined;
    onIdle();
  }
}

/** One request's state that its shared listeners reach through the request and response objects. */
interface Exchange {
  stream: HttpStream;
  readonly sink: ResponseSink;
  readonly span: ActiveSpan | undefined;
}
const kExchange = Symbol('trellis.exchange');
type ExchangeHolder = { [kExchange]?: Exchange };

// Shared 'close' handler (`this` is the socket): an idle connection holds no closure of its own.
function forgetConnection(this: TrackedSocket): void {
  this[kConnections]?.delete(this);
  this[kConnections] = undefined;
}

/**
 * After a parse error: the request being parsed when it hit (incomplete) is abandoned; `fn` runs
 * once the complete requests before it have their responses (at once if there are none).
 */
function afterCompleteRequests(socket: TrackedSocket, fn: () => void): void {
  const inFlight = socket[kInFlight];
  // (Destroying its response would destroy the socket: it is just no longer waited for.)
  for (const [res, req] of inFlight ?? []) if (!req.complete) inFlight!.delete(res);
  if (inFlight === undefined || inFlight.size === 0) return fn();
  socket[kOnIdle] = fn;
}

/** A built connection manager. */
export interface HttpConnectionManager {
  readonly statPrefix: string;
  /** Serve HTTP on an accepted (and, for TLS, handshaken) socket. Never throws. */
  handleConnection(socket: Socket | TLSSocket, protocol: DownstreamProtocol, meta?: ConnectionMeta): void;
  /** Number of open downstream connections. */
  readonly connectionCount: number;
  readonly counters: HcmCounters;
  /**
   * Ask connections to finish without cutting anything: from now on HTTP/1.1 responses carry
   * `connection: close` (and the connection closes after them), HTTP/2 sessions get GOAWAY.
   */
  drain(): void;
  /** Stop: drain, close idle HTTP/1.1 connections, destroy what is left after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** Splits an absolute-form request target into authority and origin-form path (`?q` alone stays non-relative, as in Envoy); undefined if malformed. */
export function absoluteForm(target: string): { authority: string; path: string } | undefined {
  const start = target.indexOf('//') + 2;
  const slash = target.indexOf('/', start);
  const query = target.indexOf('?', start);
  const end = slash >= 0 ? (query >= 0 ? Math.min(slash, query) : slash) : query >= 0 ? query : target.length;
  const authority = target.slice(start, end);
  if (authority === '' || /[\s@]/.test(authority)) return undefined;
  const rest = target.slice(end);
  return { authority, path: rest === '' ? '/' : rest };
}

/** Characters an authority may hold (RFC 3986 reg-name / IP-literal / port, percent-encoded allowed), as Envoy checks. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** Build a connection manager; throws TrellisError(XDS_INVALID) with a field path on bad config. */
export function createConnectionManager(opts: ConnectionManagerOptions): HttpConnectionManager {
  const path = opts.path ?? 'http_connection_manager';
  const random = opts.random ?? Math.random;
  const { options: o, routes, filters, tracing, accessLogs } = compileHcmConfig(opts.config, {
    filterKinds: opts.filterRegistry, clusterManager: opts.clusterManager, random, rds: opts.routeProvider !== undefined, logFiles: opts.logFiles,
    listenerMetadata: opts.listenerMetadata,
  }, path);
  const { table: staticTable, rdsName } = routes;
  const { statPrefix, serverName, edge } = o;
  const tracer = tracing !== undefined && opts.tracerFactory !== undefined ? opts.tracerFactory(tracing) : undefined;
  const prematureResetLimit = opts.prematureResetLimit ?? 500;
  const counters = opts.counters?.(statPrefix) ?? newHcmCounters();
  const rlog = new RateLimitedLog(opts.log);

  // Like Envoy, a connection manager keeps the last route table it had when its RDS resource goes
  // away (a removed listener's connections, draining, still route as before).
  let lastRdsTable: CompiledRouteTable | undefined;
  const table = (): CompiledRouteTable | undefined => {
    if (staticTable !== undefined) return staticTable;
    const t = opts.routeProvider!.get(rdsName!);
    if (t !== undefined) lastRdsTable = t;
    return t ?? lastRdsTable;
  };
  const connections = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  let draining = false;
  const activeH1 = new Set<ServerResponse>();
  const h1Tracker: H1Tracker = { active: activeH1 };

  /** A bug reached the boundary: count it, log it (rate limited), cost only this stream. */
  function internalError(where: string, err: unknown, res?: ServerResponse | Http2ServerResponse): void {
    counters.downstream_rq_internal_error++;
    rlog.event(`internal_error:${where}`, 'error', 'contained an internal error on a request path', { where, statPrefix, error: describeError(err), stack: (err as Error)?.stack });
    if (res === undefined) return;
    try {
      if (!res.headersSent && !res.destroyed) {
        (res as ServerResponse).writeHead(500, { 'content-type': 'text/plain', 'content-length': 14 });
        res.end('internal error');
      } else {
        res.destroy();
      }
    } catch {
      res.destroy();
    }
  }

  function protocolError(kind: string, remote: string | undefined): void {
    counters.downstream_cx_protocol_error++;
    rlog.event(`protocol_error:${kind}`, 'info', 'downstream protocol error', { statPrefix, kind, remote });
  }

  // ---- per request -------------------------------------------------------------------------
  // Which codec a request came from is known by the server that emitted it, never by the version
  // the client wrote: `GET / HTTP/2.0` on an HTTP/1.1 connection is an HTTP/1 request.
  function onRequest1(req: IncomingMessage, res: ServerResponse): void {
    try {
      const socket = req.socket as TrackedSocket;
      // Bytes read after a response that closes the connection was sent (node keeps parsing until
      // the socket is gone): Envoy stopped reading at that response. Never served; node destroys
      // the request with the socket once the last response is flushed.
      if (socket.writableEnded) return;
      const inFlight = (socket[kInFlight] ??= new Map());
      inFlight.set(res, req);
      activeH1.add(res);
      (res as TrackedResponse)[kTracker] = h1Tracker;
      res.on('close', forgetH1Response);
      // Pipelined requests are served one at a time, as by Envoy (its codec stops parsing after each
      // request until the response is done): node hands us a request as soon as it is parsed and
      // queues its response behind the earlier ones. A queued response gets the socket when the
      // one before it finished; if that one closed the connection (an error, a local reply before
      // its body was read, draining), it never does, and the request never reaches a filter or a
      // backend: node destroys it with the connection.
      if (res.socket === null) res.once('socket', () => startRequest1(req, res));
      else startRequest1(req, res);
    } catch (err) {
      internalError('http1_request', err, res);
    }
  }
  function startRequest1(req: IncomingMessage, res: ServerResponse): void {
    try {
      const socket = req.socket as TrackedSocket;
      if (draining) res.shouldKeepAlive = false;
      // Envoy's HTTP/1 codec serves HTTP/1.1 (and 1.0 with accept_http_10); anything else on an
      // HTTP/1 connection (0.9, 1.0, 2.0) gets 426 and a closed connection.
      const http10 = req.httpVersion === '1.0';
      if (req.httpVersion !== '1.1' && !(http10 && o.acceptHttp10)) {
        protocolError('low_version', socket.remoteAddress);
        return rejectH1(res, 426, 'Upgrade Required');
      }
      let authority = req.headers.host;
      if (authority === undefined && http10) authority = o.defaultHostForHttp10;
      if (authority === undefined) return rejectH1(res, 400, 'Bad Request');
      serve(req, res, false, req.url ?? '/', authority);
    } catch (err) {
      internalError('http1_request', err, res);
    }
  }
  function onRequest2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    // Rapid reset: a client resets streams right after opening them, usually in the same packet.
    // Start serving on the next turn of the event loop, after the rest of the packet (its
    // RST_STREAMs) was processed: a stream reset by then never reaches the filters or a backend.
    setImmediate(startRequest2, req, res);
  }
  function startRequest2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    try {
      if (res.destroyed || req.stream.destroyed) return;
      serve(req, res, true, String(req.headers[':path'] ?? '/'), String(req.headers[':authority'] ?? req.headers.host ?? ''));
    } catch (err) {
      internalError('http2_request', err, res);
    }
  }

  /** A codec-level HTTP/1.1 answer (Envoy's text), closing the connection. */
  function rejectH1(res: ServerResponse, status: number, reason: string): void {
    res.shouldKeepAlive = false;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(reason), server: serverName, connection: 'close' });
    res.end(reason);
  }

  function serve(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, isH2: boolean, rawTarget: string, rawAuthority: string): void {
    const socket = req.socket as TrackedSocket;
    if (!AUTHORITY.test(rawAuthority)) {
      protocolError('invalid_authority', socket.remoteAddress);
      if (!isH2) return rejectH1(res as ServerResponse, 400, 'Bad Request');
      return void (res as Http2ServerResponse).stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    }
    let authority = rawAuthority;
    let target = rawTarget;
    // Absolute-form request line (RFC 9112 section 3.2.2), as sent to an HTTP proxy (HTTP_PROXY):
    // Envoy (allow_absolute_url) routes on the URL's host and path; the URL's host wins over Host.
    // The scheme is case-insensitive (RFC 3986 section 3.1): `HTTP://` too.
    const scheme8 = isH2 || target.charCodeAt(0) === 47 /* '/' */ ? '' : target.slice(0, 8).toLowerCase();
    if (!isH2 && (scheme8.startsWith('http://') || scheme8 === 'https://')) {
      const abs = absoluteForm(target);
      // An https URL on a plaintext connection claims a security the connection lacks: Envoy 403s it.
      if (abs !== undefined && scheme8 === 'https://' && (socket as TLSSocket).encrypted !== true) {
        return rejectH1(res as ServerResponse, 403, 'Forbidden');
      }
      if (abs !== undefined) {
        authority = abs.authority;
        target = abs.path;
        req.headers.host = abs.authority;
      }
    }
    // Envoy's HTTP/1 codec takes origin-form, absolute-form and `OPTIONS *`; anything else is a 400.
    if (!isH2 && !target.startsWith('/') && !(target === '*' && req.method === 'OPTIONS') && target === rawTarget) {
      protocolError('invalid_url', socket.remoteAddress);
      return rejectH1(res as ServerResponse, 400, 'Bad Request');
    }
    // Chunked is the only transfer coding a proxy can forward without decoding it (RFC 9112
    // section 6.1): `gzip, chunked` would reach the backend as a plain body. Envoy answers 501.
    const te = isH2 ? undefined : req.headers['transfer-encoding'];
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
      protocolError('unsupported_transfer_encoding', socket.remoteAddress);
      return rejectH1(res as ServerResponse, 501, 'Not Implemented');
    }
    // Envoy closes an HTTP/1 connection whose response starts before the request body was read to
    // its end (a local reply to a request with a body): what is left of the body is never parsed
    // as a next request. `bodyRead` is set by the body's reader; requests without one are complete.
    const sink = new ResponseSink(res, isH2);
    const tls = (socket as TLSSocket).encrypted === true;
    const scheme: 'http' | 'https' = tls ? 'https' : 'http';
    const remote = normalizeAddress(socket.remoteAddress);
    const method = req.method ?? 'GET';
    const ac = new AbortController();
    // Envoy: the path rules apply to relative targets; anything else is not routable (404).
    const decision = target.startsWith('/') ? normalizeRequestPath(target, o.paths) : undefined;
    const pathWithQuery = decision?.action === 'continue' || decision?.action === 'redirect' ? decision.path : target;
    // Envoy: strip the port from Host before routing (any port, or only the listener's own port).
    if (o.stripAnyHostPort) authority = authority.replace(/:\d+$/, '');
    else if (o.stripMatchingHostPort && authority.endsWith(`:${socket.localPort}`)) authority = authority.slice(0, authority.lastIndexOf(':'));
    const headers = requestHeaders(req.headers, req.rawHeaders, isH2);
    const ct = headers['content-type'];
    const info: StreamInfo = {
      requestId: '', startTime: Date.now(), startMono: performance.now(), durationMs: undefined,
      protocol: isH2 ? 'HTTP/2' : 'HTTP/1.1', method, path: pathWithQuery, authority, scheme,
      downstreamRemoteAddress: remote, downstreamDirectRemoteAddress: remote, downstreamDirectRemotePort: socket.remotePort ?? 0,
      downstreamLocalAddress: normalizeAddress(socket.localAddress), downstreamLocalPort: socket.localPort ?? 0, statPrefix,
      downstreamTls: tls ? tlsFacts(socket as TLSSocket) : undefined, connectionSecurity: connectionSecurityOf(socket),
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined,
      virtualHostName: undefined, routeName: undefined, clusterName: undefined, upstreamEndpoint: undefined, upstreamPeerPrincipal: undefined,
      responseCode: 0, responseCodeDetails: '', responseFlags: new Set(), grpcStatus: undefined, attemptCount: 0,
      bytesReceived: 0, bytesSent: 0, grpcRequestMessages: 0, grpcResponseMessages: 0, grpc: typeof ct === 'string' && ct.startsWith('application/grpc'), completed: false,
    };
    (info as { requestId: string }).requestId = applyEdgeRules(headers, edge, remote, scheme);
    (info as { scheme: 'http' | 'https' }).scheme = requestScheme(headers, isH2 ? req.headers[':scheme'] : undefined, tls);
    (info as { downstreamRemoteAddress: string }).downstreamRemoteAddress = clientAddress(headers, edge, remote);
    const span = tracer?.start(headers);
    const hasBody = isH2
      ? !(req as Http2ServerRequest).stream.endAfterHeaders
      : (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'));
    if (hasBody) sink.requestComplete = false;
    const meta = socket[kMeta];
    const exchange: Exchange = { stream: undefined!, sink, span };
    const stream = new HttpStream({
      info, headers, path: pathWithQuery, authority, body: hasBody ? countedBody(req, exchange) : null, sink, routeTable: table(), random,
      serverName, serverHeader: o.serverHeader, downstreamAbort: ac, onFilterError, streamIdleTimeoutMs: o.streamIdleTimeoutMs,
      maxStreamDurationMs: o.maxStreamDurationMs, originalDestination: meta?.originalDestination,
    });
    exchange.stream = stream;
    (req as ExchangeHolder)[kExchange] = exchange;
    (res as ExchangeHolder)[kExchange] = exchange;
    req.on('error', abortExchange);
    res.on('close', endExchange);
    let headerBytes = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i++) headerBytes += raw[i].length + 2;
    if (req.rawHeaders.length / 2 > o.maxHeadersCount || headerBytes > o.maxHeaderBytes) {
      stream.sendLocalReply(431, 'Request Header Fields Too Large', { details: 'too_many_headers' });
      if (!isH2) req.socket.end();
      return;
    }
    if (decision === undefined) {
      counters.downstream_rq_non_relative_path++;
      return stream.sendLocalReply(404, '', { details: 'absolute_path' });
    }
    // gRPC clients cannot follow a redirect: Envoy rejects those instead.
    if (decision.action === 'reject' || (decision.action === 'redirect' && info.grpc)) {
      counters.downstream_rq_failed_path_normalization++;
      if (!isH2) (res as ServerResponse).shouldKeepAlive = false;
      return stream.sendLocalReply(400, '', { details: 'path_normalization_failed' });
    }
    if (decision.action === 'redirect') {
      counters.downstream_rq_redirected_with_normalized_path++;
      return stream.sendLocalReply(307, '', { details: 'path_normalization_failed', headers: { location: decision.path } });
    }
    void stream.run(filters);
  }

  /** A filter bug must cost one request, not the process. */
  function onFilterError(stream: HttpStream, err: unknown): void {
    try {
      counters.downstream_rq_internal_error++;
      rlog.event('internal_error:filter', 'error', 'contained a filter error', { statPrefix, error: describeError(err), stack: (err as Error)?.stack });
      if (!stream.headersSent) stream.sendLocalReply(500, 'internal error', { details: 'filter_error' });
      else stream.resetDownstream();
    } catch (e) {
      internalError('filter', e);
    }
  }

  // Shared listeners of every exchange (`this` is the request or the response object).
  function abortExchange(this: ExchangeHolder): void {
    this[kExchange]?.stream.abortDownstream();
  }
  function endExchange(this: ExchangeHolder & (ServerResponse | Http2ServerResponse)): void {
    const ex = this[kExchange];
    if (ex === undefined) return;
    const { stream, span } = ex;
    const info = stream.info;
    try {
      if (!this.writableFinished) stream.abortDownstream();
      info.durationMs = performance.now() - info.startMono;
      if (!this.writableFinished) info.completed = false;
      stream.complete();
      if (span !== undefined) tracer!.finish(span, { info, headers: stream.headers, operation: stream.route?.route.operation });
      if (accessLogs !== undefined) accessLogs.log({ info, requestHeaders: stream.headers, responseHeaders: stream.responseHeaders });
      if (requestEndChannel.hasSubscribers) requestEndChannel.publish(info);
    } catch (err) {
      internalError('request_end', err);
    }
  }

  // ---- HTTP/1.1 ------------------------------------------------------------------------------
  const h1 = http.createServer({
    maxHeaderSize: o.maxHeaderBytes,
    requestTimeout: o.requestTimeoutMs,
    headersTimeout: o.requestTimeoutMs > 0 ? Math.min(o.headersTimeoutMs, o.requestTimeoutMs) : o.headersTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4))),
    keepAliveTimeout: o.idleTimeoutMs,
    // Missing Host is answered by onRequest1 (400), so that the answer is sequenced and tracked like any other.
    requireHostHeader: false,
    insecureHTTPParser: false,
    joinDuplicateHeaders: true,
    // Envoy ignores an h2c upgrade (what `curl --http2` sends to http://) and answers over HTTP/1.1.
    shouldUpgradeCallback: (req: IncomingMessage) => req.method === 'CONNECT' || !isH2cUpgrade(req),
  } as ServerOptions, onRequest1);
  h1.maxHeadersCount = o.maxHeadersCount + 1; // node truncates silently at the limit: +1 lets us see the overflow
  h1.maxRequestsPerSocket = o.maxRequestsPerConnection;
  h1.on('clientError', (err: NodeJS.ErrnoException, duplex) => {
    const socket = duplex as TrackedSocket;
    try {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      let answer: string;
      if (err.code === 'HPE_INVALID_VERSION' && unknownHttpVersion((err as { rawPacket?: Buffer }).rawPacket, (err as { bytesParsed?: number }).bytesParsed)) {
        // A well-formed version the parser does not know (HTTP/3.0): Envoy answers 426 as for 1.0 and 2.0.
        answer = `HTTP/1.1 426 Upgrade Required\r\ncontent-length: 16\r\ncontent-type: text/plain\r\nserver: ${serverName}\r\nconnection: close\r\n\r\nUpgrade Required`;
      } else {
        const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
        if (status === 408) counters.downstream_rq_header_timeout++;
        answer = `HTTP/1.1 ${status} ${reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
      }
      protocolError(err.code ?? 'parse_error', socket.remoteAddress);
      // Requests before the bad one on this connection (pipelining) still get their responses
      // first, as from Envoy: the backend may have acted on them.
      afterCompleteRequests(socket, () => {
        if (socket.writable) socket.end(answer);
        // Already closing after an earlier response: let it flush (node destroys the socket then).
        else if (!socket.writableEnded) socket.destroy();
      });
    } catch (e) {
      internalError('http1_client_error', e);
      socket.destroy();
    }
  });
  // An Upgrade or CONNECT behind pipelined requests waits for their responses, as with Envoy
  // (one request at a time); behind a response that closes the connection it is never served.
  const onUpgrade = (req: IncomingMessage, duplex: Duplex, head: Buffer) => {
    try {
      afterCompleteRequests(duplex as TrackedSocket, () => {
        if (!duplex.writableEnded && !duplex.destroyed) upgradeNow(req, duplex, head);
      });
    } catch (err) {
      internalError('upgrade', err);
      duplex.destroy();
    }
  };
  const upgradeNow = (req: IncomingMessage, duplex: Duplex, head: Buffer) => {
    try {
      const s = duplex as TrackedSocket;
      const isConnect = req.method === 'CONNECT';
      // CONNECT's request target is the authority (RFC 9110 section 9.3.6).
      const authority = isConnect ? String(req.url ?? '') : String(req.headers.host ?? '');
      // CONNECT names host:port and nothing else (CONNECT /b is a 400 from Envoy too).
      if (!AUTHORITY.test(authority) || (isConnect && !/^[^/?#\s@]+:\d+$/.test(authority))) {
        protocolError('invalid_authority', s.remoteAddress);
        return void duplex.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      }
      let path = '';
      if (!isConnect) {
        const d = (req.url ?? '/').startsWith('/') ? normalizeRequestPath(req.url ?? '/', o.paths) : undefined;
        if (d === undefined || d.action !== 'continue') {
          counters.downstream_rq_failed_path_normalization++;
          return void duplex.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
        }
        path = d.path;
      }
      const headers = requestHeaders(req.headers, req.rawHeaders);
      const scheme = (s as unknown as TLSSocket).encrypted ? 'https' : 'http';
      applyEdgeRules(headers, edge, normalizeAddress(s.remoteAddress), scheme);
      const originalDestination = s[kMeta]?.originalDestination;
      void proxyUpgrade({ req, socket: duplex, head, headers, authority, path, table: table(), clusterManager: opts.clusterManager, allowedUpgrades: o.allowedUpgrades, random, scheme, originalDestination })
        .catch((err: unknown) => {
          internalError('upgrade', err);
          duplex.destroy();
        });
    } catch (err) {
      internalError('upgrade', err);
      duplex.destroy();
    }
  };
  // An Expect other than 100-continue is routed like any request, as by Envoy (node answers 417 by itself otherwise).
  h1.on('checkExpectation', onRequest1);
  h1.on('upgrade', onUpgrade);
  h1.on('connect', onUpgrade);
  h1.emit('listening'); // starts node's connection checks (headers/request timeouts) without a listening socket

  // ---- HTTP/2 --------------------------------------------------------------------------------
  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: o.maxConcurrentStreams, maxHeaderListSize: o.maxHeaderBytes, ...(o.initialWindowSize ? { initialWindowSize: o.initialWindowSize } : {}) },
    // Up to twice the limit gets a proper 431 from our own check; beyond that nghttp2 refuses the stream.
    maxHeaderListPairs: o.maxHeadersCount * 2 + 16,
    maxSessionInvalidFrames: 100,
    // A packet of HEADERS + RST_STREAM pairs fills node's stream table (closed streams leave it
    // a turn later) and node refuses the rest; at 100 refusals it ends the session with a second
    // GOAWAY after ours. The rapid-reset guard ends such sessions instead.
    maxSessionRejectedStreams: 10_000,
    maxOutstandingPings: 10,
  }, onRequest2);
  // One options object for every session (a closure per session would live as long as it).
  const sessionGuard = {
    limit: prematureResetLimit, idleMs: o.idleTimeoutMs, counters,
    onTooManyResets: (s: Http2Session) => rlog.event('premature_reset', 'warn', 'closed an HTTP/2 connection: too many streams reset by the client (rapid reset)', { statPrefix, remote: s.socket?.remoteAddress }),
  };
  h2.on('session', (session: Http2Session) => {
    try {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      if (draining) session.close();
      if (o.connectionWindowSize !== undefined) session.setLocalWindowSize(o.connectionWindowSize);
      guardSession(session, sessionGuard);
    } catch (err) {
      internalError('http2_session', err);
      session.destroy();
    }
  });
  h2.on('sessionError', () => {});
  h2.on('streamError', () => {});

  return {
    statPrefix,
    counters,
    get connectionCount() {
      return connections.size;
    },
    handleConnection(socket, protocol, meta) {
      // Readable later through req.socket (HTTP/2's socket proxy forwards property reads).
      if (meta) (socket as TrackedSocket)[kMeta] = meta;
      connections.add(socket);
      (socket as TrackedSocket)[kConnections] = connections;
      socket.on('close', forgetConnection);
      // The listener layer usually installed it already: one shared function, not one per layer.
      if (!socket.listeners('error').includes(destroyOnError)) socket.on('error', destroyOnError);
      try {
        if (protocol === 'http/1.1') {
          counters.downstream_cx_http1_total++;
          h1.emit('connection', socket);
        } else {
          counters.downstream_cx_http2_total++;
          markRawSocket(socket);
          h2.emit('connection', socket);
        }
      } catch (err) {
        internalError('connection', err);
        socket.destroy();
      }
    },
    drain() {
      if (draining) return;
      draining = true;
      counters.downstream_cx_drain_close += connections.size;
      for (const r of activeH1) if (!r.headersSent) r.shouldKeepAlive = false;
      // GOAWAY(NO_ERROR): in-flight streams finish, new ones go elsewhere.
      for (const s of sessions) if (!s.closed && !s.destroyed) s.close();
    },
    async close(graceMs = 5000) {
      this.drain();
      h2.close(() => {});
      // HTTP/1.1 has no GOAWAY: closing an idle keep-alive connection races a request the client is
      // sending on it (a reset the client cannot tell from a failure). For the first half of the
      // grace period, busy connections are closed by the client after a `connection: close`
      // response; only then are the still idle ones closed (Envoy likewise waits out its drain time).
      const start = Date.now();
      const deadline = start + graceMs;
      while (connections.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        if (Date.now() - start >= graceMs / 2) h1.closeIdleConnections();
      }
      h1.close(() => {});
      for (const s of connections) s.destroy();
    },
  };
}

/** `Upgrade: h2c` (RFC 7540 section 3.2, withdrawn by RFC 9113): served as HTTP/1.1, as Envoy does. */
function isH2cUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.trim().toLowerCase() === 'h2c';
}

/**
 * The request line the parser failed in is well formed but names an HTTP version other than 1.x
 * (`GET / HTTP/3.0`). `raw` is the packet being parsed, which may start with earlier pipelined
 * requests; `at` is where in it the parser stopped, on the failing line.
 */
function unknownHttpVersion(raw: Buffer | undefined, at: number | undefined): boolean {
  if (raw === undefined) return false;
  const pos = Math.min(Math.max(at ?? 0, 0), raw.length);
  const start = pos > 0 ? raw.lastIndexOf(0x0a, pos - 1) + 1 : 0;
  const eol = raw.indexOf('\r\n', start);
  const lf = raw.indexOf(0x0a, start);
  // A bare LF ends the line before its CRLF: not a well-formed request line.
  if (lf >= 0 && lf !== eol + 1) return false;
  const line = raw.subarray(start, eol < 0 ? Math.min(raw.length, start + 8192) : eol).toString('latin1');
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ ]+ HTTP\/\d\.\d$/.test(line);
}

const kTls = Symbol('trellis.downstreamTls');

/** TLS facts of a connection, cached on the socket (HTTP/2's socket proxy forwards property access). */
function tlsFacts(socket: TLSSocket): DownstreamTlsInfo {
  const holder = socket as TLSSocket & { [kTls]?: DownstreamTlsInfo };
  const cached = holder[kTls];
  if (cached) return cached;
  let peerUriSans: string[] = [];
  let presented = false;
  try {
    const peer = socket.getPeerCertificate();
    presented = !!peer && Object.keys(peer).length > 0;
    peerUriSans = (peer?.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
  } catch {
    // No certificate information on this socket.
  }
  const facts: DownstreamTlsInfo = Object.freeze({
    peerUriSans: Object.freeze(peerUriSans), peerCertificatePresented: presented,
    sni: typeof socket.servername === 'string' ? socket.servername : undefined,
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : undefined,
  });
  holder[kTls] = facts;
  return facts;
}

/**
 * The request body as an async iterable that counts bytes and marks stream activity as it is read.
 * (A 'data' listener would switch the request to flowing mode and lose data before the router reads it.)
 */
async function* countedBody(req: AsyncIterable<Buffer>, ex: Exchange): AsyncIterable<Uint8Array> {
  const info = ex.stream.info;
  const frames = info.grpc ? new GrpcFrameCounter() : undefined;
  for await (const chunk of req) {
    info.bytesReceived += chunk.length;
    if (frames !== undefined) info.grpcRequestMessages += frames.push(chunk);
    ex.stream.touch();
    yield chunk;
  }
  ex.sink.requestComplete = true;
}
