import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createH2Server, constants } from 'node:http2';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { replicaProbes, runProbe } from './probe.ts';

const closers: (() => void)[] = [];
after(() => closers.forEach((c) => c()));

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown; close(): unknown }): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    closers.push(() => server.close());
    resolve((server.address() as AddressInfo).port);
  }));
}

test('probes follow readinessPath and each port protocol', () => {
  assert.deepEqual(replicaProbes({ ports: [], readinessPath: undefined }, [8080]), [{ kind: 'tcp', port: 8080 }]);
  assert.deepEqual(replicaProbes({ ports: [], readinessPath: '/ready' }, [8080, 9090]), [
    { kind: 'http', port: 8080, path: '/ready', h2: false }, { kind: 'tcp', port: 9090 },
  ]);
  assert.deepEqual(replicaProbes({ ports: [{ port: 9090, protocol: 'HTTP2' }, { port: 7070, protocol: 'GRPC' }, { port: 6060, protocol: 'HTTP' }], readinessPath: '/healthz' }, [6060, 7070, 8080, 9090]), [
    { kind: 'http', port: 6060, path: '/healthz', h2: false },
    { kind: 'grpc', port: 7070 },
    { kind: 'tcp', port: 8080 },
    { kind: 'http', port: 9090, path: '/healthz', h2: true },
  ]);
  // Without an HTTP port declared, readinessPath goes to the first declared port.
  assert.deepEqual(replicaProbes({ ports: [{ port: 9000 }], readinessPath: '/r' }, [80, 9000]), [{ kind: 'tcp', port: 80 }, { kind: 'http', port: 9000, path: '/r', h2: false }]);
});

test('HTTP/1.1, h2c, gRPC health and TCP probes against real servers', async () => {
  let ready = false;
  const http1 = await listen(createHttpServer((req, res) => {
    res.writeHead(req.url === '/ready' && ready ? 200 : 503);
    res.end();
  }));
  const p1 = { kind: 'http', port: http1, path: '/ready', h2: false } as const;
  assert.match((await runProbe(p1, http1)) ?? '', /GET \/ready answered 503/);
  ready = true;
  assert.equal(await runProbe(p1, http1), undefined);

  const h2 = await listen(createH2Server((req, res) => {
    res.writeHead(req.url === '/ready' ? 204 : 404);
    res.end();
  }));
  assert.equal(await runProbe({ kind: 'http', port: h2, path: '/ready', h2: true }, h2), undefined);
  assert.match((await runProbe({ kind: 'http', port: h2, path: '/nope', h2: true }, h2)) ?? '', /answered 404/);

  let serving = 1;
  const grpc = createH2Server();
  grpc.on('stream', (stream, headers) => {
    assert.equal(headers[constants.HTTP2_HEADER_PATH], '/grpc.health.v1.Health/Check');
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, serving]));
    });
  });
  const g = await listen(grpc);
  assert.equal(await runProbe({ kind: 'grpc', port: g }, g), undefined);
  serving = 2; // NOT_SERVING
  assert.match((await runProbe({ kind: 'grpc', port: g }, g)) ?? '', /not SERVING \(status 2\)/);

  const tcp = await listen(createTcpServer((s) => s.destroy()));
  assert.equal(await runProbe({ kind: 'tcp', port: tcp }, tcp), undefined);
  closers.pop()?.();
  await new Promise((r) => setTimeout(r, 50));
  assert.match((await runProbe({ kind: 'tcp', port: tcp }, tcp)) ?? '', /does not accept connections/);
});
