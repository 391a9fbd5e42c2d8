/**
 * Helpers for the upstream tests: loopback backends on port 0, Envoy-shaped cluster JSON, and
 * sending one attempt through a ClusterHandle. Test-only; nothing in the proxy imports it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { XdsJson } from '../../xds/types.ts';
import assert from 'node:assert/strict';
import { cancelOnAbort, type ClusterHandle, type UpstreamRequestInit, type UpstreamResponse } from './types.ts';

/** A started backend with its port and a request log. */
export interface Backend {
  port: number;
  /** Remote ports of the requests it served, in order (to see connection reuse). */
  remotePorts: number[];
  close(): Promise<void>;
}

/** An HTTP/1.1 backend; `handler` defaults to 200 with body = its name. */
export async function h1Backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Backend> {
  const remotePorts: number[] = [];
  const server = http.createServer((req, res) => {
    remotePorts.push(req.socket.remotePort ?? 0);
    if (handler) return handler(req, res);
    res.setHeader('x-backend', name);
    res.end(name);
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    remotePorts,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** An h2c backend counting sessions. */
export async function h2cBackend(name: string): Promise<Backend & { sessions: () => number }> {
  const remotePorts: number[] = [];
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    remotePorts.push(stream.session?.socket?.remotePort ?? 0);
    // x-lines: one field on two lines (node's header object would join them with ', ').
    stream.respond({ ':status': 200, 'x-backend': name, 'x-path': String(headers[':path']), 'x-lines': ['a', 'b'] }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    remotePorts,
    sessions: () => sessions,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A ClusterLoadAssignment-shaped object. */
export function assignment(name: string, groups: { priority?: number; weight?: number; zone?: string; endpoints: { address?: string; port: number; health?: string; weight?: number }[] }[], factor?: number): XdsJson {
  return {
    cluster_name: name,
    endpoints: groups.map((g) => ({
      ...(g.priority === undefined ? {} : { priority: g.priority }),
      ...(g.weight === undefined ? {} : { load_balancing_weight: g.weight }),
      locality: { region: 'r1', zone: g.zone ?? 'z1' },
      lb_endpoints: g.endpoints.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address ?? '127.0.0.1', port_value: e.port } } },
        ...(e.health === undefined ? {} : { health_status: e.health }),
        ...(e.weight === undefined ? {} : { load_balancing_weight: e.weight }),
      })),
    })),
    ...(factor === undefined ? {} : { policy: { overprovisioning_factor: factor } }),
  };
}

/** A STATIC cluster over the given ports. */
export function staticCluster(name: string, ports: number[], extra: Record<string, unknown> = {}): XdsJson {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: assignment(name, [{ endpoints: ports.map((port) => ({ port })) }]), ...extra };
}

/** One GET attempt; resolves with status, body text, endpoint, trailers. */
export async function get(cluster: ClusterHandle, path = '/', init: Partial<UpstreamRequestInit> = {}): Promise<{ status: number; body: string; endpoint: string; headers: Record<string, string | string[]>; trailers: Record<string, string | string[]> }> {
  const res = await cluster.request({
    method: 'GET',
    path,
    authority: 'backend.test',
    scheme: 'http',
    headers: {},
    body: null,
    cancel: cancelOnAbort(AbortSignal.timeout(5000)),
    isRetry: false,
    ...init,
  });
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(Buffer.from(c));
  return { status: res.status, body: Buffer.concat(chunks).toString(), endpoint: res.endpoint, headers: res.headers, trailers: await res.trailers };
}

/** An h2c cluster option block (typed_extension_protocol_options). */
export const h2Options = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

/** A response body read to its end as text (iterated). */
export async function bodyText(res: UpstreamResponse): Promise<string> {
  let s = '';
  for await (const chunk of res.body) s += Buffer.from(chunk).toString();
  return s;
}

/** Waits (up to 1 s) for the cluster's request slot to be released, then checks it was. */
export async function requestReleased(stats: () => { upstream_rq_active: number }): Promise<void> {
  for (let i = 0; i < 100 && stats().upstream_rq_active !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(stats().upstream_rq_active, 0);
}
