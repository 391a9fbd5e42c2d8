import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, isRetriableFailure, isRetriableResponse } from './retry-state.ts';
import { compileRetryPolicy } from './route-action.ts';
import { UpstreamError } from '../upstream/types.ts';
import { grpcTimeoutMs } from './router.ts';
import { shadowAuthority } from './mirror.ts';

const policy = (retry_on: string, extra: object = {}) => compileRetryPolicy({ retry_on, ...extra }, 'p')!;

test('retriable responses per retry_on condition', () => {
  const cases: [string, number, Record<string, string>, boolean, boolean][] = [
    ['5xx', 500, {}, false, true], ['5xx', 503, {}, false, true], ['5xx', 404, {}, false, false],
    ['gateway-error', 500, {}, false, false], ['gateway-error', 502, {}, false, true], ['gateway-error', 504, {}, false, true],
    ['retriable-4xx', 409, {}, false, true], ['retriable-4xx', 404, {}, false, false],
    ['retriable-status-codes', 418, {}, false, false],
    ['envoy-ratelimited', 429, { 'x-envoy-ratelimited': 'true' }, false, true], ['envoy-ratelimited', 429, {}, false, false],
    ['unavailable', 200, { 'grpc-status': '14' }, true, true], ['unavailable', 200, { 'grpc-status': '14' }, false, false],
    ['cancelled', 200, { 'grpc-status': '1' }, true, true], ['deadline-exceeded', 200, { 'grpc-status': '4' }, true, true],
    ['internal', 200, { 'grpc-status': '13' }, true, true], ['resource-exhausted', 200, { 'grpc-status': '8' }, true, true],
    ['unavailable', 200, { 'grpc-status': '13' }, true, false], ['5xx', 200, { 'grpc-status': '14' }, true, false],
  ];
  for (const [on, status, headers, grpc, want] of cases) assert.equal(isRetriableResponse(policy(on), status, headers, grpc), want, `${on} ${status} ${JSON.stringify(headers)}`);
  assert.equal(isRetriableResponse(policy('retriable-status-codes', { retriable_status_codes: [418] }), 418, {}, false), true);
  assert.equal(isRetriableResponse(policy('retriable-headers', { retriable_headers: [{ name: 'x-retry-me', present_match: true }] }), 200, { 'x-retry-me': '1' }, false), true);
  assert.equal(isRetriableResponse(policy('retriable-headers', { retriable_headers: [{ name: 'x-retry-me', present_match: true }] }), 200, {}, false), false);
});

test('retriable failures: connect failure, resets, refused streams, per-try timeouts; never overflow or no-healthy', () => {
  const uf = new UpstreamError('UF', 'x');
  const ur = new UpstreamError('UR', 'x');
  const refused = new UpstreamError('UR', 'x', { refusedStream: true });
  assert.equal(isRetriableFailure(policy('connect-failure'), uf), true);
  assert.equal(isRetriableFailure(policy('connect-failure'), ur), false);
  assert.equal(isRetriableFailure(policy('reset'), ur), true);
  assert.equal(isRetriableFailure(policy('5xx'), uf), true);
  assert.equal(isRetriableFailure(policy('gateway-error'), ur), true);
  assert.equal(isRetriableFailure(policy('refused-stream'), refused), true);
  assert.equal(isRetriableFailure(policy('refused-stream'), ur), false);
  assert.equal(isRetriableFailure(policy('retriable-4xx'), uf), false);
  assert.equal(isRetriableFailure(policy('5xx'), 'per-try-timeout'), true);
  assert.equal(isRetriableFailure(policy('connect-failure'), 'per-try-timeout'), false);
  assert.equal(isRetriableFailure(policy('5xx,reset,connect-failure'), new UpstreamError('UO', 'x')), false);
  assert.equal(isRetriableFailure(policy('5xx,reset,connect-failure'), new UpstreamError('UH', 'x')), false);
});

test("back-off: Envoy's jittered exponential, capped at max_interval (default 10x base)", () => {
  const p = policy('5xx');
  assert.equal(backoffMs(p, 1, 0.999), 24);
  assert.equal(backoffMs(p, 2, 0.999), 74);
  assert.equal(backoffMs(p, 3, 0.999), 174);
  assert.equal(backoffMs(p, 10, 0.999), 249);
  assert.equal(backoffMs(p, 3, 0), 0);
  assert.equal(backoffMs(policy('5xx', { retry_back_off: { base_interval: '0.1s', max_interval: '0.15s' } }), 5, 0.5), 75);
});

test('grpc-timeout parsing and shadow authorities', () => {
  assert.equal(grpcTimeoutMs('100m'), 100);
  assert.equal(grpcTimeoutMs('2S'), 2000);
  assert.equal(grpcTimeoutMs('1M'), 60000);
  assert.equal(grpcTimeoutMs('1H'), 3600000);
  assert.equal(grpcTimeoutMs('500u'), 1);
  assert.equal(grpcTimeoutMs('5'), undefined);
  assert.equal(grpcTimeoutMs('123456789S'), undefined);
  assert.equal(shadowAuthority('svc'), 'svc-shadow');
  assert.equal(shadowAuthority('svc.ns:8080'), 'svc.ns-shadow:8080');
  assert.equal(shadowAuthority('[::1]'), '[::1]-shadow');
});
