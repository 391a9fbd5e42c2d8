/**
 * ClusterHandle.send (types.ts ResponseReceiver): the promise-free hand-off the router's attempt
 * driver uses. The receiver hears the head only after the connection's parser returned, so it may
 * write, cancel or destroy the body from there; refusals and failures come in a microtask, never
 * from inside `send`. Both pools (HTTP/2 answers through its promise underneath).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createClusterManager } from './cluster-manager.ts';
import { bodyText, h2Options, requestReleased, staticCluster } from './test-support.ts';
import { CancelToken, type BodySink, type ClusterHandle, type HeaderMap, type ResponseReceiver, type UpstreamRequestInit, type UpstreamResponse } from './types.ts';

/** `/partial`: headers and 2 of 10 body bytes, then nothing; `/whole`: "ok" in the head's packet. */
async function server(h2: boolean): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  if (h2) {
    const s = http2.createServer();
    s.on('session', () => connections++);
    s.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/partial') {
        stream.respond({ ':status': 200, 'content-length': '10' });
        stream.write('ab');
      } else {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { port: (s.address() as AddressInfo).port, connections: () => connections, close: () => new Promise<void>((r) => s.close(() => r())) };
  }
  const s = http.createServer((req, res) => {
    if (req.url === '/partial') {
      res.writeHead(200, { 'content-length': '10' });
      res.write('ab');
    } else {
      res.end('ok');
    }
  });
  s.on('connection', () => connections++);
  s.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, connections: () => connections, close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

/** Sends through `send`; `onHead` runs inside the receiver's onUpstreamResponse. */
function send(c: ClusterHandle, path: string, cancel: CancelToken, onHead?: (res: UpstreamResponse) => void): { answer: Promise<UpstreamResponse>; sync: () => boolean } {
  let returned = false;
  let answeredSync = false;
  const init: UpstreamRequestInit = { method: 'GET', path, authority: 'backend.test', scheme: 'http', headers: {}, body: null, cancel, isRetry: false };
  const answer = new Promise<UpstreamResponse>((resolve, reject) => {
    const receiver: ResponseReceiver = {
      onUpstreamResponse(res) {
        if (!returned) answeredSync = true;
        onHead?.(res);
        resolve(res);
      },
      onUpstreamError(err) {
        if (!returned) answeredSync = true;
        reject(err);
      },
    };
    c.send!(init, receiver);
    returned = true;
  });
  return { answer, sync: () => answeredSync };
}

/** Pushes (HTTP/1.1) or iterates the body to its end. */
async function readAll(res: UpstreamResponse): Promise<string> {
  if (res.body.pushTo !== undefined) {
    return new Promise<string>((resolve, reject) => {
      let s = '';
      const sink: BodySink = {
        onBodyData(chunk) { s += Buffer.from(chunk).toString(); return true; },
        onBodyEnd(_t: HeaderMap) { resolve(s); },
        onBodyError(err) { reject(err); },
      };
      res.body.pushTo!(sink);
    });
  }
  return bodyText(res);
}

const released = requestReleased;

for (const h2 of [false, true]) {
  const name = h2 ? 'HTTP/2' : 'HTTP/1.1';
  const setup = async () => {
    const srv = await server(h2);
    const cm = createClusterManager();
    cm.update([staticCluster('c', [srv.port], h2 ? h2Options : {})], new Map());
    const stats = () => cm.stats().get('c')!;
    return { srv, c: cm.get('c')!, stats, close: async () => { await cm.close(); await srv.close(); } };
  };

  test(`${name} send: a refused request is answered in a microtask, not from inside send`, async () => {
    const { srv, c, stats, close } = await setup();
    const token = new CancelToken();
    const reason = new Error('gone');
    token.cancel(reason);
    const r = send(c, '/', token);
    await assert.rejects(r.answer, (err: unknown) => err === reason);
    assert.equal(r.sync(), false);
    assert.equal(srv.connections(), 0);
    assert.equal(stats().upstream_rq_active, 0);
    await close();
  });

  test(`${name} send: the head arrives after send returned${h2 ? '' : ', with its packet parsed (the body already there)'}; the connection is reused`, async () => {
    const { srv, c, stats, close } = await setup();
    let atHead = '';
    const r = send(c, '/whole', new CancelToken(), (res) => {
      if (h2) return;
      // HTTP/1.1: the parser returned before the head was handed on, so the head's packet (the
      // whole response here) is in the body already: pushed at once, end included.
      res.body.pushTo!({ onBodyData(chunk) { atHead += Buffer.from(chunk).toString(); return true; }, onBodyEnd() { atHead += '|end'; }, onBodyError() { atHead += '|error'; } });
    });
    const res = await r.answer;
    assert.equal(r.sync(), false);
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, undefined, 'connection fields are not forwarded');
    if (h2) assert.equal(await readAll(res), 'ok');
    else assert.equal(atHead, 'ok|end');
    await released(stats);
    assert.equal(await readAll(await send(c, '/whole', new CancelToken()).answer), 'ok');
    assert.equal(srv.connections(), 1);
    await close();
  });

  test(`${name} send: the receiver destroys a body still arriving from inside onUpstreamResponse: the connection is given up, the next request works`, async () => {
    const { srv, c, stats, close } = await setup();
    const r = send(c, '/partial', new CancelToken(), (res) => res.body.destroy?.());
    await r.answer;
    await released(stats);
    assert.equal(await readAll(await send(c, '/whole', new CancelToken()).answer), 'ok');
    assert.equal(srv.connections(), h2 ? 1 : 2, 'HTTP/1.1: the half-read connection was closed, not reused');
    await close();
  });

  test(`${name} send: the receiver destroys a body that fully arrived: nothing breaks, the connection is reused`, async () => {
    const { srv, c, stats, close } = await setup();
    const r = send(c, '/whole', new CancelToken(), (res) => res.body.destroy?.());
    await r.answer;
    await released(stats);
    assert.equal(await readAll(await send(c, '/whole', new CancelToken()).answer), 'ok');
    assert.equal(srv.connections(), 1);
    await close();
  });

  test(`${name} send: cancelled mid-response from inside onUpstreamResponse ends the body with the reason`, async () => {
    const { c, stats, close } = await setup();
    const token = new CancelToken();
    const reason = new Error('route timeout');
    const res = await send(c, '/partial', token, () => token.cancel(reason)).answer;
    await assert.rejects(readAll(res), (err: unknown) => err === reason);
    await released(stats);
    await close();
  });
}
