/**
 * The two ways ext_authz asks an authorizer, through the proxy's own clusters: the HTTP service
 * (the request's method and path under `path_prefix`, a chosen set of its headers; 200 allows,
 * anything else is the answer to the client) and the gRPC service
 * (envoy.service.auth.v3.Authorization/Check with a CheckRequest; an OK status allows, otherwise
 * the DeniedHttpResponse is the answer). Both return one `CheckResult`; an unreachable or
 * timed-out authorizer is an `error` result, which the filter turns into `status_on_error` or,
 * with `failure_mode_allow`, lets through.
 */
import { decodeMessage, encodeMessage } from '../../../xds/codec.ts';
import { protoRoot } from '../../../xds/proto-root.ts';
import { cancelOnAbort, type ClusterManager, type HeaderMap } from '../../upstream/types.ts';

/** The authorizer's decision. */
export type CheckResult =
  | { readonly kind: 'allow'; readonly upstreamHeaders: HeaderMap; readonly removeHeaders: readonly string[]; readonly clientHeaders: HeaderMap }
  | { readonly kind: 'deny'; readonly status: number; readonly headers: HeaderMap; readonly body: string }
  | { readonly kind: 'error'; readonly reason: string };

/** What a check is about. */
export interface CheckSubject {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  readonly protocol: string;
  readonly headers: HeaderMap;
  readonly requestId: string;
  readonly source: { readonly address: string; readonly port: number; readonly principal: string };
  readonly destination: { readonly address: string; readonly port: number };
  readonly signal: AbortSignal;
}

/**
 * An abort signal for one check: fires on `timeoutMs` or when the downstream goes away, and is
 * released by `done()` once the check finished, so no timer aborts an upstream stream that already
 * answered (an abort between the end of the body and the stream's close would be an unhandled
 * stream error).
 */
function checkSignal(downstream: AbortSignal, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`authorizer timeout after ${timeoutMs} ms`)), timeoutMs);
  const onDown = () => ac.abort(downstream.reason);
  if (downstream.aborted) ac.abort(downstream.reason);
  else downstream.addEventListener('abort', onDown, { once: true });
  return { signal: ac.signal, done: () => { clearTimeout(timer); downstream.removeEventListener('abort', onDown); } };
}

/** Keeps a late stream error from becoming an unhandled 'error' event. */
function guard(body: unknown): void {
  (body as { on?: (e: string, f: () => void) => void }).on?.('error', () => {});
}

async function readAll(body: AsyncIterable<Uint8Array>, limit = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.byteLength;
    if (n > limit) throw new Error('authorizer response too large');
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

/** One HTTP check to `cluster`. */
export async function httpCheck(cm: ClusterManager, cluster: string, s: CheckSubject, o: { pathPrefix: string; headers: HeaderMap; timeoutMs: number }): Promise<{ status: number; headers: HeaderMap; body: string } | { error: string }> {
  const handle = cm.get(cluster);
  if (handle === undefined) return { error: `cluster ${cluster} not found` };
  const { signal, done } = checkSignal(s.signal, o.timeoutMs);
  try {
    const res = await handle.request({ method: s.method, path: o.pathPrefix + s.path, authority: s.authority, scheme: 'http', headers: { ...o.headers, 'content-length': '0' }, body: null, cancel: cancelOnAbort(signal), isRetry: false });
    guard(res.body);
    const body = (await readAll(res.body)).toString('utf8');
    return { status: res.status, headers: res.headers, body };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    done();
  }
}

function headerMapOf(list: unknown): HeaderMap {
  const out: HeaderMap = {};
  if (!Array.isArray(list)) return out;
  for (const opt of list as { header?: { key?: string; value?: string; raw_value?: Uint8Array } }[]) {
    const k = opt.header?.key?.toLowerCase();
    if (!k) continue;
    out[k] = opt.header?.value ?? (opt.header?.raw_value ? Buffer.from(opt.header.raw_value).toString() : '');
  }
  return out;
}

/** The CheckRequest attributes of an HTTP request. */
export function httpAttributes(s: CheckSubject): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers)) headers[k] = Array.isArray(v) ? v.join(',') : v;
  headers[':method'] = s.method;
  headers[':path'] = s.path;
  headers[':authority'] = s.authority;
  headers[':scheme'] = s.scheme;
  const q = s.path.indexOf('?');
  return {
    source: { address: { socket_address: { address: s.source.address, port_value: s.source.port } }, principal: s.source.principal },
    destination: { address: { socket_address: { address: s.destination.address, port_value: s.destination.port } } },
    request: { http: { id: s.requestId, method: s.method, headers, path: s.path, host: s.authority, scheme: s.scheme, protocol: s.protocol, query: q >= 0 ? s.path.slice(q + 1) : '', size: '-1' } },
  };
}

/** One gRPC Check to `cluster` with the given CheckRequest attributes. */
export async function grpcCheck(cm: ClusterManager, cluster: string, authority: string, attributes: Record<string, unknown>, timeoutMs: number, downstream: AbortSignal): Promise<CheckResult> {
  const handle = cm.get(cluster);
  if (handle === undefined) return { kind: 'error', reason: `cluster ${cluster} not found` };
  const msg = encodeMessage('envoy.service.auth.v3.CheckRequest', { attributes });
  const framed = Buffer.alloc(5 + msg.byteLength);
  framed.writeUInt32BE(msg.byteLength, 1);
  Buffer.from(msg).copy(framed, 5);
  const { signal, done } = checkSignal(downstream, timeoutMs);
  try {
    const res = await handle.request({
      method: 'POST', path: '/envoy.service.auth.v3.Authorization/Check', authority, scheme: 'http', grpc: true, isRetry: false, cancel: cancelOnAbort(signal),
      headers: { 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.max(1, Math.round(timeoutMs))}m` },
      body: (async function* () { yield framed; })(),
    });
    guard(res.body);
    const bytes = await readAll(res.body);
    const trailers = await res.trailers;
    const grpcStatus = String(trailers['grpc-status'] ?? res.headers['grpc-status'] ?? '');
    if (res.status !== 200 || grpcStatus !== '0' || bytes.length < 5) return { kind: 'error', reason: `Check failed: HTTP ${res.status}, grpc-status ${grpcStatus || 'none'}` };
    const decoded = decodeMessage('envoy.service.auth.v3.CheckResponse', bytes.subarray(5, 5 + bytes.readUInt32BE(1))) as {
      status?: { code?: number };
      ok_response?: { headers?: unknown; headers_to_remove?: string[]; response_headers_to_add?: unknown };
      denied_response?: { status?: { code?: number | string }; headers?: unknown; body?: string };
    };
    if ((decoded.status?.code ?? 0) === 0) {
      return { kind: 'allow', upstreamHeaders: headerMapOf(decoded.ok_response?.headers), removeHeaders: (decoded.ok_response?.headers_to_remove ?? []).map((h) => h.toLowerCase()), clientHeaders: headerMapOf(decoded.ok_response?.response_headers_to_add) };
    }
    const raw = decoded.denied_response?.status?.code;
    const code = typeof raw === 'string' ? protoRoot().lookupEnum('envoy.type.v3.StatusCode').values[raw] : Number(raw);
    return { kind: 'deny', status: Number.isInteger(code) && code >= 200 && code <= 599 ? code : 403, headers: headerMapOf(decoded.denied_response?.headers), body: decoded.denied_response?.body ?? '' };
  } catch (err) {
    return { kind: 'error', reason: (err as Error).message };
  } finally {
    done();
  }
}
