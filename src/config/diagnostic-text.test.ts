import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { boundedText, notText, tidyDiagnostics } from './diagnostic-text.ts';
import { parseConfigText } from './load.ts';

test('boundedText escapes control characters and invalid UTF-8 and cuts long text, saying how long it was', () => {
  assert.equal(boundedText('a\x00b\nc\x7f\ufffdé日本'), 'a\\x00b\\nc\\x7f\\ufffdé日本');
  assert.equal(boundedText('tab\tkept'), 'tab\tkept');
  const long = boundedText('x'.repeat(10_000), 50);
  assert.equal(long, `${'x'.repeat(50)}... (10000 characters)`);
  assert.equal(boundedText('\ud800 lone'), '\\ud800 lone');
});

test('notText tells binary from YAML, tolerating a stray control character', () => {
  assert.equal(notText('kind: Service\nmetadata: {name: a}\n'), undefined);
  assert.equal(notText('a: "x\x01"\n'), undefined);
  assert.match(notText(`a: 1\n\x00`) ?? '', /NUL/);
  assert.match(notText(randomBytes(4096).toString('utf8').replace(/\x00/g, '')) ?? '', /control characters or invalid UTF-8/);
});

test('tidyDiagnostics keeps 20 per file and says how many more', () => {
  const many = Array.from({ length: 25 }, (_, i) => ({ severity: 'error' as const, code: 'YAML_SYNTAX', message: `e${i}`, file: 'a.yaml' }));
  const out = tidyDiagnostics([...many, { severity: 'error', code: 'X', message: 'other', file: 'b.yaml' }]);
  assert.equal(out.filter((d) => d.file === 'a.yaml' && d.code === 'YAML_SYNTAX').length, 20);
  assert.deepEqual(out.find((d) => d.code === 'MORE_DIAGNOSTICS'), { severity: 'info', code: 'MORE_DIAGNOSTICS', message: '5 more diagnostics for this file not shown', file: 'a.yaml' });
  assert.ok(out.some((d) => d.file === 'b.yaml'));
});

test('a 5 MB file of random bytes gives one short NOT_TEXT error; garbage YAML gives bounded, printable messages', () => {
  const junk = randomBytes(5_000_000).toString('utf8');
  const r = parseConfigText(junk, 'junk.yaml');
  assert.equal(r.diagnostics.length, 1);
  assert.equal(r.diagnostics[0].code, 'NOT_TEXT');
  assert.ok(r.diagnostics[0].message.length < 200, r.diagnostics[0].message);
  // Printable garbage the YAML parser quotes back at length.
  const text = Array.from({ length: 300 }, (_, i) => `k${i}: [${'z'.repeat(5000)}\n: : "`).join('\n');
  const g = parseConfigText(text, 'g.yaml');
  assert.ok(g.diagnostics.length <= 21, `${g.diagnostics.length} diagnostics`);
  for (const d of g.diagnostics) assert.ok(d.message.length <= 330 && !/[\x00-\x08\x0b-\x1f]/.test(d.message), d.message.slice(0, 100));
});
