/**
 * The traffic clients of the gateway profile: one HTTP request (HTTP/1.1 or h2c prior knowledge)
 * or one gRPC unary call to the conformance echo service, sent to a real listener, returning the
 * status, response headers and the echo backend's reply (the echo-basic JSON, or the gRPC
 * `EchoResponse.assertions`) in one shape the checker reads. Never throws: transport errors come
 * back as `error`.
 */
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import { decodeEchoResponse, encodeEchoRequest, grpcFrame, grpcUnframe } from '../../src/samples/grpc-echo-codec.ts';

/** What the echo backend saw (echo-basic fields; empty strings when the reply was not JSON). */
export interface EchoSeen {
  path: string;
  host: string;
  method: string;
  proto: string;
  headers: Record<string, string[]>;
  namespace: string;
  pod: string;
}

export interface Reply {
  /** HTTP status; 0 on transport error. */
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string[]>;
  echo?: EchoSeen;
  /** gRPC status code (numeric) for gRPC calls. */
  grpcStatus?: number;
  error?: string;
}

export interface HttpRequestSpec {
  /** IP to connect to; default 127.0.0.1 (the mesh profile's transparent client dials VIPs / pod IPs). */
  address?: string;
  port: number;
  method: string;
  path: string;
  /** Host header; default `127.0.0.1:<port>`. */
  host?: string;
  headers: Record<string, string>;
  h2c?: boolean;
  /** TLS to the listener: SNI and the only trusted root. */
  tls?: { servername?: string; ca: string };
  timeoutMs?: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/**
 * Go's crypto/tls host check (what upstream's client uses): exact SAN, or `*.rest` matching one
 * leftmost label. Node refuses `*.org`-style SANs, which the corpus certificate relies on.
 */
function goStyleIdentity(host: string, cert: { subjectaltname?: string }): Error | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  const sans = (cert.subjectaltname ?? '').split(',').map((x) => x.trim()).filter((x) => x.startsWith('DNS:')).map((x) => x.slice(4).toLowerCase());
  for (const san of sans) {
    if (san === h) return undefined;
    if (san.startsWith('*.') && h.includes('.') && h.slice(h.indexOf('.') + 1) === san.slice(2)) return undefined;
  }
  return new Error(`certificate is not valid for ${host} (SANs ${sans.join(', ')})`);
}

/**
 * Response headers by lowercase name, one value per header line (Go's http.Header). Node's
 * `headers` object joins repeated lines with ', ', which would hide a value folded into one
 * line; the raw list keeps each line apart, as the upstream client sees them.
 */
function headerRecord(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k.startsWith(':')) continue;
    (out[k] ??= []).push(raw[i + 1]);
  }
  return out;
}

/** Parses an echo-basic JSON body; undefined when it is not one. */
export function parseEcho(body: string): EchoSeen | undefined {
  try {
    const j = JSON.parse(body) as Partial<EchoSeen> | null;
    if (j === null || typeof j !== 'object' || typeof j.path !== 'string') return undefined;
    return {
      path: j.path,
      host: String(j.host ?? ''),
      method: String(j.method ?? ''),
      proto: String(j.proto ?? ''),
      headers: (j.headers ?? {}) as Record<string, string[]>,
      namespace: String(j.namespace ?? ''),
      pod: String(j.pod ?? ''),
    };
  } catch {
    return undefined;
  }
}

/** Sends one HTTP request. */
export function sendHttp(spec: HttpRequestSpec): Promise<Reply> {
  return spec.h2c ? sendH2c(spec) : sendH1(spec);
}

/** HTTP/2 over TLS (ALPN h2). */
export function sendH2(spec: HttpRequestSpec): Promise<Reply> {
  return sendH2c(spec);
}

function sendH1(spec: HttpRequestSpec): Promise<Reply> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...spec.headers };
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'host')) headers.host = spec.host ?? `127.0.0.1:${spec.port}`;
    const opts = { host: spec.address ?? '127.0.0.1', port: spec.port, method: spec.method, path: spec.path, headers, setHost: false };
    const onRes = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: headerRecord(res.rawHeaders), echo: parseEcho(body) });
      });
      res.on('error', (err) => resolve({ status: 0, headers: {}, error: err.message }));
    };
    const req = spec.tls
      ? https.request({ ...opts, agent: false, servername: spec.tls.servername ?? '', ca: spec.tls.ca, checkServerIdentity: goStyleIdentity }, onRes)
      : http.request({ ...opts, agent }, onRes);
    req.setTimeout(spec.timeoutMs ?? 10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, headers: {}, error: err.message }));
    req.end();
  });
}

interface H2Result {
  headers: http2.IncomingHttpHeaders;
  /** The response header lines as received (name, value, name, value...). */
  rawHeaders: string[];
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  error?: string;
}

function h2Request(
  port: number | { address?: string; port: number; tls?: { servername?: string; ca: string } },
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | undefined,
  timeoutMs: number,
): Promise<H2Result> {
  return new Promise((resolve) => {
    const target: { address?: string; port: number; tls?: { servername?: string; ca: string } } = typeof port === 'number' ? { port } : port;
    const ip = target.address ?? '127.0.0.1';
    const session = target.tls
      ? http2.connect(`https://${ip}:${target.port}`, { servername: target.tls.servername ?? '', ca: target.tls.ca, checkServerIdentity: goStyleIdentity })
      : http2.connect(`http://${ip}:${target.port}`);
    let done = false;
    const finish = (v: H2Result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ headers: {}, rawHeaders: [], trailers: {}, body: Buffer.alloc(0), error: 'timeout' }), timeoutMs);
    session.on('error', (err) => finish({ headers: {}, rawHeaders: [], trailers: {}, body: Buffer.alloc(0), error: err.message }));
    const stream = session.request(headers, { endStream: body === undefined });
    let resHeaders: http2.IncomingHttpHeaders = {};
    let rawHeaders: string[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h, _flags, raw: string[] | undefined) => {
      resHeaders = h;
      rawHeaders = raw ?? [];
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => finish({ headers: resHeaders, rawHeaders, trailers, body: Buffer.concat(chunks) }));
    stream.on('error', (err) => finish({ headers: resHeaders, rawHeaders, trailers, body: Buffer.concat(chunks), error: err.message }));
    if (body !== undefined) stream.end(body);
  });
}

async function sendH2c(spec: HttpRequestSpec): Promise<Reply> {
  const headers: http2.OutgoingHttpHeaders = { ':method': spec.method, ':path': spec.path, ':authority': spec.host ?? `127.0.0.1:${spec.port}` };
  for (const [k, v] of Object.entries(spec.headers)) {
    if (k.toLowerCase() === 'host') headers[':authority'] = v;
    else headers[k.toLowerCase()] = v;
  }
  const r = await h2Request({ address: spec.address, port: spec.port, tls: spec.tls }, headers, undefined, spec.timeoutMs ?? 10_000);
  if (r.error !== undefined && r.headers[':status'] === undefined) return { status: 0, headers: {}, error: r.error };
  return { status: Number(r.headers[':status'] ?? 0), headers: headerRecord(r.rawHeaders), echo: parseEcho(r.body.toString('utf8')) };
}

/** gRPC status names (the case files' `expect.code`) by number. */
export const GrpcCodeNames = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** gRPC's HTTP-status-to-code mapping for replies without grpc-status (gRPC doc "HTTP to gRPC Status Code Mapping"). */
function codeFromHttp(status: number): number {
  if (status === 400) return 13;
  if (status === 401) return 16;
  if (status === 403) return 7;
  if (status === 404) return 12;
  if (status === 429 || status === 502 || status === 503 || status === 504) return 14;
  return 2;
}

export interface GrpcRequestSpec {
  /** IP to connect to; default 127.0.0.1. */
  address?: string;
  port: number;
  service: string;
  method: string;
  authority?: string;
  metadata: Record<string, string>;
  timeoutMs?: number;
}

/** One unary call to the conformance echo service (EchoRequest{}), cleartext h2. */
export async function sendGrpc(spec: GrpcRequestSpec): Promise<Reply> {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': `/${spec.service}/${spec.method}`,
    ':authority': spec.authority ?? `127.0.0.1:${spec.port}`,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  for (const [k, v] of Object.entries(spec.metadata)) headers[k.toLowerCase()] = v;
  const r = await h2Request({ address: spec.address, port: spec.port }, headers, grpcFrame(encodeEchoRequest()), spec.timeoutMs ?? 10_000);
  if (r.error !== undefined && r.headers[':status'] === undefined) return { status: 0, headers: {}, error: r.error };
  const status = Number(r.headers[':status'] ?? 0);
  const gs = r.trailers['grpc-status'] ?? r.headers['grpc-status'];
  const grpcStatus = gs !== undefined ? Number(gs) : status === 200 ? 2 : codeFromHttp(status);
  const reply: Reply = { status, headers: headerRecord(r.rawHeaders), grpcStatus };
  const msg = grpcUnframe(r.body);
  if (grpcStatus === 0 && msg !== undefined) {
    try {
      const a = decodeEchoResponse(msg).assertions;
      if (a !== undefined) {
        const hs: Record<string, string[]> = {};
        for (const h of a.headers ?? []) (hs[h.key] ??= []).push(h.value);
        reply.echo = {
          path: a.fully_qualified_method ?? '',
          host: a.authority ?? '',
          method: 'POST',
          proto: 'HTTP/2.0',
          headers: hs,
          namespace: a.context?.namespace ?? '',
          pod: a.context?.pod ?? '',
        };
      }
    } catch (err) {
      reply.error = `bad EchoResponse: ${(err as Error).message}`;
    }
  }
  return reply;
}
