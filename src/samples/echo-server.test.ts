import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEchoServer, canonicalHeaderName, parseGoDuration } from './echo-server.ts';
import { decodeEchoResponse, encodeEchoRequest, grpcFrame, grpcUnframe, GrpcEchoService } from './grpc-echo-codec.ts';
import { skipUnlessTools } from '../../test/support/skip.ts';

const run = promisify(execFile);
const identity = { namespace: 'gateway-conformance-infra', service: 'infra-backend-v1', pod: 'infra-backend-v1-7d9f8-abcde' };

test('canonical header names and Go durations', () => {
  assert.equal(canonicalHeaderName('x-echo-set-header'), 'X-Echo-Set-Header');
  assert.equal(canonicalHeaderName('USER-AGENT'), 'User-Agent');
  assert.equal(parseGoDuration('1s'), 1000);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('500ms'), 500);
  assert.equal(parseGoDuration('soon'), undefined);
  assert.equal(parseGoDuration(''), undefined);
});

test('HTTP/1.1 echo reply has the echo-basic fields and sets requested headers', async () => {
  const lines: string[] = [];
  const server = await startEchoServer({ ...identity, log: (l) => lines.push(l) });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/foo?x=1`, { headers: { 'x-echo-set-header': 'X-Foo:bar,X-Baz:1', 'x-custom': 'a' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-foo'), 'bar');
    assert.equal(res.headers.get('x-baz'), '1');
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.path, '/foo?x=1');
    assert.equal(body.method, 'GET');
    assert.equal(body.proto, 'HTTP/1.1');
    assert.equal(body.host, `127.0.0.1:${server.port}`);
    assert.equal(body.namespace, identity.namespace);
    assert.equal(body.pod, identity.pod);
    assert.deepEqual((body.headers as Record<string, string[]>)['X-Custom'], ['a']);
    assert.match(lines[0], /^Echoing back request made to \/foo\?x=1 to client \(/);
  } finally {
    await server.close();
  }
});

test('h2c prior knowledge on the same port, via curl', { skip: skipUnlessTools('curl') }, async () => {
  const server = await startEchoServer({ ...identity, log: () => {} });
  try {
    const { stdout } = await run('curl', ['-s', '--http2-prior-knowledge', `http://127.0.0.1:${server.port}/h2`]);
    const body = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(body.proto, 'HTTP/2.0');
    assert.equal(body.path, '/h2');
  } finally {
    await server.close();
  }
});

test('retry script fails the first N attempts per uuid, with a code or a reset', async () => {
  const server = await startEchoServer({ ...identity, log: () => {} });
  try {
    const base = `http://127.0.0.1:${server.port}/retry/x?uuid=u1&succeedAfter=2&responseCode=503`;
    assert.equal((await fetch(base)).status, 503);
    assert.equal((await fetch(base)).status, 503);
    assert.equal((await fetch(base)).status, 200);
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/retry/y?uuid=u2&succeedAfter=1`));
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/retry/y?uuid=u2&succeedAfter=1`)).status, 200);
  } finally {
    await server.close();
  }
});

test('delay parameter delays, a bad one is a 400', async () => {
  const server = await startEchoServer({ ...identity, log: () => {} });
  try {
    const t0 = Date.now();
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/?delay=200ms`)).status, 200);
    assert.ok(Date.now() - t0 >= 190);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/?delay=forever`)).status, 400);
  } finally {
    await server.close();
  }
});

test('gRPC echo answers Echo and EchoTwo, EchoThree is unimplemented', async () => {
  const server = await startEchoServer({ ...identity, log: () => {} });
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  try {
    const call = (method: string) =>
      new Promise<{ status: string; body: Buffer; headersEndStream: boolean }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': `/${GrpcEchoService}/${method}`, 'content-type': 'application/grpc', te: 'trailers', 'x-md': 'v' });
        const chunks: Buffer[] = [];
        let status = '';
        let headersEndStream = false;
        stream.on('response', (h, flags) => {
          if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
          headersEndStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        });
        stream.on('trailers', (t) => { status = String(t['grpc-status']); });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve({ status, body: Buffer.concat(chunks), headersEndStream }));
        stream.on('error', reject);
        stream.end(grpcFrame(encodeEchoRequest()));
      });
    const one = await call('Echo');
    assert.equal(one.status, '0');
    const msg = decodeEchoResponse(grpcUnframe(one.body)!);
    assert.equal(msg.assertions?.fully_qualified_method, `/${GrpcEchoService}/Echo`);
    assert.equal(msg.assertions?.context.pod, identity.pod);
    assert.ok(msg.assertions?.headers.some((h) => h.key === 'x-md' && h.value === 'v'));
    assert.equal((await call('EchoTwo')).status, '0');
    const unimplemented = await call('EchoThree');
    assert.equal(unimplemented.status, '12');
    assert.equal(unimplemented.headersEndStream, true, 'trailers-only: one HEADERS frame with END_STREAM');
    assert.equal(unimplemented.body.length, 0);
  } finally {
    session.close();
    await server.close();
  }
});

test('/ws echoes WebSocket text and binary messages (Node 24 WebSocket client)', async () => {
  const server = await startEchoServer({ ...identity, log: () => {} });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
    ws.binaryType = 'arraybuffer';
    const messages: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => ws.send('Websocket Support!');
      ws.onerror = () => reject(new Error('websocket error'));
      ws.onmessage = (ev) => {
        messages.push(ev.data);
        if (messages.length === 1) ws.send(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
        else resolve();
      };
    });
    ws.close();
    assert.equal(messages[0], 'Websocket Support!');
    assert.deepEqual([...new Uint8Array(messages[1] as ArrayBuffer)], [1, 2, 3, 4, 5, 6, 7]);
    // A plain GET /ws without the upgrade is still an ordinary echo.
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/ws`)).status, 200);
  } finally {
    await server.close();
  }
});
