/**
 * Istio's gRPC message counters: a bidirectional stream of 5 requests and 5 replies through a proxy
 * whose HTTP connection manager runs the stats filter is counted as istio_request_messages_total 5
 * and istio_response_messages_total 5 (request_protocol grpc, grpc_response_status 0), beside one
 * istio_requests_total; a unary call adds one of each. Plain HTTP requests have no message series.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { StaticClusterManager } from './support/static-cluster-manager.ts';
import { hcmConfig, request1, startBackend, startProxy } from './support/connection-manager-harness.ts';
import { defaultFilterRegistry } from '../src/proxy/filters/registry.ts';
import { istioStatsFilter } from '../src/proxy/filters/istio-stats.ts';
import { ProxyTelemetry } from '../src/proxy/istio-telemetry.ts';
import { parsePrometheusText, select } from './support/prom-text.ts';

test('gRPC streams: istio_request_messages_total / istio_response_messages_total count messages', async (t) => {
  const id = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService({
    Chat: { path: '/test.Chat/Chat', requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
    Echo: { path: '/test.Chat/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  } as grpc.ServiceDefinition, {
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(Buffer.concat([Buffer.from('re:'), m])));
      call.on('end', () => call.end());
    },
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const backend = await startBackend((_req, res) => res.end('plain'));
  const cm = new StaticClusterManager({ g: { endpoints: [`127.0.0.1:${port}`], http2: true }, h: { endpoints: [backend.endpoint] } });
  const telemetry = new ProxyTelemetry({ nodeMetadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'client-1', LABELS: { app: 'client' } } });
  const stats = { name: 'trellis.filters.http.stats', typed_config: { '@type': 'type.googleapis.com/trellis.filters.http.stats.v1.Stats', reporter: 'SOURCE' } };
  const proxy = await startProxy({
    clusterManager: cm,
    filterRegistry: defaultFilterRegistry().register(istioStatsFilter(telemetry)),
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [
      { match: { prefix: '/test.Chat/' }, route: { cluster: 'g', timeout: '0s' } },
      { match: { prefix: '/' }, route: { cluster: 'h' } },
    ] }] }, [stats]),
  });
  const client = new grpc.Client(`127.0.0.1:${proxy.h2cPort}`, grpc.credentials.createInsecure());
  t.after(async () => { client.close(); server.forceShutdown(); await proxy.close(); await backend.close(); cm.close(); });

  const call = client.makeBidiStreamRequest('/test.Chat/Chat', id, id);
  await new Promise<void>((resolve, reject) => {
    let n = 0;
    call.on('data', () => {
      if (++n < 5) call.write(Buffer.from(`m${n}`));
      else call.end();
    });
    call.on('error', reject);
    call.on('status', (s) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
    call.write(Buffer.from('m0'));
  });
  await new Promise<void>((resolve, reject) => client.makeUnaryRequest('/test.Chat/Echo', id, id, Buffer.from('one'), (e) => (e ? reject(e) : resolve())));
  assert.equal((await request1(proxy.port, { path: '/plain' })).status, 200);
  await new Promise((r) => setTimeout(r, 100)); // streams complete after the last byte is written

  const text = telemetry.families.store.render();
  const s = parsePrometheusText(text);
  const sum = (name: string, labels: Record<string, string> = {}) => select(s, name, labels).reduce((a, x) => a + x.value, 0);
  assert.equal(sum('istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '0' }), 2);
  assert.equal(sum('istio_request_messages_total', { request_protocol: 'grpc' }), 6, '5 streamed + 1 unary');
  assert.equal(sum('istio_response_messages_total', { request_protocol: 'grpc' }), 6);
  assert.equal(sum('istio_requests_total', { request_protocol: 'http' }), 1);
  assert.equal(select(s, 'istio_request_messages_total', { request_protocol: 'http' }).length, 0, 'no message series for plain HTTP');
});
