import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDemoService } from './demo-service.ts';

test('a chain of demo services returns the nested call tree and propagates headers', async () => {
  const leaf = await startDemoService({ name: 'purchase-history', version: 'v1', namespace: 'default', pod: 'ph-1', upstreams: [] });
  const mid = await startDemoService({ name: 'recommendation', version: 'v2', namespace: 'default', pod: 'rec-1', upstreams: [`http://127.0.0.1:${leaf.port}/`] });
  const top = await startDemoService({ name: 'web-api', version: 'v1', namespace: 'default', pod: 'web-1', upstreams: [`http://127.0.0.1:${mid.port}/`] });
  try {
    const res = await fetch(`http://127.0.0.1:${top.port}/`, { headers: { 'end-user': 'jason' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { service: string; upstream: { status: number; body: { service: string; version: string; upstream: { body: { service: string } }[] } }[] };
    assert.equal(body.service, 'web-api');
    assert.equal(body.upstream[0].body.service, 'recommendation');
    assert.equal(body.upstream[0].body.version, 'v2');
    assert.equal(body.upstream[0].body.upstream[0].body.service, 'purchase-history');

    // Injected failure of one hop, by header, makes the caller report 502 with the nested 503.
    const failed = await fetch(`http://127.0.0.1:${top.port}/`, { headers: { 'x-demo-fail': 'recommendation:v2' } });
    assert.equal(failed.status, 502);
    const fb = (await failed.json()) as { upstream: { status: number }[] };
    assert.equal(fb.upstream[0].status, 503);
  } finally {
    await Promise.all([top.close(), mid.close(), leaf.close()]);
  }
});

test('outbound calls go through HTTP_PROXY in absolute form', async () => {
  const seen: string[] = [];
  const proxy = http.createServer((req, res) => {
    seen.push(`${req.url} host=${req.headers.host} user=${req.headers['end-user']}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"service":"recommendation"}');
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as AddressInfo).port;
  const top = await startDemoService({ name: 'web-api', version: 'v1', namespace: 'default', pod: 'web-1', upstreams: ['http://recommendation:8080/'], httpProxy: `http://127.0.0.1:${port}` });
  try {
    const res = await fetch(`http://127.0.0.1:${top.port}/`, { headers: { 'end-user': 'jason' } });
    assert.equal(res.status, 200);
    assert.deepEqual(seen, ['http://recommendation:8080/ host=recommendation:8080 user=jason']);
  } finally {
    await top.close();
    await new Promise((r) => proxy.close(r));
  }
});

test('unreachable upstream gives 502 with the error, env failure percent gives the fail status', async () => {
  const top = await startDemoService({ name: 'web-api', version: 'v1', namespace: 'default', pod: 'w', upstreams: ['http://127.0.0.1:1/'], upstreamTimeoutMs: 2000 });
  const flaky = await startDemoService({ name: 'recommendation', version: 'v1', namespace: 'default', pod: 'r', upstreams: [], failPercent: 100, failStatus: 500 });
  try {
    const res = await fetch(`http://127.0.0.1:${top.port}/`);
    assert.equal(res.status, 502);
    const body = (await res.json()) as { upstream: { status: number; error?: string }[] };
    assert.equal(body.upstream[0].status, 0);
    assert.ok(body.upstream[0].error);
    assert.equal((await fetch(`http://127.0.0.1:${flaky.port}/`)).status, 500);
    assert.equal((await fetch(`http://127.0.0.1:${flaky.port}/healthz`)).status, 200);
  } finally {
    await Promise.all([top.close(), flaky.close()]);
  }
});
