/**
 * StreamInfo: the per-request record other parts read after (and during) a request: access logs,
 * stats (istio_requests_total labels incl. response_flags), tracing. One mutable object per
 * request, filled by the connection manager and the router; published on the
 * `trellis:http:request-end` diagnostics channel when the request ends. Also the local-reply
 * vocabulary (Envoy's response flags and bodies) and the gRPC status mapping of local replies.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ConnectionSecurity } from '../tls/peer-identity.ts';

/** Envoy response flags the HTTP engine sets (see Envoy access log docs, %RESPONSE_FLAGS%). */
export type ResponseFlag =
  | 'NR' | 'NC' | 'UF' | 'UO' | 'UH' | 'UT' | 'URX' | 'UC' | 'UR' | 'DI' | 'FI' | 'DC' | 'LR' | 'SI' | 'DPE' | 'UPE' | 'UMSDR' | 'DT' | 'UAEX';

/** TLS facts of a downstream connection, computed once per connection. */
export interface DownstreamTlsInfo {
  /** URI SANs of the client certificate (e.g. spiffe://cluster.local/ns/x/sa/y); empty without a client certificate. */
  readonly peerUriSans: readonly string[];
  readonly peerCertificatePresented: boolean;
  readonly sni: string | undefined;
  readonly alpn: string | undefined;
}

/** Per-request facts, readable by filters and observers. */
export interface StreamInfo {
  readonly requestId: string;
  /** Wall-clock start, epoch ms. */
  readonly startTime: number;
  /** performance.now() at start (for durations). */
  readonly startMono: number;
  durationMs: number | undefined;
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly method: string;
  /** Path as received (before rewrites). */
  readonly path: string;
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  /** The trusted client address (x-forwarded-for / xff_num_trusted_hops rules); Envoy's %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%. */
  readonly downstreamRemoteAddress: string;
  /** The peer address of the connection. */
  readonly downstreamDirectRemoteAddress: string;
  readonly downstreamDirectRemotePort: number;
  readonly downstreamLocalAddress: string;
  readonly downstreamLocalPort: number;
  /** TLS facts of the downstream connection (undefined for plaintext): the peer's URI SANs (SPIFFE ids) and SNI. */
  readonly downstreamTls: DownstreamTlsInfo | undefined;
  /**
   * What the downstream connection proved (src/proxy/tls/peer-identity.ts): `policy` mutual_tls /
   * tls / none, and `peer` (the verified SPIFFE identity: `source.principal`) for mutual_tls.
   */
  readonly connectionSecurity: ConnectionSecurity;
  /** The request's user-agent (names plaintext clients in `trellis mtls`). */
  readonly userAgent: string | undefined;
  readonly statPrefix: string;
  virtualHostName: string | undefined;
  routeName: string | undefined;
  clusterName: string | undefined;
  upstreamEndpoint: string | undefined;
  /** The upstream's verified SPIFFE id (mTLS), Envoy's %UPSTREAM_PEER_URI_SAN%. */
  upstreamPeerPrincipal: string | undefined;
  /** Why the upstream TLS handshake failed, Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON%. */
  upstreamTransportFailureReason?: string;
  /** 0 until response headers are sent. */
  responseCode: number;
  /** Why the response is what it is (Envoy's %RESPONSE_CODE_DETAILS%, e.g. "via_upstream", "route_not_found"). */
  responseCodeDetails: string;
  /** A `ResponseFlagSet` (a `Set` also fits: tests and the TCP access log build records with one). */
  readonly responseFlags: ResponseFlags;
  /** gRPC status of the response (from trailers or a trailers-only response), when gRPC. */
  grpcStatus: number | undefined;
  attemptCount: number;
  bytesReceived: number;
  bytesSent: number;
  /** gRPC messages in the request / response bodies (gRPC requests only; Istio's message counts). */
  grpcRequestMessages: number;
  grpcResponseMessages: number;
  /** The request carried `content-type: application/grpc*`. */
  readonly grpc: boolean;
  /** Whether the stream ended normally (false when either side reset it). */
  completed: boolean;
}

/** What readers and writers of a request's response flags use: a `Set`'s add / has / size / iteration. */
export interface ResponseFlags extends Iterable<ResponseFlag> {
  add(flag: ResponseFlag): unknown;
  has(flag: ResponseFlag): boolean;
  readonly size: number;
}

/**
 * A request's response flags in insertion order (what %RESPONSE_FLAGS% prints), as a list made on
 * the first flag: most requests end without one, and a `Set` per request cost its hash table
 * (~0.15 KB of the ~12 KB a proxied request allocated, issue 16).
 */
export class ResponseFlagSet implements ResponseFlags {
  private list: ResponseFlag[] | undefined = undefined;

  add(flag: ResponseFlag): this {
    if (this.list === undefined) this.list = [flag];
    else if (!this.list.includes(flag)) this.list.push(flag);
    return this;
  }

  has(flag: ResponseFlag): boolean {
    return this.list !== undefined && this.list.includes(flag);
  }

  get size(): number {
    return this.list === undefined ? 0 : this.list.length;
  }

  [Symbol.iterator](): Iterator<ResponseFlag> {
    return (this.list ?? NO_FLAGS)[Symbol.iterator]();
  }
}

const NO_FLAGS: readonly ResponseFlag[] = Object.freeze([]);

/** What every request on one downstream connection shares: computed once per connection. */
export interface DownstreamConnectionInfo {
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly statPrefix: string;
  /** The peer address (normalized: no IPv4-mapped prefix) and port. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly tls: DownstreamTlsInfo | undefined;
  readonly security: ConnectionSecurity;
}

/**
 * The connection manager's StreamInfo: the connection's facts through one shared reference (the
 * getters below) instead of copied into every request (eight fields, ~0.06 KB per request;
 * issue 16). Every field a request changes is its own.
 */
export class HttpStreamInfo implements StreamInfo {
  readonly connection: DownstreamConnectionInfo;
  readonly requestId: string;
  readonly startTime = Date.now();
  readonly startMono = performance.now();
  durationMs: number | undefined = undefined;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  readonly downstreamRemoteAddress: string;
  readonly userAgent: string | undefined;
  virtualHostName: string | undefined = undefined;
  routeName: string | undefined = undefined;
  clusterName: string | undefined = undefined;
  upstreamEndpoint: string | undefined = undefined;
  upstreamPeerPrincipal: string | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  responseCode = 0;
  responseCodeDetails = '';
  readonly responseFlags = new ResponseFlagSet();
  grpcStatus: number | undefined = undefined;
  attemptCount = 0;
  bytesReceived = 0;
  bytesSent = 0;
  grpcRequestMessages = 0;
  grpcResponseMessages = 0;
  readonly grpc: boolean;
  completed = false;

  constructor(
    connection: DownstreamConnectionInfo, requestId: string, method: string, path: string, authority: string, scheme: 'http' | 'https',
    downstreamRemoteAddress: string, userAgent: string | undefined, grpc: boolean,
  ) {
    this.connection = connection;
    this.requestId = requestId;
    this.method = method;
    this.path = path;
    this.authority = authority;
    this.scheme = scheme;
    this.downstreamRemoteAddress = downstreamRemoteAddress;
    this.userAgent = userAgent;
    this.grpc = grpc;
  }

  get protocol(): 'HTTP/1.1' | 'HTTP/2' {
    return this.connection.protocol;
  }

  get statPrefix(): string {
    return this.connection.statPrefix;
  }

  get downstreamDirectRemoteAddress(): string {
    return this.connection.remoteAddress;
  }

  get downstreamDirectRemotePort(): number {
    return this.connection.remotePort;
  }

  get downstreamLocalAddress(): string {
    return this.connection.localAddress;
  }

  get downstreamLocalPort(): number {
    return this.connection.localPort;
  }

  get downstreamTls(): DownstreamTlsInfo | undefined {
    return this.connection.tls;
  }

  get connectionSecurity(): ConnectionSecurity {
    return this.connection.security;
  }
}

/** The diagnostics channel on which every finished request's StreamInfo is published. */
export const requestEndChannel = diagnostics.channel('trellis:http:request-end');

/** Envoy's response flags as the %RESPONSE_FLAGS% string ("-" when none). */
export function formatResponseFlags(info: StreamInfo): string {
  return info.responseFlags.size === 0 ? '-' : [...info.responseFlags].join(',');
}

/** Local reply bodies Envoy sends (text/plain), by cause. */
export const LocalReplyBody = {
  noHealthyUpstream: 'no healthy upstream',
  upstreamTimeout: 'upstream request timeout',
  connectError: (reason: string) => `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`,
  faultAbort: 'fault filter abort',
  clusterNotFound: '',
  routeNotFound: '',
  streamTimeout: 'stream timeout',
  requestTimeout: 'request timeout',
  maxDuration: 'upstream max stream duration reached',
} as const;

/** Envoy's mapping of an HTTP status to a gRPC status for local replies to gRPC requests. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}
