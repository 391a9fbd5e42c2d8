/**
 * Proxyless gRPC (@grpc/grpc-js-xds) against our ADS server: a child process (the xDS bootstrap
 * is process-global) calls `xds:///echo-target`; the server hands it an API listener -> route
 * configuration -> cluster -> endpoints pointing at a real gRPC server started here on port 0.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { createXdsServer } from '../src/control/xds/server.ts';
import { generatorCache, grpcSet } from '../src/control/xds/testdata/resource-sets.ts';

const echoService: ServiceDefinition = {
  Echo: {
    path: '/trellis.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

test('proxyless gRPC client resolves xds:///echo-target through the ADS server and completes a unary call', { timeout: 60_000 }, async () => {
  const backend = new Server();
  const impl: UntypedServiceImplementation = {
    Echo: (call: { request: Buffer }, cb: (err: null, res: Buffer) => void) => cb(null, Buffer.from(`echo: ${call.request.toString()}`)),
  };
  backend.addService(echoService, impl);
  const backendPort = await new Promise<number>((resolve, reject) =>
    backend.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const xds = createXdsServer({ cache: generatorCache(() => grpcSet({ target: 'echo-target', backendPort })).cache });
  const xdsPort = await xds.listen();
  try {
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'grpc-client~127.0.0.1~client.default~default.svc.cluster.local', locality: {} },
    };
    const child = join(import.meta.dirname, '../src/control/xds/testdata/grpc-xds-client.ts');
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [child, 'echo-target', 'hello'], { env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) }, timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { ok: boolean; reply?: string; error?: string };
    assert.deepEqual(result, { ok: true, reply: 'echo: hello' });
    // While it was connected the client subscribed by name: LDS to the target, then RDS, CDS, EDS.
    assert.ok(xds.counters.pushes.LDS >= 1 && xds.counters.pushes.RDS >= 1 && xds.counters.pushes.CDS >= 1 && xds.counters.pushes.EDS >= 1);
    assert.equal(xds.counters.nacks.LDS ?? 0, 0);
  } finally {
    await xds.close(500);
    backend.forceShutdown();
  }
});
