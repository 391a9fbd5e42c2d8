import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHttpReply, checkMeshResponse, prepare, untilConsistent } from './checker.ts';
import { parseClientOutput } from './mesh-client.ts';
import { deploymentOfPod, endpointObjects, parseSelector, podsOf, servicesOf } from './workloads.ts';
import { percentMirrorFor, skipReason } from './runner.ts';
import { objectsOf, type CaseFile } from './corpus.ts';
import type { Reply } from './clients.ts';

const echo = (over: Partial<NonNullable<Reply['echo']>> = {}): Reply => ({
  status: 200,
  headers: {},
  echo: { path: '/', host: 'h', method: 'GET', proto: 'HTTP/1.1', headers: {}, namespace: 'ns', pod: 'infra-backend-v1-abc-def', ...over },
});

test('checker: status, backend, namespace, headers, absent headers', () => {
  const req = { path: '/', headers: { A: 'x' } };
  const sent = prepare(req, {});
  assert.equal(sent.headers['X-Echo-Set-Header'], '');
  assert.equal(checkHttpReply(sent, req, { namespace: 'ns', backend: 'infra-backend-v1' }, echo({ headers: { A: ['x'] } })), undefined);
  assert.match(checkHttpReply(sent, req, { namespace: 'ns' }, echo())!, /header A/);
  assert.match(checkHttpReply(sent, req, { namespace: 'other' }, echo({ headers: { A: ['x'] } }))!, /namespace/);
  assert.match(checkHttpReply(sent, req, { namespace: 'ns', backend: 'web' }, echo({ headers: { A: ['x'] } }))!, /pod/);
  assert.match(checkHttpReply(sent, req, { status: 404 }, echo())!, /status 200/);
  assert.match(checkHttpReply(sent, req, {}, { status: 0, headers: {}, error: 'ECONNREFUSED' })!, /transport error/);
  const r2 = { path: '/', headers: {} };
  assert.match(checkHttpReply(prepare(r2, {}), r2, { namespace: 'ns', request: { absentHeaders: ['X-Gone'] } }, echo({ headers: { 'X-Gone': ['1'] } }))!, /absent/);
});

test('checker: 408/504 accept each other; non-JSON replies have empty namespace', () => {
  const req = { path: '/?delay=2s' };
  assert.equal(checkHttpReply(prepare(req, {}), req, { status: 504 }, { status: 408, headers: {} }), undefined);
  assert.match(checkHttpReply(prepare(req, {}), req, { namespace: 'ns' }, { status: 200, headers: {} })!, /path ''/);
});

test('checker: redirects (host, scheme, path, default ports)', () => {
  const req = { path: '/a', unfollowRedirect: true };
  const sent = prepare(req, {});
  const loc = (l: string): Reply => ({ status: 302, headers: { location: [l] } });
  assert.equal(checkHttpReply(sent, req, { status: 302, redirect: { host: 'example.org' } }, loc('http://example.org/a')), undefined);
  assert.equal(checkHttpReply(sent, req, { status: 302, redirect: { host: 'example.org' } }, loc('http://example.org:80/a')), undefined);
  assert.match(checkHttpReply(sent, req, { status: 302, redirect: { host: 'example.org' } }, loc('http://example.org:8080/a'))!, /port/);
  assert.match(checkHttpReply(sent, req, { status: 302, redirect: { scheme: 'https' } }, loc('http://x/a'))!, /scheme/);
  assert.equal(checkHttpReply(sent, req, { status: 302, redirect: { scheme: 'https', port: '8443' } }, loc('https://x:8443/a')), undefined);
  assert.match(checkHttpReply(sent, req, { status: 302, redirect: {} }, { status: 302, headers: {} })!, /Location/);
});

test('prepare: {uuid} per attempt, request id on sent and expected path', () => {
  const a = prepare({ path: '/retry?uuid={uuid}' }, {});
  const b = prepare({ path: '/retry?uuid={uuid}' }, {});
  assert.notEqual(a.path, b.path);
  const p = prepare({ path: '/mirror', addRequestId: true }, { request: { path: '/mirror' } }, 'id1');
  assert.equal(p.path, '/mirror?gateway-api-conformance-request-id=id1');
  assert.equal(p.expectedPath, p.path);
});

test('mesh client output: parsed per index; comparer checks status, headers, Hostname', () => {
  const out = '[0] StatusCode=200\n[0] Hostname=echo-v1-aaa-bbb\n[0] RequestHeader=X-A:1\n[0] ResponseHeader=X-B:2\n[1] Error=boom\nnoise\n';
  const rs = parseClientOutput(out);
  assert.equal(rs.length, 2);
  assert.equal(checkMeshResponse({ backend: 'echo-v1', request: { headers: { 'X-A': '1' } }, response: { headers: { 'X-B': '2' } } }, rs[0], false), undefined);
  assert.match(checkMeshResponse({ backend: 'echo-v2' }, rs[0], false)!, /Hostname/);
  assert.match(checkMeshResponse({}, rs[1], false)!, /boom/);
  assert.equal(checkMeshResponse({ status: 0 }, rs[0], true), undefined, 'gRPC: 0 stands for 200');
});

test('untilConsistent: needs 3 in a row; reports the last failure', async () => {
  let n = 0;
  assert.equal(await untilConsistent(async () => (++n === 2 ? 'flake' : undefined)), undefined);
  assert.equal(n, 5);
  assert.equal(await untilConsistent(async () => 'always', 3, 300), 'always');
});

test('workloads: a pod per replica, endpoints for every selecting Service', () => {
  const objs = objectsOf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns}
spec: {replicas: 2, template: {metadata: {labels: {app: web}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns}
spec: {selector: {app: web}, ports: [{name: http, port: 8080, targetPort: 3000}]}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: ns}
spec: {selector: {app: nope}, ports: [{port: 80}]}
`);
  const pods = podsOf(objs);
  assert.equal(pods.length, 2);
  assert.match(pods[0].name, /^web-[a-z0-9]{10}-[a-z0-9]{5}$/);
  assert.equal(deploymentOfPod(pods[0].name), 'web');
  const eps = endpointObjects(pods[0], servicesOf(objs), (t) => (t === 3000 ? 41000 : undefined));
  assert.deepEqual(eps.map((o) => o.kind), ['Pod', 'EndpointSlice']);
  assert.deepEqual(eps[1].ports, [{ name: 'http', port: 41000, protocol: 'TCP' }]);
  assert.deepEqual(parseSelector('app=echo,version=v1'), { app: 'echo', version: 'v1' });
});

test('percentage mirror and skip reasons', () => {
  const objs = objectsOf(`
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  rules:
    - matches: [{path: {type: PathPrefix, value: /m}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v2}, percent: 20}}]
    - matches: [{path: {type: PathPrefix, value: /m-fraction}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v3}, fraction: {numerator: 25, denominator: 50}}}]
`);
  assert.deepEqual(percentMirrorFor(objs, '/m'), { percent: 20, namespace: 'ns', service: 'v2' });
  assert.deepEqual(percentMirrorFor(objs, '/m-fraction'), { percent: 50, namespace: 'ns', service: 'v3' });
  assert.equal(percentMirrorFor(objs, '/x'), undefined);
  const base: CaseFile = { name: 'x', file: 'x.yaml', profile: 'gateway', cases: [] };
  assert.equal(skipReason(base), undefined);
  assert.equal(skipReason({ ...base, cases: [{ request: { scheme: 'https' }, expect: {} }] }), undefined, 'HTTPS runs (Secret + SDS)');
  assert.equal(skipReason({ ...base, websocket: {} }), undefined, 'WebSocket exchanges run against the echo /ws endpoint');
});
