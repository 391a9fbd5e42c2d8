import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { StaticClusterManager } from '../../../test/support/static-cluster-manager.ts';
import { hcmConfig, rawRequest, request1, request2, startAdminDeniedProxy, startBackend, startProxy } from '../../../test/support/connection-manager-harness.ts';

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

test('bad HTTP/1.1 traffic gets 400/431/408 and a closed connection; the proxy keeps serving', async (t) => {
  const hits: string[] = [];
  const be = await startBackend((req, res) => { hits.push(`${req.method} ${req.url}`); req.resume(); req.on('end', () => res.end('ok')); });
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }, [], {
      request_headers_timeout: '0.3s',
      common_http_protocol_options: { max_headers_count: 50 },
    }),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const crashes: unknown[] = [];
  const onCrash = (e: unknown) => crashes.push(e);
  process.on('uncaughtException', onCrash);
  t.after(() => process.off('uncaughtException', onCrash));

  const many = Array.from({ length: 60 }, (_, i) => `x-h${i}: v\r\n`).join('');
  const corpus: [string, string, number][] = [
    ['CL + TE (CL.TE smuggling)', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['TE + CL order swapped', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
    ['duplicate differing Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd', 400],
    ['TE chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 400],
    ['TE obfuscated (an unknown coding: 501 as from Envoy)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 501],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n', 400],
    ['control char in header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n', 400],
    ['space in header name', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400],
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: x\n\n', 400],
    ['invalid chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
    ['garbage request line', 'GARBAGE\r\n\r\n', 400],
    ['NUL in URL', 'GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    // Request targets other than origin-form and absolute-form (Envoy: 400; found by test/differential-raw.test.ts).
    ['asterisk-form outside OPTIONS', 'POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', 400],
    ['authority-form outside CONNECT', 'GET x:443 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['absolute-form with another scheme', 'GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['OPTIONS * is routed (no route here)', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 404],
    ['an https URL on a plaintext connection', 'GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n', 403],
    ['an https URL without a host', 'POST https:///exact HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['CONNECT to a path, not an authority', 'CONNECT /b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    // Routed (a route's local reply would win), then 417 from the router: the upstream client cannot
    // carry it; through Envoy this backend (node) answers 417 itself.
    ['an Expect other than 100-continue: 417 once routed to a cluster', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nConnection: close\r\n\r\n', 417],
    ['a transfer coding other than chunked (would reach the backend undecoded)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
    ['oversize header (70 KiB)', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`, 431],
    ['too many headers', `GET / HTTP/1.1\r\nHost: x\r\n${many}\r\n`, 431],
  ];
  for (const [name, raw, want] of corpus) {
    const out = await rawRequest(proxy.port, raw);
    assert.equal(statusOf(out), want, `${name}: ${JSON.stringify(out.slice(0, 80))}`);
    const ok = await request1(proxy.port);
    assert.equal(ok.status, 200, `still serving after ${name}`);
  }
  assert.ok(!hits.some((h) => h.includes('smuggled')), 'no smuggled request reached the backend');

  // Slowloris: headers that never finish get 408 once request_headers_timeout passes.
  const t0 = Date.now();
  const slow = await rawRequest(proxy.port, (s) => {
    s.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const iv = setInterval(() => { if (!s.destroyed) s.write('X-Drip: 1\r\n'); }, 50);
    s.on('close', () => clearInterval(iv));
  }, 5000);
  assert.equal(statusOf(slow), 408, slow.slice(0, 80));
  assert.ok(Date.now() - t0 < 3000);
  assert.equal((await request1(proxy.port)).status, 200);
  // A client that disconnects mid-request costs nothing.
  await rawRequest(proxy.port, (s) => { s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc'); setTimeout(() => s.destroy(), 20); }, 500);
  assert.equal((await request1(proxy.port)).status, 200);
  assert.deepEqual(crashes, []);
});

test('HTTP/2 abuse: invalid frames and rapid reset end in GOAWAY; the proxy keeps serving', async (t) => {
  const be = await startBackend((_req, res) => setTimeout(() => res.end('ok'), 5));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    prematureResetLimit: 50,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });

  // Preface + a SETTINGS frame with a bad length (protocol error): the server answers GOAWAY (type 7) and closes.
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const badSettings = Buffer.from([0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
  const out = await rawRequest(proxy.h2cPort, Buffer.concat([preface, badSettings]), 3000);
  const frames = Buffer.from(out, 'latin1');
  let sawGoaway = false;
  for (let i = 0; i + 9 <= frames.length;) {
    const len = frames.readUIntBE(i, 3);
    if (frames[i + 3] === 0x7) sawGoaway = true;
    i += 9 + len;
  }
  assert.ok(sawGoaway, 'GOAWAY after a malformed frame');
  // Garbage instead of a preface: connection closed, nothing crashes.
  await rawRequest(proxy.h2cPort, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 1000);
  assert.equal((await request2(proxy.h2cPort)).status, 200);

  // Header limits on HTTP/2: a few too many -> 431; far too many or too big -> 431 or a refused/reset stream.
  const h2many = Object.fromEntries(Array.from({ length: 110 }, (_, i) => [`x-h${i}`, 'v']));
  assert.equal((await request2(proxy.h2cPort, { headers: h2many })).status, 431);
  for (const headers of [Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`x-h${i}`, 'v'])), { 'x-big': 'a'.repeat(70 * 1024) }]) {
    const res = await request2(proxy.h2cPort, { headers }).then((r) => r.status, (e: Error) => e.message);
    assert.ok(res === 431 || /RST_STREAM|ENHANCE_YOUR_CALM|REFUSED|PROTOCOL_ERROR|COMPRESSION|stream error|closed|GOAWAY|Session/i.test(String(res)), `got ${res}`);
    assert.equal((await request2(proxy.h2cPort)).status, 200);
  }

  // Rapid reset: open streams and cancel them at once.
  const goaway = await new Promise<number | 'closed'>((resolve) => {
    const s = http2.connect(`http://127.0.0.1:${proxy.h2cPort}`, { createConnection: () => net.connect(proxy.h2cPort, '127.0.0.1') });
    s.on('error', () => {});
    s.on('goaway', (code) => resolve(code));
    s.on('close', () => resolve('closed'));
    let n = 0;
    const burst = () => {
      for (let i = 0; i < 20 && !s.destroyed && !s.closed; i++, n++) {
        try {
          const st = s.request({ ':path': `/r${n}` });
          st.on('error', () => {});
          st.close(http2.constants.NGHTTP2_CANCEL);
        } catch {
          return;
        }
      }
      if (n < 400 && !s.destroyed && !s.closed) setImmediate(burst);
    };
    s.on('connect', burst);
  });
  assert.equal(goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `got ${goaway}`);
  assert.equal((await request2(proxy.h2cPort)).status, 200);
  assert.equal((await request1(proxy.port)).status, 200);
});

test('the slowloris guard does not cut idle keep-alive connections between requests', async (t) => {
  const be = await startBackend((_q, r) => r.end('ok'));
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({ clusterManager: cm, config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }, [], { request_headers_timeout: '0.3s' }) });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  const out = await rawRequest(proxy.port, (s) => {
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    setTimeout(() => s.write('GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 800);
  }, 3000);
  assert.equal(out.match(/HTTP\/1\.1 200/g)?.length, 2, out);
});

test('an Upgrade the backend refuses (no 101) is answered and the connection closed: later bytes never reach the backend unrouted; an Upgrade behind pipelined requests waits for their responses', async (t) => {
  const hits: string[] = [];
  const proxy = await startAdminDeniedProxy(t, (req, res) => { hits.push(`${req.method} ${req.url}`); req.resume(); req.on('end', () => res.end('not a websocket')); },
    { upgrade_configs: [{ upgrade_type: 'websocket' }] });
  const upgrade = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  // The request after the refused upgrade was piped to the backend as raw bytes, past the /admin 403 route (found by test/differential-raw.test.ts).
  const out = await rawRequest(proxy.port, (s) => {
    s.write(upgrade);
    setTimeout(() => { if (!s.destroyed) s.write('GET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n'); }, 300);
  }, 1500);
  assert.match(out, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n\r\nnot a websocket$/i);
  assert.deepEqual(hits, ['GET /ws']);
  // Pipelined: the route's 403 first, then the upgrade's answer (Envoy: 403, then the upgrade).
  const piped = await rawRequest(proxy.port, `GET /admin/x HTTP/1.1\r\nHost: x\r\n\r\n${upgrade}`, 1500);
  assert.deepEqual(piped.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 403', 'HTTP/1.1 200']);
  // Behind a response that closes the connection, the upgrade is not served.
  const closed = await rawRequest(proxy.port, `GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n${upgrade}`, 1500);
  assert.deepEqual(closed.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200']);
  assert.deepEqual(hits, ['GET /ws', 'GET /ws', 'GET /x']);
});
