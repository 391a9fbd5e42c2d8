import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, startBackend, startProxy } from '../../../test/support/connection-manager-harness.ts';
import type { StreamInfo } from './stream-info.ts';
import { h2ResponseSink } from './h2-response-sink.ts';
import { FRAME_HEADERS, FRAME_SETTINGS, PREFACE, frame, headerBlock } from '../../../test/support/h2-rapid-reset.ts';

const routeAll = { virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a', timeout: '5s' } }] }] };

/** Frames an h2c client receives for one request: the raw HEADERS/DATA sequence as node reports it. */
interface H2Exchange {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** RST_STREAM code when the stream was reset, else 0. */
  rstCode: number;
  informational: number[];
}

function exchange(port: number, headers: http2.OutgoingHttpHeaders, body?: string | ((st: http2.ClientHttp2Stream) => void)): Promise<H2Exchange> {
  return new Promise((resolve) => {
    const s = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => net.connect(port, '127.0.0.1') });
    s.on('error', () => {});
    const st = s.request(headers, { endStream: body === undefined });
    const out: H2Exchange = { status: 0, headers: {}, body: '', trailers: undefined, rstCode: 0, informational: [] };
    st.on('headers', (h) => out.informational.push(Number(h[':status'])));
    st.on('response', (h) => { out.status = Number(h[':status']); out.headers = h; });
    st.on('trailers', (t) => { out.trailers = t; });
    st.setEncoding('utf8');
    st.on('data', (d) => { out.body += d; });
    st.on('error', () => {});
    st.on('close', () => { out.rstCode = st.rstCode ?? 0; s.close(); resolve(out); });
    if (typeof body === 'string') st.end(body);
    else if (body !== undefined) body(st);
  });
}

test('HTTP/2 downstream (core stream API): trailers after a streamed body, a plain body, trailers-only gRPC, HEAD, 204', async (t) => {
  const be = await startBackend((req, res) => {
    if (req.url === '/stream') {
      // Chunked with trailers: the first chunk goes out before the end is known.
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('first,');
      setTimeout(() => {
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end('second');
      }, 50);
      return;
    }
    if (req.url === '/empty') return void res.writeHead(204).end();
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': 'a' });
    res.end('plain body');
  });
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const paths = ['/stream', '/plain', '/empty'].map((path) => ({ match: { path }, route: { cluster: 'a' } }));
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: paths }] }) });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });

  const streamed = await exchange(proxy.h2cPort, { ':path': '/stream' });
  assert.equal(streamed.status, 200);
  assert.equal(streamed.body, 'first,second');
  assert.equal(streamed.trailers?.['x-checksum'], 'abc123');

  const plain = await exchange(proxy.h2cPort, { ':path': '/plain' });
  assert.equal(plain.status, 200);
  assert.equal(plain.body, 'plain body');
  assert.equal(plain.headers['x-backend'], 'a');
  assert.ok(typeof plain.headers.date === 'string', 'date header as before');
  assert.equal(plain.headers.connection, undefined);

  const head = await exchange(proxy.h2cPort, { ':path': '/plain', ':method': 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.rstCode, 0);

  const empty = await exchange(proxy.h2cPort, { ':path': '/empty' });
  assert.equal(empty.status, 204);
  assert.equal(empty.body, '');
  assert.equal(empty.rstCode, 0);

  // A local reply (no route) to a gRPC request: one HEADERS frame with END_STREAM (trailers-only), grpc-status in it.
  const grpc = await exchange(proxy.h2cPort, { ':path': '/nowhere', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' }, '');
  assert.equal(grpc.status, 200);
  assert.equal(grpc.trailers, undefined);
  assert.ok(grpc.headers['grpc-status'] !== undefined && grpc.headers['grpc-status'] !== '0', JSON.stringify(grpc.headers));
});

test('HTTP/2 downstream: 100-continue, CONNECT 405, unknown expectation 417, a request body larger than the windows', async (t) => {
  const be = await startBackend((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; });
    req.on('end', () => res.end(JSON.stringify({ n, expect: req.headers.expect ?? null })));
  });
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig(routeAll) });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });

  const cont = await exchange(proxy.h2cPort, { ':path': '/', ':method': 'POST', expect: '100-continue' }, 'hello');
  assert.deepEqual(cont.informational, [100]);
  assert.equal(cont.status, 200);
  assert.deepEqual(JSON.parse(cont.body), { n: 5, expect: null });
  // The 100 comes only once the request passed the connection manager's checks: a request they
  // refuse (here `OPTIONS *`, not routable: 404) gets its answer alone, as from Envoy.
  const refused = await exchange(proxy.h2cPort, { ':path': '*', ':method': 'OPTIONS', expect: '100-continue' });
  assert.deepEqual(refused.informational, []);
  assert.equal(refused.status, 404);

  const connect = await exchange(proxy.h2cPort, { ':method': 'CONNECT', ':authority': 'example.com:443' }, (st) => st.end());
  assert.equal(connect.status, 405);

  const odd = await exchange(proxy.h2cPort, { ':path': '/', expect: 'something-else' });
  assert.equal(odd.status, 417);

  // 4 MiB: several times node's default stream and connection windows, so flow control has to
  // open them as the proxy reads and the backend consumes.
  const big = 'x'.repeat(4 * 1024 * 1024);
  const up = await exchange(proxy.h2cPort, { ':path': '/', ':method': 'POST' }, big);
  assert.equal(up.status, 200);
  assert.equal(JSON.parse(up.body).n, big.length);
});

test('HTTP/2 downstream: a client reset ends the exchange (access info not completed)', async (t) => {
  const be = await startBackend((_req, res) => {
    res.writeHead(200);
    res.write('partial');
  });
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig(routeAll) });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const ended: StreamInfo[] = [];
  const onEnd = (m: unknown) => ended.push(m as StreamInfo);
  diagnostics.subscribe('trellis:http:request-end', onEnd);
  t.after(() => diagnostics.unsubscribe('trellis:http:request-end', onEnd));

  const reset = await exchange(proxy.h2cPort, { ':path': '/slow' }, (st) => {
    st.end();
    st.once('data', () => st.close(http2.constants.NGHTTP2_CANCEL));
  });
  assert.equal(reset.body, 'partial');
  for (let i = 0; i < 100 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const info = ended.find((e) => e.path === '/slow');
  assert.ok(info, 'the exchange ended on the reset');
  assert.equal(info.completed, false);
  assert.equal(info.protocol, 'HTTP/2');
});

test('H2ResponseSink: a field HTTP/2 cannot carry or an invalid status resets the stream (INTERNAL_ERROR); an invalid trailer is dropped, the stream still ends cleanly', async (t) => {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const sink = h2ResponseSink(stream);
    const path = headers[':path'];
    if (path === '/bad-name') sink.writeHead(200, { 'bad field': 'x' });
    else if (path === '/status') sink.writeHead(101, {});
    else {
      sink.writeHead(200, { 'content-type': 'text/plain' });
      void sink.write(Buffer.from('body'));
      setTimeout(() => sink.end({ 'bad trailer': 'x' }), 20);
      return;
    }
    sink.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const badName = await exchange(port, { ':path': '/bad-name' });
  assert.equal(badName.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  const status = await exchange(port, { ':path': '/status' });
  assert.equal(status.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  const badTrailer = await exchange(port, { ':path': '/trailer' });
  assert.equal(badTrailer.rstCode, 0);
  assert.equal(badTrailer.body, 'body');
  assert.deepEqual({ ...badTrailer.trailers }, {});
});

test('HTTP/2 downstream over the real cluster manager: an upload the client resets (RST_STREAM, no END_STREAM) midway never reaches the backend as a complete body', async (t) => {
  const { createClusterManager } = await import('../upstream/cluster-manager.ts');
  const seen: string[] = [];
  const be = await startBackend((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; });
    req.on('end', () => { seen.push(`end:${n}`); res.end('ok'); });
    req.on('aborted', () => seen.push(`aborted:${n}`));
  });
  const clusters = createClusterManager();
  const [address, port] = be.endpoint.split(':');
  clusters.update([{ name: 'a', type: 'STATIC', connect_timeout: '0.5s', load_assignment: { cluster_name: 'a', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: Number(port) } } } }] }] } }] as never, new Map());
  const proxy = await startProxy({ clusterManager: clusters, config: hcmConfig(routeAll) });
  t.after(async () => { await proxy.close(); await be.close(); await clusters.close(); });

  // HEADERS without END_STREAM, a DATA frame, then RST_STREAM(CANCEL) with no END_STREAM ever
  // (raw frames: node's own client queues an END_STREAM before its RST_STREAM). node ends the
  // server stream's readable side cleanly on a reset; the proxy must not forward that as a whole body.
  const sock = net.connect(proxy.h2cPort, '127.0.0.1');
  sock.on('error', () => {});
  sock.on('data', () => {});
  await once(sock, 'connect');
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
  sock.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)), frame(FRAME_HEADERS, 0x4, 1, headerBlock('/upload', 'example.com')), frame(0x0, 0, 1, Buffer.alloc(1000, 'x'))]));
  await new Promise((r) => setTimeout(r, 150));
  sock.write(frame(0x3, 0, 1, rst));
  t.after(() => sock.destroy());
  for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!seen.some((s) => s.startsWith('end:')), `backend saw: ${seen.join(', ')}`);

  // A whole upload on the same proxy still arrives complete.
  const whole = await exchange(proxy.h2cPort, { ':path': '/upload', ':method': 'POST' }, 'y'.repeat(1000));
  assert.equal(whole.status, 200);
  assert.ok(seen.includes('end:1000'), `backend saw: ${seen.join(', ')}`);
});
