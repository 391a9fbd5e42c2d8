import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, request1, request2, startBackend, startProxy, testConnectionManager } from '../../../test/support/connection-manager-harness.ts';
import { seededRandom } from '../upstream/lb/types.ts';
import type { StreamInfo } from './stream-info.ts';

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const CORS = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
const CORS_POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

test('gRPC unary through h2c with trailers end to end; gRPC errors and local replies map to grpc-status', async (t) => {
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService({
    Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  } as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      if (call.request.toString() === 'fail') return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
      const md = new grpc.Metadata();
      md.set('x-trailer', 'tv');
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request]), md);
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const cm = new StaticClusterManager({ g: { endpoints: [`127.0.0.1:${port}`], http2: true } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [
      { match: { prefix: '/test.Echo/', grpc: {} }, route: { cluster: 'g' } },
      { match: { prefix: '/' }, route: { cluster: 'missing' } },
    ] }] }),
  });
  const client = new grpc.Client(`127.0.0.1:${proxy.h2cPort}`, grpc.credentials.createInsecure());
  t.after(async () => { client.close(); server.forceShutdown(); await proxy.close(); cm.close(); });
  const call = (path: string, msg: string) => new Promise<{ err: grpc.ServiceError | null; value?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const c = client.makeUnaryRequest(path, id, id, Buffer.from(msg), (err, value) => setImmediate(() => resolve({ err, value, trailers })));
    c.on('status', (s) => { trailers = s.metadata; });
  });
  const ok = await call('/test.Echo/Echo', 'hi');
  assert.equal(ok.err, null);
  assert.equal(ok.value!.toString(), 'echo:hi');
  assert.deepEqual(ok.trailers!.get('x-trailer'), ['tv']);
  const nf = await call('/test.Echo/Echo', 'fail');
  assert.equal(nf.err!.code, grpc.status.NOT_FOUND);
  assert.equal(nf.err!.details, 'no such thing');
  const local = await call('/other.Svc/M', 'x');
  assert.equal(local.err!.code, grpc.status.UNAVAILABLE, 'cluster not found -> 503 -> UNAVAILABLE');
});

function wsAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

test('WebSocket upgrade is proxied to the upstream and echoes; unconfigured upgrades get 403', async (t) => {
  const be = await startBackend((_req, res) => res.end('plain'));
  let upstreamHost = '';
  be.server.on('upgrade', (req, socket: Duplex) => {
    upstreamHost = String(req.headers.host);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${wsAccept(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    socket.on('data', (buf: Buffer) => {
      // One small masked text frame in, one unmasked frame out.
      const len = buf[1] & 0x7f;
      const mask = buf.subarray(2, 6);
      const payload = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
      socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
    });
    socket.on('error', () => {});
  });
  const cm = new StaticClusterManager({ ws: { endpoints: [be.endpoint] } });
  const routes = { virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }] };
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig(routes, [], { upgrade_configs: [{ upgrade_type: 'websocket' }] }) });
  const noWs = await startProxy({ clusterManager: cm, config: hcmConfig(routes) });
  t.after(async () => { await proxy.close(); await noWs.close(); await be.close(); cm.close(); });
  const echoed = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/chat`);
    ws.onopen = () => ws.send('hello ws');
    ws.onmessage = (ev) => { resolve(String(ev.data)); ws.close(); };
    ws.onerror = () => reject(new Error('websocket error'));
  });
  assert.equal(echoed, 'hello ws');
  assert.equal(upstreamHost, `127.0.0.1:${proxy.port}`);
  const refused = await new Promise<boolean>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${noWs.port}/chat`);
    ws.onopen = () => resolve(false);
    ws.onerror = () => resolve(true);
  });
  assert.equal(refused, true);
});

test('fault filter: seeded abort percentage, fixed delay (DI), gRPC abort, per-route override, max_active_faults', async (t) => {
  const be = await startBackend((_req, res) => res.end('ok'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    random: seededRandom(42),
    config: hcmConfig({
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [
        { match: { prefix: '/delay' }, route: { cluster: 'a' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: '0.2s', percentage: { numerator: 100 } } } } },
        { match: { prefix: '/grpc' }, route: { cluster: 'a' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { grpc_status: 14, percentage: { numerator: 1000000, denominator: 'MILLION' } } } } },
        { match: { prefix: '/' }, route: { cluster: 'a' } },
      ] }],
    }, [{ name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT, abort: { http_status: 418, percentage: { numerator: 5000, denominator: 'TEN_THOUSAND' } }, headers: [{ name: 'x-chaos', present_match: true }] } }]),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const flags: string[] = [];
  const sub = (m: unknown) => flags.push([...(m as StreamInfo).responseFlags].join(','));
  diagnostics.subscribe('trellis:http:request-end', sub);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', sub));
  let aborted = 0;
  for (let i = 0; i < 200; i++) {
    const r = await request1(proxy.port, { headers: { 'x-chaos': '1' } });
    if (r.status === 418) {
      aborted++;
      assert.equal(r.body, 'fault filter abort');
    } else assert.equal(r.status, 200);
  }
  assert.ok(aborted > 70 && aborted < 130, `~50% aborted, got ${aborted}`);
  for (let i = 0; i < 20; i++) assert.equal((await request1(proxy.port)).status, 200, 'header matcher limits the fault');
  const t0 = Date.now();
  const d = await request1(proxy.port, { path: '/delay' });
  assert.equal(d.status, 200);
  assert.ok(Date.now() - t0 >= 190);
  const g = await request2(proxy.h2cPort, { path: '/grpc', method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
  assert.equal(g.status, 200);
  assert.equal(g.headers['grpc-status'], '14');
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(flags.includes('FI') && flags.includes('DI'), flags.join('|'));
});

test('fault filter config errors name the field', async () => {
  assert.throws(() => testConnectionManager({
    clusterManager: new StaticClusterManager({}),
    config: hcmConfig({ virtual_hosts: [] }, [{ name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT, abort: { http_status: 42 } } }]),
  }), /http_filters\[0\]\.typed_config\.abort\.http_status/);
  assert.throws(() => testConnectionManager({
    clusterManager: new StaticClusterManager({}),
    config: hcmConfig({ virtual_hosts: [] }, [{ name: 'acme.filters.http.unknown' }]),
  }), /http_filters\[0\]\.name: unknown HTTP filter/);
  assert.doesNotThrow(() => testConnectionManager({
    clusterManager: new StaticClusterManager({}),
    config: hcmConfig({ virtual_hosts: [] }, [{ name: 'acme.filters.http.unknown', is_optional: true }, { name: 'envoy.filters.http.rbac', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC' } }]),
  }));
  assert.throws(() => testConnectionManager({
    clusterManager: new StaticClusterManager({}),
    config: { stat_prefix: 'x', route_config: { virtual_hosts: [] }, http_filters: [{ name: 'envoy.filters.http.router' }, { name: 'envoy.filters.http.cors' }] },
  }), /router filter must be the last/);
  const hcmErrors: [object, RegExp][] = [
    [{ http2_protocol_options: { initial_connection_window_size: 10 } }, /http2_protocol_options\.initial_connection_window_size: must be in/],
    [{ max_request_headers_kb: 0 }, /max_request_headers_kb: must be in/],
    [{ request_timeout: 'forever' }, /request_timeout: invalid duration/],
    [{ server_header_transformation: 'SHOUT' }, /server_header_transformation: unknown value/],
    [{ strip_any_host_port: true, strip_matching_host_port: true }, /mutually exclusive/],
    [{ route_config: undefined }, /one of route_config or rds is required/],
    [{ route_config: undefined, rds: { route_config_name: 'r' } }, /rds: RDS needs a route provider/],
  ];
  for (const [extra, re] of hcmErrors) {
    assert.throws(() => testConnectionManager({ clusterManager: new StaticClusterManager({}), config: hcmConfig({ virtual_hosts: [] }, [], extra) }), re);
  }
});

test('request mirroring: a -shadow copy reaches the mirror cluster and never delays the main request', { timeout: 60_000 }, async (t) => {
  const main = await startBackend((_req, res) => res.end('main'));
  const seen: { host: string; body: string }[] = [];
  // The mirror answers only after the client has the main response: a proxy that waited for the
  // mirror would never answer (no clock involved).
  let mainAnswered!: () => void;
  const answered = new Promise<void>((r) => (mainAnswered = r));
  const mirror = await startBackend((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { seen.push({ host: String(req.headers.host), body }); void answered.then(() => res.end('mirror')); });
  });
  const cm = new StaticClusterManager({ main: { endpoints: [main.endpoint] }, shadow: { endpoints: [mirror.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow' }, { cluster: 'shadow', runtime_fraction: { default_value: { numerator: 0 } } }] } }] }] }),
  });
  t.after(async () => { await proxy.close(); await main.close(); await mirror.close(); cm.close(); });
  t.after(() => mainAnswered());
  const r = await request1(proxy.port, { method: 'POST', body: 'copy me', headers: { host: 'svc.local:8080' } });
  assert.equal(r.body, 'main', 'main response does not wait for the mirror');
  mainAnswered();
  for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(seen, [{ host: 'svc.local-shadow:8080', body: 'copy me' }]);
});

test('hedging on per-try timeout: the slow attempt keeps running, the faster one wins, the loser is cancelled', async (t) => {
  let slowCancelled = false;
  const slow = await startBackend((req, res) => {
    const timer = setTimeout(() => res.end('slow'), 10_000);
    res.on('close', () => { if (!res.writableFinished) { slowCancelled = true; clearTimeout(timer); } });
  });
  const fast = await startBackend((_req, res) => setTimeout(() => res.end('fast'), 50));
  const cm = new StaticClusterManager({ c: { endpoints: [slow.endpoint, fast.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.1s' }, hedge_policy: { hedge_on_per_try_timeout: true } } }] }] }),
  });
  t.after(async () => { await proxy.close(); await slow.close(); await fast.close(); cm.close(); });
  const t0 = Date.now();
  const r = await request1(proxy.port);
  const took = Date.now() - t0;
  assert.equal(r.body, 'fast');
  // At least the 0.1 s per-try timeout plus the fast 50 ms; far below the slow attempt's 10 s.
  assert.ok(took >= 140 && took < 5000, `took ${took}ms`);
  for (let i = 0; i < 50 && !slowCancelled; i++) await new Promise((res) => setTimeout(res, 10));
  assert.ok(slowCancelled, 'the losing attempt was cancelled');
  assert.equal(cm.log('c').length, 2);
});

/** A proxy with the CORS filter and `policy` on its one virtual host, in front of a backend that counts its requests. */
async function corsProxy(t: { after: (fn: () => Promise<void>) => void }, policy: Record<string, unknown>) {
  const hits = { upstream: 0 };
  const be = await startBackend((_req, res) => { hits.upstream++; res.end('ok'); });
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{
      name: 'vh', domains: ['*'],
      typed_per_filter_config: { 'envoy.filters.http.cors': { '@type': CORS_POLICY, ...policy } },
      routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }],
    }] }, [{ name: 'envoy.filters.http.cors', typed_config: { '@type': CORS } }]),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  return { proxy, hits };
}

test('CORS: preflight from an allowed origin is answered locally; others are forwarded; actual requests get allow-origin', async (t) => {
  const { proxy, hits } = await corsProxy(t, { allow_origin_string_match: [{ exact: 'https://app.example' }, { suffix: '.trusted.example' }], allow_methods: 'GET,POST', allow_headers: 'x-custom', expose_headers: 'x-exposed', max_age: '600', allow_credentials: true });
  const pre = await request1(proxy.port, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
  assert.equal(pre.headers['access-control-allow-headers'], 'x-custom');
  assert.equal(pre.headers['access-control-max-age'], '600');
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.equal(hits.upstream, 0);
  const other = await request1(proxy.port, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  assert.equal(hits.upstream, 1);
  const actual = await request1(proxy.port, { headers: { origin: 'https://x.trusted.example' } });
  assert.equal(actual.headers['access-control-allow-origin'], 'https://x.trusted.example');
  assert.equal(actual.headers['access-control-expose-headers'], 'x-exposed');
  const noOrigin = await request1(proxy.port);
  assert.equal(noOrigin.headers['access-control-allow-origin'], undefined);
});

test('CORS: wildcard methods/headers echo the request; forward_not_matching_preflights false answers other origins locally', async (t) => {
  const { proxy, hits } = await corsProxy(t, { allow_origin_string_match: [{ exact: 'https://app.example' }], allow_methods: '*', allow_headers: '*', expose_headers: 'x-exposed', allow_credentials: true, forward_not_matching_preflights: false });
  const pre = await request1(proxy.port, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-a, x-b' } });
  assert.equal(pre.headers['access-control-allow-methods'], 'PUT');
  assert.equal(pre.headers['access-control-allow-headers'], 'x-a, x-b');
  assert.equal(pre.headers['access-control-expose-headers'], 'x-exposed');
  const other = await request1(proxy.port, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.equal(other.status, 200);
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  assert.equal(hits.upstream, 0);
});
