import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkDuration, checkEndpointAddress, checkIpOrCidr, checkIstioHost, checkNamespacedHost, checkPort, checkPortOrName,
  checkRe2, parseDurationMs,
} from './values.ts';

test('durations: Go/protobuf syntax', () => {
  assert.equal(parseDurationMs('1s'), 1000);
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('1h30m'), 5_400_000);
  assert.equal(parseDurationMs('0.25s'), 250);
  assert.equal(parseDurationMs('0'), 0);
  for (const bad of ['1', '1 s', '-1s', '1x', '', 's', '1.s.']) assert.equal(checkDuration(bad)?.code, 'BAD_DURATION', bad);
  assert.equal(checkDuration(5)?.code, 'WRONG_TYPE');
});

test('RE2: rejects what Envoy rejects, accepts RE2-only syntax', () => {
  for (const ok of ['^/api/v[0-9]+$', '(?P<name>a+)', '(?i)abc', '\\Aabc\\z', '[[:alpha:]]+', 'a{2,1000}', '\\Qa.b\\E', '[(?=]']) {
    assert.equal(checkRe2(ok), undefined, ok);
  }
  for (const bad of ['(?=a)', '(?!a)', '(?<=a)b', '(?<!a)b', '(a)\\1', '(?<n>a)\\k<n>', '(?>a)', 'a++', 'a{1001}', '(', '[a', '*a']) {
    assert.ok(checkRe2(bad), bad);
  }
});

test('IPs and CIDRs', () => {
  for (const ok of ['10.0.0.0/8', '1.2.3.4', '2001:db8::/32', '::1', '0.0.0.0/0']) assert.equal(checkIpOrCidr(ok), undefined, ok);
  for (const bad of ['10.0.0.0/33', '300.1.1.1', '1.2.3.4/', '2001:db8::/129', 'example.com', '10.0.0.0/8/8']) assert.equal(checkIpOrCidr(bad)?.code, 'BAD_CIDR', bad);
});

test('ports and named ports', () => {
  assert.equal(checkPort(1), undefined);
  assert.equal(checkPort(65535), undefined);
  assert.equal(checkPort(0)?.code, 'BAD_PORT');
  assert.equal(checkPort(65536)?.code, 'BAD_PORT');
  assert.equal(checkPort(1.5)?.code, 'WRONG_TYPE');
  assert.equal(checkPortOrName('http-web'), undefined);
  assert.equal(checkPortOrName('8080'), undefined);
  assert.equal(checkPortOrName('HTTP')?.code, 'BAD_PORT');
});

test('hosts', () => {
  for (const ok of ['*', '*.example.com', 'reviews', 'reviews.default.svc.cluster.local', '10.1.2.3']) assert.equal(checkIstioHost(ok), undefined, ok);
  for (const bad of ['a b', 'a..b', 'http://x', '-a.com']) assert.equal(checkIstioHost(bad)?.code, 'BAD_HOSTNAME', bad);
  for (const ok of ['*/*', './reviews', 'istio-system/*.example.com', '~/*', 'example.com']) assert.equal(checkNamespacedHost(ok), undefined, ok);
  for (const bad of ['a/b/c', 'Bad_NS/x', './bad host']) assert.equal(checkNamespacedHost(bad)?.code, 'BAD_HOSTNAME', bad);
  assert.equal(checkEndpointAddress('unix:///var/run/app.sock'), undefined);
  assert.equal(checkEndpointAddress('vm-1.internal'), undefined);
  assert.equal(checkEndpointAddress('not an address')?.code, 'BAD_VALUE');
});
