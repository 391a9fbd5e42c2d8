/**
 * The pool contract's cancel path (CancelToken, types.ts) through a cluster, on both pools:
 * cancelled before the request, while it waits (queued for a connection, or for the session being
 * made), mid-response, and after the exchange ended (nothing happens, and twice is once).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createClusterManager } from './cluster-manager.ts';
import { bodyText, h2Options, requestReleased, staticCluster } from './test-support.ts';
import { CancelToken, type ClusterHandle, type UpstreamRequestInit, type UpstreamResponse } from './types.ts';

interface Server {
  port: number;
  connections: () => number;
  /** HTTP/2: the RST_STREAM codes of streams the client reset. */
  resets: number[];
  close(): Promise<void>;
}

/** `/partial` answers headers and 2 of 10 body bytes, then waits; `/slow` waits 300 ms; others answer "ok". */
async function server(h2: boolean): Promise<Server> {
  let connections = 0;
  const resets: number[] = [];
  if (h2) {
    const s = http2.createServer();
    s.on('session', () => connections++);
    s.on('stream', (stream, headers) => {
      stream.on('close', () => { if (stream.rstCode !== 0) resets.push(stream.rstCode); });
      stream.on('error', () => {});
      const path = String(headers[':path']);
      if (path === '/partial') {
        stream.respond({ ':status': 200, 'content-length': '10' });
        stream.write('ab');
      } else if (path === '/slow') {
        setTimeout(() => { if (!stream.destroyed) { stream.respond({ ':status': 200 }); stream.end('late'); } }, 300).unref();
      } else {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { port: (s.address() as AddressInfo).port, connections: () => connections, resets, close: () => new Promise<void>((r) => s.close(() => r())) };
  }
  const s = http.createServer((req, res) => {
    if (req.url === '/partial') {
      res.writeHead(200, { 'content-length': '10' });
      res.write('ab');
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 300).unref();
    } else {
      res.end('ok');
    }
  });
  s.on('connection', () => connections++);
  s.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, connections: () => connections, resets, close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

function request(c: ClusterHandle, path: string, cancel: CancelToken): Promise<UpstreamResponse> {
  const init: UpstreamRequestInit = { method: 'GET', path, authority: 'backend.test', scheme: 'http', headers: {}, body: null, cancel, isRetry: false };
  return c.request(init);
}

// The cluster's request slot is released when the exchange ends (its onDone listener, the only one a response has).
const released = requestReleased;
const readAll = bodyText;

for (const h2 of [false, true]) {
  const name = h2 ? 'HTTP/2' : 'HTTP/1.1';
  const setup = async (extra: Record<string, unknown> = {}) => {
    const srv = await server(h2);
    const cm = createClusterManager();
    cm.update([staticCluster('c', [srv.port], { ...(h2 ? h2Options : {}), ...extra })], new Map());
    const stats = () => cm.stats().get('c')!;
    return { srv, c: cm.get('c')!, stats, close: async () => { await cm.close(); await srv.close(); } };
  };

  test(`${name} cancel: before the request rejects with the reason and opens no connection`, async () => {
    const { srv, c, stats, close } = await setup();
    const token = new CancelToken();
    const reason = new Error('gone');
    token.cancel(reason);
    await assert.rejects(request(c, '/', token), (err: unknown) => err === reason);
    assert.equal(srv.connections(), 0);
    assert.equal(stats().upstream_rq_active, 0);
    await close();
  });

  test(`${name} cancel: while waiting (for the session, or queued behind another request) rejects that request only`, async () => {
    const { srv, c, stats, close } = await setup({ circuit_breakers: { thresholds: [{ max_connections: 1 }] } });
    const first = new CancelToken();
    const second = new CancelToken();
    // HTTP/2: both wait for the session the first one asked for; HTTP/1.1: the second waits in the
    // queue for the one connection.
    const p1 = request(c, h2 ? '/' : '/slow', first);
    const p2 = request(c, '/', second);
    const reason = new Error('cancelled while waiting');
    (h2 ? first : second).cancel(reason);
    await assert.rejects(h2 ? p1 : p2, (err: unknown) => err === reason);
    const other = await (h2 ? p2 : p1);
    assert.equal(await readAll(other), h2 ? 'ok' : 'late');
    assert.equal(srv.connections(), 1);
    await released(stats);
    assert.equal(first.hook, undefined);
    assert.equal(second.hook, undefined);
    await close();
  });

  test(`${name} cancel: mid-response ends the body, resets the upstream and releases the request`, async () => {
    const { srv, c, stats, close } = await setup();
    const token = new CancelToken();
    const res = await request(c, '/partial', token);
    const it = res.body[Symbol.asyncIterator]();
    assert.equal(Buffer.from((await it.next()).value as Uint8Array).toString(), 'ab');
    token.cancel(new Error('route timeout'));
    await assert.rejects(it.next());
    await released(stats);
    assert.equal(token.hook, undefined);
    if (h2) {
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(srv.resets, [http2.constants.NGHTTP2_CANCEL], 'RST_STREAM CANCEL, as for an aborted signal');
    }
    // The next request works (HTTP/1.1: on a new connection; the cancelled one could not be reused).
    assert.equal(await readAll(await request(c, '/', new CancelToken())), 'ok');
    assert.equal(srv.connections(), h2 ? 1 : 2);
    await close();
  });

  test(`${name} cancel: after the exchange ended does nothing; twice is once`, async () => {
    const { srv, c, stats, close } = await setup();
    const token = new CancelToken();
    const res = await request(c, '/', token);
    assert.equal(await readAll(res), 'ok');
    await released(stats);
    assert.equal(token.hook, undefined, 'the pool let go of the token');
    const reason = new Error('late');
    token.cancel(reason);
    token.cancel(new Error('later'));
    assert.equal(token.reason, reason);
    // The connection was not touched: the next request reuses it.
    assert.equal(await readAll(await request(c, '/', new CancelToken())), 'ok');
    assert.equal(srv.connections(), 1);
    assert.deepEqual(srv.resets, []);
    await close();
  });
}
