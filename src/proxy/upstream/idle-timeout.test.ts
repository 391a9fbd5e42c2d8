/**
 * How long an upstream connection stays in the pool: the cluster's idle_timeout (Envoy's 1 h when
 * unset, none when 0s), shortened by a server's `Keep-Alive: timeout=N` (less a 2 s margin), and
 * a Trellis sidecar as the server (it advertises its own 1 h idle timeout, so two sidecars keep
 * their connections across lulls instead of handshaking again).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { createClusterManager } from './cluster-manager.ts';
import { DefaultUpstreamIdleTimeoutMs, parseCluster } from './cluster-config.ts';
import { get, h2Options, staticCluster } from './test-support.ts';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, rawRequest, startBackend, startProxy } from '../../../test/support/connection-manager-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withIdle(idle: string): Record<string, unknown> {
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        common_http_protocol_options: { idle_timeout: idle },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  };
}

/** An HTTP/1.1 server that counts connections and closes; `keepAlive` sets its advertised timeout (s), or none. */
async function countingServer(keepAlive: number | undefined): Promise<{ port: number; opened: () => number; closed: () => number; close(): Promise<void> }> {
  let opened = 0;
  let closed = 0;
  const server = http.createServer((_req, res) => {
    // A header the application sets itself: node then adds no Keep-Alive of its own.
    res.setHeader('connection', 'keep-alive');
    if (keepAlive !== undefined) res.setHeader('keep-alive', `timeout=${keepAlive}`);
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    opened++;
    s.on('close', () => closed++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    opened: () => opened,
    closed: () => closed,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('cluster idle_timeout: Envoy\'s 1 h when unset, as configured otherwise, 0s disables it', () => {
  const base = { name: 'c', type: 'STATIC', connect_timeout: '1s' };
  assert.equal(DefaultUpstreamIdleTimeoutMs, 3_600_000);
  assert.equal(parseCluster(base).idleTimeoutMs, 3_600_000);
  assert.equal(parseCluster({ ...base, ...withIdle('30s') }).idleTimeoutMs, 30_000);
  assert.equal(parseCluster({ ...base, ...withIdle('0s') }).idleTimeoutMs, 0);
  assert.equal(parseCluster({ ...base, common_http_protocol_options: { idle_timeout: '2.5s' } }).idleTimeoutMs, 2_500);
});

test('a server\'s keep-alive timeout=N closes our idle connection N - 2 s after use, under a longer idle_timeout', async (t) => {
  const s = await countingServer(3);
  const cm = createClusterManager();
  cm.update([staticCluster('c', [s.port])], new Map());
  t.after(async () => { await cm.close(); await s.close(); });
  await get(cm.get('c')!);
  await get(cm.get('c')!);
  assert.equal(s.opened(), 1, 'reused while within the server\'s timeout');
  // 3 s advertised - 2 s margin = 1 s: closed by us before the server would.
  await sleep(1_400);
  assert.equal(s.closed(), 1, 'the idle connection was closed after about 1 s');
  await get(cm.get('c')!);
  assert.equal(s.opened(), 2);
});

test('without a keep-alive header the connection stays for the idle timeout; 0s keeps it', async (t) => {
  const s = await countingServer(undefined);
  const cm = createClusterManager();
  cm.update([staticCluster('short', [s.port], withIdle('0.1s')), staticCluster('none', [s.port], withIdle('0s'))], new Map());
  t.after(async () => { await cm.close(); await s.close(); });
  await get(cm.get('short')!);
  await get(cm.get('none')!);
  assert.equal(s.opened(), 2);
  await sleep(400);
  assert.equal(s.closed(), 1, 'idle_timeout 0.1s closed its connection; 0s kept the other');
  await get(cm.get('none')!);
  assert.equal(s.opened(), 2, 'the 0s cluster reused its connection');
});

test('HTTP/2: idle_timeout 0s keeps the session open', async (t) => {
  const { default: http2 } = await import('node:http2');
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => sessions++);
  server.on('stream', (stream) => { stream.respond({ ':status': 200 }); stream.end('h2'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const h2Idle = (idle: string) => {
    const o = structuredClone(h2Options) as { typed_extension_protocol_options: Record<string, Record<string, unknown>> };
    o.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].common_http_protocol_options = { idle_timeout: idle };
    return o;
  };
  const cm = createClusterManager();
  cm.update([staticCluster('none', [port], h2Idle('0s'))], new Map());
  t.after(async () => { await cm.close(); await new Promise<void>((r) => server.close(() => r())); });
  assert.equal((await get(cm.get('none')!)).body, 'h2');
  await sleep(200);
  assert.equal((await get(cm.get('none')!)).body, 'h2');
  assert.equal(sessions, 1);
});

test('a Trellis proxy as the server advertises keep-alive timeout=3600 (its 1 h downstream idle timeout) and the pool keeps reusing it', async (t) => {
  const be = await startBackend((_req, res) => res.end('be'));
  const proxy = await startProxy({
    clusterManager: new StaticClusterManager({ a: { endpoints: [be.endpoint] } }),
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }),
  });
  const cm = createClusterManager();
  cm.update([staticCluster('sidecar', [proxy.port])], new Map());
  t.after(async () => { await cm.close(); await proxy.close(); await be.close(); });
  const raw = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', 300);
  assert.match(raw, /\r\nkeep-alive: timeout=3600\r\n/i);
  const first = await get(cm.get('sidecar')!);
  assert.equal(first.body, 'be');
  await sleep(150);
  await get(cm.get('sidecar')!);
  const stats = cm.stats().get('sidecar')!;
  assert.equal(stats.upstream_cx_total, 1, 'one connection for both requests');
  assert.equal(stats.upstream_cx_active, 1, 'still open while idle');
});
