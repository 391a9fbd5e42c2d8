import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import http2 from 'node:http2';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { deadEndpoint, hcmConfig, rawRequest, request1, request2, startAdminDeniedProxy, startBackend, startProxy } from '../../../test/support/connection-manager-harness.ts';
import type { HttpStreamInfo, StreamInfo } from './stream-info.ts';
import { localNodeAddress } from './downstream.ts';

function echoHandler(name: string) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-backend', name);
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body }));
    });
  };
}

test('HTTP/1.1 and h2c are proxied with Envoy request/response header rules; NR, direct response, redirect', async (t) => {
  const be = await startBackend(echoHandler('a'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({
      virtual_hosts: [{
        name: 'vh', domains: ['*'],
        response_headers_to_add: [{ header: { key: 'x-vh', value: 'yes' } }],
        routes: [
          { match: { prefix: '/api/' }, route: { cluster: 'a', prefix_rewrite: '/' }, request_headers_to_add: [{ header: { key: 'x-route', value: 'r1' } }] },
          { match: { path: '/direct' }, direct_response: { status: 200, body: { inline_string: 'hello direct' } } },
          { match: { path: '/created' }, direct_response: { status: 201 } },
          { match: { path: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
          { match: { prefix: '/missing-cluster' }, route: { cluster: 'nope' } },
        ],
      }],
    }, [], { use_remote_address: true, server_name: 'istio-envoy' }),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });

  const ends: StreamInfo[] = [];
  const sub = (m: unknown) => ends.push(m as StreamInfo);
  diagnostics.subscribe('trellis:http:request-end', sub);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', sub));

  for (const send of [request1, request2]) {
    const port = send === request1 ? proxy.port : proxy.h2cPort;
    const r = await send(port, { method: 'POST', path: '/api/x?y=1', body: 'payload', headers: { 'x-envoy-max-retries': '7' } });
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.body);
    assert.equal(echoed.url, '/x?y=1');
    assert.equal(echoed.body, 'payload');
    assert.equal(echoed.headers['x-route'], 'r1');
    assert.equal(echoed.headers['x-envoy-original-path'], '/api/x?y=1');
    assert.equal(echoed.headers['x-forwarded-proto'], 'http');
    // A loopback client is recorded as the proxy's own address, as Envoy does; no internal_address_config: external.
    assert.equal(echoed.headers['x-forwarded-for'], localNodeAddress());
    assert.match(echoed.headers['x-request-id'], /^[0-9a-f-]{36}$/);
    assert.equal(echoed.headers['x-envoy-internal'], undefined);
    assert.equal(echoed.headers['x-envoy-external-address'], '127.0.0.1');
    assert.equal(echoed.headers['x-envoy-max-retries'], undefined, 'router control headers are never forwarded');
    assert.equal(r.headers['x-vh'], 'yes');
    assert.equal(r.headers.server, 'istio-envoy');
    assert.equal(r.headers['x-backend'], 'a');
    assert.ok(r.headers['x-envoy-upstream-service-time'] !== undefined);

    const nr = await send(port, { path: '/nothing' });
    assert.equal(nr.status, 404);
    const d = await send(port, { path: '/direct' });
    assert.deepEqual([d.status, d.body, d.headers['content-type'], d.headers.location], [200, 'hello direct', 'text/plain', undefined]);
    // Envoy gives a 201/3xx direct response the request URL as Location.
    const cr = await send(port, { path: '/created?x=1' });
    assert.match(`${cr.status} ${String(cr.headers.location)}`, /^201 http:\/\/127\.0\.0\.1:\d+\/created\?x=1$/);
    const rd = await send(port, { path: '/old?q=1' });
    assert.equal(rd.status, 302);
    assert.match(String(rd.headers.location), /^http:\/\/127\.0\.0\.1:\d+\/new\?q=1$/);
    const nc = await send(port, { path: '/missing-cluster' });
    assert.equal(nc.status, 503);
  }
  await new Promise((r) => setTimeout(r, 50));
  const flags = ends.map((i) => [i.protocol, i.responseCode, [...i.responseFlags].join(',')].join(' '));
  assert.ok(flags.includes('HTTP/1.1 404 NR'), flags.join('|'));
  assert.ok(flags.includes('HTTP/2 404 NR'), flags.join('|'));
  assert.ok(flags.includes('HTTP/2 503 NC'), flags.join('|'));
  const ok = ends.find((i) => i.responseCode === 200 && i.clusterName === 'a')!;
  assert.equal(ok.upstreamEndpoint, be.endpoint);
  assert.equal(ok.attemptCount, 1);
  assert.ok(ok.durationMs! >= 0 && ok.bytesSent > 0);
});

test('HTTP/1.1: a local reply sent before the request body was read closes the connection (the rest of the body is never parsed as a request), as Envoy does', async (t) => {
  const proxy = await startAdminDeniedProxy(t, echoHandler('a'));
  // The body looks like a second request; Envoy never parses it (found by test/differential-raw.test.ts).
  const smuggle = 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n';
  const denied = await rawRequest(proxy.port, `POST /admin HTTP/1.1\r\nHost: h\r\nContent-Length: ${smuggle.length}\r\n\r\n${smuggle}`);
  assert.match(denied, /^HTTP\/1\.1 403 /);
  assert.match(denied, /\r\nconnection: close\r\n/i);
  assert.equal(denied.match(/HTTP\/1\.1 /g)?.length, 1, 'one response, then the connection closed');
  // A proxied request whose body the upstream read keeps the connection.
  const kept = await rawRequest(proxy.port, 'POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /again HTTP/1.1\r\nHost: h\r\n\r\n', 1500);
  assert.equal(kept.match(/HTTP\/1\.1 200 /g)?.length, 2, kept.slice(0, 200));
  // Without a body the request is complete at its headers: keep-alive.
  const twice = await rawRequest(proxy.port, 'GET /admin HTTP/1.1\r\nHost: h\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n', 1500);
  assert.equal(twice.match(/HTTP\/1\.1 403 /g)?.length, 2);
});

test('HTTP/1.1 pipelining: requests are served one at a time, and none behind a response that closes the connection reaches the backend, as with Envoy', async (t) => {
  const hits: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const proxy = await startAdminDeniedProxy(t, (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    req.resume();
    req.on('end', () => setTimeout(() => { inFlight--; res.end('ok'); }, 30));
  });
  const next = (path: string) => `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`;
  // Closing answers, each followed in the same write by a complete request (found by test/differential-raw.test.ts).
  const cases: [string, string, number][] = [
    ['a local reply before the body was read', 'POST /admin HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello', 403],
    ['a request target refused with 400', 'POST * HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc', 400],
    ['a missing Host', 'GET /x HTTP/1.1\r\n\r\n', 400],
    ['an HTTP/1.0 request line (426)', 'GET /x HTTP/1.0\r\nHost: h\r\n\r\n', 426],
    // The backend takes 30 ms: a request served at once would reach it meanwhile.
    ["the client's own Connection: close on a proxied request", 'GET /slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', 200],
  ];
  for (const [name, first, status] of cases) {
    const out = await rawRequest(proxy.port, first + next('/after'), 1500);
    assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), name);
    assert.equal(out.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, `${name}: one response, then the connection closed`);
  }
  assert.deepEqual(hits.filter((h) => h.includes('/after')), [], 'no request behind a closing response reached the backend');
  // Kept-alive pipelining still answers every request, in order, one backend request at a time.
  const three = await rawRequest(proxy.port, next('/1') + next('/2') + next('/3'), 1500);
  assert.equal(three.match(/HTTP\/1\.1 200 /g)?.length, 3, three.slice(0, 200));
  assert.deepEqual(hits.slice(-3), ['GET /1', 'GET /2', 'GET /3']);
  assert.equal(maxInFlight, 1);
  // A malformed request line behind a good request is judged on its own line, not the packet's first (426 is for another version only).
  const bad = await rawRequest(proxy.port, `${next('/4')}POST /y HTTP/1.1 \r\nHost: h\r\nContent-Length: 0\r\n\r\n`, 1500);
  assert.deepEqual(bad.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 400']);
  const v3 = await rawRequest(proxy.port, `${next('/5')}GET /y HTTP/3.0\r\nHost: h\r\n\r\n`, 1500);
  assert.deepEqual(v3.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 426']);
  // A local reply already on the wire when the same request's body turns out malformed: that
  // response is finished, then the connection closes; no 400 lands inside or after it (a 400 would
  // answer no request). Envoy: the 403 alone (test/differential-raw.test.ts, seed 3).
  for (const body of ['-3\r\nhel\r\n0\r\n\r\n', '5\r\nhello\r\nzz\r\n']) {
    const early = await rawRequest(proxy.port, `POST /admin HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${body}${next('/after')}`, 1500);
    assert.deepEqual(early.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 403'], early);
    assert.ok(early.endsWith('\r\n\r\ndenied'), early);
  }
  assert.deepEqual(hits.filter((h) => h.includes('/after')), []);
});

test('x-envoy-* request headers are stripped from external clients (use_remote_address + internal_address_config)', async (t) => {
  const be = await startBackend(echoHandler('a'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }, [], {
      use_remote_address: true, internal_address_config: { cidr_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] },
    }),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const r = await request1(proxy.port, { headers: { 'x-envoy-upstream-rq-timeout-ms': '1', 'x-envoy-foo': 'bar', 'x-request-id': 'client-chosen', 'x-forwarded-for': '1.2.3.4' } });
  const echoed = JSON.parse(r.body);
  assert.equal(r.status, 200, 'the 1ms timeout header must have been ignored');
  assert.equal(echoed.headers['x-envoy-foo'], undefined);
  assert.equal(echoed.headers['x-envoy-external-address'], '127.0.0.1');
  assert.notEqual(echoed.headers['x-request-id'], 'client-chosen');
  assert.equal(echoed.headers['x-forwarded-for'], `1.2.3.4, ${localNodeAddress()}`);
});

test('retries mask a failing endpoint; connect failure without retries is 503 UF with Envoy body; no healthy upstream is 503 UH', async (t) => {
  const be = await startBackend(echoHandler('good'));
  const dead = await deadEndpoint();
  let flaky = 0;
  const be503 = await startBackend((_req, res) => { flaky++; res.statusCode = 503; res.end('busy'); });
  const cm = new StaticClusterManager({
    mixed: { endpoints: [dead, be.endpoint] },
    deadonly: { endpoints: [dead] },
    empty: { endpoints: [] },
    flaky: { endpoints: [be503.endpoint] },
  });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({
      virtual_hosts: [{
        name: 'vh', domains: ['*'], include_request_attempt_count: true, include_attempt_count_in_response: true,
        routes: [
          { match: { prefix: '/retry' }, route: { cluster: 'mixed', retry_policy: { retry_on: 'connect-failure', num_retries: 2, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }] } } },
          { match: { prefix: '/noretry' }, route: { cluster: 'deadonly' } },
          { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
          { match: { prefix: '/flaky' }, route: { cluster: 'flaky', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: { base_interval: '0.001s' } } } },
        ],
      }],
    }),
  });
  t.after(async () => { await proxy.close(); await be.close(); await be503.close(); cm.close(); });
  for (let i = 0; i < 4; i++) {
    const r = await request1(proxy.port, { path: '/retry', method: 'POST', body: 'replay me' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).body, 'replay me');
  }
  const r2 = await request1(proxy.port, { path: '/retry' });
  assert.ok(['1', '2'].includes(String(r2.headers['x-envoy-attempt-count'])));
  const uf = await request1(proxy.port, { path: '/noretry' });
  assert.equal(uf.status, 503);
  assert.equal(uf.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  assert.equal(uf.headers['content-type'], 'text/plain');
  const uh = await request1(proxy.port, { path: '/empty' });
  assert.deepEqual([uh.status, uh.body], [503, 'no healthy upstream']);
  const fl = await request1(proxy.port, { path: '/flaky' });
  assert.equal(fl.status, 503);
  assert.equal(fl.body, 'busy', 'after retries are exhausted the last upstream response is forwarded');
  assert.equal(fl.headers['x-envoy-attempt-count'], '3');
  assert.equal(flaky, 3);
});

test('route timeout -> 504 UT; per-try timeout retries to a fast endpoint; timeout 0s disables the route timeout', async (t) => {
  let slowHits = 0;
  // /timeout's answer would come after 10 s: a 504 well before it is the 0.2 s route timeout.
  const slow = await startBackend((req, res) => {
    slowHits++;
    const timer = setTimeout(() => res.end('slow'), req.url?.startsWith('/timeout') ? 10_000 : 600);
    res.on('close', () => clearTimeout(timer));
  });
  const fast = await startBackend((_req, res) => res.end('fast'));
  const cm = new StaticClusterManager({ slow: { endpoints: [slow.endpoint] }, mixed: { endpoints: [slow.endpoint, fast.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({
      virtual_hosts: [{
        name: 'vh', domains: ['*'], routes: [
          { match: { prefix: '/timeout' }, route: { cluster: 'slow', timeout: '0.2s' } },
          { match: { prefix: '/notimeout' }, route: { cluster: 'slow', timeout: '0s' } },
          { match: { prefix: '/pertry' }, route: { cluster: 'mixed', timeout: '3s', retry_policy: { retry_on: 'reset', num_retries: 1, per_try_timeout: '0.15s', retry_back_off: { base_interval: '0.001s' } } } },
        ],
      }],
    }),
  });
  t.after(async () => { await proxy.close(); await slow.close(); await fast.close(); cm.close(); });
  const started = Date.now();
  const r = await request1(proxy.port, { path: '/timeout' });
  assert.deepEqual([r.status, r.body], [504, 'upstream request timeout']);
  const took = Date.now() - started;
  assert.ok(took >= 150 && took < 5000, `504 after ${took} ms`);
  const n = await request1(proxy.port, { path: '/notimeout' });
  assert.deepEqual([n.status, n.body], [200, 'slow']);
  const before = slowHits;
  const p = await request1(proxy.port, { path: '/pertry' });
  assert.deepEqual([p.status, p.body], [200, 'fast']);
  assert.equal(slowHits - before, 1);
});

test('stream idle timeout (route idle_timeout) -> 504 "stream timeout" SI for a fully read request (408 while it is still arriving); grpc-timeout header becomes the route timeout when grpc_timeout_header_max is set', async (t) => {
  const hang = await startBackend(() => { /* never answers */ });
  const cm = new StaticClusterManager({ hang: { endpoints: [hang.endpoint] } });
  const ends: StreamInfo[] = [];
  const sub = (m: unknown) => ends.push(m as StreamInfo);
  diagnostics.subscribe('trellis:http:request-end', sub);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', sub));
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({
      virtual_hosts: [{
        name: 'vh', domains: ['*'], routes: [
          { match: { prefix: '/idle' }, route: { cluster: 'hang', idle_timeout: '0.15s' } },
          { match: { prefix: '/grpc' }, route: { cluster: 'hang', max_stream_duration: { grpc_timeout_header_max: '0s' } } },
        ],
      }],
    }),
  });
  t.after(async () => { await proxy.close(); await hang.close(); cm.close(); });
  const r = await request1(proxy.port, { path: '/idle' });
  assert.deepEqual([r.status, r.body], [504, 'stream timeout']);
  const t0 = Date.now();
  const g = await request2(proxy.h2cPort, { path: '/grpc', method: 'POST', headers: { 'content-type': 'application/grpc', 'grpc-timeout': '200m' }, body: '' });
  assert.equal(g.status, 200);
  assert.equal(g.headers['grpc-status'], '14');
  // The upstream never answers: only the 200 ms grpc-timeout ends the call (25x to spare).
  const took = Date.now() - t0;
  assert.ok(took >= 150 && took < 5000, `grpc-timeout 200m answered after ${took} ms`);
  await new Promise((res) => setTimeout(res, 30));
  assert.ok(ends.some((i) => i.responseFlags.has('SI') && i.responseCode === 504));
  assert.ok(ends.some((i) => i.responseFlags.has('UT') && i.grpcStatus === 14));
});

test('RDS: the route table is looked up per request through the RouteProvider (404 NR until it arrives); Expect: 100-continue is answered by the proxy', async (t) => {
  const { compileRouteConfiguration } = await import('../router/route-table.ts');
  const { defaultFilterRegistry } = await import('../filters/registry.ts');
  const be = await startBackend(echoHandler('a'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const tables = new Map<string, ReturnType<typeof compileRouteConfiguration>>();
  const proxy = await startProxy({
    clusterManager: cm,
    routeProvider: { get: (name) => tables.get(name) },
    config: { stat_prefix: 'rds', rds: { route_config_name: 'http.8080', config_source: { ads: {} } }, http_filters: [{ name: 'envoy.filters.http.router' }] },
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  assert.equal((await request1(proxy.port)).status, 404);
  tables.set('http.8080', compileRouteConfiguration({ name: 'http.8080', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }, defaultFilterRegistry()));
  const r = await request1(proxy.port, { method: 'POST', body: 'x', headers: { expect: '100-continue' } });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).headers.expect, undefined);
  assert.equal(JSON.parse(r.body).body, 'x');
  // The 100 comes once the request passed the codec and path checks, as from Envoy: a request those
  // refuse gets its 400 alone (test/differential-raw.test.ts, seed 4, case h1-267).
  const expect = 'Expect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx';
  const continued = await rawRequest(proxy.port, `POST /x HTTP/1.1\r\nHost: h\r\n${expect}`, 1500);
  assert.match(continued, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 /, continued);
  for (const refused of [`POST * HTTP/1.1\r\nHost: h\r\n${expect}`, `POST /x HTTP/1.1\r\nHost: diff example\r\n${expect}`]) {
    const out = await rawRequest(proxy.port, refused, 1500);
    assert.deepEqual(out.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 400'], refused);
  }
});

test('close(grace): in-flight HTTP/1.1 and HTTP/2 requests finish (connection: close / GOAWAY), then connections are gone', async (t) => {
  const http = await import('node:http');
  const http2 = await import('node:http2');
  const net = await import('node:net');
  const be = await startBackend((_req, res) => setTimeout(() => res.end('done'), 200));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }) });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const agent = new http.Agent({ keepAlive: true });
  const h1 = new Promise<{ body: string; connection: string | undefined }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: proxy.port, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ body, connection: res.headers.connection }));
    }).on('error', reject);
  });
  const session = http2.connect(`http://127.0.0.1:${proxy.h2cPort}`, { createConnection: () => net.connect(proxy.h2cPort, '127.0.0.1') });
  session.on('error', () => {});
  let goaway = false;
  session.on('goaway', () => { goaway = true; });
  const h2 = new Promise<string>((resolve, reject) => {
    const st = session.request({ ':path': '/' });
    let body = '';
    st.on('data', (d) => { body += d; });
    st.on('end', () => resolve(body));
    st.on('error', reject);
  });
  await new Promise((r) => setTimeout(r, 50));
  const closing = proxy.cm.close(30_000);
  const [r1, r2] = await Promise.all([h1, h2]);
  assert.deepEqual(r1, { body: 'done', connection: 'close' });
  assert.equal(r2, 'done');
  assert.equal(goaway, true);
  const t0 = Date.now();
  await closing;
  const took = Date.now() - t0;
  assert.ok(took < 10_000, `close returned ${took} ms after the connections were gone, not at its 30 s deadline`);
  assert.equal(proxy.cm.connectionCount, 0);
  agent.destroy();
  session.destroy();
});

test('explicit proxy mode: absolute-form request targets route on the URL host; CONNECT tunnels only when configured', async (t) => {
  const { rawRequest } = await import('../../../test/support/connection-manager-harness.ts');
  const net = await import('node:net');
  const be = await startBackend(echoHandler('svc'));
  // A plain TCP echo as the CONNECT target.
  const tcp = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(0, '127.0.0.1');
  await new Promise((r) => tcp.once('listening', r));
  const tcpEndpoint = `127.0.0.1:${(tcp.address() as import('node:net').AddressInfo).port}`;
  const cm = new StaticClusterManager({ svc: { endpoints: [be.endpoint] }, tunnel: { endpoints: [tcpEndpoint] } });
  const routes = {
    virtual_hosts: [
      { name: 'svc', domains: ['svc.local:8080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'svc' } }] },
      { name: 'tunnel', domains: ['tunnel.local:443'], routes: [{ match: { connect_matcher: {} }, route: { cluster: 'tunnel' } }] },
    ],
  };
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig(routes, [], { upgrade_configs: [{ upgrade_type: 'CONNECT' }] }) });
  const plain = await startProxy({ clusterManager: cm, config: hcmConfig(routes) });
  t.after(async () => { await proxy.close(); await plain.close(); await be.close(); tcp.close(); cm.close(); });
  const out = await rawRequest(proxy.port, 'GET http://svc.local:8080/p?q=1 HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200/);
  const echoed = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
  assert.equal(echoed.url, '/p?q=1');
  assert.equal(echoed.headers.host, 'svc.local:8080');
  const tunnel = await rawRequest(proxy.port, (s) => {
    s.write('CONNECT tunnel.local:443 HTTP/1.1\r\nHost: tunnel.local:443\r\n\r\n');
    s.once('data', () => { s.write('ping through the tunnel'); setTimeout(() => s.end(), 100); });
  }, 2000);
  assert.match(tunnel, /^HTTP\/1\.1 200 /);
  assert.ok(tunnel.endsWith('ping through the tunnel'), JSON.stringify(tunnel));
  const refused = await rawRequest(plain.port, 'CONNECT tunnel.local:443 HTTP/1.1\r\nHost: tunnel.local:443\r\n\r\n', 2000);
  assert.match(refused, /^HTTP\/1\.1 403 /);
  const noRoute = await rawRequest(proxy.port, 'CONNECT other:443 HTTP/1.1\r\nHost: other:443\r\n\r\n', 2000);
  assert.match(noRoute, /^HTTP\/1\.1 404 /);
});

test('StreamInfo: the connection facts (addresses, ports, protocol, stat prefix, security) are read once per connection and shared by its requests', async (t) => {
  const be = await startBackend((_req, res) => res.end('ok'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }) });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(async () => { agent.destroy(); await proxy.close(); await be.close(); cm.close(); });
  const ends: HttpStreamInfo[] = [];
  const sub = (m: unknown) => ends.push(m as HttpStreamInfo);
  diagnostics.subscribe('trellis:http:request-end', sub);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', sub));

  const clientPorts: number[] = [];
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.port, path: `/h1-${i}`, agent }, (res) => {
        clientPorts.push(res.socket.localPort!);
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
    });
  }
  const session = http2.connect(`http://127.0.0.1:${proxy.h2cPort}`);
  t.after(() => session.close());
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve, reject) => {
      const st = session.request({ ':path': `/h2-${i}` });
      st.on('error', reject);
      st.resume();
      st.on('end', resolve);
    });
  }
  await new Promise((r) => setTimeout(r, 50));
  const h1 = ends.filter((i) => i.path.startsWith('/h1-'));
  const h2 = ends.filter((i) => i.path.startsWith('/h2-'));
  assert.equal(h1.length, 2);
  assert.equal(h2.length, 2);
  assert.equal(clientPorts[0], clientPorts[1], 'both HTTP/1.1 requests on one connection');
  assert.equal(h1[0].connection, h1[1].connection, 'one connection record for the connection\'s requests');
  assert.equal(h2[0].connection, h2[1].connection);
  assert.notEqual(h1[0].connection, h2[0].connection);
  for (const [info, protocol, port] of [[h1[1], 'HTTP/1.1', proxy.port], [h2[1], 'HTTP/2', proxy.h2cPort]] as const) {
    assert.equal(info.protocol, protocol);
    assert.equal(info.statPrefix, 'test');
    assert.equal(info.downstreamDirectRemoteAddress, '127.0.0.1');
    assert.ok(info.downstreamDirectRemotePort > 0);
    assert.equal(info.downstreamLocalAddress, '127.0.0.1');
    assert.equal(info.downstreamLocalPort, port);
    assert.equal(info.downstreamTls, undefined);
    assert.equal(info.connectionSecurity.policy, 'none');
    assert.equal(info.responseCode, 200);
  }
  assert.equal(h1[1].downstreamDirectRemotePort, clientPorts[1]);
});
