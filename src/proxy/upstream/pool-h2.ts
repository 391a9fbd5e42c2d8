/**
 * HTTP/2 pool for one host on node:http2: one multiplexed session at a time (h2c prior knowledge,
 * or h2 over TLS with ALPN "h2"), replaced when it goes away, errors, or has carried
 * max_requests_per_connection streams (the old one drains gracefully). A session with no open
 * streams closes after the idle timeout. REFUSED_STREAM resets are flagged for retry_on
 * refused-stream; other stream resets are UR, session loss before headers is UC. A response
 * field on several lines stays several values (header-lines.ts).
 */
import http2 from 'node:http2';
import { once } from 'node:events';
import type { Host } from './host.ts';
import { connectHost, type ConnectOptions } from './connector.ts';
import { mapExchangeError, type HostPool, type PooledResponse } from './pool.ts';
import type { HeaderMap, UpstreamRequestInit } from './types.ts';
import { keepHeaderLines } from './header-lines.ts';
import { UpstreamError } from './types.ts';

export interface H2PoolOptions {
  readonly connect: Omit<ConnectOptions, 'signal'>;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
}

// Connection-specific headers are forbidden in HTTP/2 (RFC 9113 section 8.2.2).
const forbidden = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

interface Session {
  session: http2.ClientHttp2Session;
  streams: number;
  open: number;
  idle: ReturnType<typeof setTimeout> | undefined;
}

/** An HTTP/2 pool for `host`. */
export function createH2Pool(host: Host, opts: H2PoolOptions): HostPool {
  let current: Promise<Session> | undefined;
  const all = new Set<Session>();
  let closed = false;

  function retire(s: Session): void {
    if (current !== undefined) {
      void current.then((c) => { if (c === s) current = undefined; }, () => {});
    }
  }

  async function open(signal: AbortSignal): Promise<Session> {
    // Envoy offers "h2" only when the TLS context lists no ALPN; Istio's list already carries it
    // (["istio-peer-exchange", "istio", "h2"]) and the server's filter chains match on "istio".
    const alpnOverride = host.tls === undefined || host.tls.alpn.length > 0 ? undefined : ['h2'];
    const socket = await connectHost(host, { ...opts.connect, alpnOverride, signal });
    const session = http2.connect(`http://${host.key}`, { createConnection: () => socket });
    const s: Session = { session, streams: 0, open: 0, idle: undefined };
    all.add(s);
    session.on('error', () => {});
    const drop = () => {
      all.delete(s);
      retire(s);
      if (s.idle) clearTimeout(s.idle);
    };
    session.once('close', drop);
    session.once('goaway', drop);
    return s;
  }

  function getSession(signal: AbortSignal): Promise<Session> {
    if (current === undefined) {
      const p = open(signal);
      current = p;
      p.catch(() => { if (current === p) current = undefined; });
    }
    return current;
  }

  return {
    async request(init: UpstreamRequestInit): Promise<PooledResponse> {
      if (closed) throw new UpstreamError('UC', `pool for ${host.key} is closed`, { endpoint: host.key });
      let s: Session;
      try {
        s = await getSession(init.signal);
      } catch (err) {
        if (init.signal.aborted) throw init.signal.reason;
        throw err;
      }
      if (s.session.closed || s.session.destroyed) {
        retire(s);
        throw new UpstreamError('UC', `HTTP/2 session to ${host.key} closed`, { endpoint: host.key });
      }
      s.streams++;
      s.open++;
      if (s.idle) clearTimeout(s.idle);
      if (opts.maxRequestsPerConnection > 0 && s.streams >= opts.maxRequestsPerConnection) {
        // This is the last stream on the session: new requests get a fresh one; it closes when idle.
        current = undefined;
      }
      const headers: http2.OutgoingHttpHeaders = {
        ':method': init.method,
        ':path': init.path,
        ':authority': init.authority,
        ':scheme': init.scheme,
      };
      for (const k of Object.keys(init.headers)) if (!forbidden.has(k) && !k.startsWith(':')) headers[k] = init.headers[k];
      let stream: http2.ClientHttp2Stream;
      try {
        stream = s.session.request(headers, { endStream: init.body === null, signal: init.signal });
      } catch (err) {
        s.open--;
        if (init.signal.aborted) throw init.signal.reason;
        throw mapExchangeError(err, host.key);
      }
      // An abort (`signal`) destroys the stream with an 'error' that may come after the listeners
      // below are gone (e.g. a timeout while waiting for headers): never an unhandled 'error' event.
      stream.on('error', () => {});
      let finish!: () => void;
      const done = new Promise<void>((r) => { finish = r; });
      stream.once('close', () => {
        s.open--;
        finish();
        if (s.open === 0) {
          const last = opts.maxRequestsPerConnection > 0 && s.streams >= opts.maxRequestsPerConnection;
          if (last) s.session.close();
          else if (opts.idleTimeoutMs > 0) s.idle = setTimeout(() => s.session.close(), opts.idleTimeoutMs).unref();
        }
      });
      if (init.body !== null) void pump(init.body, stream);
      const trailers = new Promise<HeaderMap>((resolve) => {
        stream.once('trailers', (t: http2.IncomingHttpHeaders) => resolve(strip(t)));
        stream.once('close', () => resolve({}));
      });
      try {
        const [resHeaders, rawHeaders] = await responseHeaders(stream, init.signal);
        const status = Number(resHeaders[':status']);
        const headers = strip(resHeaders);
        keepHeaderLines(headers, rawHeaders);
        return { status, headers, body: stream, trailers, onDone: (listener: () => void) => { void done.then(listener); }, endpoint: host.key, peerPrincipal: undefined };
      } catch (err) {
        stream.destroy();
        if (init.signal.aborted) throw init.signal.reason;
        const code = (err as { code?: string }).code;
        if (code === 'ERR_HTTP2_STREAM_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' || stream.rstCode !== undefined && stream.rstCode !== 0) {
          const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
          throw new UpstreamError('UR', `upstream stream to ${host.key} reset (code ${stream.rstCode})`, { cause: err, endpoint: host.key, refusedStream: refused, resetReason: refused ? 'refused stream' : 'remote reset' });
        }
        throw mapExchangeError(err, host.key);
      }
    },
    async drain() {
      closed = true;
      await Promise.all([...all].map((s) => new Promise<void>((r) => s.session.close(() => r()))));
    },
    destroy() {
      closed = true;
      for (const s of all) s.session.destroy();
    },
  };
}

/** Resolves at response headers (node's object and the raw lines); rejects on stream error, on close without a response, or on abort. */
function responseHeaders(stream: http2.ClientHttp2Stream, signal: AbortSignal): Promise<[http2.IncomingHttpHeaders, string[]]> {
  return new Promise((resolve, reject) => {
    const onAbort = () => { cleanup(); reject(signal.reason); };
    const onResponse = (h: http2.IncomingHttpHeaders, _flags: number, raw: string[] | undefined) => { cleanup(); resolve([h, raw ?? []]); };
    const onError = (err: Error) => { cleanup(); reject(err); };
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error(`stream closed before response headers (code ${stream.rstCode})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
    };
    const cleanup = () => {
      stream.off('response', onResponse);
      stream.off('error', onError);
      stream.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) return onAbort();
    stream.once('response', onResponse);
    stream.once('error', onError);
    stream.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function pump(body: AsyncIterable<Uint8Array>, stream: http2.ClientHttp2Stream): Promise<void> {
  try {
    for await (const chunk of body) {
      if (stream.destroyed) return;
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
  } catch {
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

function strip(h: http2.IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = {};
  for (const k of Object.keys(h)) {
    if (k.startsWith(':')) continue;
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
