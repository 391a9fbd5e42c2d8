/**
 * The downstream edge of one request: turning node's HTTP/1.1 and HTTP/2 request headers into
 * our header map (lower-case, no pseudo-headers, no hop-by-hop headers), applying
 * the connection manager's request header rules (x-forwarded-for / -proto, x-request-id,
 * stripping x-envoy-* from external requests, x-envoy-internal / -external-address), and the
 * HTTP/1.1 DownstreamSink that writes a response back with backpressure and trailers.
 */
import { once } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BlockList, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { HeaderMap } from '../upstream/types.ts';
import { keepHeaderLines } from '../upstream/header-lines.ts';
import { DOWNSTREAM_REQUEST_FIELDS } from '../upstream/connection-fields.ts';
import type { DownstreamSink } from './stream.ts';
import { newRequestId } from './request-id.ts';


const KEEP_ALIVE_TOKENS: readonly string[] = ['keep-alive'];

/**
 * Request headers without pseudo-headers and hop-by-hop headers; `te: trailers` survives (gRPC needs it).
 * With `rawHeaders`, a field sent on several lines stays several values (node joins them with
 * ', ', or over HTTP/2 keeps only the first line of some), as Envoy keeps them: forwarded as
 * separate lines and matched joined with ','.
 */
export function requestHeaders(raw: IncomingHttpHeaders, rawHeaders?: readonly string[], http2 = false): HeaderMap {
  const out: HeaderMap = {};
  const conn = raw.connection;
  // A proxy's own upstream requests (ours and Envoy's) say `keep-alive` on every request: no lists for that.
  const connectionTokens = typeof conn !== 'string' ? undefined : conn === 'keep-alive' ? KEEP_ALIVE_TOKENS : conn.toLowerCase().split(',').map((t) => t.trim());
  let names = 0;
  for (const k in raw) {
    names++;
    const v = raw[k];
    if (v === undefined || k.charCodeAt(0) === 58 || DOWNSTREAM_REQUEST_FIELDS.has(k) || connectionTokens?.includes(k) === true) continue;
    // Like Envoy (proxy_100_continue off): the connection manager answers 100-continue itself and
    // drops that expectation; any other stays, for the router to answer (417: see router.ts).
    if (k === 'expect' && String(v).trim().toLowerCase() === '100-continue') continue;
    if (k === 'te') {
      if (String(v).toLowerCase().includes('trailers')) out.te = 'trailers';
      continue;
    }
    out[k] = v;
  }
  // Node's header object has one key per distinct name: as many keys as raw lines means no field
  // came on several lines, and there is nothing to split.
  if (rawHeaders !== undefined && names * 2 !== rawHeaders.length) keepHeaderLines(out, rawHeaders, http2);
  return out;
}

/** Characters an authority may hold (RFC 3986 reg-name / IP-literal / port, percent-encoded allowed), as Envoy checks. */
export const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** Client address without the IPv4-mapped prefix. */
export function normalizeAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/**
 * Which client addresses count as internal (Envoy's internal_address_config). Without one, none
 * do: Envoy trusted RFC 1918 addresses until 1.36 removed that default (the
 * explicit_internal_address_config guard, ISTIO-SECURITY-2024-006), so an edge proxy strips
 * x-envoy-* controls from every client unless the config names its internal networks.
 */
export function internalAddresses(cidrs: readonly { address: string; prefixLen: number }[] | undefined): BlockList {
  const bl = new BlockList();
  for (const c of cidrs ?? []) bl.addSubnet(c.address, c.prefixLen, isIPv4(c.address) ? 'ipv4' : 'ipv6');
  return bl;
}

/**
 * The proxy's own address as Envoy's local_info has it: the first non-loopback IPv4 address of the
 * machine (127.0.0.1 when there is none). Envoy appends it to x-forwarded-for instead of a loopback
 * peer's address.
 */
export function localNodeAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function isLoopback(a: string): boolean {
  return a.startsWith('127.') || a === '::1';
}

/** Options of the edge rules, from the HttpConnectionManager config. */
export interface EdgeRules {
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly internal: BlockList;
  /** Appended to x-forwarded-for in place of a loopback peer (see localNodeAddress). */
  readonly localAddress: string;
}

/**
 * The trusted client address (Envoy's downstream_remote_address): the peer itself when
 * use_remote_address is set and no hops are trusted, otherwise the x-forwarded-for entry
 * `xff_num_trusted_hops` from the right (after our own append), falling back to the peer.
 */
export function clientAddress(headers: HeaderMap, rules: EdgeRules, remote: string): string {
  if (rules.useRemoteAddress && rules.xffNumTrustedHops === 0) return remote;
  const xff = headers['x-forwarded-for'];
  if (xff === undefined) return remote;
  // The non-empty entry `xffNumTrustedHops` from the right, found by scanning back (no arrays per request).
  const list = Array.isArray(xff) ? xff.join(',') : xff;
  let skip = rules.xffNumTrustedHops;
  let end = list.length;
  for (let i = list.length - 1; i >= -1; i--) {
    if (i >= 0 && list.charCodeAt(i) !== 44 /* ',' */) continue;
    const entry = list.slice(i + 1, end).trim();
    end = i;
    if (entry === '') continue;
    if (skip === 0) return entry;
    skip--;
  }
  return remote;
}

/**
 * The request's scheme as Envoy's connection manager sets :scheme (ConnectionManagerUtility::
 * mutateRequestHeaders): an HTTP/2 client's own :scheme; else x-forwarded-proto as it stands after
 * the edge rules, when it is http or https; else the connection's. Redirects and direct responses
 * build Location from it, so a TLS-terminating hop in front (x-forwarded-proto: https) is kept.
 */
export function requestScheme(headers: HeaderMap, h2Scheme: unknown, tls: boolean): 'http' | 'https' {
  return knownScheme(h2Scheme) ?? knownScheme(headers['x-forwarded-proto']) ?? (tls ? 'https' : 'http');
}

function knownScheme(v: unknown): 'http' | 'https' | undefined {
  if (v === 'http' || v === 'https') return v;
  const s = typeof v === 'string' ? v.toLowerCase() : undefined;
  return s === 'http' || s === 'https' ? s : undefined;
}

// The last answer of isExternal: a sidecar's requests nearly all come from one address, and a
// BlockList check is a native call with an address parse per request.
let lastRules: EdgeRules | undefined;
let lastRemote = '';
let lastExternal = false;

function isExternal(rules: EdgeRules, remote: string): boolean {
  if (rules !== lastRules || remote !== lastRemote) {
    lastExternal = !rules.internal.check(remote, isIPv4(remote) ? 'ipv4' : 'ipv6');
    lastRules = rules;
    lastRemote = remote;
  }
  return lastExternal;
}

/** Apply Envoy's connection-manager request header rules; returns the request id. */
export function applyEdgeRules(headers: HeaderMap, rules: EdgeRules, remote: string, scheme: 'http' | 'https'): string {
  let external = false;
  if (rules.useRemoteAddress) {
    external = remote === '' ? false : isExternal(rules, remote);
    if (external) {
      // Untrusted edge: x-envoy-* request controls must not reach the router.
      for (const k in headers) if (k.startsWith('x-envoy-')) delete headers[k];
      headers['x-envoy-external-address'] = remote;
    } else {
      headers['x-envoy-internal'] = 'true';
    }
    const xff = headers['x-forwarded-for'];
    const prior = Array.isArray(xff) ? xff.join(', ') : xff;
    const appended = isLoopback(remote) ? rules.localAddress : remote;
    if (appended) headers['x-forwarded-for'] = prior ? `${prior}, ${appended}` : appended;
    headers['x-forwarded-proto'] = scheme;
  } else if (headers['x-forwarded-proto'] === undefined) {
    headers['x-forwarded-proto'] = scheme;
  }
  let id = headers['x-request-id'];
  if (Array.isArray(id)) id = id[0];
  if (rules.generateRequestId && (id === undefined || id === '' || (external && !rules.preserveExternalRequestId))) {
    id = newRequestId();
    headers['x-request-id'] = id;
  }
  return id ?? '';
}

/**
 * A sink over an HTTP/1.1 ServerResponse (HTTP/2's is h2-response-sink.ts). `requestComplete`
 * says whether the request body was read to its end: a response that starts before then closes
 * the connection (`connection: close`), as Envoy's connection manager does.
 * One object per request, its methods on the prototype (no closures per request).
 */
export class ResponseSink implements DownstreamSink {
  /** False while the request body is still unread (the reader sets it at the body's end). */
  requestComplete = true;
  private started = false;
  private readonly res: ServerResponse;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  get headersSent(): boolean {
    return this.started || this.res.headersSent;
  }

  writeHead(status: number, headers: HeaderMap): void {
    this.started = true;
    const r = this.res;
    // HTTP/1.1 sends the head with the first body chunk or at end() anyway: store it now, in one
    // step (node validates each field as it serializes it), without a setHeader per field.
    if (!this.requestComplete) r.shouldKeepAlive = false;
    try {
      r.writeHead(status, headers as OutgoingHttpHeaders);
    } catch {
      this.reset();
    }
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return undefined;
    if (res.write(chunk)) return undefined;
    return Promise.race([once(res, 'drain'), once(res, 'close')]).then(() => undefined, () => undefined);
  }

  end(trailers?: HeaderMap, last?: Uint8Array): void {
    const r = this.res;
    if (r.writableEnded) return;
    try {
      if (trailers) r.addTrailers(trailers);
    } catch {
      // Invalid trailer from upstream: drop it rather than fail the response.
    }
    // The last chunk goes with the end: node then sends head, body and end from one cork, without
    // the deferred uncork (a tick and its arguments) a write() before end() costs.
    if (last !== undefined && !r.destroyed) r.end(last);
    else r.end();
  }

  reset(): void {
    this.res.destroy();
  }
}
