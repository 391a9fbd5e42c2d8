/**
 * End to end through a client sidecar (explicit capture: the client dials the sidecar's local
 * outbound ports), driven only by YAML: mesh VirtualService retries with per-try timeout and the
 * hedging annotation, gRPC to a service port named `grpc` (HTTP/2 upstream), an opaque TCP service,
 * and a mesh fault abort percentage. The gateway-side tests are in proxy-features-*.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { decodeEchoResponse, encodeEchoRequest, GrpcEchoService } from '../src/samples/grpc-echo-codec.ts';
import type { DualServer } from '../src/samples/sniff-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc } from './support/mesh.ts';
import { httpGet, pool, serviceYaml, startScriptedBackend, type ScriptedBackend } from './support/features.ts';

let cp: ControlPlaneProc;
let script: ScriptedBackend;
let echo: DualServer;
let tcpEcho: net.Server;
const sockets = new Set<net.Socket>();
const local = { http: 0, grpc: 0, tcp: 0 };

const meshVs = (annotations: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: script
  namespace: default${annotations}
spec:
  hosts: [script]
  http:
  - match: [{uri: {prefix: /fault}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 25}}}
    route: [{destination: {host: script}}]
  - timeout: 10s
    retries: {attempts: 1, perTryTimeout: 400ms, retryOn: "5xx,reset"}
    route: [{destination: {host: script}}]
`;

let keySeq = 0;
const key = (tag: string) => `${tag}-${Date.now()}-${++keySeq}`;

before(async () => {
  script = await startScriptedBackend('script');
  echo = await startEchoServer({ namespace: 'default', service: 'grpc-echo', pod: 'grpc-echo-pod', log: () => {} });
  tcpEcho = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', r));
  const tcpPort = (tcpEcho.address() as net.AddressInfo).port;
  cp = await startControlPlane({
    'services.yaml': [
      serviceYaml('script', [script.port]),
      serviceYaml('grpc-echo', [echo.port], { portName: 'grpc', port: 8081 }),
      serviceYaml('tcp-echo', [tcpPort], { portName: 'tcp', port: 9000 }),
    ].join('---\n'),
    'vs.yaml': meshVs(''),
  });
  local.http = await freePort();
  local.grpc = await freePort();
  local.tcp = await freePort();
  await startProxy(cp, { kind: 'sidecar', workload: 'client', labels: { app: 'client' },
    metadata: { TRELLIS_OUTBOUND_PORTS: { '8080': local.http, '8081': local.grpc, '9000': local.tcp } } });
  await waitFor('sidecar routes to script', async () => (await httpGet(local.http, `/ready?key=${key('ready')}`, { host: 'script' })).status === 200, 20_000, 100);
});

after(async () => {
  await stopAll();
  for (const s of sockets) s.destroy();
  await script?.close();
  await echo?.close();
  await new Promise<void>((r) => (tcpEcho ? tcpEcho.close(() => r()) : r()));
});

test('sidecar: per-try timeout retries, then the hedging annotation keeps the slow attempt and takes its answer', { timeout: 90_000 }, async () => {
  // Plain retries: attempt 1 (800 ms) is cancelled at 400 ms, attempt 2 (4 s) too -> 504.
  const kp = key('plain');
  const plain = await httpGet(local.http, `/x?key=${kp}&d=800,4000`, { host: 'script' });
  assert.equal(plain.status, 504, plain.body);
  // Slow first attempt, fast retry -> 200 from attempt 2.
  const kr = key('retry');
  const retried = await httpGet(local.http, `/x?key=${kr}&d=5000,0`, { host: 'script' });
  assert.equal(retried.status, 200);
  assert.equal((JSON.parse(retried.body) as { attempt: number }).attempt, 2);

  cp.write('vs.yaml', meshVs(`\n  annotations: {trellis.dev/hedge-on-per-try-timeout: "true"}`));
  // Hedged: attempt 1 keeps running and answers at ~800 ms.
  const r = await waitFor('hedging in effect on the sidecar', async () => {
    const x = await httpGet(local.http, `/x?key=${key('hedge')}&d=800,4000`, { host: 'script' });
    return x.status === 200 ? x : undefined;
  }, 30_000, 200);
  assert.equal((JSON.parse(r.body) as { attempt: number }).attempt, 1);
  assert.ok(r.ms >= 750 && r.ms < 3500, `hedged answer after ${r.ms} ms`);
  cp.write('vs.yaml', meshVs(''));
});

test('sidecar: fault abort 25% on a mesh route over 200 requests, within tolerance', { timeout: 90_000 }, async () => {
  const n = 200;
  const res = await pool(Array.from({ length: n }, (_, i) => i), 8, () => httpGet(local.http, `/fault?key=${key('f')}`, { host: 'script' }));
  const aborted = res.filter((r) => r.status === 500);
  assert.ok(res.every((r) => r.status === 200 || r.status === 500), [...new Set(res.map((r) => r.status))].join(','));
  assert.ok(aborted.every((r) => r.body === 'fault filter abort'), aborted[0]?.body);
  // Binomial(200, 0.25): sd ~ 0.031; 0.11 is ~3.5 sd.
  assert.ok(Math.abs(aborted.length / n - 0.25) <= 0.11, `abort share ${aborted.length / n}`);
});

test('sidecar: gRPC with @grpc/grpc-js to a port named grpc (HTTP/2 upstream)', { timeout: 60_000 }, async () => {
  const client = new grpc.Client(`127.0.0.1:${local.grpc}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'grpc-echo:8081' });
  try {
    const call = (method: string) => new Promise<{ err: grpc.ServiceError | null; value?: Buffer }>((resolve) => {
      client.makeUnaryRequest(`/${GrpcEchoService}/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(encodeEchoRequest()), new grpc.Metadata(), { deadline: Date.now() + 10_000 },
        (err, value) => resolve({ err, value }));
    });
    const ok = await call('EchoTwo');
    assert.equal(ok.err, null, ok.err?.message);
    const a = decodeEchoResponse(ok.value!).assertions!;
    assert.equal(a.fully_qualified_method, `/${GrpcEchoService}/EchoTwo`);
    assert.equal(a.context?.pod, 'grpc-echo-pod');
    assert.equal((await call('Missing')).err?.code, grpc.status.UNIMPLEMENTED);
  } finally {
    client.close();
  }
});

test('sidecar: an opaque TCP service port carries bytes both ways', { timeout: 60_000 }, async () => {
  const got = await new Promise<string>((resolve, reject) => {
    const s = net.connect(local.tcp, '127.0.0.1', () => s.write('hello tcp\n'));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      if (text.endsWith('\n')) s.end();
    });
    s.on('close', () => resolve(text));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('tcp timed out')));
  });
  assert.equal(got, 'hello tcp\n');
});
