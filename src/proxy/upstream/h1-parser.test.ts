import assert from 'node:assert/strict';
import { test } from 'node:test';
import { H1ProtocolError, H1ResponseParser, type H1ResponseHandler } from './h1-parser.ts';
import type { HeaderMap } from './types.ts';

interface Parsed {
  status: number;
  headers: HeaderMap;
  body: string;
  trailers: HeaderMap | undefined;
  complete: boolean;
  consumed: number;
}

/** Feeds `wire` to a fresh parser in pieces of `step` bytes (0: all at once). */
function parse(wire: string, opts: { head?: boolean; step?: number; eof?: boolean; max?: number } = {}): Parsed {
  const out: Parsed = { status: 0, headers: {}, body: '', trailers: undefined, complete: false, consumed: 0 };
  const handler: H1ResponseHandler = {
    onResponseHead(status, headers) { out.status = status; out.headers = headers; },
    onResponseBody(chunk) { out.body += chunk.toString('latin1'); },
    onResponseComplete(trailers) { out.complete = true; out.trailers = trailers; },
  };
  const p = new H1ResponseParser(handler, opts.max ?? 16384);
  p.start(opts.head ?? false);
  const buf = Buffer.from(wire, 'latin1');
  const step = opts.step || buf.length;
  for (let i = 0; i < buf.length && !out.complete; i += step) out.consumed += p.execute(buf.subarray(i, i + step));
  if (opts.eof) p.finish();
  return out;
}

function rejects(wire: string, code: string, opts: { step?: number; eof?: boolean; max?: number } = {}): void {
  assert.throws(() => parse(wire, opts), (err: unknown) => err instanceof H1ProtocolError && err.code === code, JSON.stringify(wire));
}

const chunkedWithTrailers = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nGrpc-Status: 0\r\nx-t: a\r\n\r\n';

test('h1 parser: a chunked body with trailers, whatever the read boundaries', () => {
  for (const step of [0, 1, 2, 3, 7, 13]) {
    const r = parse(chunkedWithTrailers, { step });
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers, { 'x-a': ['1', '2'] }, 'names lower-cased, repeated fields kept as lines, transfer-encoding the parser\'s');
    assert.equal(r.body, 'hello, world!!!');
    assert.deepEqual(r.trailers, { 'grpc-status': '0', 'x-t': 'a' }, `step ${step}`);
    assert.ok(r.complete);
  }
  for (const step of [0, 1, 4]) {
    const r = parse('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', { step });
    assert.equal(r.body, 'abc');
    assert.equal(r.trailers, undefined);
    assert.ok(r.complete, `step ${step}`);
  }
});

test('h1 parser: content-length, keep-alive and bytes after the response', () => {
  const r = parse('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nkeep-alive: timeout=5\r\n\r\nabcGARBAGE');
  assert.equal(r.body, 'abc');
  assert.ok(r.complete);
  assert.equal(r.consumed, 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\nkeep-alive: timeout=5\r\n\r\nabc'.length, 'stops at the end of the response');
  const handler: H1ResponseHandler = { onResponseHead() {}, onResponseBody() {}, onResponseComplete() {} };
  const p = new H1ResponseParser(handler, 1000);
  p.start(false);
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5, max=100\r\n\r\n'));
  assert.equal(p.keepAlive, true);
  assert.equal(p.keepAliveTimeoutSec, 5);
  p.start(false);
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  assert.equal(p.keepAlive, false);
  p.start(false);
  p.execute(Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n'));
  assert.equal(p.keepAlive, false, 'HTTP/1.0 closes unless it says keep-alive');
  p.start(false);
  p.execute(Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n'));
  assert.equal(p.keepAlive, true);
});

test('h1 parser: no body for HEAD, 204 and 304; 1xx heads are skipped', () => {
  assert.deepEqual([parse('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n', { head: true })].map((r) => [r.complete, r.body]), [[true, '']]);
  assert.ok(parse('HTTP/1.1 204 No Content\r\n\r\n').complete);
  assert.ok(parse('HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n').complete);
  for (const step of [0, 1, 5]) {
    const r = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok', { step });
    assert.equal(r.status, 201);
    assert.deepEqual(r.headers, { 'content-length': '2' });
    assert.equal(r.body, 'ok');
  }
  rejects('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n', 'H1_UNEXPECTED_UPGRADE');
});

test('h1 parser: a body without length or chunking ends with the connection', () => {
  const r = parse('HTTP/1.1 200 OK\r\n\r\nsome bytes', { eof: true });
  assert.equal(r.body, 'some bytes');
  assert.ok(r.complete);
  const te = parse('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nzz', { eof: true });
  assert.equal(te.body, 'zz', 'a transfer coding that is not chunked last: read until close');
  rejects('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc', 'H1_INCOMPLETE', { eof: true });
  rejects('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab', 'H1_INCOMPLETE', { eof: true });
  rejects('HTTP/1.1 200 OK\r\ncontent-', 'H1_INCOMPLETE', { eof: true });
});

test('h1 parser: malformed responses are refused', () => {
  const bad: [string, string][] = [
    ['HTTP/1.1 2000 OK\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/2.0 200 OK\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/1.1  200 OK\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['ICY 200 OK\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/1.1 099 Low\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/1.1 200 O\x00K\r\n\r\n', 'H1_INVALID_STATUS_LINE'],
    ['HTTP/1.1 200 OK\r\nbad header: 1\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nx-a : 1\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nno-colon\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nx-a: 1\r2\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\nx-a: \x00\r\n\r\n', 'H1_INVALID_HEADER'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n', 'H1_CONFLICTING_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n', 'H1_CONFLICTING_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n', 'H1_CONFLICTING_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', 'H1_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\n', 'H1_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n', 'H1_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n', 'H1_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-1\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 \r\nhello\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhelloo\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff\r\n', 'H1_INVALID_CHUNK'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n', 'H1_INVALID_HEADER'],
  ];
  for (const [wire, code] of bad) {
    rejects(wire, code);
    rejects(wire, code, { step: 1 });
  }
  rejects(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(2000)}\r\n\r\n`, 'H1_HEADERS_TOO_LARGE', { max: 1024 });
  rejects(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(2000)}`, 'H1_HEADERS_TOO_LARGE', { max: 1024, step: 100 });
  rejects(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx-big: ${'a'.repeat(2000)}\r\n\r\n`, 'H1_HEADERS_TOO_LARGE', { max: 1024, step: 64 });
});

test('h1 parser: fields named like Object members stay fields', () => {
  const r = parse('HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: c\r\ntoString: t\r\ntostring: u\r\ncontent-length: 0\r\n\r\n');
  assert.deepEqual(r.headers.constructor, 'c');
  assert.deepEqual(r.headers.tostring, ['t', 'u']);
  assert.equal(Object.getPrototypeOf(r.headers), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(r.headers, '__proto__')?.value, 'x');
});

test('h1 parser: common field names come out lower-case in any case, near misses too', () => {
  const r = parse('HTTP/1.1 200 OK\r\nCONTENT-TYPE: a\r\nContent-Length: 0\r\ncontent-typf: b\r\nX-Powered-By: c\r\nx-powered~by: d\r\nDaTe: e\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(r.status, 200);
  // connection, keep-alive and transfer-encoding are the parser's (framing), not the map's.
  assert.deepEqual({ ...r.headers }, { 'content-type': 'a', 'content-length': '0', 'content-typf': 'b', 'x-powered-by': 'c', 'x-powered~by': 'd', date: 'e' });
  assert.ok(r.complete);
  const close = parse('HTTP/1.1 200 OK\r\nCONNECTION: Close\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual({ ...close.headers }, { 'content-length': '0' });
});
