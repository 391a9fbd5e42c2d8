/**
 * Evaluates Envoy format strings in header values (`request_headers_to_add`,
 * `response_headers_to_add` at every route level): `%DOWNSTREAM_REMOTE_ADDRESS%`,
 * `%REQ(x-user?x-fallback):10%`, `%START_TIME(%s)%`, ... as Istio users write them in VirtualService
 * `headers`. The grammar and Envoy's config errors live in xds/format-string.ts; here a value is
 * compiled once per config into a plain string (no command: the fast path) or parts evaluated per
 * request. Header values format with empty values omitted (a missing header gives "", not "-"), as
 * Envoy's header parser does; commands Envoy knows but this proxy has no data for format as "".
 * Checked against Envoy 1.40 by test/differential-envoy.test.ts.
 */
import { hostname } from 'node:os';
import type { HeaderMap } from '../upstream/types.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import { parseFormatString } from '../../xds/format-string.ts';
import { endpointKey } from '../upstream/host.ts';

/** What a format string can read while a request (or its response) is being mutated. */
export interface FormatContext {
  readonly info: FormatInfo;
  readonly method: string;
  /**
   * Path with query: for a request, before route rewrites (Envoy formats before it rewrites); for a
   * response, the request as forwarded (Envoy rewrote its request headers in place).
   */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** Request headers, lower-case, without pseudo-headers. */
  readonly requestHeaders: HeaderMap;
  /** Response headers when formatting a response (RESP reads them); undefined for a request. */
  readonly responseHeaders?: HeaderMap;
  /** The response status when formatting a response. */
  readonly status?: number;
  /** A local reply (direct response, redirect, error): its content-type / content-length are not there yet for RESP. */
  readonly localReply?: boolean;
}

/** The StreamInfo facts formatting reads. */
export type FormatInfo = Pick<StreamInfo,
  'startTime' | 'protocol' | 'downstreamRemoteAddress' | 'downstreamDirectRemoteAddress' | 'downstreamDirectRemotePort' | 'downstreamLocalAddress' | 'downstreamLocalPort'
  | 'downstreamTls' | 'routeName' | 'clusterName' | 'upstreamEndpoint' | 'responseCode' | 'responseFlags'>;

type Part = string | ((ctx: FormatContext) => string);

/** A compiled header value: a constant, or parts to join per request. */
export type HeaderFormat = string | { readonly parts: readonly Part[] };

const timeZone = 'UTC';
let cachedHostname: string | undefined;

function withPort(address: string, port: number): string {
  return address === '' ? '' : endpointKey(address, port);
}

/** The host part of an `ip:port` / `[v6]:port` endpoint string. */
function hostOf(endpoint: string): string {
  if (endpoint.startsWith('[')) return endpoint.slice(1, endpoint.indexOf(']'));
  const i = endpoint.lastIndexOf(':');
  return i > 0 && endpoint.indexOf(':') === i ? endpoint.slice(0, i) : endpoint;
}

function portOf(endpoint: string): string {
  const m = /:(\d+)$/.exec(endpoint);
  return m ? m[1] : '';
}

/** First value of a header (REQ/RESP read one value, as Envoy's header lookup). */
function headerValue(headers: HeaderMap | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : String(v);
}

function requestHeader(ctx: FormatContext, name: string): string | undefined {
  switch (name) {
    case ':method': return ctx.method;
    case ':path': return ctx.path;
    case ':authority': case 'host': return ctx.authority;
    case ':scheme': return ctx.scheme;
    default: return headerValue(ctx.requestHeaders, name);
  }
}

function responseHeader(ctx: FormatContext, name: string): string | undefined {
  if (ctx.responseHeaders === undefined) return undefined;
  if (name === ':status') return String(ctx.status ?? ctx.info.responseCode);
  if (ctx.localReply === true && (name === 'content-type' || name === 'content-length')) return undefined;
  return headerValue(ctx.responseHeaders, name);
}

/** `X?Y` of REQ/RESP (validated by the parser): the first present of X and Y (lower-cased). */
function headerPair(arg: string, read: (ctx: FormatContext, name: string) => string | undefined): (ctx: FormatContext) => string {
  const [main, alt] = arg.split('?');
  const a = main.toLowerCase();
  const b = alt === undefined || alt === '' ? undefined : alt.toLowerCase();
  return (ctx) => read(ctx, a) ?? (b !== undefined ? read(ctx, b) : undefined) ?? '';
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * START_TIME's strftime-style format (absl::FormatTime plus Envoy's %f/%Nf and %s), in UTC: the
 * specifiers in use in access-log formats; anything else is kept literally.
 */
function formatTime(ms: number, fmt: string): string {
  const d = new Date(ms);
  const frac = (digits: number) => pad(d.getUTCMilliseconds(), 3).concat('000000').slice(0, digits);
  return fmt.replace(/%(E\d[S]|E\*S|\d?f|[YmdHMSsyjzZFTaAbBe%])/g, (_, spec: string) => {
    switch (spec) {
      case 'Y': return String(d.getUTCFullYear());
      case 'y': return pad(d.getUTCFullYear() % 100, 2);
      case 'm': return pad(d.getUTCMonth() + 1, 2);
      case 'd': return pad(d.getUTCDate(), 2);
      case 'e': return String(d.getUTCDate()).padStart(2, ' ');
      case 'H': return pad(d.getUTCHours(), 2);
      case 'M': return pad(d.getUTCMinutes(), 2);
      case 'S': return pad(d.getUTCSeconds(), 2);
      case 's': return String(Math.floor(ms / 1000));
      case 'j': return pad(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3);
      case 'z': return '+0000';
      case 'Z': return timeZone;
      case 'F': return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
      case 'T': return `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
      case 'a': return d.toLocaleString('en-US', { weekday: 'short', timeZone });
      case 'A': return d.toLocaleString('en-US', { weekday: 'long', timeZone });
      case 'b': return d.toLocaleString('en-US', { month: 'short', timeZone });
      case 'B': return d.toLocaleString('en-US', { month: 'long', timeZone });
      case '%': return '%';
      case 'f': return frac(9);
      case 'E*S': return `${pad(d.getUTCSeconds(), 2)}.${frac(3)}`;
      default:
        if (spec.endsWith('f')) return frac(Number(spec[0]));
        return `${pad(d.getUTCSeconds(), 2)}.${frac(Number(spec[1]))}`; // %E3S, %E6S, %E9S
    }
  });
}

/** Envoy's default START_TIME format. */
const DefaultTimeFormat = '%Y-%m-%dT%H:%M:%E3SZ';

/** The evaluator of one command (already validated by the parser); "" where there is no value. */
export function formatCommand(name: string, arg: string | undefined): (ctx: FormatContext) => string {
  const info = (f: (i: FormatInfo) => string) => (ctx: FormatContext) => f(ctx.info);
  switch (name) {
    case 'REQ': case 'REQUEST_HEADER': return headerPair(arg!, requestHeader);
    case 'RESP': case 'RESPONSE_HEADER': return headerPair(arg!, responseHeader);
    case 'PROTOCOL': return info((i) => i.protocol);
    case 'DOWNSTREAM_REMOTE_ADDRESS':
      return info((i) => withPort(i.downstreamRemoteAddress, i.downstreamRemoteAddress === i.downstreamDirectRemoteAddress ? i.downstreamDirectRemotePort : 0));
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return info((i) => i.downstreamRemoteAddress);
    case 'DOWNSTREAM_REMOTE_PORT': return info((i) => String(i.downstreamRemoteAddress === i.downstreamDirectRemoteAddress ? i.downstreamDirectRemotePort : 0));
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS': return info((i) => withPort(i.downstreamDirectRemoteAddress, i.downstreamDirectRemotePort));
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT': return info((i) => i.downstreamDirectRemoteAddress);
    case 'DOWNSTREAM_DIRECT_REMOTE_PORT': return info((i) => String(i.downstreamDirectRemotePort));
    case 'DOWNSTREAM_LOCAL_ADDRESS': return info((i) => withPort(i.downstreamLocalAddress, i.downstreamLocalPort));
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT': return info((i) => i.downstreamLocalAddress);
    case 'DOWNSTREAM_LOCAL_PORT': return info((i) => String(i.downstreamLocalPort));
    case 'REQUESTED_SERVER_NAME': {
      // SNI_FIRST / HOST_FIRST fall back to (or prefer) the Host header, as Envoy's options say.
      if (arg === 'HOST_FIRST') return (ctx) => ctx.authority || (ctx.info.downstreamTls?.sni ?? '');
      if (arg === 'SNI_FIRST') return (ctx) => ctx.info.downstreamTls?.sni || ctx.authority;
      return info((i) => i.downstreamTls?.sni ?? '');
    }
    case 'DOWNSTREAM_PEER_URI_SAN': return info((i) => i.downstreamTls?.peerUriSans.join(',') ?? '');
    case 'UPSTREAM_HOST': case 'UPSTREAM_REMOTE_ADDRESS': return info((i) => i.upstreamEndpoint ?? '');
    case 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return info((i) => (i.upstreamEndpoint ? hostOf(i.upstreamEndpoint) : ''));
    case 'UPSTREAM_REMOTE_PORT': return info((i) => (i.upstreamEndpoint ? portOf(i.upstreamEndpoint) : ''));
    case 'UPSTREAM_CLUSTER': return info((i) => i.clusterName ?? '');
    case 'ROUTE_NAME': return info((i) => i.routeName ?? '');
    case 'RESPONSE_CODE': return (ctx) => String(ctx.status ?? ctx.info.responseCode);
    case 'RESPONSE_FLAGS': return info((i) => (i.responseFlags.size === 0 ? '-' : [...i.responseFlags].join(',')));
    case 'HOSTNAME': return () => (cachedHostname ??= hostname());
    case 'ENVIRONMENT': {
      const v = process.env[arg!] ?? '';
      return () => v;
    }
    case 'START_TIME': {
      const fmt = arg === undefined || arg === '' ? DefaultTimeFormat : arg;
      return info((i) => formatTime(i.startTime, fmt));
    }
    default:
      return () => ''; // known to Envoy, no such data here (xds/format-string.ts UnsupportedCommands)
  }
}

/** Compiles a header value; throws FormatStringError (Envoy's message) for one Envoy would reject. */
export function compileHeaderFormat(value: string): HeaderFormat {
  if (!value.includes('%')) return value;
  const parts: Part[] = parseFormatString(value).map((t) => {
    if (typeof t === 'string') return t;
    const fn = formatCommand(t.command, t.arg);
    const max = t.max;
    return max === undefined ? fn : (ctx: FormatContext) => fn(ctx).slice(0, max);
  });
  return parts.every((p) => typeof p === 'string') ? parts.join('') : { parts };
}

/** The value of a compiled header for one request. */
export function formatHeader(f: HeaderFormat, ctx: FormatContext | undefined): string {
  if (typeof f === 'string') return f;
  let out = '';
  for (const p of f.parts) out += typeof p === 'string' ? p : ctx === undefined ? '' : p(ctx);
  return out;
}
