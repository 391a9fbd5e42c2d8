import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DOWNSTREAM_REQUEST_FIELDS, H2_REQUEST_FIELDS, h1RequestWritesItself, RESPONSE_FIELDS } from './connection-fields.ts';

test('connection fields: every list drops the RFC 9110 connection-specific fields', () => {
  for (const f of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']) {
    assert.ok(DOWNSTREAM_REQUEST_FIELDS.has(f), f);
    assert.ok(h1RequestWritesItself(f), f);
    assert.ok(H2_REQUEST_FIELDS.has(f), f);
    assert.ok(RESPONSE_FIELDS.includes(f), f);
  }
});

test('connection fields: the deliberate differences between the lists', () => {
  // te: a request keeps it (as `trailers`, for gRPC), a response never forwards it.
  assert.ok(!DOWNSTREAM_REQUEST_FIELDS.has('te') && !H2_REQUEST_FIELDS.has('te') && !h1RequestWritesItself('te'));
  assert.ok(RESPONSE_FIELDS.includes('te') && RESPONSE_FIELDS.includes('trailer'));
  // host: the request's authority everywhere; a response field like any other.
  assert.ok(DOWNSTREAM_REQUEST_FIELDS.has('host') && H2_REQUEST_FIELDS.has('host') && h1RequestWritesItself('host'));
  assert.ok(!RESPONSE_FIELDS.includes('host'));
  // The HTTP/1.1 client writes the body's framing itself and cannot forward an expectation.
  assert.ok(h1RequestWritesItself('content-length') && h1RequestWritesItself('expect'));
  assert.ok(!H2_REQUEST_FIELDS.has('content-length') && !DOWNSTREAM_REQUEST_FIELDS.has('expect'));
  // An h2c upgrade's settings never travel on; an HTTP/2 request cannot hold them anyway.
  assert.ok(DOWNSTREAM_REQUEST_FIELDS.has('http2-settings') && RESPONSE_FIELDS.includes('http2-settings'));
});
