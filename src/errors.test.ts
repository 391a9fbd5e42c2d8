import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrellisError, hasCode, describeError } from './errors.ts';

test('TrellisError carries code, context and cause', () => {
  const cause = new Error('boom');
  const err = new TrellisError('CONFIG_PARSE', 'file a.yaml: bad', { cause, context: { file: 'a.yaml' } });
  assert.equal(err.code, 'CONFIG_PARSE');
  assert.equal(err.cause, cause);
  assert.equal(err.context.file, 'a.yaml');
  assert.ok(hasCode(err, 'CONFIG_PARSE'));
  assert.ok(!hasCode(err, 'OTHER'));
  assert.ok(!hasCode(new Error('x'), 'CONFIG_PARSE'));
  assert.equal(describeError(err), 'file a.yaml: bad');
  assert.equal(describeError('plain'), 'plain');
});
