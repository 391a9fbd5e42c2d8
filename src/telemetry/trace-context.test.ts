import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractTrace, injectTrace, newSpanId, newTraceId } from './trace-context.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

test('W3C traceparent: sampled flag, tracestate kept, strict parsing', () => {
  assert.deepEqual(extractTrace({ traceparent: `00-${T}-${S}-01`, tracestate: 'congo=t61rcWkgMzE' }), { traceId: T, parentSpanId: S, sampled: true, tracestate: 'congo=t61rcWkgMzE', b3Single: false });
  assert.equal(extractTrace({ traceparent: `00-${T}-${S}-00` })?.sampled, false);
  // A later version: its first four fields are read.
  assert.equal(extractTrace({ traceparent: `01-${T}-${S}-01-extra` })?.traceId, T);
  for (const bad of [`ff-${T}-${S}-01`, `00-${T.toUpperCase()}-${S}-01`, `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T}-${S}-01-x`, 'junk']) {
    assert.equal(extractTrace({ traceparent: bad }), undefined, bad);
  }
});

test('B3 multi and single headers; 64-bit ids padded; decision-only headers', () => {
  assert.deepEqual(extractTrace({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' }), { traceId: T, parentSpanId: S, sampled: true, tracestate: undefined, b3Single: false });
  assert.equal(extractTrace({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': S })?.traceId, `0000000000000000a3ce929d0e0e4736`);
  assert.equal(extractTrace({ 'x-b3-traceid': T, 'x-b3-spanid': S })?.sampled, undefined, 'no decision: deferred');
  assert.equal(extractTrace({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' })?.sampled, true, 'debug');
  assert.deepEqual(extractTrace({ b3: `${T}-${S}-0-05e3ac9a4f6e3b90` }), { traceId: T, parentSpanId: S, sampled: false, tracestate: undefined, b3Single: true });
  assert.deepEqual(extractTrace({ b3: '0' }), { traceId: undefined, parentSpanId: undefined, sampled: false, tracestate: undefined, b3Single: true });
  assert.equal(extractTrace({ 'x-b3-sampled': '0' })?.sampled, false);
  // traceparent wins over B3; a bad traceparent falls back to B3.
  assert.equal(extractTrace({ traceparent: `00-${T}-${S}-01`, b3: `${'1'.repeat(32)}-${S}-1` })?.traceId, T);
  assert.equal(extractTrace({ traceparent: 'bad', b3: `${T}-${S}-1` })?.traceId, T);
  assert.equal(extractTrace({}), undefined);
});

test('inject writes W3C and B3 multi (and b3 single when the request used it)', () => {
  const h: Record<string, string | string[]> = { b3: 'x', tracestate: 'old', 'x-b3-flags': '1' };
  injectTrace(h, T, S, '05e3ac9a4f6e3b90', true, 'a=1', true);
  assert.deepEqual(h, {
    traceparent: `00-${T}-${S}-01`, tracestate: 'a=1', 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-parentspanid': '05e3ac9a4f6e3b90', 'x-b3-sampled': '1',
    b3: `${T}-${S}-1-05e3ac9a4f6e3b90`,
  });
  const g: Record<string, string | string[]> = { b3: 'x', 'x-b3-parentspanid': 'stale' };
  injectTrace(g, T, S, undefined, false, undefined, false);
  assert.deepEqual(g, { traceparent: `00-${T}-${S}-00`, 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0' });
});

test('ids: lower-case hex of the right length, distinct', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = newTraceId();
    const s = newSpanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    ids.add(t);
  }
  assert.equal(ids.size, 1000);
});
