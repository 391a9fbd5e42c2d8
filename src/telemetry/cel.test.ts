import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CelError, compileCel, evaluateCel, type CelValue } from './cel.ts';

const attrs: Record<string, CelValue> = {
  'response.code': 503,
  'request.method': 'GET',
  'request.path': '/api/v1/items?x=1',
  'request.headers': new Map([['x-user', 'jason'], ['user-agent', 'curl/8']]),
  'connection.mtls': true,
  'upstream.port': 8080,
};
const run = (e: string) => evaluateCel(compileCel(e), (p) => attrs[p]);

test('Istio access-log filter expressions', () => {
  assert.equal(run('response.code >= 400'), true);
  assert.equal(run('response.code >= 400 && request.method == "POST"'), false);
  assert.equal(run("response.code == 503 || request.headers['x-user'] == 'nobody'"), true);
  assert.equal(run("request.headers['x-user'] == 'jason'"), true);
  assert.equal(run('!connection.mtls'), false);
  assert.equal(run("request.path.startsWith('/api/')"), true);
  assert.equal(run("request.headers['user-agent'].contains('curl')"), true);
  assert.equal(run("request.path.matches('^/api/v[0-9]+/')"), true);
  assert.equal(run('response.code in [500, 503]'), true);
  assert.equal(run("'x-user' in request.headers"), true);
  assert.equal(run("has(request.headers['x-missing'])"), false);
  assert.equal(run('has(request.id)'), false);
  assert.equal(run('(response.code < 500) || upstream.port == 8080'), true);
});

test('errors: a missing attribute or a type error is no value, except where || / && decide anyway', () => {
  assert.equal(run('request.id == "x"'), undefined);
  assert.equal(run("request.headers['x-missing'] == 'a'"), undefined);
  assert.equal(run('request.method > 3'), undefined);
  assert.equal(run('request.id == "x" || response.code == 503'), true);
  assert.equal(run('request.id == "x" && response.code == 200'), false);
});

test('malformed expressions are CelErrors at compile time', () => {
  for (const bad of ['response.code >=', "request.headers['x", 'a.b.c(1)', 'response.code == #', 'foo(']) {
    assert.throws(() => compileCel(bad), CelError, bad);
  }
});
