import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateValue } from './validate.ts';
import type { ValidateOptions } from './validate.ts';
import type { SchemaIssue, SchemaNode } from './types.ts';
import { CHECKS, CHECK_TABLES, annotate } from './checks.ts';
import { kindCatalog } from './catalog.ts';
import { upstreamSchemas } from './upstream.ts';

const opts: ValidateOptions = { resolve: () => undefined, checks: CHECKS };

function run(value: unknown, schema: SchemaNode): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  validateValue(value, schema, 'spec', opts, out);
  return out;
}

const schema: SchemaNode = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string' },
    mode: { type: 'string', enum: ['A', 'B'], default: 'A' },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    list: { type: 'array', items: { type: 'object', properties: { x: { type: 'integer' } } } },
    free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    match: {
      type: 'object',
      properties: { exact: { type: 'string' }, prefix: { type: 'string' } },
      oneOf: [{ not: { anyOf: [{ required: ['exact'] }, { required: ['prefix'] }] } }, { required: ['exact'] }, { required: ['prefix'] }],
    },
  },
};

test('reports each mistake once with its path and code', () => {
  const issues = run({ nmae: 'x', port: 70000, list: [{ x: 'one' }, null], free: { anything: 1 }, match: { exact: 'a', prefix: 'b' } }, schema);
  const got = issues.map((i) => `${i.code} ${i.path}`).sort();
  assert.deepEqual(got, [
    'BAD_PORT spec.port',
    'ONEOF_CONFLICT spec.match',
    'REQUIRED_FIELD spec.name',
    'UNKNOWN_FIELD spec.nmae',
    'WRONG_TYPE spec.list[0].x',
    'WRONG_TYPE spec.list[1]',
  ]);
  assert.match(issues.find((i) => i.code === 'UNKNOWN_FIELD')!.message, /did you mean "name"/);
});

test('applies defaults to absent properties and drops explicit nulls', () => {
  const v: Record<string, unknown> = { name: 'x', port: null };
  assert.deepEqual(run(v, schema), []);
  assert.deepEqual(v, { name: 'x', mode: 'A' });
});

test('bad enum suggests the closest value', () => {
  const issues = run({ name: 'x', mode: 'a' }, schema);
  assert.equal(issues[0].code, 'BAD_ENUM');
});

test('every value-check path exists in the upstream schemas (annotations cannot silently vanish)', () => {
  kindCatalog(); // throws if a path is missing
  const up = upstreamSchemas();
  for (const [id, table] of Object.entries(CHECK_TABLES)) {
    const spec = structuredClone(up.get(id)!.properties!.spec);
    const missing = annotate(spec, table).filter((p) => !/mirrors|uriRegexRewrite|jwtRules\[\]\.timeout/.test(p));
    assert.deepEqual(missing, [], id);
  }
});
