/**
 * AuthorizationPolicy CUSTOM with external authorizers declared as MeshConfig extension
 * providers: an HTTP authorizer (an HMAC-style signature check in a header, the kind of bespoke
 * check teams keep) and a gRPC one (envoy.service.auth.v3.Authorization). Both a Trellis sidecar
 * and a stock Envoy fed by trellis control call the authorizer only for the paths the CUSTOM
 * policy names, pass its allow headers upstream, return its denial (status, body, chosen
 * headers) to the client, and deny everything when the policy names an unknown provider.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanups, tempDir, waitFor } from './support/processes.ts';
import { skipUnlessTools } from './support/skip.ts';
import { writeConfig } from './support/mesh-yaml.ts';
import { decodeMessage, encodeMessage } from '../src/xds/codec.ts';
import { sendRaw, startSidecarPair, type SidecarPair } from './authz/sidecar-pair.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

let pair: SidecarPair;
let httpAuthzPort = 0;
let grpcAuthzPort = 0;
const httpChecks: { path: string; signature: string | undefined }[] = [];
const grpcChecks: { path: string }[] = [];

/** MeshConfig (`trellis control --mesh-config`): both authorizers as extension providers. */
const meshConfig = `extensionProviders:
- name: hmac
  envoyExtAuthzHttp:
    service: ext-authz.shop.svc.cluster.local
    port: 8000
    includeRequestHeadersInCheck: [x-signature]
    headersToUpstreamOnAllow: [x-authz-user]
    headersToDownstreamOnDeny: [x-authz-reason]
- name: grpc-authz
  envoyExtAuthzGrpc: { service: ext-authz-grpc.shop.svc.cluster.local, port: 9000, timeout: 2s }
`;

function config(provider: string): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec: { ports: [{ name: http, port: 9080 }], selector: { app: ratings } }
---
apiVersion: v1
kind: Service
metadata: { name: ext-authz, namespace: shop }
spec: { ports: [{ name: http, port: 8000 }], selector: { app: ext-authz } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ext-authz-1, namespace: shop }
spec: { address: 127.0.0.1, labels: { app: ext-authz }, ports: { http: ${httpAuthzPort} } }
---
apiVersion: v1
kind: Service
metadata: { name: ext-authz-grpc, namespace: shop }
spec: { ports: [{ name: grpc, port: 9000 }], selector: { app: ext-authz-grpc } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ext-authz-grpc-1, namespace: shop }
spec: { address: 127.0.0.1, labels: { app: ext-authz-grpc }, ports: { grpc: ${grpcAuthzPort} } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: signed-writes, namespace: shop }
spec:
  selector: { matchLabels: { app: ratings } }
  action: CUSTOM
  provider: { name: ${provider} }
  rules:
  - to: [{ operation: { paths: ["/signed/*"] } }]
`;
}

before(async () => {
  if (skipUnlessTools('envoy')) return;
  const authz = http.createServer((req, res) => {
    const signature = req.headers['x-signature'] as string | undefined;
    httpChecks.push({ path: req.url ?? '', signature });
    if (signature === 'good') {
      res.setHeader('x-authz-user', 'signer-1');
      res.end();
      return;
    }
    res.statusCode = 401;
    res.setHeader('x-authz-reason', 'bad signature');
    res.setHeader('x-internal', 'not for clients');
    res.end('signature check failed');
  });
  await new Promise<void>((r) => authz.listen(0, '127.0.0.1', r));
  cleanups.add(() => authz.close());
  httpAuthzPort = (authz.address() as net.AddressInfo).port;
  const server = new grpc.Server();
  server.addService({
    Check: {
      path: '/envoy.service.auth.v3.Authorization/Check', requestStream: false, responseStream: false,
      requestDeserialize: (b: Buffer) => decodeMessage('envoy.service.auth.v3.CheckRequest', b),
      responseSerialize: (o: unknown) => Buffer.from(encodeMessage('envoy.service.auth.v3.CheckResponse', o)),
      requestSerialize: (o: unknown) => Buffer.from(encodeMessage('envoy.service.auth.v3.CheckRequest', o)),
      responseDeserialize: (b: Buffer) => decodeMessage('envoy.service.auth.v3.CheckResponse', b),
    },
  } as grpc.ServiceDefinition, {
    Check: (call: grpc.ServerUnaryCall<{ attributes?: { request?: { http?: { path?: string; headers?: Record<string, string> } } } }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const h = call.request.attributes?.request?.http;
      grpcChecks.push({ path: h?.path ?? '' });
      if (h?.headers?.['x-signature'] === 'slow') {
        // Slower than the provider's 2 s timeout.
        setTimeout(() => cb(null, { status: { code: 0 } }), 3000);
        return;
      }
      if (h?.headers?.['x-signature'] === 'good') cb(null, { status: { code: 0 }, ok_response: { headers: [{ header: { key: 'x-authz-user', value: 'grpc-signer' } }] } });
      else cb(null, { status: { code: 7 }, denied_response: { status: { code: 'Forbidden' }, body: 'denied by grpc authorizer', headers: [{ header: { key: 'x-authz-reason', value: 'grpc says no' } }] } });
    },
  });
  grpcAuthzPort = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanups.add(() => server.forceShutdown());
  const dir = tempDir(cleanups);
  writeFileSync(join(dir, 'mesh-config.yaml'), meshConfig);
  pair = await startSidecarPair(cleanups, { 'mesh.yaml': config('hmac') }, { target: '/open' }, ['--mesh-config', join(dir, 'mesh-config.yaml')]);
});

test('CUSTOM with an HTTP authorizer: only the policy\'s paths are checked; allow headers go upstream; the denial goes to the client', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  for (const side of ['trellis', 'envoy'] as const) {
    httpChecks.length = 0;
    const open = await sendRaw(pair.port[side], { target: '/open', headers: [['x-signature', 'bad']] });
    assert.equal(open.status, 200, `${side}: paths outside the CUSTOM rule are not checked`);
    assert.equal(httpChecks.length, 0, side);
    const n = pair.received[side].length;
    const ok = await sendRaw(pair.port[side], { target: '/signed/orders?x=1', method: 'POST', body: '{}', headers: [['x-signature', 'good']] });
    assert.equal(ok.status, 200, side);
    assert.equal(pair.received[side][n].headers['x-authz-user'], 'signer-1', `${side}: headersToUpstreamOnAllow`);
    assert.deepEqual(httpChecks, [{ path: '/signed/orders?x=1', signature: 'good' }], side);
    const bad = await sendRaw(pair.port[side], { target: '/signed/orders', headers: [['x-signature', 'forged']] });
    assert.equal(bad.status, 401, side);
    assert.equal(bad.body, 'signature check failed', side);
    assert.equal(bad.headers['x-authz-reason'], 'bad signature', side);
    assert.equal(bad.headers['x-internal'], undefined, `${side}: only headersToDownstreamOnDeny reach the client`);
  }
});

test('CUSTOM with a gRPC authorizer (envoy.service.auth.v3.Authorization/Check)', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  writeConfig(pair.configDir, 'mesh.yaml', config('grpc-authz'));
  for (const side of ['trellis', 'envoy'] as const) {
    await waitFor(`${side} uses the gRPC authorizer`, async () => (await sendRaw(pair.port[side], { target: '/signed/x', headers: [['x-signature', 'forged']] })).status === 403, 30_000, 200)
      .catch((err: Error) => assert.fail(`${err.message}\n${pair.output(side)}`));
    const bad = await sendRaw(pair.port[side], { target: '/signed/x', headers: [['x-signature', 'forged']] });
    assert.equal(bad.body, 'denied by grpc authorizer', side);
    assert.equal(bad.headers['x-authz-reason'], 'grpc says no', side);
    const n = pair.received[side].length;
    assert.equal((await sendRaw(pair.port[side], { target: '/signed/x', headers: [['x-signature', 'good']] })).status, 200, side);
    assert.equal(pair.received[side][n].headers['x-authz-user'], 'grpc-signer', side);
  }
  assert.ok(grpcChecks.some((c) => c.path === '/signed/x'));
  // An authorizer slower than its timeout: status_on_error (403), and the proxy stays up.
  for (const side of ['trellis', 'envoy'] as const) {
    assert.equal((await sendRaw(pair.port[side], { target: '/signed/x', headers: [['x-signature', 'slow']] })).status, 403, side);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await sendRaw(pair.port[side], { target: '/open' })).status, 200, `${side} still serves after the authorizer timed out`);
  }
});

test('CUSTOM naming an unknown provider denies every request (never fails open)', { skip: skipUnlessTools('envoy'), timeout: 60_000 }, async () => {
  writeConfig(pair.configDir, 'mesh.yaml', config('no-such-provider'));
  for (const side of ['trellis', 'envoy'] as const) {
    await waitFor(`${side} denies all`, async () => (await sendRaw(pair.port[side], { target: '/open' })).status === 403, 30_000, 200)
      .catch((err: Error) => assert.fail(`${err.message}\n${pair.output(side)}`));
  }
});
