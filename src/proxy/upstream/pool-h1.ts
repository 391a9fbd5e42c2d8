/**
 * HTTP/1.1 keep-alive pool for one host, on our own client (h1-connection.ts, h1-parser.ts)
 * instead of undici's Pool (issue 16: undici was ~9% of proxy CPU and ~6 KB allocated per
 * request; bench/README.md has the before/after). Connections come from our connector
 * (connect_timeout, TLS, counters). Up to `maxConnections` connections, one request at a time
 * each; requests beyond that wait in FIFO order. A connection is reused after a complete
 * keep-alive response, most recently used first (the others age out by the idle timeout), until
 * max_requests_per_connection. As with undici: a request is never retried here (the router's
 * retry policy decides), a connect failure fails the request that was waiting for it, and
 * timeouts on headers and body are the router's (per-try and route timeouts).
 */
import http from '../../node-http.ts';
import type { Socket } from 'node:net';
import { connectHost, type ConnectOptions } from './connector.ts';
import { H1Connection, type ConnectionOwner, type H1ConnectionOptions } from './h1-connection.ts';
import { H1Exchange, type ExchangeQueue } from './h1-exchange.ts';
import { h1RequestWritesItself } from './connection-fields.ts';
import type { Host } from './host.ts';
import type { HostPool, PooledResponse, PoolObserver } from './pool.ts';
import type { ResponseReceiver, UpstreamRequestInit } from './types.ts';
import { UpstreamError } from './types.ts';

export interface H1PoolOptions {
  readonly connect: Omit<ConnectOptions, 'signal'>;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number;
  /** The cluster's bookkeeping per request (pool.ts). */
  readonly observer?: PoolObserver;
}

/** An HTTP/1.1 pool for `host`. */
export function createH1Pool(host: Host, opts: H1PoolOptions): HostPool {
  return new H1Pool(host, opts);
}

// RFC 9110 field-name (token) and field-value characters; what undici checked before writing.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH_RE = /[^\u0021-\u00ff]/;

function invalidRequest(endpoint: string, what: string): UpstreamError {
  return new UpstreamError('UC', `upstream exchange with ${endpoint} failed: invalid ${what}`, { endpoint });
}

class H1Pool implements HostPool, ConnectionOwner, ExchangeQueue {
  private readonly idle: H1Connection[] = [];
  private readonly connections = new Set<H1Connection>();
  private readonly waiting: H1Exchange[] = [];
  private connecting = 0;
  private state: 'open' | 'draining' | 'destroyed' = 'open';
  private drained: (() => void) | undefined;
  private readonly connOpts: H1ConnectionOptions;
  private readonly host: Host;
  private readonly opts: H1PoolOptions;

  constructor(host: Host, opts: H1PoolOptions) {
    this.host = host;
    this.opts = opts;
    this.connOpts = { endpoint: host.key, idleTimeoutMs: opts.idleTimeoutMs, maxRequests: opts.maxRequestsPerConnection, maxHeaderSize: http.maxHeaderSize };
  }

  request(init: UpstreamRequestInit): Promise<PooledResponse> {
    return this.start(init, undefined)!.promise!;
  }

  /** `request` answered through `receiver` (no promise per exchange): see H1Exchange. */
  send(init: UpstreamRequestInit, receiver: ResponseReceiver): void {
    this.start(init, receiver);
  }

  /** The request's exchange on an idle connection or in the queue; a refusal fails it at once. */
  private start(init: UpstreamRequestInit, receiver: ResponseReceiver | undefined): H1Exchange {
    let ex: H1Exchange;
    try {
      if (init.cancel.cancelled) throw init.cancel.reason;
      if (this.state !== 'open') throw new UpstreamError('UC', `upstream connection pool for ${this.host.key} is closed`, { endpoint: this.host.key });
      ex = this.exchange(init, receiver);
    } catch (err) {
      // A request refused before it had an exchange: one that fails as it starts.
      ex = new H1Exchange(init, null, this.opts.observer, receiver);
      ex.fail(err);
      return ex;
    }
    const conn = this.takeIdle();
    if (conn !== undefined) {
      conn.send(ex);
    } else {
      ex.queue = this;
      this.waiting.push(ex);
      this.grow();
    }
    return ex;
  }

  /** Validates the request (rejects as undici did: UC); the connection writes its head (h1-head.ts). */
  private exchange(init: UpstreamRequestInit, receiver: ResponseReceiver | undefined): H1Exchange {
    const endpoint = this.host.key;
    if (!TOKEN_RE.test(init.method)) throw invalidRequest(endpoint, 'method');
    if (BAD_PATH_RE.test(init.path)) throw invalidRequest(endpoint, 'request path');
    if (BAD_VALUE_RE.test(init.authority)) throw invalidRequest(endpoint, 'host header');
    const h = init.headers;
    let contentLength: number | null = null;
    for (const name in h) {
      const v = h[name];
      if (h1RequestWritesItself(name)) {
        if (name === 'content-length') {
          const s = typeof v === 'string' ? v : v[0];
          contentLength = Number.parseInt(s, 10);
          if (!Number.isFinite(contentLength) || contentLength < 0) throw invalidRequest(endpoint, 'content-length header');
        }
        continue;
      }
      if (!TOKEN_RE.test(name)) throw invalidRequest(endpoint, `header name '${name}'`);
      if (typeof v === 'string') {
        if (BAD_VALUE_RE.test(v)) throw invalidRequest(endpoint, `value of header '${name}'`);
      } else {
        for (const one of v) if (BAD_VALUE_RE.test(one)) throw invalidRequest(endpoint, `value of header '${name}'`);
      }
    }
    return new H1Exchange(init, contentLength, this.opts.observer, receiver);
  }

  private takeIdle(): H1Connection | undefined {
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (conn.usable) return conn;
      conn.close();
    }
    return undefined;
  }

  /** Opens connections for waiting requests, up to maxConnections. */
  private grow(): void {
    while (this.state !== 'destroyed' && this.waiting.length > this.connecting && this.connections.size + this.connecting < this.opts.maxConnections) {
      this.connecting++;
      connectHost(this.host, this.opts.connect).then(this.onConnected, this.onConnectFailed);
    }
  }

  private readonly onConnected = (socket: Socket): void => {
    this.connecting--;
    if (this.state === 'destroyed') {
      socket.destroy();
      return;
    }
    const conn = new H1Connection(socket, this, this.connOpts);
    this.connections.add(conn);
    this.onConnectionFree(conn);
  };

  private readonly onConnectFailed = (err: unknown): void => {
    this.connecting--;
    // As undici's pool: the request that was waiting for this connection fails with its error (UF).
    const ex = this.waiting.shift();
    if (ex !== undefined) {
      ex.queue = undefined;
      ex.fail(err);
    }
    this.grow();
    this.checkDrained();
  };

  onConnectionFree(conn: H1Connection): void {
    const ex = this.waiting.shift();
    if (ex !== undefined) {
      ex.queue = undefined;
      conn.send(ex);
      return;
    }
    if (this.state !== 'open') {
      conn.close();
      return;
    }
    this.idle.push(conn);
    conn.startIdle();
  }

  onConnectionClosed(conn: H1Connection): void {
    this.connections.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.grow();
    this.checkDrained();
  }

  dequeue(ex: H1Exchange): void {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) this.waiting.splice(i, 1);
    this.checkDrained();
  }

  drain(): Promise<void> {
    if (this.state === 'open') this.state = 'draining';
    for (const conn of this.idle.splice(0)) conn.close();
    if (this.isEmpty()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.drained;
      this.drained = () => { prev?.(); resolve(); };
    });
  }

  destroy(): void {
    this.state = 'destroyed';
    for (const ex of this.waiting.splice(0)) {
      ex.queue = undefined;
      ex.fail(new UpstreamError('UC', `upstream connection pool for ${this.host.key} destroyed`, { endpoint: this.host.key }));
    }
    for (const conn of [...this.connections]) conn.close();
    this.idle.length = 0;
    this.checkDrained();
  }

  private isEmpty(): boolean {
    return this.connections.size === 0 && this.connecting === 0 && this.waiting.length === 0;
  }

  private checkDrained(): void {
    if (this.state === 'open' || this.drained === undefined || !this.isEmpty()) return;
    const d = this.drained;
    this.drained = undefined;
    d();
  }
}
