/**
 * translate() end to end with a real proxyless gRPC client (@grpc/grpc-js-xds in a child
 * process): Istio YAML (Service, WorkloadEntries, DestinationRule subsets, a VirtualService
 * sending everything to v2) -> MeshSnapshot -> translate -> ADS server -> `xds:///<name>`.
 * Checks that the api_listener names we generate are the ones gRPC asks for (FQDN:port and the
 * same-namespace short name) and that routing reaches the v2 backend.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { createXdsServer } from '../src/control/xds/server.ts';
import { SnapshotCache } from '../src/control/xds/cache.ts';
import { translate } from '../src/control/translate/index.ts';
import { snapshotFromYaml } from '../src/control/translate/test-support.ts';

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

async function backend(tag: string): Promise<{ server: Server; port: number }> {
  const server = new Server();
  const impl: UntypedServiceImplementation = {
    Echo: (call: { request: Buffer }, cb: (err: null, res: Buffer) => void) => cb(null, Buffer.from(`${tag}: ${call.request.toString()}`)),
  };
  server.addService(echoService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

function callThroughXds(xdsPort: number, target: string): Promise<{ ok: boolean; reply?: string; error?: string }> {
  const bootstrap = {
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', TRELLIS_PROXYLESS: 'true' }, locality: {} },
  };
  const child = join(import.meta.dirname, '../src/control/xds/testdata/grpc-xds-client.ts');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child, target, 'hello'], { env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) }, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}')),
    );
  });
}

test('proxyless gRPC reaches the VirtualService destination via translate() output', { timeout: 90_000 }, async () => {
  const v1 = await backend('v1');
  const v2 = await backend('v2');
  const snapshot = snapshotFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { ports: [{ name: grpc, port: 7070 }], selector: { app: echo } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v1, namespace: default }
spec: { address: 127.0.0.1, labels: { app: echo, version: v1 }, ports: { grpc: ${v1.port} } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v2, namespace: default }
spec: { address: 127.0.0.1, labels: { app: echo, version: v2 }, ports: { grpc: ${v2.port} } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec: { host: echo, subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec: { hosts: [echo], http: [{ route: [{ destination: { host: echo, subset: v2 } }] }] }
`);
  const warnings: string[] = [];
  const cache = new SnapshotCache({ translate });
  cache.setSnapshot(snapshot);
  const xds = createXdsServer({ cache, log: { info() {}, warn: (o, m) => void warnings.push(`${m} ${JSON.stringify(o)}`) } });
  const xdsPort = await xds.listen();
  try {
    for (const target of ['echo.default.svc.cluster.local:7070', 'echo:7070', 'echo']) {
      const r = await callThroughXds(xdsPort, target);
      assert.deepEqual(r, { ok: true, reply: 'v2: hello' }, `${target}: ${warnings.join('\n')}`);
    }
    assert.deepEqual(warnings.filter((w) => w.includes('NACK')), []);
  } finally {
    await xds.close(500);
    v1.server.forceShutdown();
    v2.server.forceShutdown();
  }
});
