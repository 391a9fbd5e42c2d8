/**
 * The configuration corpus: every `test/config-corpus/bad/*.yaml` (schema-* and semantic-*) names
 * the diagnostic codes it must produce on its first line (`# expect: CODE[, CODE2]`); every
 * `good/*.yaml` is tricky-but-valid configuration that must produce no error. Each file runs
 * through the real pipeline the CLI uses — load (schema) then analyzeConfig (semantic) — as its
 * own subtest, so a failure names the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { analyzeConfig } from '../src/config/analyze/index.ts';
import { loadConfigPaths } from '../src/config/load.ts';
import type { Diagnostic } from '../src/config/resource.ts';

const root = new URL('..', import.meta.url).pathname;
const corpus = join(root, 'test/config-corpus');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
}

/** The codes named by a file's `# expect:` header line. */
function expectedCodes(text: string): string[] {
  for (const line of text.split('\n').slice(0, 5)) {
    const m = /^#\s*expect:\s*(.+)$/.exec(line.trim());
    if (m) return m[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
  return [];
}

async function diagnose(file: string): Promise<Diagnostic[]> {
  const loaded = await loadConfigPaths([file]);
  return [...loaded.diagnostics, ...analyzeConfig(loaded.resources)];
}

function show(d: readonly Diagnostic[]): string {
  return d.map((x) => `  ${x.severity} ${x.code} ${x.fieldPath ?? ''}: ${x.message}`).join('\n') || '  (none)';
}

for (const name of yamlFiles(join(corpus, 'bad'))) {
  test(`corpus bad/${name}`, async () => {
    const file = relative(root, join(corpus, 'bad', name));
    const text = readFileSync(join(root, file), 'utf8');
    const expected = expectedCodes(text);
    assert.ok(expected.length > 0, `${file}: first line must be '# expect: CODE[, CODE2]'`);
    const got = await diagnose(file);
    for (const code of expected) {
      const hits = got.filter((d) => d.code === code);
      assert.ok(hits.length > 0, `${file}: expected ${code}, got:\n${show(got)}`);
      for (const d of hits) {
        assert.equal(d.file, file, `${code} names its file`);
        assert.equal(typeof d.line, 'number', `${code} names a line`);
      }
    }
  });
}

for (const name of yamlFiles(join(corpus, 'good'))) {
  test(`corpus good/${name}`, async () => {
    const file = relative(root, join(corpus, 'good', name));
    const got = await diagnose(file);
    const problems = got.filter((d) => d.severity !== 'info');
    assert.deepEqual(problems, [], `${file}: expected no errors or warnings, got:\n${show(problems)}`);
  });
}

test('corpus covers every semantic code', async () => {
  const { SemanticCodes } = await import('../src/config/analyze/index.ts');
  const covered = new Set<string>();
  for (const name of yamlFiles(join(corpus, 'bad'))) {
    if (!name.startsWith('semantic-')) continue;
    for (const c of expectedCodes(readFileSync(join(corpus, 'bad', name), 'utf8'))) covered.add(c);
  }
  assert.deepEqual(SemanticCodes.filter((c) => !covered.has(c)), []);
});
