/**
 * HTTP/1.1 Upgrade (WebSocket) and CONNECT tunnels: the request is routed like any other (CONNECT
 * only matches `connect_matcher` routes), then the cluster opens a raw connection to an endpoint
 * (ClusterHandle.connect). For an Upgrade the request is sent on it and bytes flow both ways only
 * once the endpoint answered 101 (another answer is relayed and closes the connection, as from
 * Envoy); for CONNECT the proxy answers `200 Connection Established` itself (Envoy terminating
 * CONNECT). Then bytes are piped both ways until either side closes. Only types listed in the HttpConnectionManager's
 * upgrade_configs are allowed (`websocket`, `CONNECT`); others get 403 as in Envoy
 * ("upgrade_failed"). Errors on either socket close both and never escape.
 */
import type { IncomingMessage } from 'node:http';
import http from '../../node-http.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClusterManager, HeaderMap } from '../upstream/types.ts';
import { applyRouteHeaders, pickWeightedCluster, rewritePath, routeHeadersNeedFormat } from '../router/route-rewrite.ts';
import type { CompiledRouteTable } from '../router/route-table.ts';
import { normalizeAddress } from './downstream.ts';
import type { FormatContext, FormatInfo } from '../router/header-format.ts';
import { ResponseFlagSet } from './stream-info.ts';

function rawReply(socket: Duplex, status: number, reason: string, body = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${body}`);
}

/** Inputs of one upgrade. */
export interface UpgradeInit {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly headers: HeaderMap;
  readonly authority: string;
  /** The request path as the connection manager normalized it (empty for CONNECT). */
  readonly path: string;
  readonly table: CompiledRouteTable | undefined;
  readonly clusterManager: ClusterManager;
  readonly allowedUpgrades: ReadonlySet<string>;
  readonly random: () => number;
  readonly scheme: 'http' | 'https';
  readonly originalDestination?: { readonly address: string; readonly port: number };
}

/** What request header formats read for an upgrade (no StreamInfo on this path: built from the socket). */
function upgradeFormatContext(u: UpgradeInit, routeName: string | undefined, clusterName: string, path: string, requestHeaders: HeaderMap): FormatContext {
  const sock = u.req.socket;
  const remote = normalizeAddress(sock.remoteAddress);
  const info: FormatInfo = {
    startTime: Date.now(), protocol: 'HTTP/1.1', downstreamRemoteAddress: remote, downstreamDirectRemoteAddress: remote, downstreamDirectRemotePort: sock.remotePort ?? 0,
    downstreamLocalAddress: normalizeAddress(sock.localAddress), downstreamLocalPort: sock.localPort ?? 0, downstreamTls: undefined,
    routeName, clusterName, upstreamEndpoint: undefined, responseCode: 0, responseFlags: new ResponseFlagSet(),
  };
  return { info, method: u.req.method ?? 'GET', path, authority: u.authority, scheme: u.scheme, requestHeaders };
}

/** Proxy one HTTP/1.1 Upgrade request. Never throws. */
export async function proxyUpgrade(u: UpgradeInit): Promise<void> {
  const { req, socket } = u;
  socket.on('error', () => socket.destroy());
  const isConnect = req.method === 'CONNECT';
  const type = isConnect ? 'connect' : String(req.headers.upgrade ?? '').toLowerCase();
  if (!u.allowedUpgrades.has(type)) return rawReply(socket, 403, 'Forbidden');
  const path = isConnect ? '' : u.path;
  const m = u.table?.match({ headers: u.headers, method: req.method ?? 'GET', path, authority: u.authority, scheme: u.scheme, random: u.random() });
  if (!m || m.action.kind !== 'route') return rawReply(socket, 404, 'Not Found');
  const a = m.action;
  const wc = a.weightedClusters ? pickWeightedCluster(a.weightedClusters, a.totalWeight, u.random()) : undefined;
  const name = wc ? wc.name : a.cluster ?? (a.clusterHeader ? String(u.headers[a.clusterHeader] ?? '') : '');
  const cluster = u.clusterManager.get(name);
  if (!cluster) return rawReply(socket, 503, 'Service Unavailable');
  const headers: HeaderMap = { ...u.headers };
  const format = routeHeadersNeedFormat(u.table!, m, wc, 'request') ? upgradeFormatContext(u, m.route.name, name, path, headers) : undefined;
  applyRouteHeaders(headers, u.table!, m, wc, 'request', format);
  const upstreamPath = rewritePath(m.route, a.prefixRewrite, a.regexRewrite, path);
  const authority = wc?.hostRewriteLiteral ?? a.hostRewriteLiteral ?? u.authority;
  const ac = new AbortController();
  socket.once('close', () => ac.abort());
  let upstream: Duplex;
  try {
    ({ socket: upstream } = await cluster.connect({ authority, requestHost: authority, signal: ac.signal, ...(u.originalDestination ? { originalDestination: { ...u.originalDestination } } : {}) }));
  } catch {
    return rawReply(socket, 503, 'Service Unavailable', 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  }
  if (socket.destroyed) return void upstream.destroy();
  if (!isConnect) return upgradeOn(upstream, u, upstreamPath, authority, headers);
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (u.head.length > 0) upstream.write(u.head);
  tunnel(socket, upstream);
}

/**
 * Sends the Upgrade request on the endpoint's connection and waits for its answer: only after a
 * 101 do bytes flow both ways. Any other response is relayed and ends the downstream connection,
 * as from Envoy: what the client sends next is never piped to the backend unrouted (it would skip
 * the route table, its filters and its policies).
 */
function upgradeOn(upstream: Duplex, u: UpgradeInit, path: string, authority: string, headers: HeaderMap): void {
  const { req, socket } = u;
  const raw: string[] = ['host', authority, 'connection', 'Upgrade', 'upgrade', String(req.headers.upgrade)];
  for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) raw.push(k, one);
  const up = http.request({ method: req.method, path, headers: raw, setHost: false, createConnection: () => upstream as Socket });
  up.on('upgrade', (res: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
    if (socket.destroyed) return void upSocket.destroy();
    socket.write(`HTTP/1.1 101 ${res.statusMessage ?? 'Switching Protocols'}\r\n${headerLines(res.rawHeaders)}\r\n`);
    if (upHead.length > 0) socket.write(upHead);
    if (u.head.length > 0) upSocket.write(u.head);
    tunnel(socket, upSocket);
  });
  up.on('response', (res: IncomingMessage) => {
    if (!socket.writable) {
      res.destroy();
      return void socket.destroy();
    }
    const rawHeaders: string[] = [];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      // Framing is node's (a chunked body arrives decoded) and the connection closes after this response.
      if (!/^(connection|keep-alive|transfer-encoding)$/i.test(res.rawHeaders[i])) rawHeaders.push(res.rawHeaders[i], res.rawHeaders[i + 1]);
    }
    socket.write(`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n${headerLines(rawHeaders)}connection: close\r\n\r\n`);
    res.on('error', () => socket.destroy());
    res.on('end', () => upstream.destroy());
    res.pipe(socket);
  });
  up.on('error', () => {
    if (socket.writable) rawReply(socket, 503, 'Service Unavailable', 'upstream connect error or disconnect/reset before headers. reset reason: connection termination');
    else socket.destroy();
  });
  socket.on('close', () => up.destroy());
  up.end();
}

function headerLines(raw: readonly string[]): string {
  let out = '';
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return out;
}

/** Bytes both ways until either side closes; an error on either closes both. */
function tunnel(socket: Duplex, upstream: Duplex): void {
  const closeBoth = () => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on('error', closeBoth);
  socket.on('error', closeBoth);
  upstream.on('close', () => socket.end());
  socket.on('close', () => upstream.destroy());
  upstream.pipe(socket);
  socket.pipe(upstream);
}
