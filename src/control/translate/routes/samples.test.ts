/**
 * Simulation tests on the Istio samples: the behaviour Istio's documentation describes for the
 * Bookinfo tasks, checked by evaluating synthetic requests against the generated route tables.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildIstioGatewayRoute, buildSidecarOutboundRoute } from './index.ts';
import { evaluate, inputsFromYaml, testProxy } from './test-support.ts';
import { sharedDir, skipUnlessShared } from '../../../../test/support/skip.ts';

const samples = resolve(sharedDir, 'istio-samples');
const skip = skipUnlessShared('istio-samples/bookinfo.yaml');
const read = (f: string): string => readFileSync(resolve(samples, f), 'utf8');
const productpage = testProxy('default', { app: 'productpage', version: 'v1' });
const reviewsV2 = testProxy('default', { app: 'reviews', version: 'v2' });

function sidecar(vs: string, proxy = productpage) {
  const inputs = inputsFromYaml([read('bookinfo.yaml'), read('destination-rule-all.yaml'), read(vs)].join('\n---\n'));
  return buildSidecarOutboundRoute(inputs, proxy, 9080);
}

test('jason-v2-v3: end-user jason -> reviews v2, everyone else v3', { skip }, () => {
  const rc = sidecar('virtual-service-reviews-jason-v2-v3.yaml');
  assert.equal(evaluate(rc, { host: 'reviews:9080', headers: { 'end-user': 'jason' } }).cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.equal(evaluate(rc, { host: 'reviews:9080', headers: { 'end-user': 'mary' } }).cluster, 'outbound|9080|v3|reviews.default.svc.cluster.local');
  assert.equal(evaluate(rc, { host: 'reviews.default.svc.cluster.local' }).cluster, 'outbound|9080|v3|reviews.default.svc.cluster.local');
});

test('80-20: weights 80 v1 / 20 v2', { skip }, () => {
  const rc = sidecar('virtual-service-reviews-80-20.yaml');
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const c = evaluate(rc, { host: 'reviews' }, (i + 0.5) / 100).cluster!;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), {
    'outbound|9080|v1|reviews.default.svc.cluster.local': 80,
    'outbound|9080|v2|reviews.default.svc.cluster.local': 20,
  });
});

test('ratings delay: jason gets a 7s fixed delay at 100%, others none', { skip }, () => {
  const rc = sidecar('virtual-service-ratings-test-delay.yaml', reviewsV2);
  const jason = evaluate(rc, { host: 'ratings:9080', headers: { 'end-user': 'jason' } });
  assert.equal(jason.cluster, 'outbound|9080|v1|ratings.default.svc.cluster.local');
  const fault = (jason.route!.typed_per_filter_config as Record<string, Record<string, unknown>>)['envoy.filters.http.fault'];
  assert.deepEqual(fault.delay, { fixed_delay: '7s', percentage: { numerator: 1000000, denominator: 'MILLION' } });
  const other = evaluate(rc, { host: 'ratings:9080' });
  assert.equal(other.route!.typed_per_filter_config, undefined);
});

test('ratings abort: jason gets HTTP 500 at 100%', { skip }, () => {
  const rc = sidecar('virtual-service-ratings-test-abort.yaml', reviewsV2);
  const jason = evaluate(rc, { host: 'ratings', headers: { 'end-user': 'jason' } });
  const fault = (jason.route!.typed_per_filter_config as Record<string, Record<string, unknown>>)['envoy.filters.http.fault'];
  assert.deepEqual(fault.abort, { percentage: { numerator: 1000000, denominator: 'MILLION' }, http_status: 500 });
});

test('all-v1: every service to its v1 subset; unknown hosts pass through', { skip }, () => {
  const rc = sidecar('virtual-service-all-v1.yaml');
  for (const s of ['productpage', 'reviews', 'ratings', 'details']) {
    assert.equal(evaluate(rc, { host: s }).cluster, `outbound|9080|v1|${s}.default.svc.cluster.local`);
  }
  assert.equal(evaluate(rc, { host: 'example.com' }).cluster, 'PassthroughCluster');
});

test('bookinfo gateway: listed paths to productpage, others 404', { skip }, () => {
  const inputs = inputsFromYaml([read('bookinfo.yaml'), read('bookinfo-gateway.yaml')].join('\n---\n'));
  const gw = inputs.istioGateways[0];
  const rc = buildIstioGatewayRoute(inputs, testProxy('istio-system', { istio: 'ingressgateway' }, 'router'), 'http.8080', gw.spec.servers!.map((server) => ({ gateway: gw, server })));
  const pp = 'outbound|9080||productpage.default.svc.cluster.local';
  assert.equal(evaluate(rc, { host: 'bookinfo.example', path: '/productpage' }).cluster, pp);
  assert.equal(evaluate(rc, { host: 'x', path: '/static/css/a.css' }).cluster, pp);
  assert.equal(evaluate(rc, { host: 'x', path: '/api/v1/products/1' }).cluster, pp);
  assert.equal(evaluate(rc, { host: 'x', path: '/productpage/x' }).status, 404);
});
