/**
 * The HTTP/1.1 client against a raw socket server on 127.0.0.1 (port 0) that answers with exact
 * bytes: the wire format of requests, body framing, connection reuse, and what malformed or cut
 * responses become (UpstreamError flags as the router sees them).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Host } from './host.ts';
import { createH1Pool } from './pool-h1.ts';
import type { HostPool, PooledResponse } from './pool.ts';
import { newClusterStats } from './stats.ts';
import { CancelToken, UpstreamError, type UpstreamRequestInit } from './types.ts';
import type { SecretProvider } from '../tls/secret-provider.ts';

interface RawServer {
  port: number;
  /** Request heads and bodies as received, per connection in order of arrival. */
  requests: { conn: number; text: string }[];
  connections: () => number;
  close(): Promise<void>;
}

/**
 * A server that collects each request (head plus the body bytes that arrive with it or within
 * 20 ms) and calls `answer` with the request text and the socket.
 */
async function rawServer(answer: (req: string, socket: net.Socket, n: number) => void): Promise<RawServer> {
  const requests: RawServer['requests'] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const server = net.createServer((socket) => {
    const conn = ++conns;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const text = buf;
        buf = '';
        requests.push({ conn, text });
        answer(text, socket, requests.length);
      }, 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    connections: () => conns,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

function pool(port: number, extra: { maxConnections?: number; idleTimeoutMs?: number; maxRequestsPerConnection?: number } = {}): HostPool {
  const host = new Host('127.0.0.1', port, { weight: 1, health: 'HEALTHY', locality: { region: '', zone: '', subZone: '' }, localityWeight: undefined, priority: 0, tls: undefined });
  return createH1Pool(host, {
    connect: { timeoutMs: 1000, secrets: undefined as unknown as SecretProvider, stats: newClusterStats() },
    maxConnections: extra.maxConnections ?? 8,
    idleTimeoutMs: extra.idleTimeoutMs ?? 10_000,
    maxRequestsPerConnection: extra.maxRequestsPerConnection ?? 0,
  });
}

function init(over: Partial<UpstreamRequestInit> = {}): UpstreamRequestInit {
  return { method: 'GET', path: '/p', authority: 'backend.test', scheme: 'http', headers: {}, body: null, cancel: new CancelToken(), isRetry: false, ...over };
}

async function read(res: PooledResponse): Promise<string> {
  let s = '';
  for await (const c of res.body) s += Buffer.from(c).toString('latin1');
  return s;
}

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;

test('h1 client: request head on the wire, keep-alive reuse, content-length body', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok('hi', 'X-Up: 1\r\nx-up: 2\r\n')));
  const p = pool(s.port);
  for (let i = 0; i < 3; i++) {
    const cancel = new CancelToken();
    const res = await p.request(init({ cancel, headers: { 'x-a': '1', 'x-list': ['a', 'b'], connection: 'close', 'keep-alive': '1', te: 'trailers' } }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers, { 'content-length': '2', 'x-up': ['1', '2'] });
    assert.equal(await read(res), 'hi');
    assert.deepEqual(await res.trailers, {});
    await new Promise<void>((r) => res.onDone(r));
    assert.equal(cancel.hook, undefined, 'the cancel hook is gone once the exchange is over');
  }
  assert.equal(s.requests[0].text, 'GET /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\nx-a: 1\r\nx-list: a\r\nx-list: b\r\nte: trailers\r\n\r\n');
  assert.equal(s.connections(), 1, 'one connection reused');
  p.destroy();
  await s.close();
});

test('h1 client: request bodies keep undici\'s framing (content-length, chunked, empty)', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok('k')));
  const p = pool(s.port);
  const cases: [Partial<UpstreamRequestInit>, string][] = [
    [{ method: 'POST', headers: { 'content-length': '11' }, body: chunks('hello ', 'world') }, 'POST /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\ncontent-length: 11\r\n\r\nhello world'],
    [{ method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: chunks('hello ', 'world') }, 'POST /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n'],
    [{ method: 'POST', body: chunks() }, 'POST /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n'],
    [{ method: 'PUT', headers: { 'content-length': '0' } }, 'PUT /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n'],
    [{ method: 'DELETE', headers: { 'content-length': '0' } }, 'DELETE /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\n\r\n'],
    // A body longer than its content-length is cut at the length (never a smuggled request).
    [{ method: 'POST', headers: { 'content-length': '3' }, body: chunks('abcGET /x HTTP/1.1\r\n\r\n') }, 'POST /p HTTP/1.1\r\nhost: backend.test\r\nconnection: keep-alive\r\ncontent-length: 3\r\n\r\nabc'],
  ];
  for (const [over, wire] of cases) {
    const res = await p.request(init(over));
    assert.equal(await read(res), 'k');
    assert.equal(s.requests.at(-1)!.text, wire);
  }
  p.destroy();
  await s.close();
});

test('h1 client: chunked response with trailers, HEAD, 204, 304, 1xx', async () => {
  const s = await rawServer((req, socket) => {
    const path = req.split(' ')[1];
    if (path === '/chunked') {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc');
      setTimeout(() => socket.write('\r\n2\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\n'), 10);
    } else if (path === '/head') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n');
    else if (path === '/204') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (path === '/304') socket.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n');
    else socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n${ok('final')}`);
  });
  const p = pool(s.port);
  const c = await p.request(init({ path: '/chunked' }));
  assert.equal(await read(c), 'abcde');
  assert.deepEqual(await c.trailers, { 'grpc-status': '0' });
  const h = await p.request(init({ method: 'HEAD', path: '/head' }));
  assert.equal(await read(h), '');
  assert.match(s.requests.at(-1)!.text, /connection: close\r\n/, 'HEAD closes the connection after it, as undici did');
  for (const path of ['/204', '/304', '/1xx']) {
    const r = await p.request(init({ path }));
    assert.equal(r.status, path === '/1xx' ? 200 : Number(path.slice(1)));
    assert.equal(await read(r), path === '/1xx' ? 'final' : '');
  }
  p.destroy();
  await s.close();
});

test('h1 client: malformed responses fail the attempt as UPE (upstream protocol error) and never reuse the connection', async () => {
  const bad = [
    'HTTP/1.1 2000 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nx a: 1\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nab',
    'HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2\r\n\r\n',
    `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
  ];
  let i = 0;
  const s = await rawServer((_req, socket) => socket.write(bad[i++] ?? ok('good')));
  const p = pool(s.port);
  for (let n = 0; n < bad.length; n++) {
    await assert.rejects(p.request(init()), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UPE' && err.resetReason === 'protocol error', bad[n].slice(0, 40));
  }
  const good = await p.request(init());
  assert.equal(await read(good), 'good');
  assert.equal(s.connections(), bad.length + 1, 'each malformed response cost its connection');
  // A bad chunk after the head: the body fails, the attempt is over.
  const s2 = await rawServer((_req, socket) => socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nxyz\r\n'));
  const p2 = pool(s2.port);
  const res = await p2.request(init());
  await assert.rejects(read(res), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UPE');
  await new Promise<void>((r) => res.onDone(r));
  p.destroy();
  p2.destroy();
  await s.close();
  await s2.close();
});

test('h1 client: a connection that closes mid-response or before it', async () => {
  const s = await rawServer((req, socket) => {
    const path = req.split(' ')[1];
    if (path === '/cut') socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    else if (path === '/fin') socket.end();
    else if (path === '/rst') socket.resetAndDestroy();
    else if (path === '/eof') socket.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
    else if (path === '/extra') socket.write(`${ok('one')}HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbad`);
  });
  const p = pool(s.port);
  const cut = await p.request(init({ path: '/cut' }));
  await assert.rejects(read(cut), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UC');
  await new Promise<void>((r) => cut.onDone(r));
  assert.deepEqual(await cut.trailers, {});
  await assert.rejects(p.request(init({ path: '/fin' })), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UC');
  await assert.rejects(p.request(init({ path: '/rst' })), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UR');
  const eof = await p.request(init({ path: '/eof' }));
  assert.equal(await read(eof), 'until close');
  const before = s.connections();
  const extra = await p.request(init({ path: '/extra' }));
  assert.equal(await read(extra), 'one', 'the response is delivered');
  const next = await p.request(init({ path: '/eof' }));
  assert.equal(await read(next), 'until close');
  assert.equal(s.connections(), before + 2, 'bytes after a response: the connection is not reused');
  p.destroy();
  await s.close();
});

test('h1 client: maxConnections queues, max_requests_per_connection and the server keep-alive timeout rotate connections', async () => {
  const s = await rawServer((req, socket) => {
    const slow = req.startsWith('GET /slow');
    setTimeout(() => socket.write(ok('x', req.includes('/short') ? 'keep-alive: timeout=1\r\n' : '')), slow ? 30 : 0);
  });
  const p = pool(s.port, { maxConnections: 1, maxRequestsPerConnection: 3 });
  const all = await Promise.all(Array.from({ length: 5 }, () => p.request(init({ path: '/slow' })).then(read)));
  assert.deepEqual(all, ['x', 'x', 'x', 'x', 'x']);
  assert.equal(s.connections(), 2, '5 requests, 3 per connection, one connection at a time');
  assert.deepEqual(s.requests.map((r) => /connection: ([\w-]+)/.exec(r.text)![1]), ['keep-alive', 'keep-alive', 'close', 'keep-alive', 'keep-alive']);
  const conns = s.connections();
  await read(await p.request(init({ path: '/short' })));
  await read(await p.request(init({ path: '/short' })));
  assert.equal(s.connections(), conns + 1, 'keep-alive: timeout=1 is under the 2 s margin: no reuse');
  p.destroy();
  await s.close();
});

test('h1 client: the idle timeout closes connections', async () => {
  let closed = 0;
  const s = await rawServer((_req, socket) => {
    socket.on('close', () => closed++);
    socket.write(ok('x'));
  });
  const p = pool(s.port, { idleTimeoutMs: 50 });
  await read(await p.request(init()));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(closed, 1);
  await read(await p.request(init()));
  assert.equal(s.connections(), 2);
  p.destroy();
  await s.close();
});

test('h1 client: abort while queued, before headers and mid-body', async () => {
  const s = await rawServer((req, socket) => {
    if (req.startsWith('GET /body')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab');
  });
  const p = pool(s.port, { maxConnections: 1 });
  const a1 = new CancelToken();
  const a2 = new CancelToken();
  const first = p.request(init({ cancel: a1 }));
  const queued = p.request(init({ cancel: a2 }));
  const reason2 = new Error('queued abort');
  a2.cancel(reason2);
  await assert.rejects(queued, (err: unknown) => err === reason2);
  await new Promise((r) => setTimeout(r, 50));
  const reason1 = new Error('per-try timeout');
  a1.cancel(reason1);
  await assert.rejects(first, (err: unknown) => err === reason1);
  const a3 = new CancelToken();
  const res = await p.request(init({ path: '/body', cancel: a3 }));
  const it = res.body[Symbol.asyncIterator]();
  assert.equal(Buffer.from((await it.next()).value as Uint8Array).toString(), 'ab');
  const reason3 = new Error('route timeout');
  a3.cancel(reason3);
  await assert.rejects(it.next(), (err: unknown) => err === reason3);
  await new Promise<void>((r) => res.onDone(r));
  assert.equal(s.connections(), 2, 'the aborted in-flight request cost its connection; the queued one never had one');
  p.destroy();
  await s.close();
});

test('h1 client: destroying a body mid-response closes the connection; drain waits for in-flight exchanges', async () => {
  const s = await rawServer((req, socket) => {
    if (req.startsWith('GET /partial')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab');
    else setTimeout(() => socket.write(ok('late')), 50);
  });
  const p = pool(s.port);
  const res = await p.request(init({ path: '/partial' }));
  res.body.destroy?.();
  await new Promise<void>((r) => res.onDone(r));
  const late = p.request(init({ path: '/late' }));
  await new Promise((r) => setTimeout(r, 10));
  const drained = p.drain();
  await assert.rejects(p.request(init()), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UC');
  assert.equal(await read(await late), 'late');
  await drained;
  await s.close();
});

test('h1 client: a response to a request whose declared bytes are all out keeps the connection, even before the body iterator ends', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok('got')));
  const p = pool(s.port);
  async function* lateEnd(): AsyncGenerator<Uint8Array> {
    yield Buffer.from('abc');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (let i = 0; i < 2; i++) {
    const res = await p.request(init({ method: 'POST', headers: { 'content-length': '3' }, body: lateEnd() }));
    assert.equal(await read(res), 'got');
  }
  assert.equal(s.connections(), 1);
  // Chunked: the request ends only with the iterator, so an earlier response costs the connection.
  const res = await p.request(init({ method: 'POST', body: lateEnd() }));
  assert.equal(await read(res), 'got');
  await new Promise((r) => setTimeout(r, 150));
  await read(await p.request(init()));
  assert.equal(s.connections(), 2);
  p.destroy();
  await s.close();
});

test('h1 client: a large body to a slow reader arrives whole (the socket pauses and resumes)', async () => {
  const size = 4 * 1024 * 1024;
  const s = await rawServer((_req, socket) => {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
    socket.write(Buffer.alloc(size, 0x61));
  });
  const p = pool(s.port);
  const res = await p.request(init());
  let n = 0;
  let reads = 0;
  for await (const c of res.body) {
    n += c.byteLength;
    if (++reads % 16 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(n, size);
  await new Promise<void>((r) => res.onDone(r));
  assert.equal(await read(await p.request(init())), 'a'.repeat(size), 'and the connection is reused after it');
  assert.equal(s.connections(), 1);
  p.destroy();
  await s.close();
});

/** Reads a body in push mode; `pauseEvery` chunks the sink pauses and resumes on a later tick. */
function pushRead(res: PooledResponse, pauseEvery = 0): Promise<{ body: Buffer; trailers: Record<string, string | string[]> }> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    res.body.pushTo!({
      onBodyData(chunk) {
        chunks.push(Buffer.from(chunk));
        if (pauseEvery === 0 || chunks.length % pauseEvery !== 0) return true;
        setTimeout(() => res.body.resumePush!(), 2);
        return false;
      },
      onBodyEnd: (trailers) => resolve({ body: Buffer.concat(chunks), trailers }),
      onBodyError: reject,
    });
  });
}

test('h1 client: push mode delivers the body in order under pauses, then the trailers; an error mid-body reaches the sink', async () => {
  const big = Buffer.alloc(400_000, 'x');
  const s = await rawServer((req, socket) => {
    const path = req.split(' ')[1];
    if (path === '/big') socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`), socket.write(big);
    else if (path === '/trailers') socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n');
    else socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n');
  });
  const p = pool(s.port);
  const r1 = await pushRead(await p.request(init({ path: '/big' })), 3);
  assert.equal(r1.body.length, big.length);
  assert.ok(r1.body.equals(big));
  const r2 = await pushRead(await p.request(init({ path: '/trailers' })));
  assert.equal(r2.body.toString(), 'abc');
  assert.deepEqual(r2.trailers, { 'x-t': '1' });
  assert.equal(s.connections(), 1, 'push-mode responses keep the connection reusable');
  const res = await p.request(init({ path: '/bad' }));
  await assert.rejects(pushRead(res), (err: unknown) => err instanceof UpstreamError && err.responseFlag === 'UPE');
  await new Promise<void>((r) => res.onDone(r));
  p.destroy();
  await s.close();
});
