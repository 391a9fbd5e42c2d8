import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectsOf, type StatusCheck } from './corpus.ts';
import { CONTROLLER_NAME, checkStatus, evaluateStatusChecks, gatewayClassObject, knownCheck, statusViewOf } from './status-checks.ts';

// A Gateway with two listeners; one route attaches to `a` only, one intersects no listener hostname.
const objects = [gatewayClassObject('trellis'), ...objectsOf(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {selector: {app: web}, ports: [{name: http, port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: trellis
  listeners:
  - {name: a, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: b, port: 80, protocol: HTTP, hostname: "*.wild.io"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-a, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: nowhere, namespace: infra}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [wild.io]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
`)];

const gwRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra', name: 'gw' };
const noMatch: StatusCheck = {
  route: 'infra/nowhere',
  namespaceRequired: true,
  parents: [{ parentRef: gwRef, controllerName: '{CONTROLLER_NAME}', conditions: [{ type: 'Accepted', status: 'False', reason: 'NoMatchingListenerHostname' }] }],
};
const listenersCheck: StatusCheck = {
  gateway: 'infra/gw',
  listeners: [
    { name: 'a', supportedKinds: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }], attachedRoutes: 1, conditions: [{ type: 'Accepted', status: 'True' }, { type: 'ResolvedRefs', status: 'True' }] },
    { name: 'b', supportedKinds: [{ kind: 'HTTPRoute' }], attachedRoutes: 0, conditions: [{ type: 'Accepted', status: 'True' }] },
  ],
};

test('status checks: exact parents and listeners documents hold for the status Trellis computes', () => {
  assert.deepEqual(evaluateStatusChecks(objects, [noMatch, listenersCheck]), { failures: [], unsupported: [] });
});

test('status checks: exact parents fail on a wrong reason, a missing namespace, a wrong controller or a parent too many', () => {
  const view = statusViewOf(objects);
  const parent = noMatch.parents![0];
  assert.match(checkStatus({ ...noMatch, parents: [{ ...parent, conditions: [{ type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners' }] }] }, view)!, /NotAllowedByListeners/);
  assert.match(checkStatus({ ...noMatch, parents: [{ ...parent, controllerName: 'example.com/other' }] }, view)!, new RegExp(`controllerName ${CONTROLLER_NAME}`));
  assert.match(checkStatus({ ...noMatch, parents: [parent, parent] }, view)!, /2 parents expected, got 1/);
  // to-a's parentRef names no namespace: fine unless the namespace is required.
  const toA: StatusCheck = { route: 'infra/to-a', parents: [{ ...parent, conditions: [{ type: 'Accepted', status: 'True' }] }] };
  assert.equal(checkStatus(toA, view), undefined);
  assert.match(checkStatus({ ...toA, namespaceRequired: true }, view)!, /parentRef.namespace undefined/);
  assert.match(checkStatus({ ...noMatch, route: 'infra/absent' }, view)!, /no such route/);
});

test('status checks: exact listeners fail on attachedRoutes, a missing kind, a listener too many or too few', () => {
  const view = statusViewOf(objects);
  const [a, b] = listenersCheck.listeners!;
  assert.match(checkStatus({ ...listenersCheck, listeners: [{ ...a, attachedRoutes: 2 }, b] }, view)!, /listener a: attachedRoutes 1, want 2/);
  assert.match(checkStatus({ ...listenersCheck, listeners: [a, { ...b, supportedKinds: [{ kind: 'TLSRoute' }] }] }, view)!, /lack TLSRoute/);
  assert.match(checkStatus({ ...listenersCheck, listeners: [a] }, view)!, /1 listeners expected, got a, b/);
  assert.match(checkStatus({ ...listenersCheck, listeners: [a, { ...b, supportedKinds: [] }] }, view)!, /want none/);
  assert.match(checkStatus({ ...listenersCheck, listeners: [a, { ...b, conditions: [{ type: 'Programmed', status: 'False' }] }] }, view)!, /want conditions Programmed=False/);
});

test('status checks: a check of an unknown shape is unsupported (skipped), never passed', () => {
  assert.equal(knownCheck({ route: 'infra/to-a' }), false);
  assert.deepEqual(evaluateStatusChecks(objects, [{ route: 'infra/to-a' }]).unsupported.length, 1);
});
