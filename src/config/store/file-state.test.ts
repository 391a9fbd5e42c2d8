import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceTypes } from '../resource.ts';
import type { Diagnostic, Resource } from '../resource.ts';
import { destinationRule, virtualService } from './common.case.ts';
import { applyParse, mergeFiles, readFailed } from './file-state.ts';
import type { ParseResult } from './file-state.ts';

const VS = ResourceTypes.VirtualService;

function at(r: Resource, file: string, line: number): Resource {
  return Object.freeze({ ...r, source: { file, line } });
}

function ok(...resources: Resource[]): ParseResult {
  return { resources, diagnostics: [], rejected: [] };
}

const schemaError: Diagnostic = { severity: 'error', code: 'SCHEMA', message: 'spec.hosts: required', file: 'a.yaml', line: 1 };
const syntaxError: Diagnostic = { severity: 'error', code: 'YAML_SYNTAX', message: 'bad indentation', file: 'a.yaml', line: 3 };

function names(m: ReadonlyMap<string, Resource>): string[] {
  return [...m.values()].map((r) => `${r.kind}/${r.metadata.name}@${(r.spec as { hosts?: string[]; host?: string }).hosts?.[0] ?? (r.spec as { host?: string }).host}`);
}

function rejectedOf(e: { rejected: ReadonlyMap<string, { kind: string; name: string; reason: string }> }): string[] {
  return [...e.rejected.values()].map((r) => `${r.kind}/${r.name}: ${r.reason}`);
}

test('applyParse: a schema-invalid document rejects that resource only; the store keeps no old version', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r', 'v1'), virtualService('default', 's', 'v1')));
  const v2 = applyParse(v1, 'a.yaml', 't2', {
    resources: [virtualService('default', 's', 'v2')],
    diagnostics: [schemaError],
    rejected: [{ type: VS, namespace: 'default', name: 'r', file: 'a.yaml', line: 1 }],
  });
  assert.deepEqual(names(v2.resources), ['VirtualService/s@v2']);
  assert.deepEqual(rejectedOf(v2), ['VirtualService/r: the definition at a.yaml:1 is invalid']);
  assert.deepEqual(v2.diagnostics.map((d) => d.code), ['SCHEMA']);
  // fixed: back to normal
  const v3 = applyParse(v2, 'a.yaml', 't3', ok(virtualService('default', 'r', 'v3'), virtualService('default', 's', 'v2')));
  assert.deepEqual(names(v3.resources), ['VirtualService/r@v3', 'VirtualService/s@v2']);
  assert.equal(v3.rejected.size, 0);
  assert.deepEqual(v3.diagnostics, []);
});

test('applyParse: a rejection survives several bad edits in a row', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r', 'v1')));
  const bad = { resources: [], diagnostics: [schemaError], rejected: [{ type: VS, name: 'r', file: 'a.yaml', line: 1 }] };
  const v2 = applyParse(v1, 'a.yaml', 't2', bad);
  const v3 = applyParse(v2, 'a.yaml', 't3', { resources: [], diagnostics: [syntaxError], rejected: [{ file: 'a.yaml', line: 3 }] });
  assert.equal(v3.resources.size, 0);
  assert.deepEqual(rejectedOf(v3), ['VirtualService/r: the document at a.yaml:3 cannot be parsed']);
  assert.deepEqual(v3.diagnostics.map((d) => d.code), ['YAML_SYNTAX']);
});

test('applyParse: an unidentifiable document rejects everything the file held that it no longer defines validly', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r', 'v1'), destinationRule('default', 'r')));
  const v2 = applyParse(v1, 'a.yaml', 't2', {
    resources: [virtualService('default', 'r', 'v2')],
    diagnostics: [syntaxError],
    rejected: [{ file: 'a.yaml', line: 3 }],
  });
  assert.deepEqual(names(v2.resources), ['VirtualService/r@v2']);
  assert.deepEqual(rejectedOf(v2), ['DestinationRule/r: the document at a.yaml:3 cannot be parsed']);
});

test('applyParse: a rejected document of a new resource holds nothing; a removed document is dropped', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r')));
  const v2 = applyParse(v1, 'a.yaml', 't2', {
    resources: [],
    diagnostics: [schemaError],
    rejected: [{ type: VS, namespace: 'default', name: 'other', file: 'a.yaml', line: 1 }],
  });
  assert.equal(v2.resources.size, 0, 'r was removed from the file; other was never valid');
  assert.equal(v2.rejected.size, 0);
  assert.deepEqual(v2.diagnostics.map((d) => d.code), ['SCHEMA']);
});

test('applyParse: a rejected document in another namespace does not hold a same-named resource', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r')));
  const v2 = applyParse(v1, 'a.yaml', 't2', {
    resources: [],
    diagnostics: [schemaError],
    rejected: [{ type: VS, namespace: 'prod', name: 'r', file: 'a.yaml', line: 1 }],
  });
  assert.equal(v2.resources.size, 0);
  assert.equal(v2.rejected.size, 0);
});

test('applyParse: the same resource twice in one file: first wins, with a diagnostic naming both lines', () => {
  const e = applyParse(undefined, 'a.yaml', 't', ok(at(virtualService('default', 'r', 'one'), 'a.yaml', 1), at(virtualService('default', 'r', 'two'), 'a.yaml', 9)));
  assert.deepEqual(names(e.resources), ['VirtualService/r@one']);
  assert.equal(e.diagnostics[0].code, 'DUPLICATE_RESOURCE');
  assert.match(e.diagnostics[0].message, /a\.yaml:1 and a\.yaml:9/);
});

test('readFailed rejects what the file held and explains', () => {
  const v1 = applyParse(undefined, 'a.yaml', 't1', ok(virtualService('default', 'r')));
  const v2 = readFailed(v1, 'a.yaml', 'EACCES');
  assert.equal(v2.resources.size, 0);
  assert.deepEqual(rejectedOf(v2), ['VirtualService/r: a.yaml cannot be read (EACCES)']);
  assert.equal(v2.diagnostics[0].code, 'FILE_READ_ERROR');
  assert.match(v2.diagnostics[0].message, /the 1 resource\(s\) it held keep their last valid version/);
  assert.equal(readFailed(undefined, 'b.yaml', 'EACCES').rejected.size, 0);
});

test('mergeFiles: first file by the given order wins a duplicate; the diagnostic names both files', () => {
  const a = applyParse(undefined, 'a.yaml', 't', ok(at(virtualService('default', 'r', 'from-a'), 'a.yaml', 4)));
  const b = applyParse(undefined, 'b.yaml', 't', ok(at(virtualService('default', 'r', 'from-b'), 'b.yaml', 1), virtualService('default', 'only-b')));
  const merged = mergeFiles([a, b]);
  assert.deepEqual(
    merged.resources.map((r) => (r.spec as { hosts: string[] }).hosts[0]),
    ['from-a', 'only-b'],
  );
  assert.equal(merged.diagnostics.length, 1);
  assert.equal(merged.diagnostics[0].code, 'DUPLICATE_RESOURCE');
  assert.match(merged.diagnostics[0].message, /defined in both a\.yaml:4 and b\.yaml:1; using a\.yaml/);
  assert.equal(merged.diagnostics[0].file, 'b.yaml');
});

test('mergeFiles: a key one file rejects is not rejected while another file defines it validly', () => {
  const a1 = applyParse(undefined, 'a.yaml', 't', ok(virtualService('default', 'r', 'from-a')));
  const a2 = applyParse(a1, 'a.yaml', 't2', { resources: [], diagnostics: [schemaError], rejected: [{ type: VS, namespace: 'default', name: 'r', file: 'a.yaml', line: 1 }] });
  const b = applyParse(undefined, 'b.yaml', 't', ok(virtualService('default', 'r', 'from-b')));
  assert.equal(mergeFiles([a2]).rejected.size, 1);
  const merged = mergeFiles([a2, b]);
  assert.equal(merged.rejected.size, 0);
  assert.deepEqual(merged.resources.map((r) => (r.spec as { hosts: string[] }).hosts[0]), ['from-b']);
});
