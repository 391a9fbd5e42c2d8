/**
 * The HTTP connection manager (envoy.filters.network.http_connection_manager): built once from an
 * HttpConnectionManager config (proto3 JSON), it serves HTTP/1.1 (keep-alive, Upgrade/WebSocket)
 * and HTTP/2 (h2 after TLS ALPN, h2c prior knowledge) on sockets the listener layer hands it.
 * node:http / node:http2 servers run in "no listen" mode (`emit('connection')`). Per request it
 * normalises headers, applies edge rules, resolves the route table (inline or RDS via a
 * RouteProvider, looked up per request so RDS updates apply to new requests), runs the filter
 * chain, and publishes StreamInfo on `trellis:http:request-end`. Safety limits (header size and
 * count -> 431, slowloris -> 408, parse errors / smuggling -> 400, HTTP/2 stream floods and
 * rapid reset -> GOAWAY) are enforced here; nothing a client sends can throw past a connection.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClusterManager } from '../upstream/types.ts';
import { configError, optArr, optBool, optDurationMs, optObj, optStr, optUint, type Json } from './config-json.ts';
import { applyEdgeRules, clientAddress, internalAddresses, normalizeAddress, requestHeaders, responseSink, type EdgeRules } from './downstream.ts';
import { HttpStream, type FilterFactoryContext, type HttpFilterFactory } from './filter-chain.ts';
import { compileRouteTable, type CompiledRouteTable } from './route-table.ts';
import { requestEndChannel, type DownstreamTlsInfo, type StreamInfo } from './stream-info.ts';
import { proxyUpgrade } from './websocket.ts';
import { defaultFilterRegistry, type FilterRegistry } from '../filters/registry.ts';
import { connectionSecurityOf } from '../tls/peer-identity.ts';

/** Resolves RDS route configuration names to compiled tables (the xDS client implements it). */
export interface RouteProvider {
  get(name: string): CompiledRouteTable | undefined;
}

/** Everything a connection manager is built from. */
export interface ConnectionManagerOptions {
  /** HttpConnectionManager in proto3 JSON (typed_config of the network filter, "@type" optional). */
  readonly config: Json;
  readonly clusterManager: ClusterManager;
  /** Needed when the config uses `rds`. */
  readonly routeProvider?: RouteProvider;
  /** Filter kinds; defaults to the built-in registry. */
  readonly filterRegistry?: FilterRegistry;
  /** Uniform random in [0,1) for weighted clusters, runtime fractions, faults, back-off; seed it in tests. */
  readonly random?: () => number;
  /** Field path prefix for config errors. */
  readonly path?: string;
  /** The enclosing listener's `metadata.filter_metadata`, handed to filter factories. */
  readonly listenerMetadata?: Readonly<Record<string, Json>>;
  /** HTTP/2 rapid-reset guard: GOAWAY a session once this many streams were reset by the client
   * before completion and they are at least half of its streams (Envoy's premature reset check). Default 500. */
  readonly prematureResetLimit?: number;
}

/** Compile a RouteConfiguration with the registry's per-filter config parsers (what RDS consumers call). */
export function compileRouteConfiguration(json: unknown, registry: FilterRegistry = defaultFilterRegistry(), path = 'route_config'): CompiledRouteTable {
  return compileRouteTable(json, { perFilterConfigParser: registry.perFilterConfigParser() }, path);
}

/** Protocol a socket speaks, decided by the listener (ALPN or sniffing). */
export type DownstreamProtocol = 'http/1.1' | 'h2' | 'h2c-preface';

/** Facts about a downstream connection the listener knows and the router may need. */
export interface ConnectionMeta {
  /** SO_ORIGINAL_DST of the connection (transparent capture): ORIGINAL_DST clusters connect there. */
  readonly originalDestination?: { readonly address: string; readonly port: number };
}

const kMeta = Symbol('trellis.connectionMeta');

/** A built connection manager. */
export interface HttpConnectionManager {
  readonly statPrefix: string;
  /** Serve HTTP on an accepted (and, for TLS, handshaken) socket. Never throws. */
  handleConnection(socket: Socket | TLSSocket, protocol: DownstreamProtocol, meta?: ConnectionMeta): void;
  /** Number of open downstream connections. */
  readonly connectionCount: number;
  /** Stop: GOAWAY HTTP/2 sessions, close idle HTTP/1.1 connections, destroy the rest after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

const SERVER_HEADER = new Set(['OVERWRITE', 'APPEND_IF_ABSENT', 'PASS_THROUGH']);

/** Splits an absolute-form request target into authority and origin-form path; undefined if malformed. */
export function absoluteForm(target: string): { authority: string; path: string } | undefined {
  const start = target.indexOf('//') + 2;
  const slash = target.indexOf('/', start);
  const query = target.indexOf('?', start);
  const end = slash >= 0 ? (query >= 0 ? Math.min(slash, query) : slash) : query >= 0 ? query : target.length;
  const authority = target.slice(start, end);
  if (authority === '' || /[\s@]/.test(authority)) return undefined;
  const rest = target.slice(end);
  return { authority, path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}

/** Build a connection manager; throws TrellisError(HTTP_CONFIG_INVALID) with a field path on bad config. */
export function createConnectionManager(opts: ConnectionManagerOptions): HttpConnectionManager {
  const path = opts.path ?? 'http_connection_manager';
  const c = opts.config;
  const random = opts.random ?? Math.random;
  const registry = opts.filterRegistry ?? defaultFilterRegistry();
  const statPrefix = optStr(c.stat_prefix, `${path}.stat_prefix`) ?? '';
  let staticTable: CompiledRouteTable | undefined;
  let rdsName: string | undefined;
  if (c.route_config !== undefined) {
    staticTable = compileRouteConfiguration(c.route_config, registry, `${path}.route_config`);
  } else if (c.rds !== undefined) {
    rdsName = optStr(optObj(c.rds, `${path}.rds`)?.route_config_name, `${path}.rds.route_config_name`);
    if (!rdsName) configError(`${path}.rds.route_config_name`, 'is required');
    if (!opts.routeProvider) configError(`${path}.rds`, 'RDS needs a route provider');
  } else {
    configError(path, 'one of route_config or rds is required (scoped_routes is not supported)');
  }
  const ctx: FilterFactoryContext = { clusterManager: opts.clusterManager, random, statPrefix, listenerMetadata: opts.listenerMetadata };
  const filters: readonly HttpFilterFactory[] = registry.buildChain(c.http_filters, ctx, `${path}.http_filters`);

  const common = optObj(c.common_http_protocol_options, `${path}.common_http_protocol_options`) ?? {};
  const idleTimeoutMs = optDurationMs(common.idle_timeout, `${path}.common_http_protocol_options.idle_timeout`) ?? 3_600_000;
  const maxHeadersCount = optUint(common.max_headers_count, `${path}.common_http_protocol_options.max_headers_count`) ?? 100;
  const maxRequestsPerConnection = optUint(common.max_requests_per_connection, `${path}.common_http_protocol_options.max_requests_per_connection`) ?? 0;
  const maxHeaderBytes = (optUint(c.max_request_headers_kb, `${path}.max_request_headers_kb`) ?? 60) * 1024;
  if (maxHeaderBytes === 0 || maxHeaderBytes > 8192 * 1024) configError(`${path}.max_request_headers_kb`, 'must be in [1, 8192]');
  const requestTimeoutMs = optDurationMs(c.request_timeout, `${path}.request_timeout`) ?? 0;
  // Envoy disables request_headers_timeout by default; we keep node's 60s guard against slowloris unless configured.
  const headersTimeoutMs = optDurationMs(c.request_headers_timeout, `${path}.request_headers_timeout`) || 60_000;
  const serverName = optStr(c.server_name, `${path}.server_name`) ?? 'envoy';
  const serverHeader = (optStr(c.server_header_transformation, `${path}.server_header_transformation`) ?? 'OVERWRITE') as 'OVERWRITE';
  if (!SERVER_HEADER.has(serverHeader)) configError(`${path}.server_header_transformation`, `unknown value '${serverHeader}'`);
  const iac = optObj(c.internal_address_config, `${path}.internal_address_config`);
  const cidrs = iac?.cidr_ranges === undefined ? undefined : optArr(iac.cidr_ranges, `${path}.internal_address_config.cidr_ranges`).map((r, i) => {
    const o = optObj(r, `${path}.internal_address_config.cidr_ranges[${i}]`) ?? {};
    return { address: optStr(o.address_prefix, `${path}.internal_address_config.cidr_ranges[${i}].address_prefix`) ?? '', prefixLen: optUint(o.prefix_len, `${path}.internal_address_config.cidr_ranges[${i}].prefix_len`) ?? 0 };
  });
  const edge: EdgeRules = {
    useRemoteAddress: optBool(c.use_remote_address, `${path}.use_remote_address`) ?? false,
    xffNumTrustedHops: optUint(c.xff_num_trusted_hops, `${path}.xff_num_trusted_hops`) ?? 0,
    generateRequestId: optBool(c.generate_request_id, `${path}.generate_request_id`) ?? true,
    preserveExternalRequestId: optBool(c.preserve_external_request_id, `${path}.preserve_external_request_id`) ?? false,
    internal: internalAddresses(cidrs),
  };
  const allowedUpgrades = new Set<string>();
  optArr(c.upgrade_configs, `${path}.upgrade_configs`).forEach((u, i) => {
    const o = optObj(u, `${path}.upgrade_configs[${i}]`) ?? {};
    if (optBool(o.enabled, `${path}.upgrade_configs[${i}].enabled`) === false) return;
    allowedUpgrades.add((optStr(o.upgrade_type, `${path}.upgrade_configs[${i}].upgrade_type`) ?? '').toLowerCase());
  });
  const h2o = optObj(c.http2_protocol_options, `${path}.http2_protocol_options`) ?? {};
  const maxConcurrentStreams = optUint(h2o.max_concurrent_streams, `${path}.http2_protocol_options.max_concurrent_streams`) ?? 1024;
  const initialWindowSize = optUint(h2o.initial_stream_window_size, `${path}.http2_protocol_options.initial_stream_window_size`);
  const connectionWindowSize = optUint(h2o.initial_connection_window_size, `${path}.http2_protocol_options.initial_connection_window_size`);
  // Envoy's bounds for both windows: [65535, 2147483647].
  for (const [v, f] of [[initialWindowSize, 'initial_stream_window_size'], [connectionWindowSize, 'initial_connection_window_size']] as const) {
    if (v !== undefined && (v < 65535 || v > 2147483647)) configError(`${path}.http2_protocol_options.${f}`, 'must be in [65535, 2147483647]');
  }
  const prematureResetLimit = opts.prematureResetLimit ?? 500;
  const streamIdleTimeoutMs = optDurationMs(c.stream_idle_timeout, `${path}.stream_idle_timeout`) ?? 300_000;
  const maxStreamDurationMs = optDurationMs(common.max_stream_duration, `${path}.common_http_protocol_options.max_stream_duration`) ?? 0;
  const stripAnyHostPort = optBool(c.strip_any_host_port, `${path}.strip_any_host_port`) ?? false;
  const stripMatchingHostPort = optBool(c.strip_matching_host_port, `${path}.strip_matching_host_port`) ?? false;
  if (stripAnyHostPort && stripMatchingHostPort) configError(path, 'strip_any_host_port and strip_matching_host_port are mutually exclusive');

  const table = (): CompiledRouteTable | undefined => staticTable ?? opts.routeProvider!.get(rdsName!);
  const connections = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  let draining = false;
  const activeH1 = new Set<ServerResponse>();

  // ---- per request -------------------------------------------------------------------------
  function onRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const isH2 = req.httpVersionMajor === 2;
    // A stream the client already reset (HTTP/2 rapid reset) has nothing left to serve.
    if (res.destroyed || (isH2 && (req as Http2ServerRequest).stream.destroyed)) return;
    // Draining: HTTP/1.1 responses carry `connection: close` so clients move to the new listener.
    if (!isH2) {
      const r1 = res as ServerResponse;
      if (draining) r1.shouldKeepAlive = false;
      activeH1.add(r1);
      r1.once('close', () => activeH1.delete(r1));
    }
    const sink = responseSink(res, isH2);
    const socket = req.socket as Socket;
    const tls = (socket as TLSSocket).encrypted === true;
    const scheme: 'http' | 'https' = tls ? 'https' : 'http';
    const remote = normalizeAddress(socket.remoteAddress);
    const rawCount = req.rawHeaders.length / 2;
    let headerBytes = 0;
    for (const h of req.rawHeaders) headerBytes += h.length + 2;
    const method = req.method ?? 'GET';
    const ac = new AbortController();
    let authority = String((isH2 ? (req.headers[':authority'] ?? req.headers.host) : req.headers.host) ?? '');
    let pathWithQuery = (isH2 ? String(req.headers[':path'] ?? '/') : req.url) ?? '/';
    // Absolute-form request line (RFC 9112 section 3.2.2), as sent to an HTTP proxy (HTTP_PROXY):
    // Envoy (allow_absolute_url) routes on the URL's host and path; the URL's host wins over Host.
    if (!isH2 && (pathWithQuery.startsWith('http://') || pathWithQuery.startsWith('https://'))) {
      const abs = absoluteForm(pathWithQuery);
      if (abs !== undefined) {
        authority = abs.authority;
        pathWithQuery = abs.path;
        req.headers.host = abs.authority;
      }
    }
    // Envoy: strip the port from Host before routing (any port, or only the listener's own port).
    if (stripAnyHostPort) authority = authority.replace(/:\d+$/, '');
    else if (stripMatchingHostPort && authority.endsWith(`:${socket.localPort}`)) authority = authority.slice(0, authority.lastIndexOf(':'));
    const headers = requestHeaders(req.headers, req.rawHeaders);
    const ct = headers['content-type'];
    const info: StreamInfo = {
      requestId: '', startTime: Date.now(), startMono: performance.now(), durationMs: undefined,
      protocol: isH2 ? 'HTTP/2' : 'HTTP/1.1', method, path: pathWithQuery, authority, scheme,
      downstreamRemoteAddress: remote, downstreamDirectRemoteAddress: remote, downstreamDirectRemotePort: socket.remotePort ?? 0,
      downstreamLocalAddress: normalizeAddress(socket.localAddress), downstreamLocalPort: socket.localPort ?? 0, statPrefix,
      downstreamTls: tls ? tlsFacts(socket as TLSSocket) : undefined, connectionSecurity: connectionSecurityOf(socket),
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined,
      virtualHostName: undefined, routeName: undefined, clusterName: undefined, upstreamEndpoint: undefined,
      responseCode: 0, responseCodeDetails: '', responseFlags: new Set(), grpcStatus: undefined, attemptCount: 0,
      bytesReceived: 0, bytesSent: 0, grpc: typeof ct === 'string' && ct.startsWith('application/grpc'), completed: false,
    };
    (info as { requestId: string }).requestId = applyEdgeRules(headers, edge, remote, scheme);
    (info as { downstreamRemoteAddress: string }).downstreamRemoteAddress = clientAddress(headers, edge, remote);
    const hasBody = isH2
      ? !(req as Http2ServerRequest).stream.endAfterHeaders
      : (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'));
    req.on('error', () => ac.abort());
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
      info.durationMs = performance.now() - info.startMono;
      if (!res.writableFinished) info.completed = false;
      stream.complete();
      if (requestEndChannel.hasSubscribers) requestEndChannel.publish(info);
    });
    const meta = (socket as Socket & { [kMeta]?: ConnectionMeta })[kMeta];
    const stream = new HttpStream({
      info, headers, path: pathWithQuery, authority, body: hasBody ? countedBody(req, info, () => stream.touch()) : null, sink, routeTable: table(), random,
      serverName, serverHeader, downstreamSignal: ac.signal, abort: () => ac.abort(), streamIdleTimeoutMs, maxStreamDurationMs,
      originalDestination: meta?.originalDestination,
    });
    if (rawCount > maxHeadersCount || headerBytes > maxHeaderBytes) {
      stream.sendLocalReply(431, 'Request Header Fields Too Large', { details: 'too_many_headers' });
      if (!isH2) req.socket.end();
      return;
    }
    stream.run(filters).catch(() => {
      // A filter bug must cost one request, not the process.
      if (!sink.headersSent) stream.sendLocalReply(500, 'internal error', { details: 'filter_error' });
      else sink.reset();
    });
  }

  // ---- HTTP/1.1 ------------------------------------------------------------------------------
  const h1 = http.createServer({
    maxHeaderSize: maxHeaderBytes,
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs > 0 ? Math.min(headersTimeoutMs, requestTimeoutMs) : headersTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
    keepAliveTimeout: idleTimeoutMs,
    requireHostHeader: true,
    insecureHTTPParser: false,
    joinDuplicateHeaders: true,
  }, onRequest);
  h1.maxHeadersCount = maxHeadersCount + 1; // node truncates silently at the limit: +1 lets us see the overflow
  h1.maxRequestsPerSocket = maxRequestsPerConnection;
  h1.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
      : [400, 'Bad Request'];
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
  const onUpgrade = (req: IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
    const headers = requestHeaders(req.headers, req.rawHeaders);
    const s = socket as Socket;
    const scheme = (s as TLSSocket).encrypted ? 'https' : 'http';
    applyEdgeRules(headers, edge, normalizeAddress(s.remoteAddress), scheme);
    const originalDestination = (s as Socket & { [kMeta]?: ConnectionMeta })[kMeta]?.originalDestination;
    // CONNECT's request target is the authority (RFC 9110 section 9.3.6).
    const authority = req.method === 'CONNECT' ? String(req.url ?? '') : String(req.headers.host ?? '');
    void proxyUpgrade({ req, socket, head, headers, authority, table: table(), clusterManager: opts.clusterManager, allowedUpgrades, random, scheme, originalDestination }).catch(() => socket.destroy());
  };
  h1.on('upgrade', onUpgrade);
  h1.on('connect', onUpgrade);
  h1.emit('listening'); // starts node's connection checks (headers/request timeouts) without a listening socket

  // ---- HTTP/2 --------------------------------------------------------------------------------
  const h2 = http2.createServer({
    settings: { maxConcurrentStreams, maxHeaderListSize: maxHeaderBytes, ...(initialWindowSize ? { initialWindowSize } : {}) },
    // Up to twice the limit gets a proper 431 from our own check; beyond that nghttp2 refuses the stream.
    maxHeaderListPairs: maxHeadersCount * 2 + 16,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
  }, onRequest);
  h2.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (connectionWindowSize !== undefined) {
      try {
        session.setLocalWindowSize(connectionWindowSize);
      } catch {
        // Session already closing.
      }
    }
    guardSession(session, prematureResetLimit, idleTimeoutMs);
  });
  h2.on('sessionError', () => {});
  h2.on('streamError', () => {});

  return {
    statPrefix,
    get connectionCount() {
      return connections.size;
    },
    handleConnection(socket, protocol, meta) {
      // Readable later through req.socket (HTTP/2's socket proxy forwards property reads).
      if (meta) (socket as Socket & { [kMeta]?: ConnectionMeta })[kMeta] = meta;
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
      socket.on('error', () => socket.destroy());
      try {
        if (protocol === 'http/1.1') h1.emit('connection', socket);
        else h2.emit('connection', socket);
      } catch {
        socket.destroy();
      }
    },
    async close(graceMs = 5000) {
      draining = true;
      for (const r of activeH1) if (!r.headersSent) r.shouldKeepAlive = false;
      h2.close(() => {});
      // GOAWAY(NO_ERROR): in-flight streams finish, new ones go elsewhere.
      for (const s of sessions) if (!s.closed && !s.destroyed) s.close();
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
async function* countedBody(req: AsyncIterable<Buffer>, info: StreamInfo, touch: () => void): AsyncIterable<Uint8Array> {
  for await (const chunk of req) {
    info.bytesReceived += chunk.length;
    touch();
    yield chunk;
  }
}

/**
 * HTTP/2 abuse guard for one session: counts streams the client reset before they completed
 * (CVE-2023-44487 "rapid reset"); past `limit` resets making up at least half of the session's
 * streams, the session gets GOAWAY(ENHANCE_YOUR_CALM) and is closed. Idle sessions close after `idleMs`.
 */
function guardSession(session: Http2Session, limit: number, idleMs: number): void {
  let streams = 0;
  let resets = 0;
  session.on('error', () => {});
  session.on('stream', (stream) => {
    streams++;
    stream.on('error', () => {});
    stream.on('aborted', () => {
      resets++;
      if (resets >= limit && resets * 2 >= streams && !session.destroyed && !session.closed) {
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        session.destroy();
      }
    });
  });
  if (idleMs > 0) {
    session.setTimeout(idleMs, () => {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.close();
    });
  }
}
