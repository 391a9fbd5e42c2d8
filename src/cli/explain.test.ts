import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainText, kindsNamed } from './explain.ts';
import { UsageError } from './args.ts';

test('explain finds kinds by any case or plural, and asks for an API version when two share a name', () => {
  assert.equal(kindsNamed('workload')[0].kind, 'Workload');
  assert.equal(kindsNamed('VirtualServices')[0].kind, 'VirtualService');
  assert.equal(kindsNamed('gateway').length, 2);
  assert.equal(kindsNamed('gateway', 'gateway.networking.k8s.io/v1')[0].group, 'gateway.networking.k8s.io');
  assert.deepEqual(kindsNamed('nope'), []);
});

test('explain prints a kind, a field with its facts, and refuses unknown fields', () => {
  const [w] = kindsNamed('workload');
  const top = explainText(w, [], false);
  assert.match(top, /^KIND: {5}Workload\nVERSION: {2}trellis\.dev\/v1alpha1/);
  assert.match(top, /spec\t<Object>  \(required\)/);
  const replicas = explainText(w, ['spec', 'replicas'], false);
  assert.match(replicas, /FIELD: {4}spec\.replicas <integer>  \(default 1\)/);
  assert.match(replicas, /How many copies to run/);
  const ports = explainText(w, ['spec', 'ports'], true);
  assert.match(ports, /protocol\t<string>  \(one of HTTP, HTTP2, GRPC, TCP\)/);
  assert.throws(() => explainText(w, ['spec', 'nope'], false), (err: unknown) => err instanceof UsageError && /has no field 'spec\.nope'/.test((err as Error).message));
});
