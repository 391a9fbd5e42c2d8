/**
 * The HTTP/1.1 side of the connection manager: node's HTTP/1.1 server in "no listen" mode with
 * Envoy's codec rules (versions other than 1.1 -> 426, missing Host -> 400, parse errors -> 400 /
 * 431 / 408 / 426 after the complete pipelined requests got their responses, h2c upgrades served
 * as HTTP/1.1), pipelined requests served one at a time, and Upgrade / CONNECT handed to
 * websocket.ts. Each routable request goes to the manager's `serve`.
 */
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ClusterManager } from '../upstream/types.ts';
import type { CompiledRouteTable } from '../router/route-table.ts';
import type { HcmOptions } from './hcm-options.ts';
import type { HcmCounters } from './hcm-stats.ts';
import { AUTHORITY, applyEdgeRules, normalizeAddress, requestHeaders } from './downstream.ts';
import { afterCompleteRequests, parseErrorAfterAnswer, trackH1Response, type InFlightSocket } from './h1-in-flight.ts';
import { normalizeRequestPath } from './path-normalization.ts';
import { proxyUpgrade } from './websocket.ts';

/** What the HTTP/1.1 server needs from its connection manager. */
export interface H1ServerContext {
  readonly options: HcmOptions;
  readonly counters: HcmCounters;
  readonly clusterManager: ClusterManager;
  readonly random: () => number;
  /** The route table for this request (static, or the RDS one last seen). */
  table(): CompiledRouteTable | undefined;
  /** True once the manager drains: responses close their connections. */
  draining(): boolean;
  /** Every HTTP/1.1 response's one 'close' listener (`this` is the response): calls h1-in-flight's forgetH1Response first. */
  onResponseClose(this: ServerResponse): void;
  /** Serve a request that passed the codec's checks. */
  serve(req: IncomingMessage, res: ServerResponse, isH2: false, target: string, authority: string): void;
  /** The listener's original destination of the connection (transparent capture). */
  originalDestination(socket: InFlightSocket): { readonly address: string; readonly port: number } | undefined;
  internalError(where: string, err: unknown, res?: ServerResponse): void;
  protocolError(kind: string, remote: string | undefined): void;
}

/** Build the HTTP/1.1 server a connection manager hands its HTTP/1.1 sockets to (`emit('connection')`). */
export function createH1Server(ctx: H1ServerContext): Server {
  const o = ctx.options;
  const { counters, internalError, protocolError } = ctx;
  const serverName = o.serverName;
  // Which codec a request came from is known by the server that emitted it, never by the version
  // the client wrote: `GET / HTTP/2.0` on an HTTP/1.1 connection is an HTTP/1 request.
  function onRequest1(req: IncomingMessage, res: ServerResponse): void {
    try {
      const socket = req.socket as InFlightSocket;
      // Bytes read after a response that closes the connection was sent (node keeps parsing until
      // the socket is gone): Envoy stopped reading at that response. Never served; node destroys
      // the request with the socket once the last response is flushed.
      if (socket.writableEnded) return;
      trackH1Response(socket, res, ctx.onResponseClose);
      // Pipelined requests are served one at a time, as by Envoy (its codec stops parsing after each
      // request until the response is done): node hands us a request as soon as it is parsed and
      // queues its response behind the earlier ones. A queued response gets the socket when the
      // one before it finished; if that one closed the connection (an error, a local reply before
      // its body was read, draining), it never does, and the request never reaches a filter or a
      // backend: node destroys it with the connection.
      if (res.socket === null) res.once('socket', () => startRequest1(req, res));
      else startRequest1(req, res);
    } catch (err) {
      internalError('http1_request', err, res);
    }
  }
  function startRequest1(req: IncomingMessage, res: ServerResponse): void {
    try {
      const socket = req.socket as InFlightSocket;
      if (ctx.draining()) res.shouldKeepAlive = false;
      // Envoy's HTTP/1 codec serves HTTP/1.1 (and 1.0 with accept_http_10); anything else on an
      // HTTP/1 connection (0.9, 1.0, 2.0) gets 426 and a closed connection.
      const http10 = req.httpVersion === '1.0';
      if (req.httpVersion !== '1.1' && !(http10 && o.acceptHttp10)) {
        protocolError('low_version', socket.remoteAddress);
        return rejectH1(res, 426, 'Upgrade Required', serverName);
      }
      let authority = req.headers.host;
      if (authority === undefined && http10) authority = o.defaultHostForHttp10;
      if (authority === undefined) return rejectH1(res, 400, 'Bad Request', serverName);
      ctx.serve(req, res, false, req.url ?? '/', authority);
    } catch (err) {
      internalError('http1_request', err, res);
    }
  }

  const h1 = http.createServer({
    maxHeaderSize: o.maxHeaderBytes,
    requestTimeout: o.requestTimeoutMs,
    headersTimeout: o.requestTimeoutMs > 0 ? Math.min(o.headersTimeoutMs, o.requestTimeoutMs) : o.headersTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4))),
    keepAliveTimeout: o.idleTimeoutMs,
    // Missing Host is answered by onRequest1 (400), so that the answer is sequenced and tracked like any other.
    requireHostHeader: false,
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 section 6.3):
    // node skips its Readable life cycle ('end'/'close' events, ticks; ~1.3 KB per request). The
    // connection manager never reads such a request (hasBody false).
    optimizeEmptyRequests: true,
    insecureHTTPParser: false,
    joinDuplicateHeaders: true,
    // Envoy ignores an h2c upgrade (what `curl --http2` sends to http://) and answers over HTTP/1.1.
    shouldUpgradeCallback: (req: IncomingMessage) => req.method === 'CONNECT' || !isH2cUpgrade(req),
  } as ServerOptions, onRequest1);
  h1.maxHeadersCount = o.maxHeadersCount + 1; // node truncates silently at the limit: +1 lets us see the overflow
  h1.maxRequestsPerSocket = o.maxRequestsPerConnection;
  h1.on('clientError', (err: NodeJS.ErrnoException, duplex) => {
    const socket = duplex as InFlightSocket;
    try {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      let answer: string;
      if (err.code === 'HPE_INVALID_VERSION' && unknownHttpVersion((err as { rawPacket?: Buffer }).rawPacket, (err as { bytesParsed?: number }).bytesParsed)) {
        // A well-formed version the parser does not know (HTTP/3.0): Envoy answers 426 as for 1.0 and 2.0.
        answer = `HTTP/1.1 426 Upgrade Required\r\ncontent-length: 16\r\ncontent-type: text/plain\r\nserver: ${serverName}\r\nconnection: close\r\n\r\nUpgrade Required`;
      } else {
        const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
        if (status === 408) counters.downstream_rq_header_timeout++;
        answer = `HTTP/1.1 ${status} ${reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
      }
      protocolError(err.code ?? 'parse_error', socket.remoteAddress);
      // Requests before the bad one on this connection (pipelining) still get their responses
      // first, as from Envoy: the backend may have acted on them.
      afterCompleteRequests(socket, () => {
        if (socket.writable) {
          if (parseErrorAfterAnswer(socket)) socket.end();
          else socket.end(answer);
        }
        // Already closing after an earlier response: let it flush (node destroys the socket then).
        else if (!socket.writableEnded) socket.destroy();
      });
    } catch (e) {
      internalError('http1_client_error', e);
      socket.destroy();
    }
  });
  // An Upgrade or CONNECT behind pipelined requests waits for their responses, as with Envoy
  // (one request at a time); behind a response that closes the connection it is never served.
  const onUpgrade = (req: IncomingMessage, duplex: Duplex, head: Buffer) => {
    try {
      afterCompleteRequests(duplex as InFlightSocket, () => {
        if (!duplex.writableEnded && !duplex.destroyed) upgradeNow(req, duplex, head);
      });
    } catch (err) {
      internalError('upgrade', err);
      duplex.destroy();
    }
  };
  const upgradeNow = (req: IncomingMessage, duplex: Duplex, head: Buffer) => {
    try {
      const s = duplex as InFlightSocket;
      const isConnect = req.method === 'CONNECT';
      // CONNECT's request target is the authority (RFC 9110 section 9.3.6).
      const authority = isConnect ? String(req.url ?? '') : String(req.headers.host ?? '');
      // CONNECT names host:port and nothing else (CONNECT /b is a 400 from Envoy too).
      if (!AUTHORITY.test(authority) || (isConnect && !/^[^/?#\s@]+:\d+$/.test(authority))) {
        protocolError('invalid_authority', s.remoteAddress);
        return void duplex.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      }
      let path = '';
      if (!isConnect) {
        const d = (req.url ?? '/').startsWith('/') ? normalizeRequestPath(req.url ?? '/', o.paths) : undefined;
        if (d === undefined || d.action !== 'continue') {
          counters.downstream_rq_failed_path_normalization++;
          return void duplex.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
        }
        path = d.path;
      }
      const headers = requestHeaders(req.headers, req.rawHeaders);
      const scheme = (s as unknown as TLSSocket).encrypted ? 'https' : 'http';
      applyEdgeRules(headers, o.edge, normalizeAddress(s.remoteAddress), scheme);
      const originalDestination = ctx.originalDestination(s);
      void proxyUpgrade({ req, socket: duplex, head, headers, authority, path, table: ctx.table(), clusterManager: ctx.clusterManager, allowedUpgrades: o.allowedUpgrades, random: ctx.random, scheme, originalDestination })
        .catch((err: unknown) => {
          internalError('upgrade', err);
          duplex.destroy();
        });
    } catch (err) {
      internalError('upgrade', err);
      duplex.destroy();
    }
  };
  // An Expect other than 100-continue is routed like any request, as by Envoy (node answers 417 by itself otherwise).
  h1.on('checkExpectation', onRequest1);
  // 100-continue: node would send the 100 before the request is even looked at; Envoy sends it only
  // once the request passed the codec and path checks (a 400 comes alone). The connection manager
  // sends it then (expectsContinue).
  h1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    (req as IncomingMessage & { [kExpectsContinue]?: true })[kExpectsContinue] = true;
    onRequest1(req, res);
  });
  h1.on('upgrade', onUpgrade);
  h1.on('connect', onUpgrade);
  h1.emit('listening'); // starts node's connection checks (headers/request timeouts) without a listening socket
  return h1;

}

const kExpectsContinue = Symbol('trellis.expectsContinue');

/** Whether an HTTP/1.1 request still waits for the 100 (Continue) its `Expect: 100-continue` asked for. */
export function expectsContinue(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { [kExpectsContinue]?: true })[kExpectsContinue] === true;
}

/** A codec-level HTTP/1.1 answer (Envoy's text), closing the connection. */
export function rejectH1(res: ServerResponse, status: number, reason: string, serverName: string | undefined): void {
  res.shouldKeepAlive = false;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(reason), server: serverName, connection: 'close' });
  res.end(reason);
}


/** `Upgrade: h2c` (RFC 7540 section 3.2, withdrawn by RFC 9113): served as HTTP/1.1, as Envoy does. */
function isH2cUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.trim().toLowerCase() === 'h2c';
}

/**
 * The request line the parser failed in is well formed but names an HTTP version other than 1.x
 * (`GET / HTTP/3.0`). `raw` is the packet being parsed, which may start with earlier pipelined
 * requests; `at` is where in it the parser stopped, on the failing line.
 */
function unknownHttpVersion(raw: Buffer | undefined, at: number | undefined): boolean {
  if (raw === undefined) return false;
  const pos = Math.min(Math.max(at ?? 0, 0), raw.length);
  const start = pos > 0 ? raw.lastIndexOf(0x0a, pos - 1) + 1 : 0;
  const eol = raw.indexOf('\r\n', start);
  const lf = raw.indexOf(0x0a, start);
  // A bare LF ends the line before its CRLF: not a well-formed request line.
  if (lf >= 0 && lf !== eol + 1) return false;
  const line = raw.subarray(start, eol < 0 ? Math.min(raw.length, start + 8192) : eol).toString('latin1');
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ ]+ HTTP\/\d\.\d$/.test(line);
}
