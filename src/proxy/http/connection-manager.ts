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
 * parse errors / smuggling -> 400, HTTP/2 floods and rapid reset -> GOAWAY) are enforced here
 * and in the HTTP/1.1 codec side, h1-downstream.ts (with h1-in-flight.ts for pipelining).
 *
 * Containment: this is the boundary nothing a client sends may cross. Every callback node calls
 * us from is guarded; a throw costs its stream (500 or a reset) or its connection, is counted
 * (`downstream_rq_internal_error`, `downstream_cx_protocol_error`, ...) and logged, rate limited.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClusterManager } from '../upstream/types.ts';
import type { Json } from '../xds-json.ts';
import { applyEdgeRules, AUTHORITY, clientAddress, normalizeAddress, requestHeaders, requestScheme, ResponseSink } from './downstream.ts';
import { createH1Server, expectsContinue, rejectH1 } from './h1-downstream.ts';
import { createH2Server, type H2Request } from './h2-downstream.ts';
import { h2ResponseSink } from './h2-response-sink.ts';
import { HttpStream, type HttpFilterKinds, type StreamSettings } from './stream.ts';
import type { CompiledRouteTable } from '../router/route-table.ts';
import { compileHcmConfig } from './hcm-config.ts';
import { HttpStreamInfo, requestEndChannel, type DownstreamConnectionInfo, type DownstreamTlsInfo } from './stream-info.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';
import type { TracingConfig } from '../tracing/tracing-config.ts';
import type { HttpTracer } from '../tracing/http-tracer.ts';
import { GrpcFrameCounter } from './grpc-frames.ts';
import type { LogFiles } from '../access-log/log-files.ts';
import { newHcmCounters, type HcmCounters } from './hcm-stats.ts';
import { normalizeRequestPath } from './path-normalization.ts';
import { markRawSocket } from './h2-session-guard.ts';
import { RateLimitedLog, type ProxyLog } from '../rate-limited-log.ts';
import { describeError, TrellisError } from '../../errors.ts';
import { destroyOnError } from '../socket-handlers.ts';
import { forEachInFlight, forgetH1Response, type InFlightSocket } from './h1-in-flight.ts';

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
/** The connection's DownstreamConnectionInfo, made with its first request. */
const kConnectionInfo = Symbol('trellis.downstreamConnectionInfo');
/** A port at the end of an authority (a module constant: a regular expression literal is a new object each time it runs). */
const HOST_PORT = /:\d+$/;
/** The connection manager's set of open connections the socket is in. */
const kConnections = Symbol('trellis.connections');
type TrackedSocket = InFlightSocket & { [kMeta]?: ConnectionMeta; [kConnections]?: Set<Socket>; [kConnectionInfo]?: DownstreamConnectionInfo };

/** A request's stream, which its shared listeners reach through the request and response objects. */
const kStream = Symbol('trellis.stream');
type StreamHolder = { [kStream]?: HttpStream };

/** What a request body's reader needs: made only for a request with a body. */
interface BodyReader {
  stream: HttpStream;
  /** The HTTP/1.1 sink (the reader marks the request complete); undefined for HTTP/2. */
  readonly sink: ResponseSink | undefined;
}

// Shared 'close' handler (`this` is the socket): an idle connection holds no closure of its own.
function forgetConnection(this: TrackedSocket): void {
  this[kConnections]?.delete(this);
  this[kConnections] = undefined;
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

  /** A bug reached the boundary: count it, log it (rate limited), cost only this stream. */
  function internalError(where: string, err: unknown, res?: ServerResponse | ServerHttp2Stream): void {
    counters.downstream_rq_internal_error++;
    rlog.event(`internal_error:${where}`, 'error', 'contained an internal error on a request path', { where, statPrefix, error: describeError(err), stack: (err as Error)?.stack });
    if (res === undefined) return;
    if (isH2Stream(res)) return h2InternalError(res);
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

  function serve(req: IncomingMessage | H2Request, res: ServerResponse | ServerHttp2Stream, isH2: boolean, rawTarget: string, rawAuthority: string): void {
    const socket = req.socket as TrackedSocket;
    if (!AUTHORITY.test(rawAuthority)) {
      protocolError('invalid_authority', socket.remoteAddress);
      if (!isH2) return rejectH1(res as ServerResponse, 400, 'Bad Request', serverName);
      return void (res as ServerHttp2Stream).close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
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
        return rejectH1(res as ServerResponse, 403, 'Forbidden', serverName);
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
      return rejectH1(res as ServerResponse, 400, 'Bad Request', serverName);
    }
    // Chunked is the only transfer coding a proxy can forward without decoding it (RFC 9112
    // section 6.1): `gzip, chunked` would reach the backend as a plain body. Envoy answers 501.
    const te = isH2 ? undefined : req.headers['transfer-encoding'];
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
      protocolError('unsupported_transfer_encoding', socket.remoteAddress);
      return rejectH1(res as ServerResponse, 501, 'Not Implemented', serverName);
    }
    // Envoy closes an HTTP/1 connection whose response starts before the request body was read to
    // its end (a local reply to a request with a body): what is left of the body is never parsed
    // as a next request. `bodyRead` is set by the body's reader; requests without one are complete.
    const h1Sink = isH2 ? undefined : new ResponseSink(res as ServerResponse);
    const sink = h1Sink ?? h2ResponseSink(res as ServerHttp2Stream);
    const conn = connectionInfo(socket, isH2, statPrefix);
    const tls = conn.tls !== undefined;
    const scheme: 'http' | 'https' = tls ? 'https' : 'http';
    const remote = conn.remoteAddress;
    const method = req.method ?? 'GET';
    // Envoy: the path rules apply to relative targets; anything else is not routable (404).
    const decision = target.startsWith('/') ? normalizeRequestPath(target, o.paths) : undefined;
    const pathWithQuery = decision?.action === 'continue' || decision?.action === 'redirect' ? decision.path : target;
    // Envoy: strip the port from Host before routing (any port, or only the listener's own port).
    if (o.stripAnyHostPort) authority = authority.replace(HOST_PORT, '');
    else if (o.stripMatchingHostPort && authority.endsWith(`:${conn.localPort}`)) authority = authority.slice(0, authority.lastIndexOf(':'));
    const headers = requestHeaders(req.headers, req.rawHeaders, isH2);
    const ct = headers['content-type'];
    const userAgent = req.headers['user-agent'];
    const requestId = applyEdgeRules(headers, edge, remote, scheme);
    const info = new HttpStreamInfo(
      conn, requestId, method, pathWithQuery, authority, requestScheme(headers, isH2 ? req.headers[':scheme'] : undefined, tls),
      clientAddress(headers, edge, remote), typeof userAgent === 'string' ? userAgent : undefined, typeof ct === 'string' && ct.startsWith('application/grpc'),
    );
    const span = tracer?.start(headers);
    const hasBody = isH2
      ? !(req as H2Request).stream.endAfterHeaders
      : (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'));
    if (hasBody && h1Sink !== undefined) h1Sink.requestComplete = false;
    const meta = socket[kMeta];
    const reader: BodyReader | undefined = hasBody ? { stream: undefined!, sink: h1Sink } : undefined;
    const bodySource = isH2 ? (req as H2Request).stream : (req as IncomingMessage);
    const stream = new HttpStream(streamSettings, info, headers, pathWithQuery, authority, reader !== undefined ? countedBody(bodySource, reader) : null, sink, table(), meta?.originalDestination);
    if (reader !== undefined) reader.stream = stream;
    stream.tracingSpan = span;
    (res as StreamHolder)[kStream] = stream;
    // A request without a body is never read: a client going away shows as the response's 'close'
    // (its 'error' listener would only cost a slot per request). HTTP/1.1 responses have their one
    // 'close' listener already (closeH1Response). An HTTP/2 stream is request and response in one:
    // its 'close' (after a reset too) ends the exchange; its errors are absorbed by the session guard.
    if (isH2) {
      (res as ServerHttp2Stream).on('close', endExchange);
    } else if (hasBody) {
      (req as StreamHolder)[kStream] = stream;
      (req as IncomingMessage).on('error', abortExchange);
    }
    let headerBytes = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i++) headerBytes += raw[i].length + 2;
    if (req.rawHeaders.length / 2 > o.maxHeadersCount || headerBytes > o.maxHeaderBytes) {
      stream.sendLocalReply(431, 'Request Header Fields Too Large', { details: 'too_many_headers' });
      if (!isH2) (req as IncomingMessage).socket.end();
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
    // Past the codec and path checks: the 100 a client waits for (proxy_100_continue off), for
    // either protocol only now, as from Envoy (a refused request gets its answer alone).
    if (isH2) {
      if ((req as H2Request).headers.expect === '100-continue') (res as ServerHttp2Stream).additionalHeaders({ ':status': 100 });
    } else if (expectsContinue(req as IncomingMessage)) (res as ServerResponse).writeContinue();
    stream.run(filters);
  }

  const streamSettings: StreamSettings = {
    random, serverName, serverHeader: o.serverHeader, onFilterError, streamIdleTimeoutMs: o.streamIdleTimeoutMs, maxStreamDurationMs: o.maxStreamDurationMs,
  };

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
  function abortExchange(this: StreamHolder): void {
    this[kStream]?.abortDownstream();
  }
  function endExchange(this: StreamHolder & (ServerResponse | ServerHttp2Stream)): void {
    const stream = this[kStream];
    if (stream === undefined) return;
    const span = stream.tracingSpan;
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
  function closeH1Response(this: ServerResponse): void {
    forgetH1Response.call(this);
    endExchange.call(this as ServerResponse & StreamHolder);
  }
  const h1 = createH1Server({
    options: o, counters, clusterManager: opts.clusterManager, random, table, draining: () => draining, serve, onResponseClose: closeH1Response,
    originalDestination: (socket) => (socket as TrackedSocket)[kMeta]?.originalDestination,
    internalError, protocolError,
  });

  // ---- HTTP/2 --------------------------------------------------------------------------------
  const h2 = createH2Server({
    options: o, counters, prematureResetLimit, sessions, draining: () => draining, serve, internalError,
    onTooManyResets: (s) => rlog.event('premature_reset', 'warn', 'closed an HTTP/2 connection: too many streams reset by the client (rapid reset)', { statPrefix, remote: s.socket?.remoteAddress }),
  });

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
      for (const socket of connections) forEachInFlight(socket, stopKeepAlive);
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

function isH2Stream(res: ServerResponse | ServerHttp2Stream): res is ServerHttp2Stream {
  return typeof (res as ServerHttp2Stream).respond === 'function';
}

/** A contained bug on an HTTP/2 stream: 500 when nothing was sent yet, otherwise a reset. */
function h2InternalError(stream: ServerHttp2Stream): void {
  try {
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      stream.respond({ ':status': 500, 'content-type': 'text/plain', 'content-length': 14 });
      stream.end('internal error');
    } else {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  } catch {
    stream.destroy();
  }
}

function stopKeepAlive(res: ServerResponse): void {
  if (!res.headersSent) res.shouldKeepAlive = false;
}

/** The facts every request on `socket` shares (cached on the socket: HTTP/2's socket proxy forwards property access). */
function connectionInfo(socket: TrackedSocket, isH2: boolean, statPrefix: string): DownstreamConnectionInfo {
  const protocol = isH2 ? 'HTTP/2' : 'HTTP/1.1';
  const cached = socket[kConnectionInfo];
  if (cached !== undefined && cached.statPrefix === statPrefix && cached.protocol === protocol) return cached;
  const info: DownstreamConnectionInfo = Object.freeze({
    protocol, statPrefix,
    remoteAddress: normalizeAddress(socket.remoteAddress), remotePort: socket.remotePort ?? 0,
    localAddress: normalizeAddress(socket.localAddress), localPort: socket.localPort ?? 0,
    tls: (socket as unknown as TLSSocket).encrypted === true ? tlsFacts(socket as unknown as TLSSocket) : undefined,
    security: connectionSecurityOf(socket),
  });
  socket[kConnectionInfo] = info;
  return info;
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
async function* countedBody(req: AsyncIterable<Buffer>, ex: BodyReader): AsyncIterable<Uint8Array> {
  const info = ex.stream.info;
  const frames = info.grpc ? new GrpcFrameCounter() : undefined;
  for await (const chunk of req) {
    info.bytesReceived += chunk.length;
    if (frames !== undefined) info.grpcRequestMessages += frames.push(chunk);
    ex.stream.touch();
    yield chunk;
  }
  // node ends an HTTP/2 stream's readable side cleanly on RST_STREAM too (CANCEL is not even an
  // error): a body cut short must fail, as a cut HTTP/1.1 body does, or it would be forwarded as complete.
  if ((req as Partial<ServerHttp2Stream>).aborted === true) {
    throw new TrellisError('DOWNSTREAM_RESET', 'the client reset the HTTP/2 stream before the request body ended');
  }
  if (ex.sink !== undefined) ex.sink.requestComplete = true;
}
