import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveProxyName } from './proxy-name.ts';
import { TrellisError } from '../errors.ts';

const ids = [
  'sidecar~127.0.0.1~reviews-v1-a1b2c.default~default.svc.cluster.local',
  'sidecar~127.0.0.1~reviews-v1-canary-d3e4f.default~default.svc.cluster.local',
  'sidecar~127.0.0.1~ratings-v1-99999.shop~shop.svc.cluster.local',
  'router~127.0.0.1~istio-ingressgateway-5693fa.istio-system~istio-system.svc.cluster.local',
  'envoy-node-without-istio-form',
];

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as TrellisError).code;
  }
};

test('a proxy is named by replica, replica.namespace, node id, or a unique prefix of any', () => {
  assert.equal(resolveProxyName('reviews-v1-a1b2c', ids), ids[0]);
  assert.equal(resolveProxyName('reviews-v1-a1b2c.default', ids), ids[0]);
  assert.equal(resolveProxyName(ids[2], ids), ids[2]);
  assert.equal(resolveProxyName('ratings', ids), ids[2]);
  assert.equal(resolveProxyName('istio-ingressgateway', ids), ids[3]);
  assert.equal(resolveProxyName('router~', ids), ids[3]);
  assert.equal(resolveProxyName('envoy-node', ids), ids[4]);
});

test('ambiguous and unknown names are errors that list what is connected', () => {
  assert.equal(code(() => resolveProxyName('reviews-v1', ids)), 'PROXY_AMBIGUOUS');
  assert.throws(() => resolveProxyName('reviews', ids), /matches 2 proxies: reviews-v1-a1b2c\.default, reviews-v1-canary-d3e4f\.default/);
  assert.equal(code(() => resolveProxyName('details', ids)), 'PROXY_NOT_FOUND');
  assert.throws(() => resolveProxyName('x', []), /\(none connected\)/);
});
