/**
 * The HTTP engine over the production cluster manager (src/proxy/upstream), not the test-only
 * StaticClusterManager: the router <-> cluster seam end to end with real pools.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createClusterManager } from '../upstream/cluster-manager.ts';
import { deadEndpoint, hcmConfig, request1, request2, startBackend, startProxy } from '../../../test/support/connection-manager-harness.ts';

function staticCluster(name: string, endpoints: string[], extra: object = {}) {
  return {
    name, type: 'STATIC', connect_timeout: '0.5s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: endpoints.map((ep) => {
        const [address, port] = ep.split(':');
        return { endpoint: { address: { socket_address: { address, port_value: Number(port) } } } };
      }) }],
    },
    ...extra,
  };
}

const H2 = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

test('real cluster manager: HTTP/1.1 and h2c downstream, retries past a dead endpoint, timeouts, hedging, gRPC over an h2 cluster', async (t) => {
  const good = await startBackend((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => res.end(`good:${req.method}:${req.url}:${body}`));
  });
  let slowCancelled = 0;
  const slow = await startBackend((_req, res) => {
    const timer = setTimeout(() => res.end('slow'), 10_000);
    res.on('close', () => { if (!res.writableFinished) { slowCancelled++; clearTimeout(timer); } });
  });
  const dead = await deadEndpoint();
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService({ Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } } as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const md = new grpc.Metadata();
      md.set('x-trailer', 'tv');
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request]), md);
    },
  });
  const gport = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

  const clusters = createClusterManager();
  clusters.update([
    staticCluster('good', [good.endpoint]),
    staticCluster('mixed', [dead, good.endpoint]),
    staticCluster('slow', [slow.endpoint]),
    staticCluster('race', [slow.endpoint, good.endpoint]),
    staticCluster('grpc', [`127.0.0.1:${gport}`], H2),
  ], new Map());
  const proxy = await startProxy({
    clusterManager: clusters,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [
      { match: { prefix: '/test.Echo/' }, route: { cluster: 'grpc' } },
      { match: { prefix: '/retry' }, route: { cluster: 'mixed', retry_policy: { retry_on: 'connect-failure,reset', num_retries: 3, retry_back_off: { base_interval: '0.001s' }, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }] } } },
      { match: { prefix: '/timeout' }, route: { cluster: 'slow', timeout: '0.2s' } },
      { match: { prefix: '/hedge' }, route: { cluster: 'race', hash_policy: [], retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.1s' }, hedge_policy: { hedge_on_per_try_timeout: true } } },
      { match: { prefix: '/' }, route: { cluster: 'good' } },
    ] }] }),
  });
  const client = new grpc.Client(`127.0.0.1:${proxy.h2cPort}`, grpc.credentials.createInsecure());
  t.after(async () => { client.close(); server.forceShutdown(); await proxy.close(); await clusters.close(); await good.close(); await slow.close(); });

  assert.equal((await request1(proxy.port, { method: 'POST', path: '/x', body: 'b1' })).body, 'good:POST:/x:b1');
  assert.equal((await request2(proxy.h2cPort, { method: 'POST', path: '/y', body: 'b2' })).body, 'good:POST:/y:b2');
  assert.equal((await request1(proxy.port, { method: 'POST', path: '/z', body: 'b3', headers: { expect: '100-continue' } })).body, 'good:POST:/z:b3');
  for (let i = 0; i < 6; i++) {
    const r = await request1(proxy.port, { method: 'PUT', path: '/retry', body: `n${i}` });
    assert.deepEqual([r.status, r.body], [200, `good:PUT:/retry:n${i}`]);
  }
  const to = await request1(proxy.port, { path: '/timeout' });
  assert.deepEqual([to.status, to.body], [504, 'upstream request timeout']);

  // Hedging: whichever endpoint the LB gives first, the fast one answers and a slow loser is cancelled.
  for (let i = 0; i < 4; i++) {
    const t0 = Date.now();
    const h = await request1(proxy.port, { path: '/hedge' });
    assert.equal(h.status, 200);
    assert.match(h.body, /^good:/);
    // Immediately, or after the 0.1 s per-try timeout when the slow (10 s) endpoint was tried first.
    const took = Date.now() - t0;
    assert.ok(took < 5000, `hedged answer after ${took} ms`);
  }
  for (let i = 0; i < 50 && slowCancelled === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(slowCancelled >= 1, 'a slow hedged attempt was cancelled');

  const reply = await new Promise<{ value: Buffer; md: grpc.Metadata }>((resolve, reject) => {
    let md: grpc.Metadata | undefined;
    const c = client.makeUnaryRequest('/test.Echo/Echo', id, id, Buffer.from('hi'), (err, value) => (err ? reject(err) : setImmediate(() => resolve({ value: value!, md: md! }))));
    c.on('status', (s) => { md = s.metadata; });
  });
  assert.equal(reply.value.toString(), 'echo:hi');
  assert.deepEqual(reply.md.get('x-trailer'), ['tv']);
});
