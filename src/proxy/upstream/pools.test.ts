import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createClusterManager } from './cluster-manager.ts';
import { get, h1Backend, h2cBackend, h2Options, staticCluster } from './test-support.ts';
import { cancelOnAbort, UpstreamError } from './types.ts';

test('HTTP/1.1 pool reuses keep-alive connections', async () => {
  const b = await h1Backend('a');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port])], new Map());
  const c = cm.get('c')!;
  for (let i = 0; i < 10; i++) assert.equal((await get(c)).body, 'a');
  // Sequential requests reuse one connection (at most two if the server's keep-alive raced one).
  assert.ok(new Set(b.remotePorts).size <= 2, `ports ${b.remotePorts}`);
  const s = cm.stats().get('c')!;
  assert.equal(s.upstream_rq_total, 10);
  assert.equal(s.upstream_rq_2xx, 10);
  assert.ok(s.upstream_cx_total <= 2);
  assert.equal(s.upstream_cx_active, s.upstream_cx_total);
  await cm.close();
  await b.close();
});

test('max_requests_per_connection opens a new connection after N requests', async () => {
  const b = await h1Backend('a');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], { max_requests_per_connection: 2 })], new Map());
  for (let i = 0; i < 6; i++) await get(cm.get('c')!);
  const perPort = new Map<number, number>();
  for (const p of b.remotePorts) perPort.set(p, (perPort.get(p) ?? 0) + 1);
  assert.ok([...perPort.values()].every((n) => n <= 2), `requests per connection ${[...perPort.values()]}`);
  assert.ok(perPort.size >= 3);
  await cm.close();
  await b.close();
});

test('HTTP/2 pool multiplexes concurrent requests on one session and passes trailers', async () => {
  const b = await h2cBackend('h2');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], h2Options)], new Map());
  const c = cm.get('c')!;
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get(c, `/r${i}`)));
  assert.ok(results.every((r) => r.status === 200 && r.body === 'h2'));
  assert.equal(results[3].headers['x-path'], '/r3');
  assert.deepEqual(results[3].headers['x-lines'], ['a', 'b'], 'a response field on two lines stays two values');
  assert.deepEqual(results[0].trailers, { 'grpc-status': '0' });
  assert.equal(b.sessions(), 1);
  assert.equal(cm.stats().get('c')!.upstream_cx_total, 1);
  await cm.close();
  await b.close();
});

test('legacy http2_protocol_options also selects HTTP/2', async () => {
  const b = await h2cBackend('h2');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], { http2_protocol_options: {} })], new Map());
  assert.equal((await get(cm.get('c')!)).body, 'h2');
  await cm.close();
  await b.close();
});

test('connection refused -> UF and upstream_cx_connect_fail', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const cm = createClusterManager();
  cm.update([staticCluster('c', [port])], new Map());
  await assert.rejects(get(cm.get('c')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF' && err.code === 'UPSTREAM_CONNECT_FAILURE');
  assert.equal(cm.stats().get('c')!.upstream_cx_connect_fail, 1);
  await cm.close();
});

test('connect timeout (TLS handshake never answered) -> UF and upstream_cx_connect_timeout', async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as AddressInfo).port;
  const cm = createClusterManager();
  cm.update([staticCluster('c', [port], {
    connect_timeout: '0.2s',
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'x.test' } },
  })], new Map());
  const t0 = Date.now();
  await assert.rejects(get(cm.get('c')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UF');
  // The handshake never completes: only the 0.2 s connect timeout ends it (10x to spare).
  assert.ok(Date.now() - t0 < 2000, `UF after ${Date.now() - t0} ms`);
  assert.equal(cm.stats().get('c')!.upstream_cx_connect_timeout, 1);
  await cm.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
});

test('backend reset before headers -> UR', async () => {
  const b = await h1Backend('x', (req) => req.socket.resetAndDestroy());
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port])], new Map());
  await assert.rejects(get(cm.get('c')!), (err: unknown) => err instanceof UpstreamError && (err.responseFlag === 'UR' || err.responseFlag === 'UC'), 'reset maps to UR/UC');
  await assert.rejects(get(cm.get('c')!), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UR');
  await cm.close();
  await b.close();
});

test('backend closing the connection without a response -> UC', async () => {
  const b = await h1Backend('x', (req) => req.socket.destroy());
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port])], new Map());
  await assert.rejects(get(cm.get('c')!), (err: unknown) => err instanceof UpstreamError && (err.responseFlag === 'UC' || err.responseFlag === 'UR'));
  await cm.close();
  await b.close();
});

test('circuit breaker: a burst over max_requests gets UO, the rest succeed', async () => {
  const b = await h1Backend('slow', (_req, res) => setTimeout(() => res.end('ok'), 100));
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], { circuit_breakers: { thresholds: [{ max_connections: 2, max_pending_requests: 1, max_requests: 10 }] } })], new Map());
  const c = cm.get('c')!;
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => get(c)));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  const uo = results.filter((r) => r.status === 'rejected' && r.reason instanceof UpstreamError && r.reason.responseFlag === 'UO').length;
  assert.equal(ok, 3, 'two connections + one pending');
  assert.equal(uo, 7);
  assert.equal(cm.stats().get('c')!.upstream_rq_pending_overflow, 7);
  // Slots are released once bodies end.
  assert.equal((await get(c)).body, 'ok');
  await cm.close();
  await b.close();
});

test('retry circuit breaker: max_retries', () => {
  const cm = createClusterManager();
  cm.update([staticCluster('c', [1], { circuit_breakers: { thresholds: [{ max_retries: 2 }] } })], new Map());
  const c = cm.get('c')!;
  assert.equal(c.tryAcquireRetry(), true);
  assert.equal(c.tryAcquireRetry(), true);
  assert.equal(c.tryAcquireRetry(), false);
  c.releaseRetry();
  assert.equal(c.tryAcquireRetry(), true);
  assert.equal(cm.stats().get('c')!.upstream_rq_retry_overflow, 1);
  void cm.close();
});

test('connect() opens a raw TCP connection to an endpoint', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const port = (echo.address() as AddressInfo).port;
  const cm = createClusterManager();
  cm.update([staticCluster('c', [port])], new Map());
  const { socket, endpoint } = await cm.get('c')!.connect({ signal: AbortSignal.timeout(2000), authority: 'x' });
  assert.equal(endpoint, `127.0.0.1:${port}`);
  socket.write('ping');
  const [data] = await Promise.all([new Promise<Buffer>((r) => socket.once('data', r))]);
  assert.equal(data.toString(), 'ping');
  socket.destroy();
  await cm.close();
  await new Promise<void>((r) => echo.close(() => r()));
});

test('use_downstream_protocol_config follows the downstream protocol', async () => {
  const b = await h2cBackend('h2');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      },
    },
  })], new Map());
  assert.equal((await get(cm.get('c')!, '/', { downstreamProtocol: 'http2' })).body, 'h2');
  // The same h2c-only backend cannot answer HTTP/1.1, which proves the pool switched protocol.
  await assert.rejects(get(cm.get('c')!, '/', { downstreamProtocol: 'http1' }), UpstreamError);
  await cm.close();
  await b.close();
});

test('HTTP/2 max_requests_per_connection rotates sessions', async () => {
  const b = await h2cBackend('h2');
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port], { ...h2Options, max_requests_per_connection: 2 })], new Map());
  for (let i = 0; i < 4; i++) assert.equal((await get(cm.get('c')!)).body, 'h2');
  assert.equal(b.sessions(), 2);
  await cm.close();
  await b.close();
});

test('request bodies stream through both pools; hop-by-hop headers are not forwarded', async () => {
  const echo = await h1Backend('echo', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`${req.method} ${req.headers.host} ${req.headers.connection ?? '-'} ${req.headers['x-a']} ${Buffer.concat(chunks).toString()}`));
  });
  const cm = createClusterManager();
  cm.update([staticCluster('c', [echo.port])], new Map());
  async function* body() {
    yield new TextEncoder().encode('hello ');
    yield new TextEncoder().encode('world');
  }
  const r = await get(cm.get('c')!, '/', { method: 'POST', body: body(), headers: { connection: 'close, x-a', 'x-a': '1', 'transfer-encoding': 'chunked' } });
  assert.equal(r.body, 'POST backend.test keep-alive 1 hello world');
  await cm.close();
  await echo.close();
});

test('aborting an attempt rejects with the abort reason and releases the circuit breaker slot', async () => {
  const b = await h1Backend('slow', (_req, res) => setTimeout(() => res.end('late'), 2000).unref());
  for (const proto of [{}, h2Options]) {
    const h2 = proto === h2Options ? await h2cBackend('h2') : undefined;
    const cm = createClusterManager();
    cm.update([staticCluster('c', [h2?.port ?? b.port], proto)], new Map());
    const ac = new AbortController();
    const reason = new Error('per-try timeout');
    setTimeout(() => ac.abort(reason), 50);
    if (h2 === undefined) await assert.rejects(get(cm.get('c')!, '/', { cancel: cancelOnAbort(ac.signal) }), (err: unknown) => err === reason);
    else {
      ac.abort(reason);
      await assert.rejects(get(cm.get('c')!, '/', { cancel: cancelOnAbort(ac.signal) }), (err: unknown) => err === reason);
    }
    const s = cm.stats().get('c')!;
    assert.equal(s.upstream_rq_active, 0);
    await cm.close();
    await h2?.close();
  }
  await b.close();
});

test('a removed cluster lets its in-flight request finish', async () => {
  const b = await h1Backend('slow', (_req, res) => setTimeout(() => res.end('done'), 100));
  const cm = createClusterManager();
  cm.update([staticCluster('c', [b.port])], new Map());
  const pending = get(cm.get('c')!);
  await new Promise((r) => setTimeout(r, 20));
  cm.update([], new Map());
  assert.equal(cm.get('c'), undefined);
  assert.equal((await pending).body, 'done');
  await cm.close();
  await b.close();
});

test('retry budget limits concurrent retries to a fraction of active requests', () => {
  const cm = createClusterManager();
  cm.update([staticCluster('c', [1], { circuit_breakers: { thresholds: [{ retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: 1 } }] } })], new Map());
  const c = cm.get('c')!;
  assert.equal(c.tryAcquireRetry(), true, 'min_retry_concurrency 1');
  assert.equal(c.tryAcquireRetry(), false);
  void cm.close();
});
