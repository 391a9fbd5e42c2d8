import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEdgeRules, clientAddress, internalAddresses, normalizeAddress, requestHeaders, requestScheme, type EdgeRules } from './downstream.ts';

const rules = (o: Partial<EdgeRules> = {}): EdgeRules => ({ useRemoteAddress: false, xffNumTrustedHops: 0, generateRequestId: true, preserveExternalRequestId: false, internal: internalAddresses(undefined), localAddress: '192.0.2.7', ...o });
const rfc1918 = internalAddresses([{ address: '10.0.0.0', prefixLen: 8 }]);

test('request headers drop pseudo, hop-by-hop and Connection-listed headers; te: trailers survives', () => {
  assert.deepEqual(requestHeaders({ ':path': '/', host: 'h', connection: 'keep-alive, x-secret', 'keep-alive': '5', 'x-secret': '1', 'transfer-encoding': 'chunked', upgrade: 'h2c', te: 'trailers, deflate', 'x-ok': 'y' }), { te: 'trailers', 'x-ok': 'y' });
  assert.deepEqual(requestHeaders({ te: 'gzip' }), {});
  // Repeated fields stay separate values (as Envoy forwards them); node's single-value fields do not split.
  assert.deepEqual(
    requestHeaders({ 'x-a': 'b, c', 'x-one': 'v', 'content-type': 'text/plain', cookie: 'a=1; b=2' }, ['X-A', 'b', 'x-a', 'c', 'x-one', 'v', 'Content-Type', 'text/plain', 'content-type', 'x', 'cookie', 'a=1', 'cookie', 'b=2']),
    { 'x-a': ['b', 'c'], 'x-one': 'v', 'content-type': 'text/plain', cookie: 'a=1; b=2' },
  );
  // HTTP/2: node keeps the first of two user-agent lines; both are forwarded, as by Envoy.
  assert.deepEqual(requestHeaders({ 'user-agent': 'a', cookie: 'x=1; y=2' }, [':path', '/', 'user-agent', 'a', 'user-agent', 'b', 'cookie', 'x=1', 'cookie', 'y=2'], true), { 'user-agent': ['a', 'b'], cookie: 'x=1; y=2' });
  // The proxy answers 100-continue itself (Envoy's proxy_100_continue off); other expectations are the backend's.
  assert.deepEqual(requestHeaders({ expect: '100-Continue', 'x-a': '1' }), { 'x-a': '1' });
  assert.deepEqual(requestHeaders({ expect: 'foo' }), { expect: 'foo' });
  assert.equal(normalizeAddress('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeAddress('::1'), '::1');
});

test('x-forwarded-for, x-forwarded-proto, request ids and internal/external handling', () => {
  const h1: Record<string, string | string[]> = { 'x-forwarded-for': '1.1.1.1', 'x-envoy-retry-on': '5xx', 'x-request-id': 'abc' };
  const id = applyEdgeRules(h1, rules({ useRemoteAddress: true }), '8.8.8.8', 'https');
  assert.equal(h1['x-forwarded-for'], '1.1.1.1, 8.8.8.8');
  assert.equal(h1['x-forwarded-proto'], 'https');
  assert.equal(h1['x-envoy-retry-on'], undefined, 'external: x-envoy-* stripped');
  assert.equal(h1['x-envoy-external-address'], '8.8.8.8');
  assert.notEqual(id, 'abc', 'external request ids are regenerated');
  const h2: Record<string, string | string[]> = { 'x-envoy-retry-on': '5xx', 'x-request-id': 'abc' };
  assert.equal(applyEdgeRules(h2, rules({ useRemoteAddress: true, internal: rfc1918 }), '10.1.1.1', 'http'), 'abc');
  assert.equal(h2['x-envoy-internal'], 'true');
  assert.equal(h2['x-envoy-retry-on'], '5xx');
  const h3: Record<string, string | string[]> = { 'x-forwarded-proto': 'https' };
  applyEdgeRules(h3, rules(), '10.1.1.1', 'http');
  assert.equal(h3['x-forwarded-proto'], 'https', 'not the edge: keep what the previous hop said');
  assert.equal(h3['x-forwarded-for'], undefined);
  const h4: Record<string, string | string[]> = { 'x-request-id': 'keep' };
  assert.equal(applyEdgeRules(h4, rules({ useRemoteAddress: true, preserveExternalRequestId: true }), '8.8.8.8', 'http'), 'keep');
  // Envoy 1.36+: without internal_address_config no address is internal, not even RFC 1918 or loopback.
  const h5: Record<string, string | string[]> = { 'x-envoy-retry-on': '5xx' };
  applyEdgeRules(h5, rules({ useRemoteAddress: true }), '10.1.1.1', 'http');
  assert.equal(h5['x-envoy-retry-on'], undefined);
  assert.equal(h5['x-envoy-external-address'], '10.1.1.1');
  // A loopback peer is recorded in x-forwarded-for as the proxy's own address (Envoy's local_info).
  const h6: Record<string, string | string[]> = { 'x-forwarded-for': '1.2.3.4' };
  applyEdgeRules(h6, rules({ useRemoteAddress: true }), '127.0.0.1', 'http');
  assert.equal(h6['x-forwarded-for'], '1.2.3.4, 192.0.2.7');
  assert.equal(h6['x-envoy-external-address'], '127.0.0.1');
});

test('trusted client address from x-forwarded-for and xff_num_trusted_hops', () => {
  const xff = { 'x-forwarded-for': '192.0.2.10, 203.0.113.1, 10.0.0.1' };
  assert.equal(clientAddress(xff, rules({ useRemoteAddress: true }), '10.9.9.9'), '10.9.9.9');
  assert.equal(clientAddress(xff, rules(), '10.9.9.9'), '10.0.0.1');
  assert.equal(clientAddress(xff, rules({ xffNumTrustedHops: 1 }), '10.9.9.9'), '203.0.113.1');
  // After our own append (10.0.0.1 = the peer), two trusted hops point at the original client.
  assert.equal(clientAddress(xff, rules({ useRemoteAddress: true, xffNumTrustedHops: 2 }), '10.0.0.1'), '192.0.2.10');
  assert.equal(clientAddress({}, rules(), '10.9.9.9'), '10.9.9.9');
  assert.equal(clientAddress(xff, rules({ xffNumTrustedHops: 5 }), '10.9.9.9'), '10.9.9.9');
  // Empty entries and padding are skipped; a field on several lines is one list.
  assert.equal(clientAddress({ 'x-forwarded-for': ' a , ,b,c ' }, rules({ xffNumTrustedHops: 1 }), 'r'), 'b');
  assert.equal(clientAddress({ 'x-forwarded-for': ',,,' }, rules(), 'r'), 'r');
  assert.equal(clientAddress({ 'x-forwarded-for': ['x, y', 'z'] }, rules({ xffNumTrustedHops: 2 }), 'r'), 'x');
  assert.equal(clientAddress({ 'x-forwarded-for': '' }, rules(), 'r'), 'r');
});

test('request scheme as Envoy sets :scheme: an HTTP/2 client\'s own, else a valid x-forwarded-proto, else the connection\'s', () => {
  assert.equal(requestScheme({}, undefined, false), 'http');
  assert.equal(requestScheme({}, undefined, true), 'https');
  assert.equal(requestScheme({ 'x-forwarded-proto': 'https' }, undefined, false), 'https', 'a TLS-terminating hop in front');
  assert.equal(requestScheme({ 'x-forwarded-proto': 'HTTP' }, undefined, true), 'http');
  assert.equal(requestScheme({ 'x-forwarded-proto': 'ftp' }, undefined, true), 'https', 'not a valid scheme: the connection decides');
  assert.equal(requestScheme({ 'x-forwarded-proto': 'https' }, 'http', false), 'http', 'HTTP/2 :scheme wins');
});
