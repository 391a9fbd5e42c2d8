/**
 * HTTP/2 pool for one host on node:http2: one multiplexed session at a time (h2c prior knowledge,
 * or h2 over TLS with ALPN "h2"), replaced when it goes away, errors, or has carried
 * max_requests_per_connection streams (the old one drains gracefully). A session with no open
 * streams closes after the idle timeout. REFUSED_STREAM resets are flagged for retry_on
 * refused-stream; other stream resets are UR, session loss before headers is UC. A response
 * field on several lines stays several values (header-lines.ts).
 */
import http2 from 'node:http2';
import type { Host } from './host.ts';
import { connectHost, type ConnectOptions } from './connector.ts';
import { H2Exchange, type StreamOwner } from './h2-exchange.ts';
import { mapExchangeError, type HostPool, type PooledResponse, type PoolObserver } from './pool.ts';
import { H2_REQUEST_FIELDS } from './connection-fields.ts';
import type { UpstreamRequestInit } from './types.ts';
import { UpstreamError } from './types.ts';

export interface H2PoolOptions {
  readonly connect: Omit<ConnectOptions, 'signal'>;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
  /** The cluster's bookkeeping per request (pool.ts). */
  readonly observer?: PoolObserver;
}


/** One session and its stream counts; closes itself when idle or after its last allowed stream. */
class Session implements StreamOwner {
  readonly session: http2.ClientHttp2Session;
  streams = 0;
  open = 0;
  idle: ReturnType<typeof setTimeout> | undefined;
  private readonly opts: H2PoolOptions;

  constructor(session: http2.ClientHttp2Session, opts: H2PoolOptions) {
    this.session = session;
    this.opts = opts;
  }

  /** True when this session has carried max_requests_per_connection streams. */
  get exhausted(): boolean {
    return this.opts.maxRequestsPerConnection > 0 && this.streams >= this.opts.maxRequestsPerConnection;
  }

  onStreamClosed(): void {
    this.open--;
    if (this.open !== 0) return;
    if (this.exhausted) this.session.close();
    else if (this.opts.idleTimeoutMs > 0) this.idle = setTimeout(() => this.session.close(), this.opts.idleTimeoutMs).unref();
  }
}

/** An HTTP/2 pool for `host`. */
export function createH2Pool(host: Host, opts: H2PoolOptions): HostPool {
  let current: Promise<Session> | undefined;
  /** `current` once it resolved: requests then start their stream at once. */
  let ready: Session | undefined;
  const all = new Set<Session>();
  let closed = false;

  function retire(s: Session): void {
    if (ready === s) ready = undefined;
    if (current !== undefined) {
      void current.then((c) => { if (c === s) current = undefined; }, () => {});
    }
  }

  async function open(): Promise<Session> {
    // Envoy offers "h2" only when the TLS context lists no ALPN; Istio's list already carries it
    // (["istio-peer-exchange", "istio", "h2"]) and the server's filter chains match on "istio".
    const alpnOverride = host.tls === undefined || host.tls.alpn.length > 0 ? undefined : ['h2'];
    // Not tied to the request that asked first: its cancel must not fail the others waiting for the session.
    const socket = await connectHost(host, { ...opts.connect, alpnOverride });
    const session = http2.connect(`http://${host.key}`, { createConnection: () => socket });
    const s = new Session(session, opts);
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

  function getSession(): Promise<Session> {
    if (current === undefined) {
      const p = open();
      current = p;
      p.then((s) => { if (current === p && !s.session.closed && !s.session.destroyed && all.has(s)) ready = s; }, () => { if (current === p) current = undefined; });
    }
    return current;
  }

  /** Starts `ex` on `s` unless it was cancelled while the session was being made. */
  function send(s: Session, ex: H2Exchange): void {
    if (!ex.waiting) return;
    const init = ex.init;
    if (s.session.closed || s.session.destroyed) {
      retire(s);
      ex.failHead(new UpstreamError('UC', `HTTP/2 session to ${host.key} closed`, { endpoint: host.key }));
      return;
    }
    s.streams++;
    s.open++;
    if (s.idle) clearTimeout(s.idle);
    if (s.exhausted) {
      // This is the last stream on the session: new requests get a fresh one; it closes when idle.
      current = undefined;
      ready = undefined;
    }
    const headers: http2.OutgoingHttpHeaders = {
      ':method': init.method,
      ':path': init.path,
      ':authority': init.authority,
      ':scheme': init.scheme,
    };
    const h = init.headers;
    for (const k in h) if (!H2_REQUEST_FIELDS.has(k) && k.charCodeAt(0) !== 58) headers[k] = h[k];
    try {
      ex.start(s.session, headers, s);
    } catch (err) {
      s.open--;
      ex.failHead(init.cancel.cancelled ? init.cancel.reason : mapExchangeError(err, host.key));
    }
  }

  return {
    request(init: UpstreamRequestInit): Promise<PooledResponse> {
      if (closed || init.cancel.cancelled) {
        const err = closed ? new UpstreamError('UC', `pool for ${host.key} is closed`, { endpoint: host.key }) : init.cancel.reason;
        opts.observer?.onRequestFailed(err);
        return Promise.reject(err);
      }
      const ex = new H2Exchange(init, host.key, opts.observer);
      if (ready !== undefined) send(ready, ex);
      else getSession().then((s) => send(s, ex), (err: unknown) => ex.failHead(err));
      return ex.promise;
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
