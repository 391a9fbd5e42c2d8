import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, startProxy } from '../../../test/support/connection-manager-harness.ts';

test('gRPC bidirectional streaming flows message by message through the proxy, even with a retry policy (replay buffer must not wait for the end)', async (t) => {
  const id = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService({
    Chat: { path: '/test.Chat/Chat', requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  } as grpc.ServiceDefinition, {
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(Buffer.concat([Buffer.from('re:'), m])));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const cm = new StaticClusterManager({ g: { endpoints: [`127.0.0.1:${port}`], http2: true } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'g', timeout: '0s', retry_policy: { retry_on: 'unavailable,reset', num_retries: 2 } } }] }] }),
  });
  const client = new grpc.Client(`127.0.0.1:${proxy.h2cPort}`, grpc.credentials.createInsecure());
  t.after(async () => { client.close(); server.forceShutdown(); await proxy.close(); cm.close(); });
  const call = client.makeBidiStreamRequest('/test.Chat/Chat', id, id);
  const got: string[] = [];
  // Ping-pong: each message is sent only after the previous reply arrived, so nothing may wait for the request's end.
  await new Promise<void>((resolve, reject) => {
    let n = 0;
    call.on('data', (m: Buffer) => {
      got.push(m.toString());
      if (++n < 5) call.write(Buffer.from(`m${n}`));
      else call.end();
    });
    call.on('error', reject);
    call.on('status', (s) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
    call.write(Buffer.from('m0'));
  });
  assert.deepEqual(got, ['re:m0', 're:m1', 're:m2', 're:m3', 're:m4']);
});
