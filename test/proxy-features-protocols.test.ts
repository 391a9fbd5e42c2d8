/**
 * End to end, driven only by Istio YAML through a real `trellis control` and a `trellis proxy`
 * gateway: h2c downstream (curl --http2-prior-knowledge) with HTTP/1.1 and (useClientProtocol)
 * HTTP/2 upstream, gRPC with @grpc/grpc-js to the echo service (port named `grpc`), WebSocket echo
 * with Node's global WebSocket, a Gateway TCP server with a `tcp` route to a TCP echo backend, and
 * TLS passthrough by SNI (`tls` route) to a TLS backend whose own certificate the client sees.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { decodeEchoResponse, encodeEchoRequest, GrpcEchoService } from '../src/samples/grpc-echo-codec.ts';
import type { DualServer } from '../src/samples/sniff-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc } from './support/mesh.ts';
import { httpGet, serviceYaml } from './support/features.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';

const curl = findTool('curl');
const openssl = findTool('openssl');

let cp: ControlPlaneProc;
const ports = { http: 0, tcp: 0, tls: 0 };
let echo: DualServer;
let wsServer: http.Server;
let tcpEcho: net.Server;
let tlsServer: tls.Server | undefined;
let tlsCertPem = '';
let certDir = '';
const sockets = new Set<net.Socket>();

function track(s: net.Socket): void {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** A WebSocket echo backend: handshake by hand, then small text frames echoed (prefixed). */
function startWsEcho(): http.Server {
  const server = http.createServer((_req, res) => res.end('not a websocket request\n'));
  server.on('upgrade', (req, socket: Duplex) => {
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // Client frames are masked; payloads here are < 126 bytes.
      while (buf.length >= 6) {
        const opcode = buf[0] & 0x0f;
        const len = buf[1] & 0x7f;
        if (len > 125 || buf.length < 6 + len) return;
        const mask = buf.subarray(2, 6);
        const payload = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
        buf = buf.subarray(6 + len);
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          return;
        }
        const out = Buffer.concat([Buffer.from(`echo:${req.url}:`), payload]);
        socket.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
      }
    });
    socket.on('error', () => {});
  });
  server.on('connection', track);
  return server;
}

const gatewayYaml = () => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 9443, name: tls, protocol: TLS}
    hosts: [secure.example.com]
    tls: {mode: PASSTHROUGH}
`;

const vsYaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /${GrpcEchoService}/}}]
    route: [{destination: {host: grpc-echo}}]
  - match: [{uri: {prefix: /ws}}]
    route: [{destination: {host: ws-echo}}]
  - match: [{uri: {prefix: /h2up}}]
    route: [{destination: {host: echo-h2}}]
  - route: [{destination: {host: echo}}]
  tcp:
  - match: [{port: 9000}]
    route: [{destination: {host: tcp-echo, port: {number: 9000}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  gateways: [gw]
  tls:
  - match: [{port: 9443, sniHosts: [secure.example.com]}]
    route: [{destination: {host: tls-backend, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-h2, namespace: default}
spec:
  host: echo-h2
  trafficPolicy:
    connectionPool:
      http: {useClientProtocol: true}
`;

before(async () => {
  echo = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-pod', log: () => {} });
  wsServer = startWsEcho();
  const wsPort = await listen(wsServer);
  tcpEcho = net.createServer((s) => {
    track(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  const tcpPort = await listen(tcpEcho);
  let tlsPort = 0;
  if (openssl) {
    certDir = mkdtempSync(join(tmpdir(), 'trellis-tls-'));
    execFileSync(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
      '-subj', '/CN=secure.example.com', '-addext', 'subjectAltName=DNS:secure.example.com', '-days', '2'], { stdio: 'ignore' });
    tlsCertPem = readFileSync(join(certDir, 'cert.pem'), 'utf8');
    tlsServer = tls.createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: tlsCertPem }, (s) => {
      s.on('error', () => {});
      s.end(`hello from tls backend, sni=${(s as tls.TLSSocket & { servername?: string }).servername}\n`);
    });
    tlsServer.on('connection', track);
    tlsPort = await listen(tlsServer);
  }
  const services = [
    serviceYaml('echo', [echo.port]),
    serviceYaml('echo-h2', [echo.port]),
    serviceYaml('grpc-echo', [echo.port], { portName: 'grpc', port: 8081 }),
    serviceYaml('ws-echo', [wsPort]),
    serviceYaml('tcp-echo', [tcpPort], { portName: 'tcp', port: 9000 }),
    ...(tlsPort ? [serviceYaml('tls-backend', [tlsPort], { portName: 'tls', port: 443 })] : []),
  ];
  cp = await startControlPlane({ 'gateway.yaml': gatewayYaml(), 'services.yaml': services.join('---\n'), 'vs.yaml': vsYaml });
  ports.http = await freePort();
  ports.tcp = await freePort();
  ports.tls = await freePort();
  await startProxy(cp, { kind: 'router', workload: 'ingress-1', labels: { istio: 'ingressgateway' },
    metadata: { TRELLIS_GATEWAY_PORTS: { '80': ports.http, '9000': ports.tcp, '9443': ports.tls } } });
  await waitFor('gateway serves HTTP', async () => (await httpGet(ports.http, '/ready')).status === 200, 20_000, 100);
});

after(async () => {
  await stopAll();
  for (const s of sockets) s.destroy();
  await echo?.close();
  await Promise.all([wsServer, tcpEcho, tlsServer].filter((s) => s !== undefined).map((s) => new Promise<void>((r) => s!.close(() => r()))));
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
}

test('h2c: curl --http2-prior-knowledge through the gateway (HTTP/1.1 upstream by default, HTTP/2 with useClientProtocol)', { timeout: 60_000, skip: skipUnlessTools('curl') }, async () => {
  const out = await run(curl!, ['-sS', '--http2-prior-knowledge', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${ports.http}/h2c?x=1`]);
  const [body, status] = out.split('\n');
  assert.equal(status, '2 200');
  const echoed = JSON.parse(body) as { path: string; proto: string; pod: string };
  assert.equal(echoed.path, '/h2c?x=1');
  assert.equal(echoed.pod, 'echo-pod');
  assert.equal(echoed.proto, 'HTTP/1.1', 'an `http` port speaks HTTP/1.1 upstream');

  const up = await run(curl!, ['-sS', '--http2-prior-knowledge', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${ports.http}/h2up`]);
  const [b2, s2] = up.split('\n');
  assert.equal(s2, '2 200');
  assert.equal((JSON.parse(b2) as { proto: string }).proto, 'HTTP/2.0', 'useClientProtocol keeps HTTP/2 upstream');
});

test('gRPC through the gateway with @grpc/grpc-js: unary echo with trailers, unknown method UNIMPLEMENTED', { timeout: 60_000 }, async () => {
  const client = new grpc.Client(`127.0.0.1:${ports.http}`, grpc.credentials.createInsecure());
  try {
    const call = (method: string) => new Promise<{ err: grpc.ServiceError | null; value?: Buffer; status?: grpc.StatusObject }>((resolve) => {
      let status: grpc.StatusObject | undefined;
      const md = new grpc.Metadata();
      md.set('x-test', 'grpc-e2e');
      const c = client.makeUnaryRequest(`/${GrpcEchoService}/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(encodeEchoRequest()), md, { deadline: Date.now() + 10_000 },
        (err, value) => setImmediate(() => resolve({ err, value, status })));
      c.on('status', (s) => (status = s));
    });
    const ok = await call('Echo');
    assert.equal(ok.err, null, ok.err?.message);
    const a = decodeEchoResponse(ok.value!).assertions!;
    assert.equal(a.fully_qualified_method, `/${GrpcEchoService}/Echo`);
    assert.equal(a.context?.pod, 'echo-pod');
    assert.ok(a.headers?.some((h) => h.key === 'x-test' && h.value === 'grpc-e2e'), JSON.stringify(a.headers));
    assert.equal(ok.status?.code, grpc.status.OK);
    const bad = await call('Nope');
    assert.equal(bad.err?.code, grpc.status.UNIMPLEMENTED, bad.err?.message);
  } finally {
    client.close();
  }
});

test('WebSocket echo through the gateway with the global WebSocket client', { timeout: 60_000 }, async () => {
  const messages = await new Promise<string[]>((resolve, reject) => {
    const got: string[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${ports.http}/ws/chat`);
    const timer = setTimeout(() => reject(new Error(`websocket timed out after ${JSON.stringify(got)}`)), 10_000);
    ws.onopen = () => {
      ws.send('one');
      ws.send('two');
    };
    ws.onmessage = (ev) => {
      got.push(String(ev.data));
      if (got.length === 2) {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error('websocket error'));
    };
  });
  assert.deepEqual(messages, ['echo:/ws/chat:one', 'echo:/ws/chat:two']);
});

test('TCP proxy: a Gateway TCP server with a tcp route carries bytes both ways', { timeout: 60_000 }, async () => {
  const roundTrip = (payload: string) => new Promise<string>((resolve, reject) => {
    const s = net.connect(ports.tcp, '127.0.0.1', () => s.write(payload));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.length >= payload.length) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error(`tcp timed out with ${JSON.stringify(got)}`)));
  });
  const big = 'x'.repeat(200_000);
  assert.equal(await waitFor('tcp echo', async () => (await roundTrip('ping\n')) === 'ping\n' || undefined, 15_000, 200), true);
  assert.equal((await roundTrip(big)).length, big.length);
});

test('TLS passthrough by SNI: the client sees the backend certificate; an unknown SNI is not served', { timeout: 60_000, skip: skipUnlessTools('openssl') }, async () => {
  const connect = (servername: string) => new Promise<{ cert: X509Certificate; text: string }>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: ports.tls, servername, ca: tlsCertPem }, () => {
      const cert = new X509Certificate(s.getPeerX509Certificate()!.raw);
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve({ cert, text }));
    });
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('tls timed out')));
  });
  const r = await waitFor('tls passthrough', async () => connect('secure.example.com'), 15_000, 200);
  assert.equal(r.cert.fingerprint256, new X509Certificate(tlsCertPem).fingerprint256);
  assert.equal(r.text, 'hello from tls backend, sni=secure.example.com\n');
  await assert.rejects(connect('other.example.com'));
});
