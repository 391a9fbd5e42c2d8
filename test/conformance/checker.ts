/**
 * The upstream checking rules (README "How upstream checks a case" and "Mesh profile"), as pure
 * functions from (what was sent, what was expected, what came back) to an error message or
 * undefined; plus the request preparation they depend on (placeholders, request ids,
 * X-Echo-Set-Header) and the retry rule (3 consecutive successes within 30 s).
 */
import { randomUUID } from 'node:crypto';
import type { CaseRequest, Expectation } from './corpus.ts';
import { GrpcCodeNames, type Reply } from './clients.ts';
import type { ClientResponse } from './mesh-client.ts';

/** A request ready to send: placeholders filled, request id added. */
export interface PreparedRequest {
  method: string;
  path: string;
  host?: string;
  headers: Record<string, string>;
  /** The expected backend-seen path (request id added when asked). */
  expectedPath?: string;
}

function addQuery(path: string, key: string, value: string): string {
  const q = path.indexOf('?');
  const base = q < 0 ? path : path.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
  params.append(key, value);
  const entries = [...params.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${base}?${new URLSearchParams(entries).toString()}`;
}

/** Fills `{uuid}`, adds the request id and X-Echo-Set-Header; `requestId` fixed by the caller when it must be shared. */
export function prepare(req: CaseRequest, exp: Expectation, requestId?: string): PreparedRequest {
  const uuid = randomUUID();
  let path = (req.path ?? '/').replaceAll('{uuid}', uuid);
  let expectedPath = exp.request?.path;
  if (req.addRequestId) {
    const id = requestId ?? randomUUID();
    path = addQuery(path, 'gateway-api-conformance-request-id', id);
    if (expectedPath !== undefined) expectedPath = addQuery(expectedPath, 'gateway-api-conformance-request-id', id);
  }
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  const setHeaders = Object.entries(req.backendSetResponseHeaders ?? {}).map(([k, v]) => `${k}:${v}`).join(',');
  headers['X-Echo-Set-Header'] = setHeaders;
  return { method: req.method ?? 'GET', path, host: req.host, headers, expectedPath };
}

const statuses = (exp: Expectation): number[] => ([] as number[]).concat(exp.status ?? 200).map(Number);

function joined(map: Record<string, string[]>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(map)) if (k.toLowerCase() === want) return v.join(',');
  return undefined;
}

/** Checks a gateway-profile HTTP reply; returns an error message or undefined. */
export function checkHttpReply(sent: PreparedRequest, req: CaseRequest, exp: Expectation, reply: Reply): string | undefined {
  if (reply.status === 0) return `transport error: ${reply.error}`;
  const want = statuses(exp);
  if (!want.includes(reply.status)) {
    if ((want.includes(408) || want.includes(504)) && (reply.status === 408 || reply.status === 504)) return undefined;
    return `status ${reply.status}, want ${want.join('|')}`;
  }
  if (exp.backendFromRequestHeader !== undefined) {
    // Upstream's repeat check looks only at the Backend header and the pod name.
    const echo = reply.echo;
    if (echo === undefined) return 'no echo reply';
    const vals = Object.entries(echo.headers).filter(([k]) => k.toLowerCase() === exp.backendFromRequestHeader!.toLowerCase()).flatMap(([, v]) => v);
    if (vals.length !== 1) return `backend saw ${vals.length} ${exp.backendFromRequestHeader} headers, want exactly 1`;
    if (!echo.pod.startsWith(vals[0])) return `pod '${echo.pod}' does not start with ${exp.backendFromRequestHeader} '${vals[0]}'`;
    return undefined;
  }
  if (reply.status === 200 || reply.status === 204) {
    const echo = reply.echo ?? { path: '', host: '', method: sent.method, proto: '', headers: {}, namespace: '', pod: '' };
    const er = exp.request;
    const expPath = er === undefined ? sent.path : sent.expectedPath ?? er.path;
    if (expPath !== undefined && echo.path !== expPath) return `backend saw path '${echo.path}', want '${expPath}'`;
    const expHost = er === undefined ? req.host : er.host;
    if (expHost !== undefined && expHost !== '' && echo.host !== expHost) return `backend saw host '${echo.host}', want '${expHost}'`;
    const expMethod = er?.method ?? (er === undefined ? sent.method : 'GET');
    if (echo.method !== expMethod && reply.echo !== undefined) return `backend saw method ${echo.method}, want ${expMethod}`;
    const expHeaders = er === undefined ? req.headers ?? {} : er.headers ?? {};
    for (const [name, value] of Object.entries(expHeaders)) {
      if (name.toLowerCase() === 'host') continue;
      const got = joined(echo.headers, name);
      if (got !== value) return `backend saw header ${name}: ${got === undefined ? '(absent)' : `'${got}'`}, want '${value}'`;
    }
    for (const name of er?.absentHeaders ?? []) {
      const got = joined(echo.headers, name);
      if (got !== undefined) return `backend saw header ${name}: '${got}', want it absent`;
    }
    if (echo.namespace !== (exp.namespace ?? '')) return `backend namespace '${echo.namespace}', want '${exp.namespace ?? ''}'`;
    if (exp.backend !== undefined && !echo.pod.startsWith(exp.backend)) return `backend pod '${echo.pod}', want ${exp.backend}-*`;
    const r = checkResponseHeaders(reply.headers, exp);
    if (r !== undefined) return r;
    return undefined;
  }
  if (reply.status >= 300 && reply.status <= 308 && exp.redirect !== undefined) {
    const loc = reply.headers.location?.[0];
    if (loc === undefined) return 'redirect without Location';
    let u: URL;
    try {
      u = new URL(loc, 'http://relative.invalid');
    } catch {
      return `unparsable Location '${loc}'`;
    }
    const reqScheme = req.scheme ?? 'http';
    const w = exp.redirect;
    if (w.host !== undefined && u.hostname !== w.host) return `redirect host '${u.hostname}', want '${w.host}'`;
    const scheme = u.protocol.replace(/:$/, '');
    if (scheme !== (w.scheme ?? reqScheme)) return `redirect scheme '${scheme}', want '${w.scheme ?? reqScheme}'`;
    const path = u.pathname + u.search;
    const wantPath = w.path ?? sent.path;
    if (path !== wantPath && u.pathname !== wantPath) return `redirect path '${path}', want '${wantPath}'`;
    // URL drops default ports; recover the literal port from the Location text.
    const m = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:?#]*)(?::(\d*))?/i.exec(loc);
    const port = m?.[1] ?? '';
    if (w.port !== undefined) {
      if (port !== w.port) return `redirect port '${port}', want '${w.port}'`;
    } else {
      const ok = (w.scheme ?? reqScheme) === 'https' ? ['', '443'] : ['', '80'];
      if (!ok.includes(port)) return `redirect port '${port}', want ${ok.map((x) => `'${x}'`).join(' or ')}`;
    }
  }
  return undefined;
}

function checkResponseHeaders(headers: Record<string, string[]>, exp: Expectation): string | undefined {
  const rs = exp.response;
  if (rs === undefined) return undefined;
  const norm = (s: string) => (rs.ignoreWhitespace ? s.replace(/\s+/g, '') : s);
  for (const [name, value] of Object.entries(rs.headers ?? {})) {
    const got = joined(headers, name);
    if (got === undefined || norm(got) !== norm(value)) return `response header ${name}: ${got === undefined ? '(absent)' : `'${got}'`}, want '${value}'`;
  }
  for (const [name, values] of Object.entries(rs.validHeaderValues ?? {})) {
    const got = joined(headers, name);
    if (got === undefined || !values.map(norm).includes(norm(got))) return `response header ${name}: '${got}', want one of ${JSON.stringify(values)}`;
  }
  for (const name of rs.absentHeaders ?? []) {
    const got = joined(headers, name);
    if (got !== undefined) return `response header ${name}: '${got}', want it absent`;
  }
  return undefined;
}

/** Checks a gateway-profile gRPC reply. */
export function checkGrpcReply(req: CaseRequest, exp: Expectation, reply: Reply): string | undefined {
  if (reply.status === 0 && reply.grpcStatus === undefined) return `transport error: ${reply.error}`;
  const code = GrpcCodeNames[reply.grpcStatus ?? 2] ?? String(reply.grpcStatus);
  const want = exp.code ?? 'OK';
  if (code !== want) return `gRPC code ${code}, want ${want}`;
  if (code !== 'OK') return undefined;
  const echo = reply.echo;
  if (echo === undefined) return 'no EchoResponse';
  const fqm = `/${req.service}/${req.method}`;
  if (echo.path !== fqm) return `fully_qualified_method '${echo.path}', want '${fqm}'`;
  if (exp.namespace !== undefined && echo.namespace !== exp.namespace) return `namespace '${echo.namespace}', want '${exp.namespace}'`;
  if (exp.backend !== undefined && !echo.pod.startsWith(exp.backend)) return `pod '${echo.pod}', want ${exp.backend}-*`;
  return undefined;
}

/** Checks one mesh client response (the upstream `utils/echo` comparer). */
export function checkMeshResponse(exp: Expectation, r: ClientResponse, grpc: boolean): string | undefined {
  if (r.Error !== undefined) return `client error: ${r.Error}`;
  const want = statuses(exp).map((s) => (grpc && (s === 0 || s === 200) ? 200 : s));
  if (!want.includes(Number(r.StatusCode))) return `StatusCode ${r.StatusCode}, want ${want.join('|')}`;
  if (exp.request !== undefined) {
    for (const [name, value] of Object.entries(exp.request.headers ?? {})) {
      const got = r.RequestHeaders[name.toLowerCase()]?.join(',');
      if (got !== value) return `RequestHeader ${name}: ${got === undefined ? '(absent)' : `'${got}'`}, want '${value}'`;
    }
    for (const name of exp.request.absentHeaders ?? []) {
      if (r.RequestHeaders[name.toLowerCase()] !== undefined) return `RequestHeader ${name} present, want it absent`;
    }
  }
  for (const [name, value] of Object.entries(exp.response?.headers ?? {})) {
    const got = r.ResponseHeaders[name.toLowerCase()]?.join(',');
    if (got !== value) return `ResponseHeader ${name}: ${got === undefined ? '(absent)' : `'${got}'`}, want '${value}'`;
  }
  for (const name of exp.response?.absentHeaders ?? []) {
    if (r.ResponseHeaders[name.toLowerCase()] !== undefined) return `ResponseHeader ${name} present, want it absent`;
  }
  if (exp.backend !== undefined && !r.Hostname.startsWith(exp.backend)) return `Hostname '${r.Hostname}', want ${exp.backend}-*`;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Upstream's retry rule: passes after `needed` consecutive successes within `windowMs`; a failure
 * waits 100 ms and resets the count. Resolves to undefined or the last failure.
 */
export async function untilConsistent(attempt: () => Promise<string | undefined>, needed = 3, windowMs = 30_000): Promise<string | undefined> {
  const deadline = Date.now() + windowMs;
  let streak = 0;
  let last: string | undefined = 'no attempt';
  while (Date.now() < deadline) {
    const err = await attempt();
    if (err === undefined) {
      if (++streak >= needed) return undefined;
    } else {
      last = err;
      streak = 0;
      await sleep(100);
    }
  }
  return last;
}
